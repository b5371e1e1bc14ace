"""The analysis tables a ClinicalTrials.gov results section reads, and how it writes numbers.

Each table is computed once per export and read by every registry module that needs it
(``ctgov_participants``, ``ctgov_outcomes``, ``ctgov_adverse_events``); the registry writes counts
and decimals as text.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.analysis import safety_tables
from nettrial.analysis.adverse_events import adverse_event_table
from nettrial.analysis.consort import ConsortFlow, consort_flow
from nettrial.analysis.endpoints import endpoint_settings
from nettrial.analysis.rfs import time_to_event_tables
from nettrial.analysis.subjects import subject_table
from nettrial.protocol.model import Protocol
from nettrial.store.models import Site


def decimal_text(value: float, places: int) -> str:
    """``value`` to ``places`` decimals, half away from zero (as the safety tables round)."""
    return str(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def count_text(value: int) -> str:
    return str(int(value))  # the registry writes counts of the flow and denominators as text


def denominators(group_id: str, n: int) -> list[dict[str, Any]]:
    """A module's ``denoms``: ``n`` participants in the one group."""
    return [{"units": "Participants", "counts": [{"groupId": group_id, "value": count_text(n)}]}]


class Study:
    """The analysis tables one export reads, each computed once."""

    def __init__(self, session: Session, protocol: Protocol, cutoff: dt.date):
        self.protocol, self.cutoff = protocol, cutoff
        self.flow: ConsortFlow = consort_flow(session, protocol, cutoff)
        self.subjects = subject_table(session, protocol, cutoff)
        self.time_to_event = time_to_event_tables(session, protocol, cutoff)
        self.adae = adverse_event_table(session, protocol, cutoff)
        self.exposure = safety_tables.exposure(session, protocol, cutoff)
        self.sites = dict(session.execute(select(Site.code, Site.name)).all())
        self.settings = endpoint_settings(protocol)
        arm = protocol.identity.arms[0]
        self.group = {"title": arm.label, "description": arm.description}
        self.notes: list[str] = []

    def group_as(self, prefix: str) -> list[dict[str, str]]:
        return [{"id": f"{prefix}000", **self.group}]
