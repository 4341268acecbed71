"""What kind of value a question asks for, and whether a memory states one.

A question names the kind of its answer: ``몇 명`` a number of people, ``몇 %`` a share, ``몇 시``
an hour, ``언제`` / ``when`` a time. A memory that states no value of that kind cannot be its
answer, however many of the question's words it shares: ``라인 4 작업자 몇 명이야?`` is not
answered by ``라인 4 택트타임 42초로 단축`` (no number of people), ``R사 납기 언제야?`` not by
``R사 납품 단가 3% 인하 합의`` (no time). The built-in answerer (``chat.answer``) says it does not
know rather than quote such a memory.

    >>> asked_kind("라인 4 작업자 몇 명이야?").unit
    ('명', '인', 'people', 'persons', 'person')
    >>> states("라인 4 택트타임 42초로 단축", asked_kind("라인 4 작업자 몇 명이야?"))
    False
    >>> states("측정실 온도는 23±1도 유지", asked_kind("측정실 온도 몇 도로 유지해?"))
    True

A question about how often (``언제마다``, ``얼마나 자주``, ``몇 시간마다``, ``주기 얼마야``,
``how often``) asks for an interval, not a time or a number: it is answered by a memory that
states one (``500샷마다``, ``매주 월요일``, ``2주에 한 번``, ``월 1회``, ``주기 3개월``, ``every
4 hours``, ``daily``, ``once per lot``, ``twice a shift``), whatever its unit, and not by a
date, a moment or a length of time (``11월 28일 완료``, ``500시간 시점``).

    >>> states("전동 드라이버 점검은 2주에 한 번", asked_kind("드라이버 얼마나 자주 점검해?"))
    True
    >>> states("정전기 측정기 교정 11월 28일 완료", asked_kind("측정기 교정 언제마다 해?"))
    False

A question about who (``누가``, ``누구``, ``어느 분``, ``who``) asks for a person or a
group: it is answered by a memory that names someone the question does not name already: a
name with a title or role (``박지민 담당``, ``오승철 프로``, ``이 과장``), a team, department
or company (``품질보증팀``, ``설비팀에``, ``R사``, ``QA team``), an @mention, an e-mail, or in
English a capitalised name inside the sentence (``is Dana``, ``from Umbrella Corp``; not a
month or a weekday). A memory about the thing asked that names nobody (``용접 인장강도 시험
기준 400MPa 이상`` for ``용접 인장강도 시험은 누가 하나요?``) cannot say who. A Korean name
written bare (``김민수가 작성``) is not recognised: such a memory is not quoted for a
who-question.

    >>> states("Z모듈 초도품 검사는 QA팀 박지민 담당", asked_kind("초도품 검사 누가 해?"))
    True
    >>> states("용접 인장강도 시험 기준 400MPa 이상", asked_kind("인장강도 시험은 누가 하나요?"))
    False

``몇`` said of a revision (``개정 몇이야``, ``몇 번째 개정``, ``버전 몇``) is answered by a
revision letter as well as a number (``Rev.D``, ``개정 B``): drawings and documents are revised
A, B, C as often as 1, 2, 3.

The units are Korean counters and the common units of measure with their other spellings (a
closed class of words, like the time words below); a unit not listed is compared as written
(``몇 사이클`` is stated by ``500사이클``). Nothing is asked of a question that names no unit and
no time (``얼마야?``, ``how many chargers``): what it wants is not known well enough to refuse.
Pure functions.
"""

from __future__ import annotations

import re

import attrs

from .analysis import normalize
from .subject import without_identifiers

# A counter or unit and its other spellings (the first is how Korean writes it after 몇).
_UNITS: tuple[tuple[str, ...], ...] = (
    ("개", "ea", "pcs", "pc", "개소"),
    ("명", "인", "people", "persons", "person"),
    ("건", "cases", "case", "件"),
    ("번", "회", "차례", "times", "time"),
    ("시간", "h", "hr", "hrs", "hour", "hours"),
    ("시", "am", "pm", "o'clock", ":"),
    ("분", "min", "mins", "minute", "minutes"),
    ("초", "s", "sec", "secs", "second", "seconds"),
    ("일", "day", "days"),
    ("주", "week", "weeks", "wk"),
    ("개월", "달", "month", "months"),
    ("년", "year", "years"),
    ("%", "퍼센트", "프로", "percent", "pct"),
    ("도", "℃", "°c", "°", "degree", "degrees"),
    ("대", "units", "unit"),
    ("원", "won", "krw"),
    ("달러", "$", "usd", "dollar", "dollars"),
)
_BY_SPELLING = {s: group for group in _UNITS for s in group}
# 개 is Korean's general counter: 몇 개 is also answered by a thing's own counter (20장, 3대,
# 5건, 2세트); the other counters are not answered by 개 (몇 대 asks for machines)
_THINGS = ("장", "매", "대", "건", "세트", "박스", "롤", "본", "set", "sets", "box", "boxes",
           "piece", "pieces", "units", "unit", "cases", "case")
_ENDING = re.compile(  # what Korean attaches to the unit after 몇 (몇 명이야, 몇 도로, 몇 시에)
    r"(?:이에요|이었어|이었지|이야|이죠|이지|이고|이나|인가요|인가|인지|인데|입니다|예요|였어|였지"
    r"|에서|으로|까지|부터|째|쯤|정도|이|가|은|는|을|를|에|로|야|요|나|지|죠)+$")
_HOW_MANY = re.compile(r"\bhow many ([a-z%°℃]+)")
_HANGUL_UNIT = re.compile(r"몇\s*([^\s\d?!.,~]+)")
_WHEN = re.compile(r"언제|며칠|몇\s*시(?!간)|몇\s*월|몇\s*일|\bwhen\b|\bwhat time\b|\bwhat date\b")
_NUMBER = r"\d[\d.,]*"
_TIME = re.compile(
    r"\d\s*(?:월|일|시|분|주|년|개월|주년)|\d{1,2}:\d{2}|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}"
    r"|\d(?:st|nd|rd|th)\b|[월화수목금토일]요일|매일|매주|매월|매달|매년|주간|월간|연간|격주"
    r"|오늘|내일|모레|어제|이번\s*주|다음\s*주|지난\s*주|이번\s*달|다음\s*달|지난\s*달|올해|내년|작년"
    r"|상반기|하반기|분기|연초|연말|월초|월말|오전|오후|아침|저녁|점심|새벽|\bq[1-4]\b"
    r"|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep"
    r"|sept|oct|nov|dec)[a-z]*\b|\b(?:today|tomorrow|yesterday|daily|weekly|monthly|annually"
    r"|yearly|every|noon|midnight|morning|afternoon|evening|quarter|am|pm)\b"
    r"|\b(?:this|next|last) (?:week|month|year)\b")


_AMOUNT = re.compile(r"얼마|몇|\bhow much\b")
_DURATION = re.compile(r"\bhow long\b|얼마\s*동안|며칠\s*동안|얼마나\s*걸")
_DURATION_UNITS = ("초", "분", "시간", "일", "주", "개월", "달", "년", "h", "hr", "hrs", "min",
                   "sec", "second", "seconds", "minute", "minutes", "hour", "hours", "day",
                   "days", "week", "weeks", "month", "months", "year", "years")
# how often: every how many, how many times a period, the period or interval asked for
_OFTEN = re.compile(
    r"언제\s*마다|얼마\s*마다|얼마나\s*자주|며칠\s*마다|몇\s*[^\s\d?!.,~]{0,4}?\s*마다"
    r"|몇\s*[^\s\d?!.,~]{0,4}?\s*에\s*한\s*번|(?:에|당)\s*몇\s*(?:번|회)"
    r"|\bhow (?:often|frequently|regularly)\b|\bevery how many\b"
    r"|\bhow many times (?:a|an|per|each|every)\b")
# 주기: how often when the question asks for a value (주기 얼마야), not in a yes/no question about
# it (주기 줄였어?). Not 간격/interval (also a spacing: 볼트 간격, confidence interval) nor
# 빈도/frequency (also a rate: 불량 빈도): those ask nothing known
_PERIOD_WORD = re.compile(r"주기")
_VALUE_WORD = re.compile(r"얼마|몇|어떻게|어때|뭐|무엇|무슨|언제|\b(?:what|how|which)\b")
# a period (하루, 2주, 교대, shift...) and how many times in it; an interval
_TIMES = r"(?:\d+|한|두|세|네|다섯)\s*(?:번|회|차례)(?!차|째)"
_PERIOD = (r"(?:(?:하루|이틀|사흘|일주일|보름|반년|한\s*(?:주|달)"
           r"|(?<![\d\uac00-\ud7a3])(?:일|주|월|연|년|분기|반기|교대|시간))\s*(?:에|당|마다)?"
           r"|(?:\d+|두|세|네)\s*[^\s\d]{1,4}?\s*(?:에|당|마다))\s*" + _TIMES)
_INTERVAL = re.compile(
    r"[^\s\d]마다|\d\s*마다|매\s*(?:일|주|월|달|년|분기|반기|시간|교대|근무|로트|회|번|\d)"
    r"|격주|격일|격월|(?:시간|일|주|월|분기|반기|연)별|" + _PERIOD
    + r"|(?:주기|간격)\s*(?:은|는|가|이|:)?\s*(?:약\s*)?\d|\d[^\s\d]{0,3}\s*(?:주기|간격)"
    r"|\bevery\b|\b(?:hourly|daily|nightly|weekly|biweekly|fortnightly|monthly|bimonthly"
    r"|quarterly|yearly|annually|annual|semiannually)\b"
    r"|\b(?:once|twice|thrice|\d+\s*(?:times|x)|(?:one|two|three|four|five|six) times)"
    r"\s+(?:a|an|per|each|every)\b|\b(?:per|each)\s+(?:shift|lot|batch|day|week|month|year"
    r"|hour|run|quarter|morning|night)\b|\b(?:mon|tues|wednes|thurs|fri|satur|sun)days\b"
    r"|\b(?:intervals?|frequency)\b[^.;]{0,20}?\d")
# 몇 said of a revision, and a revision letter
_REVISION_ASKED = re.compile(
    r"(?:개정|리비전|리비젼|버전|\brev(?:ision)?\b\.?|\bver(?:sion)?\b\.?)\s*(?:은|는|이|가)?\s*몇"
    r"|몇\s*(?:번째\s*)?(?:개정|리비전|리비젼|버전|판)")
_REVISION = re.compile(  # read in the text as written: 버전 2 reads as an identifier
    r"(?:개정|리비전|리비젼|버전|\brev(?:ision)?|\bver(?:sion)?)\s*\.?\s*(?:[a-z](?![a-z])|\d)"
    r"|\d+\s*차\s*개정")
_NUMBER_WORD = re.compile(
    r"\d|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty"
    r"|thirty|forty|fifty|hundred|thousand|million|dozen)\b"
    r"|(?<![\uac00-\ud7a3])(?:하나|둘|셋|넷|다섯|여섯|일곱|여덟|아홉|열|스물|백|천|만|억)"
    r"(?![\uac00-\ud7a3])")
# who: the question words, and what names someone in a memory (the question's own names aside)
_WHO = re.compile(r"누가|누구(?!나|든)|어느\s*분|어떤\s*분|\bwho(?:m|se)?\b")
_TITLES = ("님", "씨", "과장", "대리", "사원", "주임", "책임", "선임", "수석", "부장", "차장",
           "팀장", "파트장", "그룹장", "실장", "본부장", "상무", "전무", "이사", "대표", "매니저",
           "프로", "연구원", "엔지니어", "반장", "조장", "인턴", "위원장", "위원", "담당자",
           "담당")
_GROUPS = ("팀", "부서", "파트", "그룹", "사업부", "센터", "본부", "연구소", "협력사", "업체",
           "공급사", "고객사", "위원회", "부문")
_PARTICLES = r"(?:께서|에게|한테|께|이랑|랑|과|와|이|가|은|는|의|도|에서|에|로|으로)"
_PARTICLE = _PARTICLES + r"?(?![가-힣])"
_PARTICLE_END = re.compile(_PARTICLES + "$")
_NOT_NAMES = frozenset((
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday the a an it this that we our "
    "they he she i").split())
_SOMEONE = re.compile(
    r"[가-힣]{1,4}\s?(?:" + "|".join(_TITLES) + r")(?:님)?" + _PARTICLE
    + r"|[가-힣A-Za-z0-9]*[가-힣A-Za-z0-9](?:" + "|".join(_GROUPS) + r")" + _PARTICLE
    + r"|\b[A-Z][A-Za-z]*\s?사(?![가-힣])|@[\w.-]+|[\w.+-]+@[\w-]+\.[\w.]+"
    r"|(?<=[\w,]\s)[A-Z][a-z]+(?:\s[A-Z][a-z]+)*"
    r"|(?i:\b(?:team|dept|department|group|engineer|manager|inspector|operator|technician|mr"
    r"|ms|mrs|dr)\b)")


def _someone(text: str) -> set[str]:
    """What names a person or a group in ``text`` (normalised), months and weekdays aside."""
    return {_PARTICLE_END.sub("", normalize(m.group(0)))
            for m in _SOMEONE.finditer(text)} - _NOT_NAMES


@attrs.frozen
class Asked:
    """The kind of value a question asks for: a unit's spellings, a time, a length of time,
    an amount (a number; with ``revision``, a revision letter too), how often (an interval),
    who (a person or group other than ``named``, those the question names), or nothing known."""

    unit: tuple[str, ...] = ()
    time: bool = False
    duration: bool = False
    amount: bool = False
    often: bool = False
    revision: bool = False
    who: bool = False
    named: frozenset[str] = frozenset()


def _unit_spellings(word: str) -> tuple[str, ...]:
    """The spellings of the unit ``word`` (as written after 몇) names; () for none."""
    bare = _ENDING.sub("", word)
    if bare in _BY_SPELLING:
        return _BY_SPELLING[bare]
    for length in range(len(bare) - 1, 0, -1):  # 시간째, 개야: the longest Korean unit first
        if bare[:length] in _BY_SPELLING and not bare[:length].isascii():
            return _BY_SPELLING[bare[:length]]
    return (bare,) if bare else ()


def asked_kind(question: str) -> Asked:
    """What ``question`` asks for (``Asked()``: nothing recognisable)."""
    text = normalize(question)
    if _WHO.search(text):  # who: a person or a group the question does not name
        return Asked(who=True, named=frozenset(_someone(question)))
    if _OFTEN.search(text) or (_PERIOD_WORD.search(text) and _VALUE_WORD.search(text)):
        # 언제마다, 몇 시간마다, 얼마나 자주, 주기 얼마야: an interval, whatever its unit
        return Asked(often=True)
    unit: tuple[str, ...] = ()
    m = _HANGUL_UNIT.search(text)
    if m and not re.match(r"^(?:살|월|일)", m.group(1)):  # 몇 살, 몇 월, 몇 일: times/ages
        unit = _unit_spellings(m.group(1))
        if unit[:1] == ("개",):
            unit += _THINGS
    else:
        e = _HOW_MANY.search(text)
        if e and e.group(1) in _BY_SPELLING:  # how many days/hours/people; not how many chargers
            unit = _BY_SPELLING[e.group(1)]
    duration = bool(_DURATION.search(text))
    revision = bool(_REVISION_ASKED.search(text))  # 몇 번째 개정: which revision, no count
    return Asked(unit=() if revision else unit, time=bool(_WHEN.search(text)) and not duration,
                 duration=duration, amount=bool(_AMOUNT.search(text)), revision=revision)


def states(text: str, asked: Asked) -> bool:
    """Whether ``text`` states a value of the kind ``asked`` (always, when nothing is asked)."""
    if asked.who:
        return bool(_someone(text) - asked.named)
    norm = without_identifiers(text)  # the 4 of 라인 4 names the line, it is not a value
    if asked.often:
        return bool(_INTERVAL.search(norm))
    if asked.time and not _TIME.search(norm):
        return False
    if asked.unit:
        return any(_states_unit(norm, s) for s in asked.unit)
    if asked.duration:
        return any(_states_unit(norm, s) for s in _DURATION_UNITS)
    if asked.amount:
        return bool(_NUMBER_WORD.search(norm)
                    or (asked.revision and _REVISION.search(normalize(text))))
    return True


def _states_unit(norm: str, spelling: str) -> bool:
    if spelling == "$":
        return bool(re.search(r"\$\s*\d", norm))
    if spelling == ":":
        return bool(re.search(r"\d:\d\d", norm))
    after = r"(?![a-z])" if spelling[-1].isascii() and spelling[-1].isalpha() else ""
    return bool(re.search(_NUMBER + r"(?:\s*(?:~|-|to|±)\s*" + _NUMBER + r")?\s*"
                          + re.escape(spelling) + after, norm))


__all__ = ["Asked", "asked_kind", "states"]
