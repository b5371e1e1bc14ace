"""The demo study: the protocol's shape, the label's frequencies, an intact audit trail, and repeatable.

Creating the study takes seconds, so one test per database creates it and checks it part by part.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from itertools import pairwise

import pytest
from sqlalchemy import select

from nettrial.exceptions import ConflictError
from nettrial.protocol import load_protocol
from nettrial.safety.dosing import DosingPeriod as Dosed
from nettrial.safety.dosing import dose_intensity
from nettrial.store import migrate
from nettrial.store.audit import verify_chain
from nettrial.store.db import connect
from nettrial.store.demo import create_demo_study, is_empty
from nettrial.store.models import (
    AdverseEvent,
    Disposition,
    DosingPeriod,
    EligibilityEvaluation,
    LabResult,
    Participant,
    Patient,
    TumourAssessment,
    Visit,
)
from nettrial.store.users import ROLES, authenticate
from tests import factories

TODAY = dt.date(2026, 11, 23)
# Share of the 35 participants with the term (any grade; grade >= 3 where a band is set): the bands
# the demo aims at, from the surufatinib label.
BANDS = {
    "Hypertension": ((0.60, 0.70), (0.30, 0.35)),
    "Proteinuria": ((0.50, 0.60), (0.05, 0.15)),
    "Blood bilirubin increased": ((0.35, 0.45), None),
    "Alanine aminotransferase increased": ((0.30, 0.40), None),
    "Aspartate aminotransferase increased": ((0.25, 0.40), None),
    "Diarrhea": ((0.40, 0.50), None),
    "Hypertriglyceridemia": ((0.25, 0.35), None),
    "Fatigue": ((0.15, 0.25), None),
    "Anemia": ((0.15, 0.25), None),
}
THYROID = ("Hypothyroidism", "Thyroid stimulating hormone increased")
ACTION_FOR_STOP = {
    "interruption": "dose_interrupted",
    "reduction": "dose_reduced",
    "discontinued": "drug_withdrawn",
}


def test_the_demo_study_has_the_protocols_shape_and_an_intact_audit_trail(db):
    started = time.perf_counter()
    summary = create_demo_study(db, today=TODAY)
    elapsed = time.perf_counter() - started
    # Well under 10 s on an idle machine; the bound only catches a regression (e.g. a flush per row).
    assert elapsed < 60, f"the demo took {elapsed:.1f} s"
    with db.session(write=False) as session:
        participants = session.scalars(select(Participant).order_by(Participant.study_number)).all()
        assert [p.study_id for p in participants] == [f"NET-{n:03d}" for n in range(1, 36)]
        _check_screening(session, participants, summary)
        events = session.scalars(select(AdverseEvent)).all()
        _check_adverse_events(events)
        _check_dosing(session, participants, {e.id: e for e in events})
        _check_visits_and_results(session, events)
        _check_outcomes(session, participants)
        report = verify_chain(session)
        assert report.ok, report.problem
        assert report.entries > 10_000
    text = summary.explain()
    for role in ROLES:
        assert f"{role}-demo" in text
        with db.session() as session:
            assert authenticate(session, username=role, password=f"{role}-demo").role == role
    assert not is_empty(db)


def _check_screening(session, participants, summary) -> None:
    """About 60 patients; each participant ELIGIBLE when enrolled; failures fail distinct criteria."""
    patients = session.scalars(select(Patient)).all()
    assert 55 <= len(patients) <= 65 and len(patients) == summary.patients
    evaluations = {e.patient_id: e for e in session.scalars(select(EligibilityEvaluation))}
    for participant in participants:
        evaluation = evaluations[participant.patient_id]
        assert (evaluation.decision, participant.evaluation_id) == ("ELIGIBLE", evaluation.id)
        assert participant.enrolled_at - evaluation.evaluated_at < dt.timedelta(days=28)
    failed = {c for e in evaluations.values() if e.decision == "INELIGIBLE" for c in e.result["failed"]}
    assert len(failed) >= 6 and {"I2", "I3", "I5", "E1", "E3", "E4"} <= failed, failed
    assert any(e.decision == "INCOMPLETE" for e in evaluations.values())
    status = {p.id: p.status for p in patients}
    assert all(status[p.patient_id] == "enrolled" for p in participants)
    assert all(status[e.patient_id] == "screen_failed" for e in evaluations.values() if e.result["failed"])


def _share(events, terms, minimum_grade: int = 1) -> float:
    return len({e.participant_id for e in events if e.term in terms and e.grade >= minimum_grade}) / 35


def _check_adverse_events(events) -> None:
    """The label's frequencies, graded as CTCAE suggests from what was recorded, up to the cut-off."""
    for term, (any_grade, severe) in BANDS.items():
        assert any_grade[0] <= _share(events, [term]) <= any_grade[1], term
        assert severe is None or severe[0] <= _share(events, [term], 3) <= severe[1], term
    assert 0.2 <= _share(events, THYROID) <= 0.3
    assert 1 <= sum(e.term.endswith("hemorrhage") for e in events) <= 3
    assert all(e.suggested_grade == e.grade and e.ctcae_version == "5.0" for e in events)
    assert all(e.recommendation["rule"] and "at_dose_level" in e.recommendation for e in events)
    serious = [e for e in events if e.serious]
    assert 2 <= len(serious) <= 8 and all(e.serious_criteria for e in serious)
    assert all(e.onset_date <= TODAY and (e.resolved_date or TODAY) <= TODAY for e in events)
    assert all((e.resolved_date is not None) == (e.outcome == "recovered") for e in events)


def _check_dosing(session, participants, events) -> None:
    """From the first dose at level 0, no overlaps, each stop caused by the event it names."""
    protocol = load_protocol("nct07279532")
    periods = defaultdict(list)
    for period in session.scalars(select(DosingPeriod).order_by(DosingPeriod.start_date)):
        periods[period.participant_id].append(period)
    for participant in participants:
        log = periods[participant.id]
        assert log[0].start_date == participant.first_dose_date and log[0].dose_level == 0
        assert all(p.stop_date is None or p.start_date <= p.stop_date <= TODAY for p in log)
        for before, after in pairwise(log):
            assert before.stop_date is not None and before.stop_date < after.start_date
            assert after.dose_level == before.dose_level - (before.stop_reason == "reduction")
        for period in log:
            if period.adverse_event_id is not None:
                assert events[period.adverse_event_id].action_taken == ACTION_FOR_STOP[period.stop_reason]
        dosed = [Dosed(p.start_date, p.stop_date or TODAY, p.dose_level, p.missed_doses) for p in log]
        intensity = dose_intensity(protocol, participant.first_dose_date, dosed)
        assert 0 < intensity.relative_dose_intensity <= 1
    stops = {p.stop_reason for log in periods.values() for p in log}
    assert {"interruption", "reduction", "discontinued", "completed", None} <= stops


def _check_visits_and_results(session, events) -> None:
    """Visits up to the cut-off, a few missed or late; results graded; lab events seen in a result."""
    visits = session.scalars(select(Visit)).all()
    assert all(v.visit_date is None or v.visit_date <= TODAY for v in visits)
    assert any(v.status == "missed" for v in visits)
    assert any((v.note or "").startswith("late") for v in visits)
    labs = session.scalars(select(LabResult)).all()
    tests = {"alt", "ast", "bilirubin", "creatinine", "platelets", "anc", "haemoglobin", "urine_protein"}
    assert tests <= {lab.test for lab in labs}
    assert all(lab.ctcae_version == "5.0" and lab.ctcae_grade is not None for lab in labs)
    shown = {(lab.participant_id, lab.collected_on, lab.ctcae_term, lab.ctcae_grade) for lab in labs}
    graded_by_labs = {lab.ctcae_term for lab in labs}
    for event in events:
        if event.term in graded_by_labs and event.answers is None:
            assert (event.participant_id, event.onset_date, event.term, event.grade) in shown, event.term


def _check_outcomes(session, participants) -> None:
    """Recurrences on imaging; one death, one withdrawal, one loss to follow-up; some still on treatment."""
    scans = session.scalars(select(TumourAssessment)).all()
    recurrences = [s for s in scans if s.result == "recurrence"]
    assert 6 <= len(recurrences) <= 8 and all(s.recurrence_sites for s in recurrences)
    assert all(s.assessed_on <= TODAY and s.method in ("CT", "MRI") for s in scans)
    dispositions = session.scalars(select(Disposition)).all()
    study = sorted((d.status, d.cause_of_death is not None) for d in dispositions if d.phase == "study")
    assert study == [("death", True), ("lost_to_follow_up", False), ("withdrawn", False)]
    treatment = {d.status for d in dispositions if d.phase == "treatment"}
    assert {"completed", "adverse_event", "recurrence", "withdrawn"} <= treatment
    assert {p.status for p in participants} == {"enrolled", "follow_up", "off_study", "died"}


def test_a_database_that_holds_anything_is_refused(db):
    assert is_empty(db)
    factories.seed(db)
    assert not is_empty(db)
    with pytest.raises(ConflictError):
        create_demo_study(db, today=TODAY)


def test_the_same_seed_and_day_give_the_same_study(tmp_path):
    def study(name: str) -> tuple:
        database = connect(f"sqlite:///{tmp_path / name}")
        migrate.upgrade(database)
        create_demo_study(database, seed=7, today=TODAY)
        with database.session(write=False) as session:
            ids = {p.id: p.study_id for p in session.scalars(select(Participant))}
            events = session.scalars(select(AdverseEvent)).all()
            periods = session.scalars(select(DosingPeriod)).all()
            dosing = [
                (ids[p.participant_id], p.dose_level, p.start_date, p.stop_date, p.stop_reason)
                for p in periods
            ]
            found = (
                sorted(ids.values()),
                sorted((ids[e.participant_id], e.term, e.grade, e.onset_date) for e in events),
                sorted(dosing, key=str),
                sorted(session.scalars(select(Patient.full_name))),
            )
        database.dispose()
        return found

    first, second = study("a.db"), study("b.db")
    assert first == second
    assert first[0] == [f"NET-{n:03d}" for n in range(1, 36)] and first[1] and first[2]
