"""``MCHAT_DATABASE_URL=postgresql://user:password@host:port/dbname?sslmode=...``: parsed once.

``parse_database_url`` checks everything it can before a connection is tried and returns a
``DatabaseUrl`` whose password is a ``Secret``: its repr, str and every error raised here show
``[redacted]``, never the password (nor the raw URL, which holds it). ``conninfo()`` builds the
libpq connection string for psycopg, the one place the password is revealed.

Only the query parameters listed in ``ALLOWED_PARAMS`` are accepted: a typo such as
``sslmod=require`` must not silently connect without TLS.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

import attrs
from psycopg.conninfo import make_conninfo

from ..errors import ConfigError
from ..secrecy import REDACTED, Secret

SCHEMES = ("postgresql", "postgres")
ALLOWED_PARAMS = frozenset({
    "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name",
    "target_session_attrs", "options",
})
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_PORT = 5432


@attrs.frozen
class DatabaseUrl:
    host: str
    port: int
    dbname: str
    user: str
    password: Secret | None = attrs.field(default=None)
    params: tuple[tuple[str, str], ...] = ()

    def conninfo(self) -> str:
        """The libpq connection string (holds the password: never log it)."""
        extra = dict(self.params)
        if self.password is not None:
            extra["password"] = self.password.reveal()
        return make_conninfo("", host=self.host, port=str(self.port), dbname=self.dbname,
                             user=self.user, **extra)

    def display(self) -> str:
        """The URL with the password replaced, for logs, health and the admin page."""
        auth = self.user + (f":{REDACTED}" if self.password is not None else "")
        query = "&".join(f"{k}={v}" for k, v in self.params)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"postgresql://{auth}@{host}:{self.port}/{self.dbname}"
                + (f"?{query}" if query else ""))

    def __str__(self) -> str:
        return self.display()


def is_postgres_url(value: str) -> bool:
    return value.strip().lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def parse_database_url(value: str | Secret) -> DatabaseUrl:
    """The validated URL.

    Raises:
        ConfigError: one line per problem, naming MCHAT_DATABASE_URL, never quoting the URL
            (it holds the password).
    """
    raw = value.reveal() if isinstance(value, Secret) else value
    raw = raw.strip()
    problems: list[str] = []
    try:
        parts = urlsplit(raw)
        port = parts.port  # ValueError when not a number or out of range
    except ValueError:
        raise ConfigError(["MCHAT_DATABASE_URL: not a valid URL (check the port and any [ ] "
                           "around an IPv6 host; characters such as @ : / in the password "
                           "must be percent-encoded)"]) from None
    if parts.scheme.lower() not in SCHEMES:
        # what stands before the first ':' is not echoed: without a scheme it is the user name,
        # or, in a mistyped URL, the password
        raise ConfigError(["MCHAT_DATABASE_URL: must start with postgresql:// (or postgres://)"])
    host = parts.hostname or ""
    if not host:
        problems.append("MCHAT_DATABASE_URL: no host (postgresql://user:password@host:5432/db)")
    user = unquote(parts.username or "")
    if not user:
        problems.append("MCHAT_DATABASE_URL: no user name")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or "/" in dbname:
        problems.append("MCHAT_DATABASE_URL: the path must be one database name (/mchat)")
    if port == 0:
        problems.append("MCHAT_DATABASE_URL: port 0 is not a server port")
    if parts.fragment:
        problems.append("MCHAT_DATABASE_URL: a URL fragment (#...) is not allowed")
    password = Secret(unquote(parts.password)) if parts.password is not None else None
    params: list[tuple[str, str]] = []
    for key, val in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ALLOWED_PARAMS:
            problems.append(f"MCHAT_DATABASE_URL: unknown parameter {key!r} (allowed: "
                            f"{', '.join(sorted(ALLOWED_PARAMS))})")
        elif key == "sslmode" and val not in SSLMODES:
            problems.append(f"MCHAT_DATABASE_URL: sslmode must be one of {', '.join(SSLMODES)}")
        elif key == "connect_timeout" and not (val.isdigit() and 0 < int(val) <= 3600):
            problems.append("MCHAT_DATABASE_URL: connect_timeout must be 1..3600 seconds")
        else:
            params.append((key, val))
    if problems:
        raise ConfigError(problems)
    return DatabaseUrl(host=host, port=port or DEFAULT_PORT, dbname=dbname, user=user,
                       password=password, params=tuple(params))


def redact(text: str, url: DatabaseUrl) -> str:
    """``text`` (a driver's error message) with the password, if it appears, replaced."""
    if url.password is not None and url.password.reveal():
        text = text.replace(url.password.reveal(), REDACTED)
    return text
