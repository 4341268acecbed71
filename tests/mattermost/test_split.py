from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mchat_actors.mattermost.split import MAX_POST_CHARS, split_message, split_pieces

FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")


def open_fence_at_end(text: str) -> str | None:
    """Independent CommonMark-style fence tracker: the marker still open at the end, if any."""
    marker = None
    for line in text.split("\n"):
        m = FENCE.fullmatch(line)
        if not m:
            continue
        mark, rest = m.group(1), m.group(2)
        if marker is None:
            if not (mark[0] == "`" and "`" in rest):
                marker = mark
        elif mark[0] == marker[0] and len(mark) >= len(marker) and not rest.strip():
            marker = None
    return marker


def test_short_text_is_returned_unchanged():
    """A message within the limit is one chunk, byte for byte."""
    assert split_message("hello\n\n```py\nx\n") == ["hello\n\n```py\nx\n"]
    assert split_message("") == [""]


def test_prefers_paragraph_breaks():
    """A paragraph break is preferred over later line breaks and spaces."""
    text = "a" * 30 + "\n\n" + "b" * 10 + "\nc c c c c c c c"
    chunks = split_message(text, 50)
    assert chunks[0] == "a" * 30 + "\n\n"


def test_falls_back_to_lines_then_sentences_then_spaces():
    """Without paragraphs, a line break wins; without lines, a sentence end; then a space."""
    assert split_message("x" * 30 + "\n" + "y. z " * 10, 40)[0] == "x" * 30 + "\n"
    assert split_message("Hello there. " + "word " * 20, 30)[0] == "Hello there. word word word "
    text = "word " * 20
    chunks = split_message(text, 23)
    assert chunks[0] == "word word word word "
    assert "".join(chunks) == text


def test_sentence_end_beats_a_later_space():
    """A sentence end within the window is preferred to a later space."""
    text = "First sentence here. then more words follow without end " * 3
    assert split_message(text, 40)[0] == "First sentence here. "


def test_unbroken_text_is_hard_cut():
    """Text without any boundary is cut at exactly max_chars."""
    assert split_message("z" * 25, 10) == ["z" * 10, "z" * 10, "z" * 5]


def test_counts_code_points_not_bytes():
    """Korean and emoji count one per code point, as the server's rune limit does."""
    text = "가" * 16383
    assert split_message(text) == [text]
    chunks = split_message("😀" * 16384)
    assert [len(c) for c in chunks] == [16383, 1]
    assert MAX_POST_CHARS == 16383


def test_code_fence_is_closed_and_reopened_with_its_info_string():
    """A fence cut across chunks is closed and reopened as ```python."""
    code = "".join(f"line_{i} = {i}\n" for i in range(20))
    text = "Intro.\n\n```python\n" + code + "```\n\nOutro."
    chunks = split_message(text, 120)
    assert len(chunks) > 2
    assert chunks[0].endswith("```") and chunks[1].startswith("```python\n")
    for chunk in chunks:
        assert open_fence_at_end(chunk) is None
        assert len(chunk) <= 120


def assert_mid_line_cuts_are_clean(pieces):
    """Where a cut falls inside a line, neither half reads as a fence line."""
    for (_, before, _), (_, after, _) in zip(pieces, pieces[1:], strict=False):
        if not before.endswith("\n"):
            assert not FENCE.fullmatch(before.split("\n")[-1])
            assert not FENCE.fullmatch(after.split("\n")[0])


def test_cut_never_falls_inside_a_fence_line():
    """A fence line is never split, even when a hard cut would land inside it."""
    text = "a" * 18 + "\n```longinfo\n" + "b" * 40 + "\n```\n"
    for max_chars in range(30, 60):
        assert_mid_line_cuts_are_clean(split_pieces(text, max_chars))


def test_a_mid_line_cut_does_not_create_a_fence_line():
    """A space cut before inline backticks does not turn the rest into a fence opener."""
    text = "see the " + "```" + "x" * 30
    for chunk in split_message(text, 20):
        assert open_fence_at_end(chunk) is None


def test_rejects_a_non_positive_limit():
    """max_chars below 1 is a ValueError."""
    with pytest.raises(ValueError, match="max_chars"):
        split_message("x", 0)


TOKENS = st.sampled_from([
    "word", "다람쥐", "😀", " ", " ", "  ", "\n", "\n\n", ". ", "! ", "。", "\r\n", "`", "``",
    "```", "\n```\n", "\n```python\n", "\n~~~~\n", "\n````\n", "\n```a`b\n", "\n   ```\n",
    "\t", "x" * 30,
])


@given(text=st.lists(TOKENS, max_size=120).map("".join), max_chars=st.integers(40, 200))
def test_split_properties(text, max_chars):
    """Bodies rejoin to the text, chunks fit, and fences balance in every chunk but the last."""
    pieces = split_pieces(text, max_chars) if len(text) > max_chars else [("", text, "")]
    chunks = split_message(text, max_chars)
    assert chunks == [p + b + s for p, b, s in pieces]
    assert "".join(body for _, body, _ in pieces) == text
    for prefix, body, suffix in pieces:
        assert body or text == ""
        assert len(prefix + body + suffix) <= max_chars
        assert prefix == "" or (FENCE.fullmatch(prefix[:-1]) and prefix.endswith("\n"))
        assert suffix == "" or FENCE.fullmatch(suffix.lstrip("\n"))
    assert_mid_line_cuts_are_clean(pieces)
    for chunk in chunks[:-1]:
        assert open_fence_at_end(chunk) is None
    if len(chunks) > 1:
        assert (open_fence_at_end(chunks[-1]) is None) == (open_fence_at_end(text) is None)


@given(text=st.text(max_size=400), max_chars=st.integers(1, 50))
def test_arbitrary_text_never_loses_characters_or_exceeds_the_limit(text, max_chars):
    """For any text and any limit, bodies rejoin to the text and chunks fit."""
    pieces = split_pieces(text, max_chars)
    assert "".join(body for _, body, _ in pieces) == text
    assert all(len(p + b + s) <= max_chars for p, b, s in pieces)
    assert all(len(c) <= max_chars for c in split_message(text, max_chars))
