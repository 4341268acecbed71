from __future__ import annotations

import pytest

from mchat_actors.config import Config, describe
from mchat_actors.errors import ConfigError

BASE = {"MCHAT_URL": "http://127.0.0.1:8065", "MCHAT_TOKEN": "s3cret-token"}


def test_defaults_match_the_contract():
    """With only the required settings, every default is the documented one."""
    cfg = Config.from_env(BASE)
    mm = cfg.mattermost
    assert (mm.mode, mm.poll_interval_s, mm.rate_limit_per_s, mm.reply_mode) == (
        "auto", 2.0, 10.0, "thread")
    assert mm.verify_ssl and mm.respond_to_all_dm
    assert mm.rest_timeout_s == 10.0 and mm.ws_ping_interval_s == 30.0
    assert cfg.db_path == "./mchat-actors.db"
    assert cfg.http.listen == "127.0.0.1:8800"
    assert cfg.chat.backend == "embedded"
    assert mm.websocket_url == "ws://127.0.0.1:8065/api/v4/websocket"


def test_every_problem_is_reported_at_once():
    """Missing and invalid settings are all listed, one line each."""
    with pytest.raises(ConfigError) as info:
        Config.from_env({"MCHAT_MODE": "sometimes", "MCHAT_RATE_LIMIT": "-1"})
    text = "\n".join(info.value.problems)
    assert "MCHAT_URL is required" in text
    assert "MCHAT_TOKEN is required" in text
    assert "MCHAT_MODE" in text and "MCHAT_RATE_LIMIT" in text
    assert len(info.value.problems) == 4


def test_secrets_never_in_repr_or_description():
    """Tokens and keys stay out of repr() and the admin description."""
    env = dict(BASE, MCHAT_ADMIN_TOKEN="adm1n-secret", LLM_API_KEY="sk-llm-secret",
               LLM_BASE_URL="http://127.0.0.1:9", LLM_MODEL="m", MCHAT_WEBHOOK_TOKENS="wh1,wh2")
    cfg = Config.from_env(env)
    for text in (repr(cfg), str(describe(cfg))):
        for secret in ("s3cret-token", "adm1n-secret", "sk-llm-secret", "wh1"):
            assert secret not in text
    assert cfg.http.webhook_tokens == ("wh1", "wh2")


def test_toml_file_is_overridden_by_environment(tmp_path):
    """--config supplies the same keys; the environment wins."""
    path = tmp_path / "c.toml"
    path.write_text('MCHAT_URL = "http://mm:8065"\nMCHAT_TOKEN = "t"\nMCHAT_RATE_LIMIT = 5\n'
                    'MCHAT_AUTO_JOIN = ["qa/town-square", "qa/*"]\n')
    cfg = Config.from_env({"MCHAT_RATE_LIMIT": "7"}, toml_path=str(path))
    assert cfg.mattermost.url == "http://mm:8065"
    assert cfg.mattermost.rate_limit_per_s == 7.0
    assert cfg.mattermost.auto_join == ("qa/town-square", "qa/*")


def test_remote_backend_requires_its_settings():
    with pytest.raises(ConfigError) as info:
        Config.from_env(dict(BASE, CHAT_BACKEND="remote"))
    assert len(info.value.problems) == 3
