"""The admin API's memory view: search, versions, forget and restore (audited), on the embedded
ChatService; 404 for a backend without it; the bearer token on every route."""

from __future__ import annotations

from mchat_actors.chat.embedded import open_embedded_chat_service
from tests.chat.chat_fakes import FakeClock
from tests.http.conftest import make_config, open_harness

API = "/api/v1/mchat/memories"


async def _remembered(svc, clock):  # noqa: ANN001, ANN202
    kim = await svc.create_user(name="kim", email=None)
    room = await svc.create_room(name="quality", kind="channel")
    await svc.add_room_member(room.id, kim.id)
    for i, text in enumerate(("Sunrise 리드타임 2주", "Sunrise 리드타임 3주",
                              "Acme 담당 010-1234-5678")):
        clock.now += 86_400
        await svc.send_message(room.id, kim.id, f"/remember {text}", respond=True,
                               prompt=f"/remember {text}", post_id=f"p{i}",
                               permalink=f"http://mm/pl/p{i}")
    return kim, room


async def test_search_history_forget_and_restore(tmp_path) -> None:  # noqa: ANN001
    clock = FakeClock()
    async with open_embedded_chat_service(str(tmp_path / "c.db"), clock=clock) as svc:
        await _remembered(svc, clock)
        async with open_harness(make_config(tmp_path), chat=svc) as h:  # type: ignore[arg-type]
            r = await h.client.get(API, params={"q": "sunrise"}, headers=h.admin())
            assert r.status_code == 200
            current = r.json()["memories"]
            assert {m["content"] for m in current} == {"Sunrise 리드타임 3주"}
            assert {m["author"] for m in current} == {"kim"}
            r = await h.client.get(API, params={"q": "acme"}, headers=h.admin())
            assert "010-1234-5678" not in r.text and "[PHONE]" in r.text
            r = await h.client.get(API, params={"state": "superseded"}, headers=h.admin())
            assert {m["content"] for m in r.json()["memories"]} == {"Sunrise 리드타임 2주"}
            target = current[0]["id"][1:]
            r = await h.client.get(f"{API}/{target}", headers=h.admin())
            versions = r.json()["versions"]
            assert [v["state"] for v in versions] == ["superseded", "current"]
            assert versions[0]["permalink"] == "http://mm/pl/p0"
            assert [a["action"] for a in versions[0]["audit"]] == ["created", "superseded"]
            r = await h.client.post(f"{API}/{target}/forget", headers=h.admin())
            assert r.status_code == 200
            assert (await h.client.post(f"{API}/{target}/forget",
                                        headers=h.admin())).status_code == 409
            r = await h.client.get(API, params={"state": "forgotten"}, headers=h.admin())
            assert [m["id"] for m in r.json()["memories"]] == [f"m{target}"]
            r = await h.client.post(f"{API}/{target}/restore", headers=h.admin())
            assert r.status_code == 200
            assert (await h.client.post(f"{API}/{target}/restore",
                                        headers=h.admin())).status_code == 409
            r = await h.client.get(f"{API}/{target}", headers=h.admin())
            trail = [a["action"] for a in r.json()["versions"][-1]["audit"]]
            assert trail == ["created", "forgotten", "restored"]
            audit = (await h.client.get("/api/v1/mchat/audit", headers=h.admin())).json()
            assert [e["action"] for e in audit["entries"][:2]] == ["memory.restore",
                                                                   "memory.forget"]
            assert (await h.client.get(f"{API}/99999", headers=h.admin())).status_code == 404
            assert (await h.client.post(f"{API}/99999/forget",
                                        headers=h.admin())).status_code == 404


async def test_every_memory_route_needs_the_token_and_an_embedded_backend(harness) -> None:  # noqa: ANN001
    routes = [("GET", API), ("GET", f"{API}/1"), ("POST", f"{API}/1/forget"),
              ("POST", f"{API}/1/restore")]
    for method, path in routes:
        r = await harness.client.request(method, path)
        assert r.status_code == 401
        r = await harness.client.request(method, path, headers=harness.admin())
        assert r.status_code == 404 and "embedded" in r.text  # FakeChat: no memory view
