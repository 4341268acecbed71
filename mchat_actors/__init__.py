"""mchat-actors: an actor-model bridge between Mchat (Mattermost) and an AI Memory Agent."""

from .config import Config as Config
from .errors import (
    ChatServiceError as ChatServiceError,
)
from .errors import (
    ConfigError as ConfigError,
)
from .errors import (
    MattermostError as MattermostError,
)
from .errors import (
    MchatActorsError as MchatActorsError,
)
from .errors import (
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
