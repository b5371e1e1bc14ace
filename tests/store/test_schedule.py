"""Schedules, logs and funnels of the whole study read in a few queries equal those read one by one.

The demo study (35 participants, 60 patients) is the data: the dashboard and the lists depend on it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import event, select

from nettrial.store import screening, treatment
from nettrial.store.demo import create_demo_study
from nettrial.store.models import Participant, Patient
from nettrial.store.schedule import participant_schedule, study_schedules
from tests.factories import PROTOCOL

TODAY = dt.date(2026, 11, 23)


def _statements(db):
    """A list that collects every SQL statement the database runs from now on."""
    seen: list[str] = []
    event.listen(db.reader.kw["bind"], "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_study_overviews_equal_one_by_one_reads_in_a_fixed_number_of_queries(db):
    create_demo_study(db, today=TODAY)
    with db.session(write=False) as session:
        participants = session.scalars(select(Participant).order_by(Participant.id)).all()
        patients = session.scalars(select(Patient).order_by(Patient.id)).all()

        seen = _statements(db)
        schedules = study_schedules(session, participants, protocol=PROTOCOL, today=TODAY)
        periods = treatment.periods_by_participant(session, [p.id for p in participants])
        evaluations = screening.latest_evaluations(session)
        funnel = screening.screening_funnel(session)
        assert len(seen) == 2 + 1 + 1 + 2  # visits and periods; periods; evaluations; funnel

        dosed = [p for p in participants if p.first_dose_date is not None]
        assert set(schedules) == {p.id for p in dosed}
        for participant in dosed:
            one = participant_schedule(session, participant=participant, protocol=PROTOCOL, today=TODAY)
            assert schedules[participant.id] == one, participant.study_id
            assert periods.get(participant.id, []) == treatment.list_periods(session, participant)

        one_by_one = {p.id: screening.latest_evaluation(session, p) for p in patients}
        assert evaluations == {pid: e for pid, e in one_by_one.items() if e is not None}
        expected = Counter(e.decision if e else "NOT_EVALUATED" for e in one_by_one.values())
        expected["screened"] = len(patients)
        assert funnel == expected
        assert funnel["screened"] == 60 and funnel["ELIGIBLE"] + funnel["INELIGIBLE"] >= 35
