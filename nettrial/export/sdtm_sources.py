"""What every SDTM domain builder reads: the subjects, the store, the protocol, the cut-off and the terms.

The builders (``sdtm_domains``, ``sdtm_events``, ``sdtm_findings``) keep to the participants
enrolled by the cut-off (``Sources.subjects``) and to records dated on or before it; a store code
becomes a CDISC term through ``Sources.term``, which refuses a code the listing does not map.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.analysis.adverse_events import study_day
from nettrial.exceptions import RuleDataError
from nettrial.protocol.model import Protocol
from nettrial.store.models import Participant

Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Subject:
    usubjid: str
    first_dose: dt.date | None


@dataclass(frozen=True)
class Sources:
    """What every builder reads: the store, the protocol, the cut-off and the listing's terms."""

    session: Session
    protocol: Protocol
    cutoff: dt.date
    pseudonymised: bool
    trial: Mapping[str, Any]
    terms: Mapping[str, Any]
    where: str
    subjects: dict[int, Subject]  # participant id -> subject

    def term(self, table: str, code: Any) -> Any:
        """The CDISC term for a store code; a code the listing does not map is refused."""
        found = self.terms.get(table, {})
        if code not in found:
            raise RuleDataError(self.where, f"terms.{table}: no CDISC term for {code!r}")
        return found[code]

    def day(self, pid: int, day: dt.date | None) -> int | None:
        return None if day is None else study_day(day, self.subjects[pid].first_dose)


def iso_date(value: Any) -> str | None:
    """A date as ISO 8601 (``2026-01-26``); None for a missing one (None, NaN or pandas NaT)."""
    if value is None or pd.isna(value):
        return None
    return value.isoformat()[:10]


def exact_text(value: float | None) -> str | None:
    """A recorded number as text, as exact as stored (``158``, ``3.44``)."""
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def by_cutoff(day: dt.date | None, cutoff: dt.date) -> dt.date | None:
    """``day`` when it is on or before the cut-off; a later one had not happened yet."""
    return day if day is not None and day <= cutoff else None


def ordered(src: Sources, model: type, day: Any) -> list[Any]:
    """The subjects' records of ``model`` dated (column ``day``) by the cut-off, in store order."""
    query = (
        select(model)
        .join(Participant, Participant.id == model.participant_id)
        .where(day <= src.cutoff)
        .order_by(Participant.study_number, day, model.id)
    )
    return [r for r in src.session.scalars(query) if r.participant_id in src.subjects]
