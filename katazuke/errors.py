"""Exception hierarchy shared by every Katazuke package.

Each library raises a subclass of :class:`KatazukeError` whose message says what the
caller must change; the CLI prints that message (no traceback) and exits non-zero.
"""


class KatazukeError(Exception):
    """Base class of every error Katazuke raises on purpose."""


class ConfigError(KatazukeError, ValueError):
    """A configuration file or value is missing, unknown or out of range."""


class InputError(KatazukeError, ValueError):
    """Input data (a file, an array, a message) is malformed."""


__all__ = ["KatazukeError", "ConfigError", "InputError"]
