"""The dosing log: the ladder's levels only, no overlaps, the first period is the first dose."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from nettrial.exceptions import ConflictError, InputError
from nettrial.store import measurements, treatment
from nettrial.store.models import AuditEntry, DosingPeriod, LabResult, Participant
from tests import factories
from tests.factories import PROTOCOL, writing

PLANNED = dt.date(2026, 3, 2)  # the eligible record's planned first dose, copied at enrolment
D = dt.date.fromisoformat
TODAY = D("2026-06-30")


def _participant(db) -> int:
    users = factories.seed(db)
    return factories.enrolled(db, users["investigator"])


def _add(db, participant_id: int, **fields) -> DosingPeriod:
    with writing(db) as session:
        participant = session.get(Participant, participant_id)
        return treatment.add_period(
            session, participant=participant, protocol=PROTOCOL, today=TODAY, **fields
        )


def _stop(db, period_id: int, reason: str = "grade 3 hypertension", **changes) -> DosingPeriod:
    with writing(db, reason=reason) as session:
        period = session.get(DosingPeriod, period_id)
        return treatment.update_period(
            session, period=period, protocol=PROTOCOL, changes=changes, today=TODAY
        )


def _first_dose(db, participant_id: int) -> dt.date | None:
    with db.session(write=False) as session:
        return session.get(Participant, participant_id).first_dose_date


def test_the_first_period_records_the_first_dose_replacing_the_planned_date(db):
    participant_id = _participant(db)
    assert _first_dose(db, participant_id) == PLANNED
    _add(db, participant_id, dose_level=0, start_date=D("2026-03-04"))
    assert _first_dose(db, participant_id) == D("2026-03-04")
    with db.session(write=False) as session:
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.entity == "participant",
                AuditEntry.field == "first_dose_date",
                AuditEntry.action == "update",
            )
        )
    assert (entry.old_value, entry.new_value) == ("2026-03-02", "2026-03-04")
    assert entry.reason == "first dose recorded (planned for 2026-03-02)"


def test_the_first_dose_sets_an_unset_first_dose_date_and_grades_against_its_baseline(db):
    participant_id = _participant(db)
    with writing(db, reason="first dose postponed, date not yet known") as session:
        session.get(Participant, participant_id).first_dose_date = None
    with writing(db) as session:
        participant = session.get(Participant, participant_id)
        for value, day in ((80, "2026-02-24"), (130, "2026-03-30")):
            measurements.add_lab(
                session, participant=participant, protocol=PROTOCOL, test="alt", value=value, unit="U/L",
                uln=40, collected_on=D(day),
            )  # fmt: skip
    with db.session(write=False) as session:
        later = session.scalar(select(LabResult).where(LabResult.value == 130))
        assert later.ctcae_grade == 2  # no first dose yet, so no baseline: against the ULN
    _add(db, participant_id, dose_level=0, start_date=D("2026-03-05"))
    assert _first_dose(db, participant_id) == D("2026-03-05")
    with db.session(write=False) as session:
        later = session.get(LabResult, later.id)
        assert later.ctcae_grade == 1  # against the abnormal screening baseline (80 U/L)


def test_a_dose_level_must_be_on_the_ladder(db):
    participant_id = _participant(db)
    with pytest.raises(InputError) as refused:
        _add(db, participant_id, dose_level=-2, start_date=PLANNED)
    assert refused.value.field == "dose_level"
    assert refused.value.allowed == ("0", "-1")


def test_periods_may_not_overlap_nor_start_before_the_first_dose(db):
    participant_id = _participant(db)
    first = _add(db, participant_id, dose_level=0, start_date=PLANNED)
    with pytest.raises(ConflictError) as refused:
        _add(db, participant_id, dose_level=-1, start_date=D("2026-04-01"))  # the first is still open
    assert refused.value.field == "start_date"
    _stop(db, first.id, stop_date=D("2026-03-29"), stop_reason="interruption")
    with pytest.raises(ConflictError):
        _add(db, participant_id, dose_level=-1, start_date=D("2026-03-29"))
    with pytest.raises(InputError) as refused:
        _add(db, participant_id, dose_level=-1, start_date=D("2026-03-01"), stop_date=D("2026-03-01"),
             stop_reason="interruption")  # fmt: skip
    assert refused.value.field == "start_date"
    second = _add(db, participant_id, dose_level=-1, start_date=D("2026-04-06"))
    with pytest.raises(ConflictError):  # stopping the first later would now overlap the second
        _stop(db, first.id, "date corrected", stop_date=D("2026-04-10"))
    assert second.id > first.id


def test_a_stop_needs_its_date_and_reason_and_nothing_follows_a_discontinuation(db):
    participant_id = _participant(db)
    first = _add(db, participant_id, dose_level=0, start_date=PLANNED)
    with pytest.raises(InputError) as refused:
        _stop(db, first.id, stop_date=D("2026-04-01"))
    assert refused.value.field == "stop_reason"
    with pytest.raises(InputError) as refused:
        _stop(db, first.id, stop_date=D("2026-04-01"), stop_reason="felt better")
    assert refused.value.field == "stop_reason"
    _stop(db, first.id, stop_date=D("2026-04-01"), stop_reason="discontinued")
    with pytest.raises(ConflictError):
        _add(db, participant_id, dose_level=-1, start_date=D("2026-05-01"))


def test_missed_doses_cannot_exceed_the_dosing_days(db):
    participant_id = _participant(db)
    with pytest.raises(InputError) as refused:
        _add(db, participant_id, dose_level=0, start_date=PLANNED, stop_date=D("2026-03-05"),
             stop_reason="interruption", missed_doses=5)  # fmt: skip
    assert refused.value.field == "missed_doses"


def test_the_summary_gives_the_state_the_gaps_and_the_dose_intensity(db):
    participant_id = _participant(db)
    first = _add(db, participant_id, dose_level=0, start_date=PLANNED, missed_doses=2)
    _stop(db, first.id, stop_date=D("2026-03-29"), stop_reason="reduction")
    _add(db, participant_id, dose_level=-1, start_date=D("2026-04-06"))
    with db.session(write=False) as session:
        participant = session.get(Participant, participant_id)
        found = treatment.summary(session, participant=participant, protocol=PROTOCOL, today=D("2026-04-30"))
        gaps = treatment.interruptions(found.periods, D("2026-04-30"))
    assert (found.state, found.current_dose_level, found.last_dose_date) == ("dosing", -1, None)
    assert gaps == [(D("2026-03-30"), D("2026-04-05"))]
    # Level 0: 28 days less 2 missed; level -1 from cycle 2 day 8 (2026-04-06) to 2026-04-30: cycle 2
    # days 8-21 dose (14 days), days 22-28 are off, cycle 3 days 1-4 dose (4 days).
    assert found.dose_intensity.dosing_days == 26 + 14 + 4
    assert found.dose_intensity.cumulative_mg == 200 * 44


def test_correcting_the_first_start_moves_the_first_dose_with_a_reason(db):
    participant_id = _participant(db)
    first = _add(db, participant_id, dose_level=0, start_date=D("2026-03-04"))
    _stop(db, first.id, "typo: the chart says 3 March", start_date=D("2026-03-03"))
    assert _first_dose(db, participant_id) == D("2026-03-03")
    with db.session(write=False) as session:
        reasons = {
            e.field: e.reason
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "update"))
            if e.entity in ("participant", "dosing_period")
        }
    assert reasons["start_date"] == "typo: the chart says 3 March"
    assert reasons["first_dose_date"] == "first dose corrected to 2026-03-03 (dosing log)"


def test_an_earlier_period_cannot_be_discontinued_before_a_later_one(db):
    participant_id = _participant(db)
    first = _add(db, participant_id, dose_level=0, start_date=PLANNED)
    _stop(db, first.id, stop_date=D("2026-03-29"), stop_reason="reduction")
    _add(db, participant_id, dose_level=-1, start_date=D("2026-04-06"))
    with pytest.raises(ConflictError) as refused:
        _stop(db, first.id, "recorded wrongly", stop_reason="discontinued")
    assert refused.value.field == "stop_reason"


@pytest.mark.parametrize(
    ("start", "refused"),
    # Enrolled 2026-02-25 09:00 UTC: a site west of UTC may still be on the 24th; the 23rd is before
    # enrolment everywhere (store/_dates.py).
    [("2026-02-23", True), ("2026-02-24", False), ("2026-02-25", False)],
)
def test_no_dose_before_enrolment_in_any_sites_calendar(db, start, refused):
    participant_id = _participant(db)
    if refused:
        with pytest.raises(InputError) as error:
            _add(db, participant_id, dose_level=0, start_date=D(start))
        assert error.value.field == "start_date" and "enrolment" in str(error.value)
        assert _first_dose(db, participant_id) == PLANNED  # nothing written
    else:
        assert _add(db, participant_id, dose_level=0, start_date=D(start)).start_date == D(start)
