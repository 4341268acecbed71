"""Sensitive data, recognised by real validators, masked where it must not go.

    >>> mask_for_storage("주민번호 900101-1234568, 연락처 010-1234-5678")
    '주민번호 [RRN], 연락처 010-1234-5678'
    >>> mask_sensitive("연락처 010-1234-5678, kim@example.com")
    '연락처 [PHONE], [EMAIL]'

Two levels:

- ``mask_for_storage`` (every memory, before it is stored): secrets, resident registration
  numbers and card numbers. People's memories otherwise stay as written: phone numbers and
  e-mail addresses are kept.
- ``mask_sensitive`` / ``mask_for_llm`` / ``mask_for_log`` (text sent to an external LLM, with
  ``MCHAT_MASK_LLM`` on, the default; and log lines): the above plus phone numbers and e-mails.

How each kind is recognised (never a loose digit pattern):

- resident registration numbers: ``YYMMDD-GNNNNNN`` or 13 digits that python-stdnum's
  ``stdnum.kr.rrn`` accepts (birth date, place code, check digit) -> ``[RRN]``;
- card numbers: 13-19 digits written as one run, in groups of four, or as 4-6-5, whose issuer
  prefix is a card network's (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Korean
  domestic 9xxx) and that pass ``stdnum.luhn`` -> ``[CARD]``;
- phone numbers: what Google's ``phonenumbers`` (region KR) finds and judges a *valid* number
  -> ``[PHONE]``;
- e-mail addresses -> ``[EMAIL]``; secrets: the value after ``password``/``비밀번호``/``token``/
  ``api_key``/... and well-known key shapes (``sk-``, ``ghp_``, ``xoxb-``, ``AKIA``, Bearer)
  -> ``[SECRET]``.

A number written right after an identifier noun (``LOT``, ``도면``, ``품번``, ``P/N``, ``S/N``...,
see ``chat.subject.IDENTIFIER_NOUNS``) is an identifier and is never masked, whatever it
looks like: ``도면 02-1234-5678`` stays. docs/masking.md lists tricky strings and their fate; a
test reads that table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
from stdnum import luhn
from stdnum.kr import rrn

from .subject import IDENTIFIER_NOUNS

_SECRET_KEYS = (
    r"password|passwd|passphrase|pwd|pw|비밀\s?번호|비번|패스워드|암호|"
    r"api[_\- ]?key|apikey|api[_\- ]?token|access[_\- ]?key|access[_\- ]?token|"
    r"secret[_\- ]?key|client[_\- ]?secret|secret|token|토큰|인증\s?키|auth"
)
_VALUE = r"(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s,;]+)"
# key, ":" or "=", value: always masked ("password: x", "token=x").
_SECRET_EXPLICIT = re.compile(
    rf"(?i)(?P<key>\b(?:{_SECRET_KEYS}))(?P<sep>\s*[:=]\s*)(?P<value>{_VALUE})"
)
# key, a space or "은/는/이/is", then a value that looks like a secret (it has a digit or a
# symbol): "비밀번호는 abc123", "password is hunter2", but not "토큰이 만료됐다".
_SECRET_SPACED = re.compile(
    rf"(?i)(?P<key>\b(?:{_SECRET_KEYS}))(?P<sep>(?:\s*(?:은|는|이|가)\s+|\s+is\s+|\s+))"
    r"(?P<value>(?=[^\s,;]*[0-9!@#$%^&*_\-+/])[^\s,;]{4,})"
)
_KNOWN_TOKENS = re.compile(
    r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{8,}=*"
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{16,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
)
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
# Candidates only; each is then checked by its validator.
_RRN_SHAPE = re.compile(r"(?<![\w\-])\d{6}\s?-\s?\d{7}(?![\w\-])|(?<![\w\-])\d{13}(?![\w\-])")
_CARD_SHAPE = re.compile(
    r"(?<![\w\-])(?:\d{13,19}|\d{4}(?:[ \-]\d{4}){2}[ \-]\d{1,7}|\d{4}[ \-]\d{6}[ \-]\d{4,5})"
    r"(?![\w\-])"
)
_CARD_ISSUERS = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}"  # Visa 13/16/19
    r"|(?:5[1-5]\d{2}|222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720)\d{12}"  # Mastercard
    r"|3[47]\d{13}"  # American Express
    r"|3(?:0[0-5]|[68]\d)\d{11}"  # Diners Club
    r"|(?:6011|65\d{2}|64[4-9]\d)\d{12,15}"  # Discover
    r"|35(?:2[89]|[3-8]\d)\d{12,15}"  # JCB
    r"|62\d{14,17}"  # UnionPay
    r"|9\d{15})$"  # Korean domestic cards (BC, local issuers)
)
_IDENTIFIER_BEFORE = re.compile(
    r"(?i)(?:^|[\s(\[])(?:" + "|".join(sorted((re.escape(n) for n in IDENTIFIER_NOUNS),
                                              key=len, reverse=True))
    + r"|no\.?|#)\s*[:#]?\s*$"
)


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum (python-stdnum)."""
    return luhn.is_valid(digits)


def is_rrn(candidate: str) -> bool:
    """A Korean resident registration number by its birth date, place code and check digit."""
    return rrn.is_valid(re.sub(r"\s", "", candidate))


def is_card_number(candidate: str) -> bool:
    """A payment card number: a card network's prefix, 13-19 digits, Luhn-valid."""
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and bool(_CARD_ISSUERS.match(digits)) and luhn_ok(digits)


def _after_identifier_noun(text: str, start: int) -> bool:
    return bool(_IDENTIFIER_BEFORE.search(text[max(0, start - 24):start]))


def _replace_checked(text: str, shape: re.Pattern[str], check: Callable[[str], bool],
                     label: str) -> str:
    out, last = [], 0
    for m in shape.finditer(text):
        if _after_identifier_noun(text, m.start()) or not check(m.group(0)):
            continue
        out.append(text[last:m.start()])
        out.append(label)
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _secret(match: re.Match[str]) -> str:
    return f"{match.group('key')}{match.group('sep')}[SECRET]"


def _mask_phones(text: str) -> str:
    out, last = [], 0
    for m in phonenumbers.PhoneNumberMatcher(text, "KR", leniency=phonenumbers.Leniency.VALID):
        if _after_identifier_noun(text, m.start):
            continue
        out.append(text[last:m.start])
        out.append("[PHONE]")
        last = m.end
    out.append(text[last:])
    return "".join(out)


def mask_for_storage(text: str) -> str:
    """``text`` with secrets, resident registration numbers and card numbers masked."""
    text = _KNOWN_TOKENS.sub("[SECRET]", text)
    text = _SECRET_EXPLICIT.sub(_secret, text)
    text = _SECRET_SPACED.sub(_secret, text)
    text = _replace_checked(text, _RRN_SHAPE, is_rrn, "[RRN]")
    return _replace_checked(text, _CARD_SHAPE, is_card_number, "[CARD]")


def mask_sensitive(text: str) -> str:
    """``text`` as it may leave the service: ``mask_for_storage`` plus e-mails and phones."""
    text = mask_for_storage(text)
    text = _EMAIL.sub("[EMAIL]", text)
    return _mask_phones(text)


mask_for_llm = mask_sensitive
mask_for_log = mask_sensitive

__all__ = ["is_card_number", "is_rrn", "luhn_ok", "mask_for_llm", "mask_for_log",
           "mask_for_storage", "mask_sensitive"]
