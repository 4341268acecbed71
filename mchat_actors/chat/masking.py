"""Mask sensitive information before a text becomes a memory or is sent to an LLM.

    >>> mask_sensitive("연락처 010-1234-5678, kim@example.com")
    '연락처 [PHONE], [EMAIL]'

What is masked, in this order (earlier kinds win where patterns overlap):

- secrets: the value after ``password`` / ``passwd`` / ``pw`` / ``비밀번호`` / ``비번`` /
  ``패스워드`` / ``암호`` / ``token`` / ``토큰`` / ``api_key`` / ``api key`` / ``secret`` /
  ``access_key`` / ``client_secret`` followed by ``:`` or ``=`` (any value), or by
  ``은/는/이/가``, ``is`` or a space (then the value must look like a secret: four or more
  characters with a digit or a symbol), ``Bearer
  <token>``, and well-known key shapes (``sk-...``, ``ghp_...``, ``xoxb-...``, ``AKIA...``)
  -> ``[SECRET]``
- e-mail addresses -> ``[EMAIL]``
- Korean resident registration numbers ``######-#######`` -> ``[RRN]``
- card numbers: 13-19 digits, optionally grouped by spaces or dashes, that pass the Luhn check
  or are written in the usual 4-4-4-4 groups -> ``[CARD]``
- phone numbers: Korean mobile (``010-1234-5678``, ``01012345678``), landline (``02-123-4567``,
  ``031-123-4567``, ``(02) 123-4567``), representative numbers (``1588-1234``) and
  international (``+82 10-1234-5678``, ``+1 415 555 2671``) -> ``[PHONE]``

The original message text is never changed: ``chat_messages`` keeps it as written.
"""

from __future__ import annotations

import re

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
_RRN = re.compile(r"(?<![\d\-])\d{6}\s?-\s?[1-8]\d{6}(?![\d\-])")
_CARD = re.compile(r"(?<![\d\-])\d(?:[ \-]?\d){12,18}(?![\d\-])")
_CARD_GROUPED = re.compile(r"^\d{4}([ \-])\d{4}\1\d{4}\1\d{4}$")
_PHONE = re.compile(
    r"(?<![0-9A-Za-z+\-])(?:"
    r"\+\d{1,3}[ \-.]?(?:\(0\)[ \-.]?)?\d{1,4}(?:[ \-.]?\d{2,4}){2,3}"  # international
    r"|01[016789][ \-.]?\d{3,4}[ \-.]?\d{4}"  # Korean mobile
    r"|\(?0\d{1,2}\)?[ \-.]?\d{3,4}[ \-.]\d{4}"  # Korean landline
    r"|1[5-9]\d{2}-\d{4}"  # representative numbers (1588-xxxx)
    r")(?![0-9A-Za-z\-])"
)


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = re.sub(r"\D", "", raw)
    if 13 <= len(digits) <= 19 and (luhn_ok(digits) or _CARD_GROUPED.match(raw)):
        return "[CARD]"
    return raw


def _secret(match: re.Match[str]) -> str:
    return f"{match.group('key')}{match.group('sep')}[SECRET]"


def mask_sensitive(text: str) -> str:
    """``text`` with secrets, e-mails, resident numbers, card and phone numbers masked."""
    text = _KNOWN_TOKENS.sub("[SECRET]", text)
    text = _SECRET_EXPLICIT.sub(_secret, text)
    text = _SECRET_SPACED.sub(_secret, text)
    text = _EMAIL.sub("[EMAIL]", text)
    text = _RRN.sub("[RRN]", text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub("[PHONE]", text)


mask_for_storage = mask_sensitive
mask_for_llm = mask_sensitive

__all__ = ["luhn_ok", "mask_for_llm", "mask_for_storage", "mask_sensitive"]
