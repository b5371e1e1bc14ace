"""What the demo study's phases share: the data tables, the one random source, and each course as planned.

A ``Course`` is one patient's screening and, once enrolled, course, planned before its rows are
written; ``Demo`` holds the session, the cut-off, the random source, the tables and the protocol that
every phase (``demo_screening``, ``demo_follow_up``, ``demo_treatment``, ``demo_visits``) draws on.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from nettrial._yaml import load_yaml
from nettrial.protocol import Protocol
from nettrial.store.models import AdverseEvent, User

DAY = dt.timedelta(days=1)


@cache
def demo_data() -> dict[str, Any]:
    """The demo's tables (``demo_data.yaml``), read once."""
    return load_yaml(Path(__file__).with_name("demo_data.yaml").read_text(encoding="utf-8"))


@dataclass
class Event:
    """An adverse event as planned: grade, onset, end, the value that shows it, what was done."""

    spec: dict[str, Any]
    grade: int
    onset: dt.date
    ends: dt.date
    value: Any = None
    action: str = "none"
    advice: dict[str, Any] | None = None
    row: AdverseEvent | None = None


@dataclass
class Course:
    """One patient's screening and, once enrolled, course, planned before its rows are written."""

    kind: str  # a key of the data's ``kinds``
    first: dt.date  # the planned first dose, given on that day
    screened: dt.date
    sex: str
    baseline: dict[str, float]
    record: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, Any] = field(default_factory=dict)  # patient, saved, evaluation, consent, participant
    # (code, the last day of its window, the day done or None when missed, note)
    visits: list[tuple[str, dt.date, dt.date | None, str | None]] = field(default_factory=list)
    scans: list[tuple[str, dt.date]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    periods: list[list[Any]] = field(default_factory=list)  # [level, start, stop, reason, event]
    panels: dict[dt.date, dict[str, float]] = field(default_factory=dict)
    cut: dt.date = dt.date.max  # the planned end of dosing: six cycles, recurrence or withdrawal
    ended: dt.date = dt.date.max  # the end of dosing (cut, or an earlier discontinuation)
    stopped: tuple[str, str] | None = None  # the treatment disposition (status, reason); None: ongoing
    recurrence: tuple[dt.date, list[str]] | None = None
    death: dt.date | None = None
    withdrawn: dt.date | None = None
    lost: dt.date | None = None

    @property
    def follow_end(self) -> dt.date:
        return min(d or dt.date.max for d in (self.death, self.withdrawn, self.lost))


@dataclass
class Demo:
    """The study being built: the session, the cut-off, the one random source, the tables, the protocol.

    Every choice comes from ``rng`` in a fixed order, so a seed and a day give the same study; drawing
    in another order (moving a call, adding one) makes another study.
    """

    session: Session
    today: dt.date
    rng: random.Random
    data: dict[str, Any]
    protocol: Protocol
    users: dict[str, User] = field(default_factory=dict)  # by role

    def between(self, low: float, high: float) -> float:
        value = self.rng.uniform(low, high)
        return round(value) if high >= 50 else round(value, 2)

    def pick(self, items: list, n: int, weights: list[float]) -> list:
        """``n`` items without replacement, likelier by weight (Efraimidis-Spirakis keys)."""
        keys = [self.rng.random() ** (1 / w) for w in weights]
        return [items[i] for i in sorted(range(len(items)), key=lambda i: -keys[i])[:n]]


def limit(spec: dict[str, Any], key: str, sex: str) -> Any:
    """A lab's limit or range, which some tables give per sex."""
    value = spec.get(key)
    return value[sex] if isinstance(value, dict) else value


def plain_json(value: Any) -> Any:
    """Plain JSON (tuples as lists, dates as ISO text): reads the same on SQLite and PostgreSQL."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat()))
