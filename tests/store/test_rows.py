"""One row by id, or a participant's rows in order: the readers every store module shares."""

from __future__ import annotations

import datetime as dt

import pytest

from nettrial.exceptions import NotFoundError
from nettrial.store._rows import get_row, participant_rows
from nettrial.store.models import LabResult, Participant
from tests import factories


def _lab(participant_id: int, test: str, on: str, value: float) -> LabResult:
    return LabResult(
        participant_id=participant_id,
        test=test,
        value=value,
        unit="U/L",
        collected_on=dt.date.fromisoformat(on),
    )


def test_a_row_by_id_or_not_found_by_name_and_a_participants_rows_in_order(db):
    participant_id = factories.enrolled_before_first_dose(db)["Test Patient"]
    with factories.writing(db) as session:
        participant = session.get(Participant, participant_id)
        # Added out of date order: the order comes from the query, not from insertion.
        added = (("alt", "2026-03-20", 50), ("ast", "2026-03-02", 30), ("alt", "2026-03-02", 40))
        for test, on, value in added:
            session.add(_lab(participant_id, test, on, value))
        session.flush()
        rows = participant_rows(session, LabResult, participant, LabResult.collected_on, LabResult.id)
        assert [(r.test, r.collected_on.isoformat()) for r in rows] == [
            ("ast", "2026-03-02"),
            ("alt", "2026-03-02"),
            ("alt", "2026-03-20"),
        ]
        alt = participant_rows(session, LabResult, participant, LabResult.id, where=LabResult.test == "alt")
        assert [r.value for r in alt] == [50, 40]
        assert get_row(session, LabResult, rows[0].id, "lab result") is rows[0]
        with pytest.raises(NotFoundError) as missing:
            get_row(session, LabResult, 999_999, "lab result")
        assert "lab result" in str(missing.value)
