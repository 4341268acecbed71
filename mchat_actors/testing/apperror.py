"""The AppError body the real server sends on every non-2xx REST answer (except 429).

``{"id", "message", "detailed_error": "", "request_id", "status_code"}``. Handlers raise
:class:`AppError`; the server turns it into that body with the request's id.
"""

from __future__ import annotations


class AppError(Exception):
    """An error answer: HTTP ``status``, i18n ``error_id`` and English ``message``."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.error_id = error_id
        self.message = message

    def body(self, request_id: str) -> dict[str, object]:
        return {
            "id": self.error_id,
            "message": self.message,
            "detailed_error": "",
            "request_id": request_id,
            "status_code": self.status,
        }

    def ws_error(self) -> dict[str, object]:
        """The ``error`` member of a WebSocket FAIL reply (no request id)."""
        return {
            "id": self.error_id,
            "message": self.message,
            "detailed_error": "",
            "status_code": self.status,
        }


def session_expired() -> AppError:
    return AppError(
        401, "api.context.session_expired.app_error",
        "Invalid or expired session, please login again.",
    )


def permission_denied() -> AppError:
    return AppError(
        403, "api.context.permissions.app_error", "You do not have the appropriate permissions."
    )


def invalid_body_param(name: str) -> AppError:
    return AppError(
        400, "api.context.invalid_body_param.app_error",
        f"Invalid or missing {name} in request body.",
    )


def invalid_url_param(name: str) -> AppError:
    return AppError(
        400, "api.context.invalid_url_param.app_error",
        f"Invalid or missing {name} parameter in request URL.",
    )


def invalid_param(name: str) -> AppError:
    return AppError(400, "api.context.invalid_param.app_error", f"Invalid {name} parameter.")


def route_not_found() -> AppError:
    return AppError(404, "api.context.404.app_error", "Sorry, we could not find the page.")


def body_too_large() -> AppError:
    return AppError(
        413, "api.context.request_body_too_large.app_error", "Request body is too large."
    )


def internal_error() -> AppError:
    return AppError(500, "api.context.unexpected.app_error", "Internal Server Error")


def user_not_found() -> AppError:
    return AppError(404, "app.user.missing_account.const", "Unable to find the user.")


def channel_not_found() -> AppError:
    return AppError(
        404, "app.channel.get.existing.app_error", "Unable to find the existing channel."
    )


def post_not_found() -> AppError:
    return AppError(404, "app.post.get.app_error", "Unable to get the post.")
