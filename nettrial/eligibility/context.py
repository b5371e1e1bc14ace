"""What every check needs besides its parameters: the record and the index date."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Any

from nettrial.eligibility.record import ScreeningRecord

MISSING = object()


@dataclass(frozen=True)
class Context:
    """The record under evaluation and the date (and instant) everything is measured from.

    ``provisional`` is true when no first dose is planned and the screening date stands in.
    A first dose given as a date only may be at any time of that day: an hour window must then
    hold for every time of the day (``index_start`` .. ``index_end``), the strictest reading of
    "within 72 hours before the first dose".
    """

    record: ScreeningRecord
    index_date: dt.date
    index_start: dt.datetime
    index_end: dt.datetime
    provisional: bool
    index_name: str

    @classmethod
    def for_record(cls, record: ScreeningRecord, first_dose: dt.date | dt.datetime | None = None) -> Context:
        planned = first_dose or record.planned_first_dose
        if planned is None:
            day = record.screening_date
            name = "screening_date (provisional: no first dose planned)"
            return cls(record, day, _start_of(day), _end_of(day), True, name)
        if isinstance(planned, dt.datetime):
            instant = planned.replace(tzinfo=None)
            return cls(record, planned.date(), instant, instant, False, "planned_first_dose")
        return cls(record, planned, _start_of(planned), _end_of(planned), False, "planned_first_dose")

    def get(self, path: str) -> Any:
        """A record value by dotted path (``consent.date``); None when not recorded."""
        value: Any = self.record
        for part in path.split("."):
            if value is None:
                return None
            value = value.get(part) if isinstance(value, dict) else getattr(value, part, MISSING)
            if value is MISSING:
                raise KeyError(path)
        return value

    def date_of(self, path: str) -> dt.date | None:
        if path in ("index_date", "planned_first_dose"):
            return self.index_date
        value = self.get(path)
        return value.date() if isinstance(value, dt.datetime) else value


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0))


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59))


def add_months(day: dt.date, months: int) -> dt.date:
    """Calendar months, clamped to the month's last day (31 Mar - 1 month = 28/29 Feb)."""
    month_index = day.year * 12 + day.month - 1 + months
    year, month = divmod(month_index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def whole_years(birth: dt.date, on: dt.date) -> int:
    """Age in completed years (a 29 February birthday falls on 1 March in other years)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
