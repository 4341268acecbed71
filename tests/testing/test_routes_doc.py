"""docs/fake-mattermost.md lists exactly the routes the fake serves."""

from __future__ import annotations

import re
from pathlib import Path

from mchat_actors.testing import FakeMattermost

DOC = Path(__file__).resolve().parents[2] / "docs" / "fake-mattermost.md"


def test_the_served_table_is_the_router() -> None:
    text = DOC.read_text()
    served = text[text.index("## Served"):text.index("## Not served")]
    documented = set(re.findall(r"^\| (GET|POST|PUT|DELETE) \| `([^`]+)` \|", served, re.M))
    routed = {(r.method, r.template) for r in FakeMattermost().router.routes}
    routed.add(("GET", "/api/v4/websocket"))  # the upgrade is handled before routing
    assert sorted(documented - routed) == []
    assert sorted(routed - documented) == []
