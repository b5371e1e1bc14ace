"""Calendar-date checks shared by the clinical store modules.

Dates are recorded as the site's calendar date, while the server's clock is UTC: local time runs
from UTC-12 to UTC+14, so a site's date can be one day either side of the UTC date (a site in China
is already on the next day for eight hours of every UTC day). Checks against the clock or against
a UTC instant allow that day rather than refuse a correct local date.
"""

from __future__ import annotations

import datetime as dt

from nettrial.exceptions import InputError

_ONE_DAY = dt.timedelta(days=1)


def not_in_future(value: dt.date | None, field: str) -> None:
    """Refuse a date after today anywhere on Earth."""
    if value is not None and value > dt.datetime.now(dt.UTC).date() + _ONE_DAY:
        raise InputError(field, f"{value} is in the future")


def earliest_local_date(instant: dt.datetime) -> dt.date:
    """The earliest calendar date any site could have written for a UTC instant."""
    return instant.astimezone(dt.UTC).date() - _ONE_DAY


def not_before(value: dt.date | None, earliest: dt.date, field: str, what: str) -> None:
    """Refuse a date before ``earliest`` (``what`` names it in the message)."""
    if value is not None and value < earliest:
        raise InputError(field, f"{value} is before {what} ({earliest})")
