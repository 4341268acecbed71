"""Secret values: never printed, compared in constant time, readable from files."""

from __future__ import annotations

import pickle

import pytest

from mchat_actors.config import Config, describe
from mchat_actors.errors import ConfigError
from mchat_actors.secrecy import REDACTED, Secret, resolve_secret_files, secret_values

BASE = {"MCHAT_URL": "http://127.0.0.1:8065"}


def test_a_secret_never_prints():
    s = Secret("tok-123456789")
    shown = [str(s), repr(s), f"{s}", "%s" % s, f"{s!r}", "{}".format(s), str([s]),
             str(ValueError(s)), str({"k": s})]
    assert all("tok-123456789" not in text for text in shown)
    assert all(REDACTED in text for text in shown)
    assert s.reveal() == "tok-123456789"
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_secrets_compare_and_hash_by_value():
    assert Secret("a-b-c") == "a-b-c" and Secret("a-b-c") == Secret("a-b-c")
    assert Secret("a-b-c") != "a-b-d"
    assert len({Secret("x1"), Secret("x1")}) == 1
    assert not Secret("") and Secret("x")


def test_every_secret_setting_reads_its_file(tmp_path):
    (tmp_path / "token").write_text("bot-token-from-file\n")
    (tmp_path / "admin").write_text("admin-from-file")
    (tmp_path / "llm").write_text("sk-from-file-1234\r\n")
    (tmp_path / "hooks").write_text("h1,h2\n")
    cfg = Config.from_env({**BASE, "MCHAT_TOKEN_FILE": str(tmp_path / "token"),
                           "MCHAT_ADMIN_TOKEN_FILE": str(tmp_path / "admin"),
                           "LLM_API_KEY_FILE": str(tmp_path / "llm"),
                           "LLM_BASE_URL": "http://llm/v1", "LLM_MODEL": "m",
                           "MCHAT_WEBHOOK_TOKENS_FILE": str(tmp_path / "hooks")})
    assert cfg.mattermost.token.reveal() == "bot-token-from-file"
    assert cfg.http.admin_token == "admin-from-file"
    assert cfg.chat.llm_api_key == "sk-from-file-1234"
    assert cfg.http.webhook_tokens == ("h1", "h2")
    text = repr(cfg) + str(describe(cfg))
    for value in ("bot-token-from-file", "admin-from-file", "sk-from-file-1234", "h1,h2"):
        assert value not in text
    assert set(secret_values(cfg)) == {"bot-token-from-file", "admin-from-file",
                                       "sk-from-file-1234", "h1", "h2"}


def test_file_problems_are_clear_and_never_quote_the_content(tmp_path):
    (tmp_path / "token").write_text("the-secret-itself\n")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, "MCHAT_TOKEN": "inline", "MCHAT_TOKEN_FILE":
                         str(tmp_path / "token"),
                         "MCHAT_ADMIN_TOKEN_FILE": str(tmp_path / "missing"),
                         "LLM_API_KEY_FILE": str(tmp_path / "empty")})
    problems = "\n".join(info.value.problems)
    assert "MCHAT_TOKEN and MCHAT_TOKEN_FILE are both set" in problems
    assert "MCHAT_ADMIN_TOKEN_FILE: cannot read" in problems
    assert "LLM_API_KEY_FILE" in problems and "is empty" in problems
    assert "the-secret-itself" not in problems and "inline" not in problems


def test_binary_or_huge_files_are_refused(tmp_path):
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "big").write_text("x" * 70_000)
    _, problems = resolve_secret_files({"MCHAT_TOKEN_FILE": str(tmp_path / "bin"),
                                        "MCHAT_ADMIN_TOKEN_FILE": str(tmp_path / "big")})
    assert any("not UTF-8" in p for p in problems)
    assert any("larger than 64 KiB" in p for p in problems)


def test_urls_with_credentials_are_masked_in_the_described_config():
    cfg = Config.from_env({**BASE, "MCHAT_TOKEN": "t", "LLM_BASE_URL":
                           "https://svc:pw-9981@llm.corp/v1", "LLM_MODEL": "m"})
    shown = describe(cfg)["chat"]["llm_base_url"]
    assert shown == "https://[redacted]@llm.corp/v1"
    assert cfg.chat.llm_base_url == "https://svc:pw-9981@llm.corp/v1"  # still usable


def test_an_invalid_secret_setting_is_reported_without_its_value():
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, "MCHAT_TOKEN": "t",
                         "MCHAT_INCOMING_WEBHOOK_URL": "mchat.corp/hooks/abc123secret"})
    text = "\n".join(info.value.problems)
    assert "MCHAT_INCOMING_WEBHOOK_URL" in text and "abc123secret" not in text
