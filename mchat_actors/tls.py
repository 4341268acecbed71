"""TLS towards Mattermost: one client SSL context for REST and the WebSocket, and plain words
for certificate failures.

``client_ssl_context(cfg)`` is built once at start (``app``) and handed to the REST client and
every WebSocket connect. It verifies by default against the system store, or against
``MCHAT_CA_BUNDLE`` alone when set (a company CA). ``MCHAT_VERIFY_SSL=false`` turns
verification off: ``insecure_warning(cfg)`` is then logged at start and shown by
``/mchat/health``, the status API and the admin page.

``certificate_problem(exc)`` finds an ``ssl.SSLCertVerificationError`` anywhere in an
exception's cause/context chain (httpx and trio wrap it) and says what went wrong, so an
untrusted certificate is reported as a certificate problem, not as an outage.
"""

from __future__ import annotations

import logging
import ssl

from .config import MattermostConfig

logger = logging.getLogger(__name__)

INSECURE_WARNING = ("MCHAT_VERIFY_SSL=false: TLS certificates of the Mattermost server are NOT "
                    "verified; anyone on the network path can read the bot token and every "
                    "message. Set MCHAT_CA_BUNDLE to your company CA's PEM file instead.")


def client_ssl_context(cfg: MattermostConfig) -> ssl.SSLContext | None:
    """The client context for ``cfg.url``; None for plain ``http://``.

    Raises:
        OSError / ssl.SSLError: the CA bundle cannot be read or parsed (the config checked
        that the file exists).
    """
    if not cfg.url.lower().startswith("https"):
        return None
    ctx = ssl.create_default_context(cafile=cfg.ca_bundle) if cfg.ca_bundle else (
        ssl.create_default_context())
    if not cfg.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def insecure_warning(cfg: MattermostConfig) -> str | None:
    """The warning to show while verification is off (None when it is on)."""
    return None if cfg.verify_ssl else INSECURE_WARNING


def log_tls_settings(cfg: MattermostConfig) -> None:
    """At start: a loud warning when verification is off, the CA bundle in use otherwise."""
    warning = insecure_warning(cfg)
    if warning:
        logger.warning("!!! %s !!!", warning)
    elif cfg.ca_bundle and cfg.url.lower().startswith("https"):
        logger.info("tls: verifying the Mattermost certificate against %s", cfg.ca_bundle)


def certificate_problem(exc: BaseException | None) -> str | None:
    """A one-line description when ``exc`` (or anything it wraps) is a failed certificate
    check; None otherwise."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or exc.reason or "verification failed"
            return (f"TLS certificate not trusted ({reason}); if the server uses a company "
                    "CA, set MCHAT_CA_BUNDLE to its PEM file")
        if isinstance(exc, ssl.SSLError) and "CERTIFICATE" in str(exc).upper():
            return f"TLS certificate problem ({exc.reason or exc}); check MCHAT_CA_BUNDLE"
        exc = exc.__cause__ or exc.__context__
    return None
