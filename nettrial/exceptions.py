"""Every error nettrial raises on purpose.

::

    NettrialError
    ├── InputError              bad input from a person or a file: names the field and what is allowed
    │   └── ImplausibleValueError   a value outside what is physically plausible for its unit
    └── RuleDataError           a shipped or user-supplied rule/data file is malformed

The command line maps ``InputError`` to exit status 2; the API layer (later) maps it to HTTP 422.
"""

from __future__ import annotations

from collections.abc import Iterable


class NettrialError(Exception):
    """Base class of every nettrial error."""


class InputError(NettrialError, ValueError):
    """A value that cannot be accepted, with the field it belongs to and what would be accepted."""

    def __init__(self, field: str, message: str, *, allowed: Iterable[str] | str | None = None):
        self.field = field
        self.allowed = allowed if isinstance(allowed, str) or allowed is None else tuple(allowed)
        self.detail = message
        text = f"{field}: {message}"
        if self.allowed:
            shown = self.allowed if isinstance(self.allowed, str) else ", ".join(self.allowed)
            text += f" (allowed: {shown})"
        super().__init__(text)


class ImplausibleValueError(InputError):
    """A value that parses but cannot be right for its unit (e.g. Ki-67 of 140 %)."""


class RuleDataError(NettrialError):
    """A rule or table file that does not have the expected shape."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")
