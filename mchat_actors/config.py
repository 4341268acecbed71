"""The single frozen configuration object, built from the environment (and a TOML file).

Every setting has a name in the environment (the contract in docs/configuration.md), a default,
a unit in its attribute name and a validator. ``Config.from_env`` collects *every* problem and
raises one ``ConfigError`` with one line per problem, so an operator fixes them all at once.
Secrets are ``secrecy.Secret`` (printed as ``[redacted]``) and ``repr=False``; each may come from
a file named by ``<NAME>_FILE``. They never appear in logs or errors. The groups ``Config`` is
made of live in ``config_groups`` (re-exported here), the value parsers in ``config_values``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import attrs

from . import config_values as parse
from .config_groups import (
    AGENT_USER_AUTH,
    CHAT_BACKENDS,
    MODES,
    REPLY_MODES,
    ChatConfig,
    HttpConfig,
    MattermostConfig,
    QueueConfig,
    ReplicaConfig,
)
from .errors import ConfigError
from .pg.url import DatabaseUrl, parse_database_url
from .secrecy import SECRET_SETTINGS, Secret, resolve_secret_files

# the groups are imported from here (``from .config import ChatConfig``) as before the split
__all__ = ["EMBEDDED_ON_POSTGRES", "POSTGRES_CHAT_BACKENDS", "ChatConfig", "Config",
           "ConfigError", "HttpConfig", "MattermostConfig", "QueueConfig", "ReplicaConfig",
           "describe"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Config:
    mattermost: MattermostConfig
    http: HttpConfig = HttpConfig()
    chat: ChatConfig = ChatConfig()
    queues: QueueConfig = QueueConfig()
    db_path: str = "./mchat-actors.db"
    # MCHAT_DATABASE_URL: the runtime's tables on PostgreSQL instead of db_path (holds the
    # password: repr=False, shown only as ``database_display``)
    database_url: DatabaseUrl | None = attrs.field(default=None, repr=False)
    replicas: ReplicaConfig = ReplicaConfig()
    shutdown_grace_s: float = 5.0
    max_restarts: int = 5
    restart_window_s: float = 60.0
    log_format: str = "text"  # MCHAT_LOG_FORMAT (applied by the CLI; validated here)

    @property
    def database_backend(self) -> str:
        """``postgresql`` with MCHAT_DATABASE_URL, else ``sqlite``."""
        return "sqlite" if self.database_url is None else "postgresql"

    @property
    def database_display(self) -> str:
        """Where the runtime's tables are, password redacted (logs, health, admin page)."""
        return self.db_path if self.database_url is None else self.database_url.display()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, toml_path: str | None = None) -> Config:
        """Build the config from ``environ`` over the keys of an optional TOML file.

        Raises:
            ConfigError: one line per missing or invalid setting.
        """
        values: dict[str, str] = {}
        if toml_path is not None:
            values.update(_read_toml(toml_path))
        values.update({k: v for k, v in environ.items() if k.startswith(_PREFIXES)})
        return _Builder(values).build()


_PREFIXES = ("MCHAT_", "LLM_", "CHAT_", "EMBEDDINGS_")
EMBEDDED_ON_POSTGRES = (
    "MCHAT_DATABASE_URL is set but CHAT_BACKEND is {backend}, which does not run on "
    "PostgreSQL. Set CHAT_BACKEND=embedded, remote or agent-chat, or unset MCHAT_DATABASE_URL "
    "to run everything on SQLite (MCHAT_DB)")
# the ChatServices that run on PostgreSQL: all of them (agent-chat's tables: pg.agent_chat_store)
POSTGRES_CHAT_BACKENDS = CHAT_BACKENDS
_NONE: tuple[str, ...] = ()


def _read_toml(path: str) -> dict[str, str]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"--config {path}: cannot read the file ({exc.strerror})"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"--config {path}: not valid TOML ({exc})"]) from exc
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            out[key.upper()] = "true" if value else "false"
        elif isinstance(value, list):
            out[key.upper()] = ",".join(str(v) for v in value)
        else:
            out[key.upper()] = str(value)
    return out


class _Builder:
    def __init__(self, values: Mapping[str, str]) -> None:
        self.values, self.problems = resolve_secret_files(values)

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.values.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            if name in SECRET_SETTINGS:  # the parser's message would quote the secret
                self.problems.append(f"{name}: not a valid value (not shown: it is a secret)")
            else:
                self.problems.append(f"{name}: {exc}")
            return default

    def required(self, name: str, what: str) -> str:
        raw = (self.values.get(name) or "").strip()
        if not raw:
            self.problems.append(f"{name} is required: {what}")
        return raw

    def build(self) -> Config:
        g = self.get
        hook_url = g("MCHAT_INCOMING_WEBHOOK_URL", parse.secret_url, None)
        has_token = bool((self.values.get("MCHAT_TOKEN") or "").strip())
        webhook_only = hook_url is not None and not has_token
        if hook_url is not None and not has_token and not self.values.get("MCHAT_URL", "").strip():
            parts = urlsplit(hook_url)  # webhook-only: the server is where the webhook is
            url = f"{parts.scheme}://{parts.netloc}"
        else:
            url = self.required("MCHAT_URL",
                                "the Mattermost base URL, e.g. http://127.0.0.1:8065")
        if url and urlsplit(url).scheme not in ("http", "https"):
            self.problems.append(f"MCHAT_URL must start with http:// or https:// (got {url!r})")
        token = "" if webhook_only else self.required(
            "MCHAT_TOKEN", "the bot's access token (or MCHAT_INCOMING_WEBHOOK_URL for "
            "webhook-only mode)")
        mm = dict(
            url=url,
            token=token,
            verify_ssl=g("MCHAT_VERIFY_SSL", parse.boolean, True),
            ca_bundle=g("MCHAT_CA_BUNDLE", parse.existing_file, None),
            mode=g("MCHAT_MODE", parse.choice(MODES), "auto"),
            poll_interval_s=g("MCHAT_POLL_INTERVAL", parse.positive, 2.0),
            rate_limit_per_s=g("MCHAT_RATE_LIMIT", parse.positive, 10.0),
            reply_mode=g("MCHAT_REPLY_MODE", parse.choice(REPLY_MODES), "thread"),
            bot_name=g("MCHAT_BOT_NAME", lambda s: s.lstrip("@"), None),
            respond_to_all_dm=g("MCHAT_RESPOND_TO_ALL_DM", parse.boolean, True),
            auto_join=g("MCHAT_AUTO_JOIN", parse.auto_join, _NONE),
            incoming_webhook_url=hook_url,
            webhook_username=g("MCHAT_WEBHOOK_USERNAME", str, None),
            webhook_icon_url=g("MCHAT_WEBHOOK_ICON_URL", parse.url, None),
            rest_timeout_s=g("MCHAT_REST_TIMEOUT", parse.positive, 10.0),
            ws_ping_interval_s=g("MCHAT_WS_PING_INTERVAL", parse.positive, 30.0),
            hello_timeout_s=g("MCHAT_HELLO_TIMEOUT", parse.positive, 5.0),
            backoff_initial_s=g("MCHAT_BACKOFF_INITIAL", parse.positive, 1.0),
            backoff_max_s=g("MCHAT_BACKOFF_MAX", parse.positive, 60.0),
            ws_failures_before_polling=g("MCHAT_WS_FAILURES_BEFORE_POLLING", parse.positive_int, 3),
            max_post_chars=g("MCHAT_MAX_POST_CHARS", parse.positive_int, 16383),
            answer_bots=g("MCHAT_ANSWER_BOTS", parse.usernames, _NONE),
            max_answers_per_min=g("MCHAT_MAX_ANSWERS_PER_MIN", parse.positive_int, 30),
        )
        http = HttpConfig(
            listen=g("MCHAT_HTTP_LISTEN", parse.listen_address, "127.0.0.1:8800"),
            webhook_tokens=g("MCHAT_WEBHOOK_TOKENS", parse.csv, _NONE),
            admin_token=g("MCHAT_ADMIN_TOKEN", str, None),
            webhook_allow=g("MCHAT_WEBHOOK_ALLOW", parse.cidrs, _NONE),
            max_body_bytes=g("MCHAT_MAX_BODY_BYTES", parse.positive_int, 1_048_576),
            slash_tokens=g("MCHAT_SLASH_TOKENS", parse.csv, _NONE),
            outgoing_webhook_tokens=g("MCHAT_OUTGOING_WEBHOOK_TOKENS", parse.csv, _NONE),
            metrics_auth=g("MCHAT_METRICS_AUTH", parse.choice(("none", "admin")), "none"),
            metrics_listen=g("MCHAT_METRICS_LISTEN", parse.listen_address, None),
        )
        if http.metrics_auth == "admin" and not http.admin_token:
            self.problems.append("MCHAT_METRICS_AUTH=admin needs MCHAT_ADMIN_TOKEN")
        chat = ChatConfig(
            backend=g("CHAT_BACKEND", parse.choice(CHAT_BACKENDS), "embedded"),
            backend_url=g("CHAT_BACKEND_URL", parse.url, None),
            backend_api_key=g("CHAT_BACKEND_API_KEY", str, None),
            backend_agent_id=g("CHAT_BACKEND_AGENT_ID", str, None),
            llm_base_url=g("LLM_BASE_URL", parse.url, None),
            llm_api_key=g("LLM_API_KEY", str, None),
            llm_model=g("LLM_MODEL", str, None),
            timeout_s=g("CHAT_TIMEOUT", parse.positive, 60.0),
            llm_timeout_s=g("LLM_TIMEOUT", parse.positive, 30.0),
            backend_rate_per_min=g("CHAT_BACKEND_RATE_PER_MIN", parse.positive, 60.0),
            summary_every_hours=g("MCHAT_SUMMARY_EVERY_HOURS", parse.positive, None),
            agent_service_email=g("CHAT_AGENT_SERVICE_EMAIL", str, None),
            agent_service_password=g("CHAT_AGENT_SERVICE_PASSWORD", str, None),
            agent_user_auth=g("CHAT_AGENT_USER_AUTH", parse.choice(AGENT_USER_AUTH), "sso"),
            agent_rate_per_min=g("CHAT_AGENT_RATE_PER_MIN", parse.positive, 600.0),
            timezone=g("MCHAT_TIMEZONE", parse.timezone_name, "Asia/Seoul"),
            mask_llm=g("MCHAT_MASK_LLM", parse.boolean, True),
            glossary_path=g("MCHAT_GLOSSARY_PATH", parse.glossary_file, None),
            embeddings_base_url=g("EMBEDDINGS_BASE_URL", parse.url, None),
            embeddings_api_key=g("EMBEDDINGS_API_KEY", str, None),
            embeddings_model=g("EMBEDDINGS_MODEL", str, None),
            local_embeddings=g("MCHAT_LOCAL_EMBEDDINGS", parse.boolean, True),
        )
        if chat.embeddings_base_url and not chat.embeddings_model:
            self.problems.append("EMBEDDINGS_MODEL is required with EMBEDDINGS_BASE_URL")
        if chat.backend == "agent-chat":
            for name, value in (
                ("CHAT_BACKEND_URL", chat.backend_url),
                ("CHAT_AGENT_SERVICE_EMAIL", chat.agent_service_email),
            ):
                if not value:
                    self.problems.append(f"{name} is required when CHAT_BACKEND=agent-chat")
        if chat.backend == "remote":
            required: tuple[tuple[str, str | Secret | None], ...] = (
                ("CHAT_BACKEND_URL", chat.backend_url),
                ("CHAT_BACKEND_API_KEY", chat.backend_api_key),
                ("CHAT_BACKEND_AGENT_ID", chat.backend_agent_id),
            )
            for name, need in required:
                if not need:
                    self.problems.append(f"{name} is required when CHAT_BACKEND=remote")
        if chat.llm_base_url and not chat.llm_model:
            self.problems.append("LLM_MODEL is required when LLM_BASE_URL is set")
        if webhook_only and not (http.tokens_for("outgoing") or http.tokens_for("slash")):
            self.problems.append("MCHAT_OUTGOING_WEBHOOK_TOKENS or MCHAT_SLASH_TOKENS (or the "
                                 "older MCHAT_WEBHOOK_TOKENS) is required in webhook-only mode "
                                 "(MCHAT_INCOMING_WEBHOOK_URL without MCHAT_TOKEN): the tokens "
                                 "of the outgoing webhooks and slash commands that bring the "
                                 "questions")
        queues = QueueConfig(
            max_concurrent_chats=g("MCHAT_MAX_CONCURRENT_CHATS", parse.positive_int, 16),
            max_concurrent_stores=g("MCHAT_MAX_CONCURRENT_STORES", parse.positive_int, 16),
        )
        db_path = g("MCHAT_DB", str, "./mchat-actors.db")
        database_url = self._database_url(chat.backend)
        log_format = g("MCHAT_LOG_FORMAT", parse.choice(("text", "json")), "text")
        replicas = self._replicas(database_url is not None)
        if self.problems:
            raise ConfigError(self.problems)
        return Config(
            mattermost=MattermostConfig(**mm),  # type: ignore[arg-type]
            http=http,
            chat=chat,
            queues=queues,
            db_path=db_path,
            database_url=database_url,
            replicas=replicas,
            log_format=log_format,
        )

    def _replicas(self, on_postgres: bool) -> ReplicaConfig:
        g = self.get
        rc = ReplicaConfig(enabled=g("MCHAT_REPLICAS", parse.boolean, False),
                           lease_ttl_s=g("MCHAT_LEASE_TTL_S", parse.positive, 10.0),
                           lease_renew_s=g("MCHAT_LEASE_RENEW_S", parse.positive, 3.0),
                           buckets=g("MCHAT_LEASE_BUCKETS", parse.positive_int, 64))
        if rc.enabled and not on_postgres:
            self.problems.append("MCHAT_REPLICAS=on needs MCHAT_DATABASE_URL (replicas share "
                                 "one PostgreSQL database; SQLite is one process)")
        if rc.lease_renew_s * 2 > rc.lease_ttl_s:
            self.problems.append("MCHAT_LEASE_RENEW_S must be at most half of "
                                 "MCHAT_LEASE_TTL_S")
        return rc

    def _database_url(self, chat_backend: str) -> DatabaseUrl | None:
        raw = (self.values.get("MCHAT_DATABASE_URL") or "").strip()
        if not raw:
            return None
        try:
            url = parse_database_url(raw)  # its problems never quote the URL (the password)
        except ConfigError as exc:
            self.problems.extend(exc.problems)
            return None
        if chat_backend not in POSTGRES_CHAT_BACKENDS:
            self.problems.append(EMBEDDED_ON_POSTGRES.format(backend=chat_backend))
        return url


def describe(config: Config) -> dict[str, Any]:
    """A secret-free view of the config, for the admin page and the start-up log (secret
    fields left out; ``user:password@`` in URLs masked; the database URL redacted)."""
    out = attrs.asdict(
        config,
        filter=lambda a, v: a.repr is not False,
        value_serializer=_describe_value,
    )
    out["database"] = {"backend": config.database_backend, "where": config.database_display}
    return out


def _describe_value(inst: Any, a: Any, v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, str) and "@" in v and "://" in v:
        parts = urlsplit(v)
        if parts.password is not None or parts.username:
            host = parts.netloc.rpartition("@")[2]
            return parts._replace(netloc=f"[redacted]@{host}").geturl()
    return v
