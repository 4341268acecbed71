from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    """Each environment variable config.py reads has a row in docs/configuration.md."""
    source = (ROOT / "mchat_actors" / "config.py").read_text()
    names = set(re.findall(r'"((?:MCHAT|LLM|CHAT)_[A-Z_]+)"', source))
    assert len(names) > 20
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert missing == []
