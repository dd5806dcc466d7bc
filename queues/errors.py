"""Errors raised by the ACD core for input it refuses.

Every check runs before any state changes, so a refused event or config loses nothing.
"""

from __future__ import annotations


class AcdError(ValueError):
    """Input the ACD core refuses; the engine's state is unchanged."""


class InvalidConfig(AcdError):
    """A configuration value that cannot work."""


class InvalidEvent(AcdError):
    """An event with a bad value, or one that makes no sense in the current state."""


class UnknownCategory(InvalidEvent):
    """A call was queued to a category the configuration does not have."""


class UnknownOperator(InvalidEvent):
    """An operator event for an operator the engine has never seen."""


class DuplicateCall(InvalidEvent):
    """A call was queued while the engine still holds a call with the same id."""


class ClockWentBackwards(InvalidEvent):
    """`now` was earlier than the previous event's: the injected clock must be monotonic."""
