"""The domain glossary: groups of spellings of one concept, searched for one another.

``glossary.toml`` (shipped) plus ``MCHAT_GLOSSARY_PATH`` (an admin's, same form). Each spelling
is analysed by the service's analyzer (``chat.morph.KiwiAnalyzer.load``) into its terms.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import attrs


@attrs.frozen
class Glossary:
    """Groups of spellings of one concept, each spelling as its tuple of terms."""

    groups: tuple[tuple[tuple[str, ...], ...], ...] = ()

    def expansions(self, terms: Iterable[str]) -> dict[str, list[tuple[str, ...]]]:
        """For each of ``terms`` that is part of a spelling found in ``terms``: the other
        spellings of its group."""
        have = set(terms)
        found: dict[str, list[tuple[str, ...]]] = {}
        for group in self.groups:
            for spelling in group:
                if spelling and all(t in have for t in spelling):
                    others = [s for s in group if s and set(s) != set(spelling)]
                    for t in spelling:
                        found.setdefault(t, []).extend(o for o in others
                                                       if o not in found.get(t, []))
        return found


def read_glossary_files(extra: str | None = None) -> list[list[str]]:
    """The shipped glossary's groups, then those of ``extra`` (a TOML file of the same form).

    Raises:
        ValueError: ``extra`` is unreadable or not of the form ``[[same]] terms = [...]``.
    """
    texts = [resources.files(__package__).joinpath("glossary.toml").read_text("utf-8")]
    if extra:
        try:
            texts.append(Path(extra).read_text("utf-8"))
        except OSError as exc:
            raise ValueError(f"glossary {extra}: {exc.strerror}") from None
    groups = []
    for n, text in enumerate(texts):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"glossary {extra if n else 'glossary.toml'}: {exc}") from None
        for entry in data.get("same", []):
            terms = entry.get("terms") if isinstance(entry, dict) else None
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise ValueError(f"glossary {extra if n else 'glossary.toml'}: each [[same]] "
                                 "needs terms = [\"...\", ...]")
            groups.append(terms)
    return groups


__all__ = ["Glossary", "read_glossary_files"]
