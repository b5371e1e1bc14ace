"""Adverse events: CTCAE suggests beside the investigator's grade; dose advice at the event's level."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from nettrial.exceptions import InputError
from nettrial.store import audit
from nettrial.store.adverse_events import assess, create_adverse_event, update_adverse_event
from nettrial.store.models import AdverseEvent, AuditEntry, DosingPeriod, Participant
from tests import factories
from tests.factories import PROTOCOL

ONSET = dt.date.today() - dt.timedelta(days=10)
NOT_SERIOUS = {
    "onset_date": ONSET,
    "serious": False,
    "relatedness": "possible",
    "action_taken": "none",
    "outcome": "not_recovered",
}


def _participant(db) -> tuple[dict[str, int], int]:
    users = factories.seed(db)
    return users, factories.enrolled(db, users["investigator"])


def _record(db, user_id: int, participant_id: int, **fields):
    with db.session() as session:
        audit.acting_as(session, user_id, "investigator")
        participant = session.get(Participant, participant_id)
        event, assessment = create_adverse_event(
            session, participant=participant, protocol=PROTOCOL, **(NOT_SERIOUS | fields)
        )
        return event, assessment


def _at_level(db, user_id: int, participant_id: int, level: int) -> None:
    with db.session() as session:
        audit.acting_as(session, user_id, "investigator")
        session.add(
            DosingPeriod(participant_id=participant_id, dose_level=level, start_date=ONSET - dt.timedelta(30))
        )


def test_grade_3_hypertension_at_the_starting_level_interrupts(db):
    users, participant = _participant(db)
    event, assessment = _record(db, users["investigator"], participant, term="Hypertension", grade=3)
    assert event.recommendation["action"] == "interrupt"
    assert event.recommendation["rule"] == "hypertension-grade-3"
    assert event.recommendation["at_dose_level"] == 0
    assert (event.soc, event.ctcae_version) == ("Vascular disorders", "5.0")
    assert assessment.suggestion is None and event.suggested_grade is None


def test_grade_3_hypertension_at_the_lowest_level_discontinues(db):
    users, participant = _participant(db)
    _at_level(db, users["investigator"], participant, -1)
    event, _ = _record(db, users["investigator"], participant, term="Hypertension", grade=3)
    assert event.recommendation["action"] == "discontinue"
    assert event.recommendation["rule"].startswith("hypertension-grade-3")
    assert event.recommendation["at_dose_level"] == -1


def test_grade_3_gastric_haemorrhage_discontinues_whatever_the_level(db):
    users, participant = _participant(db)
    event, _ = _record(db, users["investigator"], participant, term="Gastric haemorrhage", grade=3)
    assert event.term == "Gastric hemorrhage"  # the alias is stored as the CTCAE term
    assert (event.recommendation["action"], event.recommendation["rule"]) == (
        "discontinue",
        "haemorrhage-grade-3-plus",
    )


def test_a_lipase_value_without_the_pancreatitis_answer_is_flagged_for_review(db):
    users, participant = _participant(db)
    event, assessment = _record(
        db, users["investigator"], participant, term="Lipase increased", value=200, unit="U/L", uln=60
    )
    view = assessment.ctcae_view()
    assert (event.grade, event.suggested_grade) == (2, 2)  # the lowest grade the value supports
    assert view["needs_review"] and "pancreatitis_symptoms" in view["review_reasons"][0]
    assert event.recommendation["action"] == "continue"


def test_an_entered_grade_that_differs_from_the_suggestion_is_kept_beside_it(db):
    users, participant = _participant(db)
    event, assessment = _record(
        db,
        users["investigator"],
        participant,
        term="Lipase increased",
        grade=3,
        value=200,
        unit="U/L",
        uln=60,
        answers={"pancreatitis_symptoms": "yes"},
    )
    assert (event.grade, event.suggested_grade) == (3, 3)
    assert event.answers == {"pancreatitis_symptoms": True}
    event, assessment = _record(
        db, users["investigator"], participant, term="Fatigue", grade=3, answers={"relieved_by_rest": "no"}
    )
    assert (event.grade, event.suggested_grade, assessment.ctcae_view()["agrees"]) == (3, 2, False)
    assert event.recommendation["rule"] == "other-grade-3-4"  # judged on the entered grade


def test_the_grade_defaults_to_the_suggestion_and_needs_something_to_suggest_from(db):
    users, participant = _participant(db)
    event, _ = _record(
        db, users["investigator"], participant, term="Hypertension", value="172/96", unit="mmHg"
    )
    assert (event.grade, event.suggested_grade) == (3, 3)
    for fields in ({}, {"value": 40, "unit": "U/L", "uln": 60}):
        with pytest.raises(InputError) as error:
            _record(db, users["investigator"], participant, term="Lipase increased", **fields)
        assert error.value.field == "grade"


def test_a_creatinine_value_gives_the_dose_rules_its_multiple_of_uln():
    assessment = assess(PROTOCOL, dose_level=0, term="Creatinine increased", value=2.5, unit="mg/dL", uln=1.0)
    assert assessment.measures == {"x_uln": 2.5}
    assert assessment.recommendation.rule == "creatinine-2-to-3-uln"


def test_unknown_terms_and_grades_ctcae_does_not_define_are_refused(db):
    users, participant = _participant(db)
    with pytest.raises(InputError) as error:
        _record(db, users["investigator"], participant, term="Hypertenson", grade=2)
    assert error.value.field == "term" and "Hypertension" in error.value.detail
    with pytest.raises(InputError) as error:
        _record(db, users["investigator"], participant, term="Fatigue", grade=4)
    assert error.value.field == "grade" and error.value.allowed == ("1", "2", "3")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"serious": True}, "serious_criteria"),
        ({"serious_criteria": ["hospitalisation"]}, "serious_criteria"),
        ({"serious": True, "serious_criteria": ["hospitalisation", "hospitalisation"]}, "serious_criteria"),
        ({"serious": True, "serious_criteria": ["hospitalisation"], "outcome": "fatal"}, "outcome"),
        ({"serious": True, "serious_criteria": ["death"], "outcome": "fatal", "grade": 4}, "grade"),
        ({"serious": True, "serious_criteria": ["death"], "grade": 5}, "outcome"),
        ({"resolved_date": ONSET - dt.timedelta(days=1), "outcome": "recovered"}, "resolved_date"),
        ({"resolved_date": ONSET}, "resolved_date"),  # not_recovered: it has not ended
        ({"onset_date": dt.date.today() + dt.timedelta(days=5)}, "onset_date"),
        ({"relatedness": "maybe"}, "relatedness"),
    ],
)
def test_seriousness_outcome_and_dates_must_agree(db, fields, field):
    users, participant = _participant(db)
    with pytest.raises(InputError) as error:
        _record(
            db, users["investigator"], participant, **({"term": "Gastric hemorrhage", "grade": 3} | fields)
        )
    assert error.value.field == field


def test_a_fatal_serious_event_is_recorded(db):
    users, participant = _participant(db)
    event, _ = _record(
        db,
        users["investigator"],
        participant,
        term="Gastric hemorrhage",
        grade=5,
        serious=True,
        serious_criteria=["death", "hospitalisation"],
        outcome="fatal",
        resolved_date=ONSET + dt.timedelta(days=2),
    )
    assert event.recommendation["rule"] == "fatal-event"


def test_a_grade_correction_needs_a_reason_and_is_judged_at_the_events_dose_level(db):
    users, participant = _participant(db)
    event, _ = _record(db, users["investigator"], participant, term="Hypertension", grade=2)
    assert event.recommendation["action"] == "continue"
    _at_level(db, users["investigator"], participant, -1)  # dose reduced after the event
    with pytest.raises(InputError) as error, db.session() as session:
        audit.acting_as(session, users["investigator"], "investigator")
        update_adverse_event(session, event=session.get(AdverseEvent, event.id), protocol=PROTOCOL, grade=3)
    assert error.value.field == "reason"
    with db.session() as session:
        audit.acting_as(session, users["investigator"], "investigator")
        with audit.because(session, "second reading 165/102 mmHg on a second drug"):
            found, _ = update_adverse_event(
                session, event=session.get(AdverseEvent, event.id), protocol=PROTOCOL, grade=3
            )
        assert (found.grade, found.recommendation["action"]) == (3, "interrupt")  # level 0, not -1
        entries = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "adverse_event",
                AuditEntry.field == "grade",
                AuditEntry.action == "update",
            )
        ).all()
    assert [(e.old_value, e.new_value, e.reason) for e in entries] == [
        ("2", "3", "second reading 165/102 mmHg on a second drug")
    ]


def test_a_term_correction_drops_the_old_suggestion_and_nothing_to_change_is_refused(db):
    users, participant = _participant(db)
    event, _ = _record(
        db, users["investigator"], participant, term="Fatigue", answers={"relieved_by_rest": False}
    )
    assert event.suggested_grade == 2
    with db.session() as session:
        audit.acting_as(session, users["investigator"], "investigator")
        found = session.get(AdverseEvent, event.id)
        with audit.because(session, "coded to the wrong term"):
            found, _ = update_adverse_event(session, event=found, protocol=PROTOCOL, term="Anorexia")
            with pytest.raises(InputError) as error:
                update_adverse_event(session, event=found, protocol=PROTOCOL)
        assert (found.term, found.suggested_grade, found.answers) == ("Anorexia", None, None)
    assert error.value.field == "body"
