"""Every error nettrial raises on purpose.

::

    NettrialError
    ├── InputError              bad input from a person or a file: names the field and what is allowed
    │   └── ImplausibleValueError   a value outside what is physically plausible for its unit
    ├── RuleDataError           a shipped or user-supplied rule/data file is malformed
    ├── NotFoundError           no such record (or not visible to this user)
    ├── ConflictError           the request contradicts the study's state (enrolment closed, ...)
    ├── AuthenticationError     unknown user, wrong password, or an expired token
    │   └── TooManyAttemptsError    repeated failed logins: wait ``retry_after`` seconds
    └── PermissionDeniedError   the user's role may not do this

The command line maps every ``NettrialError`` to exit status 2; the API layer maps them to HTTP
422, 404, 409, 401, 429 and 403 in one handler (``nettrial/api/main.py``).
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


class NotFoundError(NettrialError):
    """No such record."""

    def __init__(self, entity: str, key: object):
        self.entity, self.key = entity, key
        super().__init__(f"{entity} {key} not found")


class ConflictError(NettrialError):
    """The request contradicts the study's state; ``field`` names what it is about."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.detail = message
        super().__init__(f"{field}: {message}")


class AuthenticationError(NettrialError):
    """Unknown user, wrong password, or an expired or unknown token."""


class TooManyAttemptsError(AuthenticationError):
    """Too many failed logins in a row: the next attempt is accepted after ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"too many failed logins: try again in {retry_after} s")


class PermissionDeniedError(NettrialError):
    """The user's role does not allow this action."""

    def __init__(self, role: str, action: str):
        self.role, self.action = role, action
        super().__init__(f"the {role} role may not {action}")
