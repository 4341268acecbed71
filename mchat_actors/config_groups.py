"""The groups of settings ``config.Config`` is made of (``config`` builds them from the
environment): the Mattermost connection, the HTTP surface, the ChatService, the queues and the
replicas, with the choices some of their settings accept. Each is a frozen attrs object; secrets
are ``secrecy.Secret`` with ``repr=False``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from .secrecy import Secret, secret, secrets_tuple

MODES = ("auto", "websocket", "polling")
REPLY_MODES = ("thread", "channel")
CHAT_BACKENDS = ("embedded", "remote", "agent-chat")
AGENT_USER_AUTH = ("sso", "x-user-id")


@attrs.frozen(kw_only=True)
class MattermostConfig:
    url: str
    token: Secret = attrs.field(repr=False, converter=Secret)
    verify_ssl: bool = True
    ca_bundle: str | None = None
    mode: str = "auto"
    poll_interval_s: float = 2.0
    rate_limit_per_s: float = 10.0
    reply_mode: str = "thread"
    bot_name: str | None = None
    respond_to_all_dm: bool = True
    auto_join: tuple[str, ...] = ()
    incoming_webhook_url: str | None = attrs.field(default=None, repr=False)
    webhook_username: str | None = None  # incoming-webhook username override
    webhook_icon_url: str | None = None  # incoming-webhook icon override
    rest_timeout_s: float = 10.0
    ws_ping_interval_s: float = 30.0
    hello_timeout_s: float = 5.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    stable_after_s: float = 60.0
    ws_failures_before_polling: int = 3
    max_post_chars: int = 16383
    answer_bots: tuple[str, ...] = ()  # bot usernames whose posts may be answered
    max_answers_per_min: int = 30  # per channel: the loop guard's cap

    @property
    def webhook_only(self) -> bool:
        """No bot account: intake from outgoing webhooks/slash commands, replies through the
        incoming webhook (docs/configuration.md, "Webhook-only mode")."""
        return not self.token and bool(self.incoming_webhook_url)

    @property
    def api_url(self) -> str:
        return self.url.rstrip("/") + "/api/v4"

    @property
    def websocket_url(self) -> str:
        parts = urlsplit(self.url.rstrip("/"))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/api/v4/websocket"


@attrs.frozen(kw_only=True)
class HttpConfig:
    listen: str = "127.0.0.1:8800"
    webhook_tokens: tuple[Secret, ...] = attrs.field(default=(), repr=False,
                                                     converter=secrets_tuple)
    admin_token: Secret | None = attrs.field(default=None, repr=False, converter=secret)
    webhook_allow: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    webhook_answer_within_s: float = 4.5
    slash_tokens: tuple[Secret, ...] = attrs.field(default=(), repr=False,
                                                   converter=secrets_tuple)
    outgoing_webhook_tokens: tuple[Secret, ...] = attrs.field(default=(), repr=False,
                                                              converter=secrets_tuple)
    metrics_auth: str = "none"  # none | admin: /metrics needs the admin bearer token
    metrics_listen: str | None = None  # host:port: /metrics only there

    def tokens_for(self, kind: str) -> tuple[Secret, ...]:
        """Accepted tokens of ``outgoing`` webhooks or ``slash`` commands; the deprecated
        shared MCHAT_WEBHOOK_TOKENS when the specific setting is unset."""
        specific = self.slash_tokens if kind == "slash" else self.outgoing_webhook_tokens
        return specific or self.webhook_tokens


@attrs.frozen(kw_only=True)
class ChatConfig:
    backend: str = "embedded"
    backend_url: str | None = None
    backend_api_key: Secret | None = attrs.field(default=None, repr=False, converter=secret)
    backend_agent_id: str | None = None
    backend_rate_per_min: float = 60.0
    llm_base_url: str | None = None
    llm_api_key: Secret | None = attrs.field(default=None, repr=False, converter=secret)
    llm_model: str | None = None
    timeout_s: float = 60.0
    llm_timeout_s: float = 30.0
    summary_every_hours: float | None = None  # scheduled summaries per channel; None: off
    # CHAT_BACKEND=agent-chat: the AI Memory Agent's service account and how people post
    agent_service_email: str | None = None
    agent_service_password: Secret | None = attrs.field(default=None, repr=False, converter=secret)
    agent_user_auth: str = "sso"  # sso | x-user-id (see chat.agent_chat_client)
    agent_rate_per_min: float = 600.0  # every post is a request; the server limits no chat API
    timezone: str = "Asia/Seoul"  # MCHAT_TIMEZONE: dates in answers and summaries
    mask_llm: bool = True  # MCHAT_MASK_LLM: phones and e-mails masked in text sent to the LLM
    glossary_path: str | None = None  # MCHAT_GLOSSARY_PATH: more synonym groups (TOML)
    # hybrid retrieval: an OpenAI-compatible /v1/embeddings (unset: lexical + offline synonyms)
    embeddings_base_url: str | None = None
    embeddings_api_key: Secret | None = attrs.field(default=None, repr=False, converter=secret)
    embeddings_model: str | None = None
    # MCHAT_LOCAL_EMBEDDINGS: without an endpoint, the sentence encoder in the wheel (no network)
    local_embeddings: bool = True


@attrs.frozen(kw_only=True)
class QueueConfig:
    """Capacities of the bounded memory channels (see docs/architecture.md)."""

    events: int = 256
    # a busy lane's queue: held in memory only while its lane is behind the socket (an idle
    # lane's is empty); at a full mailbox posts are dropped and read again over REST, which
    # costs the event loop more than queueing them (bench.bench_storage --ingest-only)
    channel_mailbox: int = 1024
    invocations: int = 64
    replies: int = 256
    channel_idle_s: float = 300.0
    # ChatService calls that answer (MCHAT_MAX_CONCURRENT_CHATS). Answers are capped by the
    # request budget (MCHAT_RATE_LIMIT/s); filling it takes rate x answer time calls at once:
    # 16 fills 10 req/s up to 1.6 s per answer. Raise it for slower LLMs.
    max_concurrent_chats: int = 16
    # ChatService calls that only store a post (MCHAT_MAX_CONCURRENT_STORES; separate limit)
    max_concurrent_stores: int = 16


@attrs.frozen
class ReplicaConfig:
    """MCHAT_REPLICAS=on: several ``serve`` processes share one PostgreSQL database, channels
    owned by leases (docs/postgresql.md, "Replicas"). Off: one process per database."""

    enabled: bool = False
    lease_ttl_s: float = 10.0  # MCHAT_LEASE_TTL_S
    lease_renew_s: float = 3.0  # MCHAT_LEASE_RENEW_S (at most half the ttl)
    buckets: int = 64  # MCHAT_LEASE_BUCKETS: channels hashed into this many leases
