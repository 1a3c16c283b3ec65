"""Exceptions of the sandbox's public interface."""


class HostError(Exception):
    """The host function failed; the script's call raises this message as a Lua error.

    Raise it from the ``host`` callable given to ``ExecutorPool.run`` for failures the
    script should see and may ``pcall`` (a missing collection, a value too large...).
    Any other exception from the host ends the run with ``internal_error``.
    """


class HostLimit(Exception):
    """The host counted past a sandbox knob: the run ends like any limit (not catchable).

    Raise it from the ``host`` callable with the knob's name (``max_http_requests``).
    """

    def __init__(self, knob):
        super().__init__(knob)
        self.knob = knob


class Overloaded(Exception):
    """No execution slot became free in time."""

    def __init__(self, message=None):
        super().__init__(message or self.__doc__)


class ProtocolError(Exception):
    """An executor process sent something that is not a valid message."""
