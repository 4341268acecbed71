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


HOOK_URL = "https://mchat.example.com/hooks/abcdefghijklmnopqrstuvwxyz"


def test_webhook_only_mode_needs_no_token_and_no_url():
    """MCHAT_INCOMING_WEBHOOK_URL without MCHAT_TOKEN: webhook-only; MCHAT_URL defaults to the
    webhook's server; the overrides are read."""
    cfg = Config.from_env({"MCHAT_INCOMING_WEBHOOK_URL": HOOK_URL,
                           "MCHAT_WEBHOOK_TOKENS": "tok", "MCHAT_WEBHOOK_USERNAME": "ai-memory",
                           "MCHAT_WEBHOOK_ICON_URL": "https://example.com/ai.png"})
    mm = cfg.mattermost
    assert mm.webhook_only and mm.token == "" and mm.url == "https://mchat.example.com"
    assert (mm.webhook_username, mm.webhook_icon_url) == ("ai-memory", "https://example.com/ai.png")
    assert "abcdefghijklmnop" not in repr(cfg) and "abcdefghijklmnop" not in str(describe(cfg))


def test_webhook_only_mode_requires_the_webhook_tokens():
    with pytest.raises(ConfigError) as info:
        Config.from_env({"MCHAT_INCOMING_WEBHOOK_URL": HOOK_URL})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("MCHAT_OUTGOING_WEBHOOK_TOKENS or MCHAT_SLASH_TOKENS")


def test_with_a_token_the_webhook_url_does_not_switch_modes():
    cfg = Config.from_env(dict(BASE, MCHAT_INCOMING_WEBHOOK_URL=HOOK_URL))
    assert not cfg.mattermost.webhook_only


def test_a_bad_webhook_url_is_reported_without_its_value():
    with pytest.raises(ConfigError) as info:
        Config.from_env(dict(BASE, MCHAT_INCOMING_WEBHOOK_URL="ftp://host/hooks/secretid123"))
    assert "secretid123" not in str(info.value)
    assert "MCHAT_INCOMING_WEBHOOK_URL" in str(info.value)


def test_without_token_or_webhook_both_are_named():
    with pytest.raises(ConfigError) as info:
        Config.from_env({"MCHAT_URL": "http://127.0.0.1:8065"})
    assert any("MCHAT_TOKEN is required" in p and "MCHAT_INCOMING_WEBHOOK_URL" in p
               for p in info.value.problems)


def test_a_glossary_file_is_checked_at_start(tmp_path):
    """MCHAT_GLOSSARY_PATH must be a readable TOML file of [[same]] terms = [...] entries."""
    good = tmp_path / "team.toml"
    good.write_text('[[same]]\nterms = ["골든샘플", "golden sample"]\n', encoding="utf-8")
    assert Config.from_env(dict(BASE, MCHAT_GLOSSARY_PATH=str(good))).chat.glossary_path == \
        str(good)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[same]]\nterms = "골든샘플"\n', encoding="utf-8")
    for path in (str(bad), str(tmp_path / "missing.toml")):
        with pytest.raises(ConfigError) as info:
            Config.from_env(dict(BASE, MCHAT_GLOSSARY_PATH=path))
        assert "MCHAT_GLOSSARY_PATH" in str(info.value)


def test_embeddings_settings_and_their_key_is_secret():
    env = dict(BASE, EMBEDDINGS_BASE_URL="http://127.0.0.1:9/v1", EMBEDDINGS_API_KEY="sk-emb-1",
               EMBEDDINGS_MODEL="bge-m3")
    cfg = Config.from_env(env)
    assert cfg.chat.embeddings_model == "bge-m3" and cfg.chat.embeddings_api_key == "sk-emb-1"
    assert "sk-emb-1" not in repr(cfg) and "sk-emb-1" not in str(cfg.chat.embeddings_api_key)
    with pytest.raises(ConfigError) as info:
        Config.from_env(dict(BASE, EMBEDDINGS_BASE_URL="http://127.0.0.1:9/v1"))
    assert "EMBEDDINGS_MODEL" in str(info.value)


def test_concurrency_limits_are_settable_and_checked():
    """MCHAT_MAX_CONCURRENT_CHATS / _STORES reach QueueConfig; zero or words are refused."""
    assert (Config.from_env(BASE).queues.max_concurrent_chats,
            Config.from_env(BASE).queues.max_concurrent_stores) == (16, 16)
    cfg = Config.from_env({**BASE, "MCHAT_MAX_CONCURRENT_CHATS": "40",
                           "MCHAT_MAX_CONCURRENT_STORES": "4"})
    assert (cfg.queues.max_concurrent_chats, cfg.queues.max_concurrent_stores) == (40, 4)
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, "MCHAT_MAX_CONCURRENT_CHATS": "0",
                         "MCHAT_MAX_CONCURRENT_STORES": "many"})
    text = "\n".join(info.value.problems)
    assert "MCHAT_MAX_CONCURRENT_CHATS: must be greater than 0" in text
    assert "MCHAT_MAX_CONCURRENT_STORES: expected a whole number" in text


REMOTE = {"CHAT_BACKEND": "remote", "CHAT_BACKEND_URL": "http://127.0.0.1:9",
          "CHAT_BACKEND_API_KEY": "agent-key", "CHAT_BACKEND_AGENT_ID": "a1"}
PG_URL = "postgresql://mchat:pg-Pa55word@db.example:6543/mchat?sslmode=require"


def test_database_url_selects_postgresql_and_never_shows_the_password(tmp_path):
    from mchat_actors.secrecy import secret_values

    cfg = Config.from_env(dict(BASE, **REMOTE, MCHAT_DATABASE_URL=PG_URL))
    assert cfg.database_backend == "postgresql"
    assert cfg.database_url is not None and cfg.database_url.port == 6543
    assert cfg.database_display == ("postgresql://mchat:[redacted]@db.example:6543/mchat"
                                    "?sslmode=require")
    described = describe(cfg)
    assert described["database"] == {"backend": "postgresql", "where": cfg.database_display}
    for text in (repr(cfg), str(described)):
        assert "pg-Pa55word" not in text
    assert "pg-Pa55word" in secret_values(cfg)  # so the log filter scrubs it
    # from a file (container secret mounts), like every secret
    path = tmp_path / "db-url"
    path.write_text(PG_URL + "\n")
    from_file = Config.from_env(dict(BASE, **REMOTE, MCHAT_DATABASE_URL_FILE=str(path)))
    assert from_file.database_url == cfg.database_url
    assert Config.from_env(BASE).database_backend == "sqlite"
    assert describe(Config.from_env(BASE))["database"]["where"] == "./mchat-actors.db"


def test_database_url_with_the_embedded_chat_service_runs_on_postgresql():
    """Every ChatService runs on PostgreSQL (pg.chat_db; agent-chat's tables in
    pg.agent_chat_store): the default config works, and so does agent-chat."""
    cfg = Config.from_env(dict(BASE, MCHAT_DATABASE_URL=PG_URL))
    assert cfg.chat.backend == "embedded" and cfg.database_backend == "postgresql"
    agent_chat = Config.from_env(dict(BASE, MCHAT_DATABASE_URL=PG_URL, CHAT_BACKEND="agent-chat",
                                      CHAT_BACKEND_URL="http://127.0.0.1:9",
                                      CHAT_AGENT_SERVICE_EMAIL="bot@example.com"))
    assert agent_chat.chat.backend == "agent-chat"
    assert agent_chat.database_backend == "postgresql"


@pytest.mark.parametrize("url", [
    "mysql://u:pg-Pa55word@h/db",
    "postgresql://u:pg-Pa55word@h/db?sslmod=require",
    "postgresql://u:pg-Pa55word@h:99999/db",
    "postgresql://u:pg-Pa55word@/db",
])
def test_a_bad_database_url_is_reported_without_the_password(url):
    with pytest.raises(ConfigError) as info:
        Config.from_env(dict(BASE, **REMOTE, MCHAT_DATABASE_URL=url))
    text = "\n".join(info.value.problems)
    assert "MCHAT_DATABASE_URL" in text and "pg-Pa55word" not in text


def test_replicas_are_off_by_default_and_need_postgresql():
    from mchat_actors.config import ReplicaConfig

    assert Config.from_env(dict(BASE, **REMOTE, MCHAT_DATABASE_URL=PG_URL)).replicas == \
        ReplicaConfig(enabled=False)
    cfg = Config.from_env(dict(BASE, **REMOTE, MCHAT_DATABASE_URL=PG_URL, MCHAT_REPLICAS="on",
                               MCHAT_LEASE_TTL_S="4", MCHAT_LEASE_RENEW_S="1",
                               MCHAT_LEASE_BUCKETS="16"))
    assert cfg.replicas == ReplicaConfig(enabled=True, lease_ttl_s=4.0, lease_renew_s=1.0,
                                         buckets=16)
    assert describe(cfg)["replicas"]["enabled"] is True
    with pytest.raises(ConfigError) as info:  # SQLite is one process
        Config.from_env(dict(BASE, MCHAT_REPLICAS="on"))
    assert "MCHAT_REPLICAS=on needs MCHAT_DATABASE_URL" in "\n".join(info.value.problems)


@pytest.mark.parametrize(("env", "message"), [
    ({"MCHAT_REPLICAS": "maybe"}, "MCHAT_REPLICAS: expected true or false"),
    ({"MCHAT_LEASE_TTL_S": "0"}, "MCHAT_LEASE_TTL_S"),
    ({"MCHAT_LEASE_TTL_S": "4", "MCHAT_LEASE_RENEW_S": "3"},
     "MCHAT_LEASE_RENEW_S must be at most half of MCHAT_LEASE_TTL_S"),
    ({"MCHAT_LEASE_BUCKETS": "0"}, "MCHAT_LEASE_BUCKETS"),
])
def test_bad_replica_settings_are_refused(env, message):
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, **REMOTE, "MCHAT_DATABASE_URL": PG_URL,
                         "MCHAT_REPLICAS": "on", **env})
    assert message in "\n".join(info.value.problems)
