"""docs/masking.md's table of tricky strings is what the masking code does."""

from __future__ import annotations

import re
from pathlib import Path

from mchat_actors.chat.masking import mask_for_storage, mask_sensitive

TABLE = Path(__file__).resolve().parents[2] / "docs" / "masking.md"


def table_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        cells = re.findall(r"`((?:[^`\\]|\\.)*)`", line)
        if line.startswith("| `") and len(cells) >= 3:
            rows.append(tuple(c.replace("\\|", "|") for c in cells[:3]))
    return rows  # type: ignore[return-value]


def test_the_table_has_at_least_30_tricky_strings() -> None:
    rows = table_rows()
    assert len(rows) >= 30
    kinds = " ".join(r[0] for r in rows)
    for word in ("LOT", "도면", "품번", "주민번호", "카드", "연락처", "+82"):
        assert word in kinds


def test_each_row_is_what_storage_and_the_llm_get() -> None:
    wrong = []
    for text, stored, sent in table_rows():
        got = (mask_for_storage(text), mask_sensitive(text))
        if got != (stored, sent):
            wrong.append((text, got, (stored, sent)))
    assert wrong == []


def test_identifiers_dates_and_measurements_are_never_touched() -> None:
    for text, stored, sent in table_rows():
        identifier = r"(LOT|로트|도면|도번|품번|P/N|S/N|시리얼|주문번호|\d{4}-\d\d-\d\d|\d+월)"
        if re.match(identifier, text):
            assert stored == sent == text
