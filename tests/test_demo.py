from __future__ import annotations

import argparse

import httpx
import trio

from mchat_actors.demo import run_demo


async def test_demo_answers_its_scripted_question_and_serves_the_pages(tmp_path, capsys):
    """The demo's @ai question is answered from its /remember; chat and admin pages load."""
    args = argparse.Namespace(port=0, http_port=0, db=str(tmp_path / "demo.db"))
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(run_demo, args)
        out = capsys.readouterr().out
        assert "12%" in out.split("scripted conversation:")[1]
        async with httpx.AsyncClient() as client:
            chat = await client.get(urls["chat"])
            assert chat.status_code == 200 and 'id="message"' in chat.text
            admin = await client.get(urls["admin"])
            assert admin.status_code == 200
            health = await client.get(urls["health"])
            assert health.json()["status"] == "ok"
        nursery.cancel_scope.cancel()
