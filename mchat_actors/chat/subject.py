"""What a memory is about: its subject (entity + attribute, identifiers included) and its value.

    >>> subject_of("라인 2 가동률 87%")
    'line 2 가동률'
    >>> subject_of("X부품 불량률은 15%로 올랐다")
    'x부품 불량률'
    >>> value_of("리드타임 3주")
    '3주'

Two memories of the same place are versions of one fact when their subjects are equal and not
empty; the newer supersedes the older (``chat.repo.save_memory``). The rules, in order:

- The subject is the words before the value. It ends at the first ``:``, ``=`` or arrow, at a
  word marked as topic or subject by a particle (``은/는/이/가``: ``배포는`` -> ``배포``), at an
  English copula (``is``, ``are``, ``was``, ``were``) or past participle (``improved``), or just
  before the first value: a word with a digit that is not an identifier (``87%``, ``3주``,
  ``5월``, ``11/28``).
- Identifiers belong to the subject and must be equal: letters and digits attached to a noun
  (``X부품``, ``G7``, ``K-220``, ``2호기``), a number after an identifier noun (``라인 2``,
  ``LOT 4471``, ``도면 02-1234-5678``), and long codes (five or more digits, ``20240517-0012345``).
- Particles, English function words and time words (``오늘``, ``지난주``, ``현재``, ``now``) are
  left out of the subject, so ``라인 2 가동률은 지금 90%`` and ``라인 2 가동률 87%`` agree.
- A text with no value or marker but with an identifier says its last word about the rest
  (``LOT 4471 출하 보류``: subject ``lot 4471 출하``). Any other text with no recognisable value or
  marker has no subject (``''``): it is never taken for a new version of anything; only an exact
  repeat of it changes nothing.

Pure functions; ``chat.repo`` stores the subject in ``memories.subject``.
"""

from __future__ import annotations

import re

from .analysis import normalize

# Nouns that name a thing by the number written after them: "라인 2", "LOT 4471", "금형 1".
IDENTIFIER_NOUNS = frozenset(
    "라인 line 로트 lot 금형 mold 설비 호기 도면 도번 drawing dwg 품번 part p/n pn 부품번호 "
    "모델 model 공정 station 스테이션 셀 cell 게이트 gate 창고 warehouse 랙 rack 차종 "
    "장비 machine 빌드 build 시리얼 serial s/n sn batch 배치 작업지시 wo 오더 order "
    "po 티켓 ticket 이슈 issue 챔버 chamber 노즐 nozzle 지그 jig 프레스 press 로봇 robot "
    "버전 version ver 펌웨어 firmware".split()
)
# One spelling per identifier noun, so "로트 4471" and "LOT 4471" name the same lot.
_CANONICAL = {
    "로트": "lot", "라인": "line", "금형": "mold", "도면": "drawing", "도번": "drawing",
    "dwg": "drawing", "품번": "part", "p/n": "part", "pn": "part", "부품번호": "part",
    "모델": "model", "공정": "station", "스테이션": "station", "셀": "cell", "게이트": "gate",
    "창고": "warehouse", "랙": "rack", "장비": "machine", "빌드": "build", "시리얼": "serial",
    "s/n": "serial", "sn": "serial", "배치": "batch", "오더": "order", "티켓": "ticket",
    "이슈": "issue", "챔버": "chamber", "노즐": "nozzle", "지그": "jig", "프레스": "press",
    "로봇": "robot", "버전": "version", "ver": "version", "펌웨어": "firmware",
}
# Nouns Korean writes glued after a letter (``X부품``, ``A라인``, ``B모델``), in the spelling of
# the same identifier written in English (``part X``, ``line A``, ``model B``)
_GLUED_NOUNS = {"부품": "part", "라인": "line", "모델": "model", "금형": "mold", "설비": "machine",
                "장비": "machine", "공정": "station", "창고": "warehouse", "로트": "lot"}
_PARTICLES_AFTER_LATIN = ("에서", "으로", "이랑", "은", "는", "이", "가", "을", "를", "의", "에",
                          "로", "와", "과", "도", "만", "랑")
# What else Korean attaches to a Latin word or a unit and does not name anything: more
# particles and the copula with its endings (``MPa야``, ``ppm이에요``, ``X부품이야``).
_ENDINGS_AFTER_LATIN = frozenset(
    "에게 한테 까지 부터 보다 처럼 마다 하고 이나 나 요 "
    "야 이야 예요 이에요 입니다 입니까 이다 다 였다 이었다 였어 이었어 인데 인데요 인가 인가요 "
    "인지 인지요 이고 고 이면 면 이라 라 이라고 라고 이라서 라서 이죠 죠 이지 지 일까 일까요 "
    "이냐 냐 이니 니 이네 네 임".split())
_COPULA_TAIL = re.compile(r"^(.*[\uac00-\ud7a3])(이야|이에요|이죠|입니다|이다|인가요|인데)$")
# Counters that make a number an identifier when attached: "1호기", "2라인", "3번", "A동".
_ID_COUNTERS = ("호기", "라인", "번", "호", "동", "차")
_TIME_WORDS = frozenset(
    "오늘 어제 금일 당일 현재 지금 최근 요즘 이번주 이번 지난주 지난달 올해 작년 "
    "today yesterday now currently current latest recent recently".split()
)
_FUNCTION_WORDS = frozenset(
    "the a an of for on in at to by with from and or our its their this that is are was were "
    "be been has have had now".split()
)
_COPULAS = frozenset("is are was were".split())
_TOPIC_PARTICLES = ("은", "는", "이", "가")
_SEPARATOR = re.compile(r"\s*(?::|=|->|→|=>)\s*")
_TOKEN = re.compile(r"[^\s,;()\[\]{}\"'“”‘’!?·]+")
_DIGIT = re.compile(r"\d")
_MIXED_ID = re.compile(r"^(?=.*[a-z])(?=.*\d)[a-z0-9][a-z0-9\-_./]*$")  # g7, k-220, m3
_LATIN_HANGUL = re.compile(r"^[a-z0-9][a-z0-9\-]*[\uac00-\ud7a3]+$")  # x부품, z모듈, 2호기
_LONG_CODE = re.compile(r"^[a-z]*\d[\d\-_/.]{4,}[a-z\d]*$")
_NUMBER = re.compile(r"^[#no.]*\d[\d\-_/.]*$")
_HANGUL_PARTICLE_TAIL = re.compile(r"^(.*?\d)(은|는|이|가|을|를|의|에|로|으로|와|과|도|만)$")


def _strip_id_particle(token: str) -> str:
    """``4471은`` -> ``4471``; ``2호기는`` -> ``2호기``; ``acme의`` -> ``acme``; ``8812:`` and
    ``8812.`` (a colon or full stop after it) -> ``8812``."""
    token = token.rstrip(":.") or token
    m = _HANGUL_PARTICLE_TAIL.match(token)
    if m:
        return m.group(1)
    latin = re.match(r"^([a-z0-9][a-z0-9\-_./]*)([\uac00-\ud7a3]+)$", token)
    if latin and (latin.group(2) in _PARTICLES_AFTER_LATIN
                  or latin.group(2) in _ENDINGS_AFTER_LATIN):
        return latin.group(1)
    copula = _COPULA_TAIL.match(token)  # x부품이야 -> x부품
    if copula and re.match(r"^[a-z0-9]", token):
        return copula.group(1)
    for particle in _PARTICLES_AFTER_LATIN:  # 라인은 -> 라인, x부품의 -> x부품
        if token.endswith(particle) and len(token) - len(particle) >= 2:
            return token[: -len(particle)]
    return token


def _canonical(noun: str) -> str:
    return _CANONICAL.get(noun, noun)


def is_identifier(token: str, previous: str | None = None) -> bool:
    """Whether ``token`` (normalised) names a thing rather than measuring it."""
    token = _strip_id_particle(token)
    if previous is not None and _strip_id_particle(previous) in IDENTIFIER_NOUNS and (
            _NUMBER.match(token) or _MIXED_ID.match(token)
            or (len(token) == 1 and token.isascii() and token.isalnum())):  # 라인 A, not 지그 왜
        return True
    if _MIXED_ID.match(token) and not re.match(r"^\d+(\.\d+)?[a-z]{1,3}$", token):
        return True  # g7, k-220, v3, but not 2.5nm, 45db, 3h
    if _LATIN_HANGUL.match(token):
        lead = re.match(r"^[a-z0-9\-]+", token)
        assert lead is not None
        if lead.group(0).isdigit():
            return token[len(lead.group(0)):].startswith(_ID_COUNTERS)
        return True  # x부품, z모듈
    return bool(_LONG_CODE.match(token)) and len(_DIGIT.findall(token)) >= 5


def _identifier_spans(text: str) -> list[tuple[str, list[str]]]:
    """``(identifier, the tokens that wrote it)`` for each identifier of ``text``.

    Korean also writes the number first: ``4472 로트``, ``2호기 금형`` name the same things as
    ``로트 4472`` and ``금형 2호기``.
    """
    tokens = _TOKEN.findall(normalize(text))
    found = []
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else None
        following = _strip_id_particle(tokens[i + 1]) if i + 1 < len(tokens) else None
        if is_identifier(token, previous):
            noun = [previous] if previous is not None and _identifier_form(
                token, previous) != _identifier_form(token, None) else []
            found.append((_identifier_form(token, previous), [*noun, token]))
        elif following in IDENTIFIER_NOUNS and is_identifier(token, following):
            found.append((_identifier_form(token, following), [token, tokens[i + 1]]))
    return found


def identifiers(text: str) -> frozenset[str]:
    """The identifiers written in ``text``, in one spelling each (``라인 2`` -> ``line 2``,
    ``X부품`` -> ``part x``)."""
    return frozenset(_unglued(form) for form, _ in _identifier_spans(text))


def without_identifiers(text: str) -> str:
    """``text`` (normalised) without the words that write its identifiers: ``2라인 솔더 세척
    주기 단축`` -> ``솔더 세척 주기 단축`` (the 2 of 2라인 is a name, not a value)."""
    tokens = _TOKEN.findall(normalize(text))
    drop = {i for i, token in enumerate(tokens) if is_identifier(
        token, tokens[i - 1] if i else None)}
    return " ".join(t for i, t in enumerate(tokens) if i not in drop)


def identifier_words(text: str) -> frozenset[str]:
    """The words (as ``chat.analysis`` splits them) that write ``text``'s identifiers."""
    words: set[str] = set()
    for _, tokens in _identifier_spans(text):
        for token in tokens:
            words.update(re.findall(r"[^\W_]+", _strip_id_particle(token)))
    return frozenset(words)


def _identifier_form(token: str, previous: str | None) -> str:
    """The one spelling of an identifier: ``LOT 4471``/``로트 4471`` -> ``lot 4471``."""
    core = _strip_id_particle(token)
    if previous is not None and _strip_id_particle(previous) in IDENTIFIER_NOUNS and (
            _NUMBER.match(core) or len(core) == 1 or re.match(r"^\d+[\uac00-\ud7a3]+$", core)):
        return f"{_canonical(_strip_id_particle(previous))} {core}"
    counted = re.match(r"^(\d+)(라인)$", core)
    if counted:
        return f"line {counted.group(1)}"
    return core


def _unglued(form: str) -> str:
    """``x부품`` -> ``part x``: a letter with a noun glued after it, in the spelling of the
    same identifier written in English (``part X``). For matching only: memories' subjects
    (stored, and compared when a new fact replaces an old one) keep the form as written."""
    glued = re.match(r"^([a-z][a-z0-9\-]*)([\uac00-\ud7a3]+)$", form)
    if glued and glued.group(2) in _GLUED_NOUNS:
        return f"{_GLUED_NOUNS[glued.group(2)]} {glued.group(1)}"
    return form


def identifiers_match(asked: frozenset[str], written: frozenset[str]) -> bool:
    """Whether a memory with identifiers ``written`` can answer for any of ``asked``.

    Two identifiers match when their last parts are equal and, where both name their noun,
    the nouns are equal too: ``1호기`` matches ``mold 1호기``; ``mold 1호기`` does not match
    ``press 1호기``; ``x부품`` never matches ``y부품``.
    """
    if not asked:
        return True
    for a in asked:
        a_noun, _, a_core = a.rpartition(" ")
        for w in written:
            w_noun, _, w_core = w.rpartition(" ")
            if a_core == w_core and (not a_noun or not w_noun or a_noun == w_noun):
                return True
    return False


def _is_value(token: str) -> bool:
    return bool(_DIGIT.search(token))


def _word_form(token: str, previous: str | None) -> str:
    if is_identifier(token, previous):
        return _identifier_form(token, previous)
    return _canonical(_strip_id_particle(token))


def _subject_words(tokens: list[str]) -> tuple[list[str], int]:
    """The subject's words and the index of the first token after the subject."""
    words: list[str] = []
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else None
        if is_identifier(token, previous):
            form = _identifier_form(token, previous)
            if previous is not None and words and form.startswith(f"{words[-1]} "):
                words.pop()  # "라인" then "라인 2": the identifier carries its noun
            words.append(form)
            continue
        if token in _TOPIC_PARTICLES:  # "LOT 4471 는 ..."
            return words, i + 1
        if _is_value(token):
            return words, i
        if token in _COPULAS or (token.isascii() and token.endswith("ed") and len(token) > 4
                                 and words):
            return words, i + 1
        stem = _strip_id_particle(token)
        words.append(_canonical(stem))
        if stem != token and token.endswith(_TOPIC_PARTICLES):
            return words, i + 1
    return words, len(tokens)


def _clean(words: list[str]) -> str:
    """The subject key: its words, without time and function words, in a fixed order."""
    kept = {w for w in words if w and w not in _TIME_WORDS and w not in _FUNCTION_WORDS}
    return " ".join(sorted(kept))


def split_subject(text: str) -> tuple[str, str]:
    """``(subject, value)`` of ``text``; ``("", text)`` when it has no recognisable subject."""
    norm = normalize(text)
    sep = _SEPARATOR.search(norm)
    if sep and sep.start() > 0:
        head, tail = norm[: sep.start()], norm[sep.end():]
        tokens = _TOKEN.findall(head)
        words = [_word_form(t, tokens[i - 1] if i else None) for i, t in enumerate(tokens)]
        words = [w for i, w in enumerate(words)
                 if not (i + 1 < len(words) and words[i + 1].startswith(f"{w} "))]
        subject = _clean(words)
        return (subject, tail.strip()) if subject and tail.strip() else ("", norm)
    tokens = _TOKEN.findall(norm)
    words, end = _subject_words(tokens)
    if end >= len(tokens):
        # No value found. With an identifier, the last word is what is said about it
        # ("LOT 4471 출하 보류", "라인 1 담당자 김민수"); without one, there is no subject.
        if len(tokens) < 3 or not any(" " in w or is_identifier(w) for w in words):
            return "", norm
        words, end = _subject_words(tokens[:-1])[0], len(tokens) - 1
        if not any(" " in w or is_identifier(w) for w in words) or len(words) < 2:
            return "", norm
    subject = _clean(words)
    if not subject or not re.search(r"[^\W\d_]", subject):
        return "", norm
    value = " ".join(tokens[end:])
    return subject, value


def subject_of(text: str) -> str:
    """The subject of ``text`` ('' when none)."""
    return split_subject(text)[0]


def value_of(text: str) -> str:
    """What ``text`` says about its subject (the whole text when it has no subject)."""
    subject, value = split_subject(text)
    if not subject:
        return text.strip()
    # the value in the memory's own spelling (case) where it can be found
    original = " ".join(text.split())
    at = original.lower().rfind(value)
    return original[at:] if at >= 0 else value


__all__ = ["IDENTIFIER_NOUNS", "identifier_words", "identifiers", "identifiers_match",
           "is_identifier", "without_identifiers",
           "split_subject", "subject_of", "value_of"]
