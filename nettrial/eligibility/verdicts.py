"""Verdicts that explain themselves: MET / NOT_MET / UNKNOWN with the evidence behind them.

Three-valued (Kleene) logic combines them: UNKNOWN never becomes MET by combination, only by data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Truth(StrEnum):
    MET = "MET"
    NOT_MET = "NOT_MET"
    UNKNOWN = "UNKNOWN"

    def negate(self) -> Truth:
        return {Truth.MET: Truth.NOT_MET, Truth.NOT_MET: Truth.MET}.get(self, Truth.UNKNOWN)


def all_of(values: Iterable[Truth]) -> Truth:
    """Kleene AND."""
    values = list(values)
    if Truth.NOT_MET in values:
        return Truth.NOT_MET
    return Truth.UNKNOWN if Truth.UNKNOWN in values else Truth.MET


def any_of(values: Iterable[Truth]) -> Truth:
    """Kleene OR."""
    values = list(values)
    if Truth.MET in values:
        return Truth.MET
    return Truth.UNKNOWN if Truth.UNKNOWN in values else Truth.NOT_MET


def at_least(count: int, values: Iterable[Truth]) -> Truth:
    values = list(values)
    met = values.count(Truth.MET)
    if met >= count:
        return Truth.MET
    return Truth.NOT_MET if met + values.count(Truth.UNKNOWN) < count else Truth.UNKNOWN


def from_bool(value: bool | None) -> Truth:
    return Truth.UNKNOWN if value is None else (Truth.MET if value else Truth.NOT_MET)


class Decision(StrEnum):
    ELIGIBLE = "ELIGIBLE"
    INELIGIBLE = "INELIGIBLE"
    INCOMPLETE = "INCOMPLETE"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fact a verdict rests on: the field, its value and unit, its date, and the threshold."""

    field: str
    value: Any = None
    unit: str | None = None
    date: dt.date | dt.datetime | None = None
    threshold: str | None = None
    reason: str = ""

    def __str__(self) -> str:
        value = (
            "not recorded" if self.value is None else f"{self.value}{' ' + self.unit if self.unit else ''}"
        )
        when = f" on {self.date.isoformat()}" if self.date else ""
        limit = f" (needs {self.threshold})" if self.threshold else ""
        return (
            f"{self.field}={value}{when}{limit}: {self.reason}"
            if self.reason
            else f"{self.field}={value}{when}{limit}"
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a rule node gave: its truth, evidence, missing or stale fields, and binding dates."""

    truth: Truth
    evidence: tuple[Evidence, ...] = ()
    missing: tuple[str, ...] = ()
    provisional: bool = False
    # the first date on which a time window of this node no longer rules the patient out
    earliest_first_dose: dt.date | None = None


def combine(truth: Truth, parts: Iterable[Outcome]) -> Outcome:
    parts = list(parts)
    dates = [p.earliest_first_dose for p in parts if p.earliest_first_dose]
    missing = [m for p in parts if p.truth is Truth.UNKNOWN for m in p.missing]
    return Outcome(
        truth,
        tuple(e for p in parts for e in p.evidence),
        tuple(dict.fromkeys(missing)),
        any(p.provisional for p in parts),
        max(dates) if dates else None,
    )


@dataclass(frozen=True)
class Verdict:
    """One criterion's verdict. For an exclusion, MET means the excluding condition is present."""

    criterion: str
    kind: str
    truth: Truth
    text: str
    evidence: tuple[Evidence, ...]
    missing: tuple[str, ...]
    provisional: bool
    earliest_first_dose: dt.date | None
    note: str | None = None
    information: dict[str, Any] | None = None

    @property
    def rules_out(self) -> bool:
        return self.truth is (Truth.NOT_MET if self.kind == "inclusion" else Truth.MET)


@dataclass(frozen=True)
class EligibilityResult:
    """The decision with every verdict, what is missing, and the earliest allowed first dose."""

    protocol: str
    protocol_version: str
    patient_id: str
    decision: Decision
    index_date: dt.date
    index: str
    provisional: bool
    verdicts: tuple[Verdict, ...]
    missing: tuple[str, ...]
    failed: tuple[str, ...]
    earliest_first_dose: dt.date | None
    earliest_first_dose_reasons: tuple[str, ...] = field(default=())

    def verdict(self, criterion: str) -> Verdict:
        return next(v for v in self.verdicts if v.criterion == criterion)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
