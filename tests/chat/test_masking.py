"""Masking of sensitive information before memories and LLM prompts."""

from __future__ import annotations

import pytest

from mchat_actors.chat.masking import luhn_ok, mask_for_storage, mask_sensitive


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("메일 kim.cs+qa@example.co.kr 로 보내줘", "메일 [EMAIL] 로 보내줘"),
        ("contact: ops@corp.example.com.", "contact: [EMAIL]."),
    ],
)
def test_masks_email_addresses(text: str, expected: str) -> None:
    """E-mail addresses become [EMAIL]."""
    assert mask_sensitive(text) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "010-1234-5678", "01012345678", "010 1234 5678", "011-123-4567", "02-123-4567",
        "031-1234-5678", "(02) 123-4567", "1588-1234", "+82 10-1234-5678", "+82-2-123-4567",
        "+1 415 555 2671", "+44 20 7946 0958",
    ],
)
def test_masks_korean_and_international_phone_numbers(phone: str) -> None:
    """Korean mobile, landline, representative and international numbers become [PHONE]."""
    assert mask_sensitive(f"담당자 {phone}으로 연락") == "담당자 [PHONE]으로 연락"


def test_masks_resident_registration_numbers_by_their_check_digit() -> None:
    """Korean resident registration numbers that stdnum.kr.rrn accepts become [RRN], in storage
    too; a wrong check digit is no RRN."""
    assert mask_sensitive("주민번호 900101-1234568 확인") == "주민번호 [RRN] 확인"
    assert mask_for_storage("주민번호 900101-1234568 확인") == "주민번호 [RRN] 확인"
    assert mask_sensitive("주민번호 900101-1234567 확인") == "주민번호 900101-1234567 확인"


def test_storage_keeps_phones_and_emails_the_llm_does_not_get_them() -> None:
    text = "Acme 담당 kim@example.com 010-1234-5678, 카드 4111 1111 1111 1111"
    assert mask_for_storage(text) == "Acme 담당 kim@example.com 010-1234-5678, 카드 [CARD]"
    assert mask_sensitive(text) == "Acme 담당 [EMAIL] [PHONE], 카드 [CARD]"


@pytest.mark.parametrize(
    "card", ["4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "378282246310005",
             "5555-5555-5555-4444"],
)
def test_masks_card_numbers(card: str) -> None:
    """Card numbers (a network's prefix and a valid Luhn digit) become [CARD]."""
    assert mask_sensitive(f"카드 {card} 결제") == "카드 [CARD] 결제"


def test_luhn_check() -> None:
    """The Luhn checksum accepts valid numbers and rejects a changed digit."""
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password: hunter2", "password: [SECRET]"),
        ("PASSWORD=abc", "PASSWORD=[SECRET]"),
        ("비밀번호: qwer1234!", "비밀번호: [SECRET]"),
        ("비밀번호는 qwer1234 입니다", "비밀번호는 [SECRET] 입니다"),
        ("비번 zx!9", "비번 [SECRET]"),
        ("token=abcd.efgh", "token=[SECRET]"),
        ("api_key sk-abcdefghijklmnopqrstu", "api_key [SECRET]"),
        ("API key: ABCDEF123", "API key: [SECRET]"),
        ("my password is hunter2", "my password is [SECRET]"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc", "Authorization: [SECRET]"),
        ("토큰 ghp_abcdefghijklmnopqrstuvwxyz0123", "토큰 [SECRET]"),
    ],
)
def test_masks_passwords_and_tokens(text: str, expected: str) -> None:
    """Values after password/비밀번호/token/api_key markers and known key shapes become [SECRET]."""
    assert mask_sensitive(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "X부품 불량률 12%", "배포 일정 2024-05-01 10:30", "회의 3시 2층 회의실",
        "주문번호 20240501-0001", "the token bucket is shared", "토큰이 만료됐다",
        "1234567890123", "버전 1.2.3 릴리스",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    """Figures, dates, versions and prose about tokens are not masked."""
    assert mask_sensitive(text) == text


def test_masks_every_kind_in_one_text() -> None:
    """Several kinds in one text are all masked."""
    text = "kim@example.com 010-1234-5678 900101-1234568 4111 1111 1111 1111 password: x1"
    assert mask_sensitive(text) == "[EMAIL] [PHONE] [RRN] [CARD] password: [SECRET]"
