from __future__ import annotations

from tests.http.conftest import SECRETS


async def test_admin_page_and_assets_are_served_with_a_strict_csp(harness):
    """/admin, its JS and CSS come from the package; only same-origin scripts may run."""
    r = await harness.client.get("/admin")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert '<script src="/admin/admin.js"' in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN
    js = await harness.client.get("/admin/admin.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "sessionStorage" in js.text and "/api/v1/mchat" in js.text
    assert "innerHTML" not in js.text  # data goes in through textContent only
    css = await harness.client.get("/admin/admin.css")
    assert css.headers["content-type"].startswith("text/css")
    for text in (r.text, js.text, css.text):
        for secret in SECRETS:
            assert secret not in text


async def test_unknown_admin_assets_are_404(harness):
    """Only the three page files are served: no path tricks."""
    for path in ("/admin/nope.js", "/admin/..%2fapp.py", "/admin/admin.html/x"):
        r = await harness.client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "not found"


async def test_openapi_document_lists_the_http_contract(harness):
    """/openapi.json documents every public route (the page itself is left out)."""
    doc = (await harness.client.get("/openapi.json")).json()
    paths = doc["paths"]
    for path in ("/mchat/health", "/metrics", "/mchat/webhook/outgoing", "/mchat/slash",
                 "/api/v1/mchat/mappings/channels", "/api/v1/mchat/mappings/users",
                 "/api/v1/mchat/mappings/channels/{channel_id}/sync", "/api/v1/mchat/status",
                 "/api/v1/mchat/outbox", "/api/v1/mchat/outbox/{row_id}/retry",
                 "/api/v1/mchat/audit"):
        assert path in paths, path
    assert "/admin" not in paths
    body = paths["/mchat/webhook/outgoing"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/x-www-form-urlencoded"}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
