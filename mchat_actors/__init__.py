"""mchat-actors: an actor-model bridge between Mchat (Mattermost) and an AI Memory Agent."""

from .config import Config as Config
from .errors import (
    ChatServiceError as ChatServiceError,
    ConfigError as ConfigError,
    MattermostError as MattermostError,
    MchatActorsError as MchatActorsError,
    RateLimited as RateLimited,
)

__all__ = [
    "ChatServiceError",
    "Config",
    "ConfigError",
    "MattermostError",
    "MchatActorsError",
    "RateLimited",
]
