"""CONSORT flow: every split closes, the latest evaluation counts, the cut-off decides who is where."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nettrial._yaml import load_yaml
from nettrial.analysis.consort import _ruled_out_by, consort_flow, participant_flow
from nettrial.store import treatment
from nettrial.store.assessments import create_disposition
from nettrial.store.models import Disposition, EligibilityEvaluation, Participant, Patient
from nettrial.store.screening import evaluate_patient, save_screening_record
from tests import factories
from tests.analysis.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL, writing

D = dt.date.fromisoformat
DAY = dt.timedelta(days=1)
TODAY = dt.datetime.now(dt.UTC).date()
FIRST = D("2026-03-02")
DEMO_DATA = Path(__file__).resolve().parents[2] / "nettrial" / "store" / "demo_data.yaml"


def _closes(flow) -> None:
    """At every split the children add up to their parents, and nobody is in two children."""
    for parents, children in flow.splits():
        assert sum(flow.box(c).n for c in children) == sum(flow.box(p).n for p in parents), (
            parents,
            children,
        )
        members = [m for c in children for m in flow.box(c).members]
        assert len(members) == len(set(members)), children
        if parents != ("screened",):  # enrolment is where screening numbers become study ids
            assert sorted(members) == sorted(m for p in parents for m in flow.box(p).members), children
    for box in flow.boxes:
        assert box.n == len(box.members), box.id


# --- the rule for criteria in an "any" group of inclusion criteria ----------------------------------


def test_a_criterion_of_an_inclusion_group_counts_only_when_the_whole_group_failed():
    both_failed = {
        "failed": ["I3", "I4"],
        "verdicts": [{"criterion": "I3", "truth": "NOT_MET"}, {"criterion": "I4", "truth": "NOT_MET"}],
    }
    assert _ruled_out_by(PROTOCOL, both_failed) == ["I3", "I4"]
    i3_met = {
        "failed": ["I4", "E3"],
        "verdicts": [
            {"criterion": "I3", "truth": "MET"},
            {"criterion": "I4", "truth": "NOT_MET"},
            {"criterion": "E3", "truth": "MET"},
        ],
    }
    assert _ruled_out_by(PROTOCOL, i3_met) == ["E3"]


# --- a hand-built study -------------------------------------------------------------------------


def _screen(db, user_id: int, name: str, record: dict | None, *, dob: str = "1965-05-10") -> int:
    patient_id = factories.patient(db, user_id, name=name, dob=dob)
    if record is not None:
        with writing(db) as session:
            patient = session.get(Patient, patient_id)
            save_screening_record(session, patient=patient, record=record, user_id=user_id)
            evaluate_patient(session, patient=patient, protocol=PROTOCOL, user_id=user_id)
    return patient_id


def _study(db) -> dict[str, str]:
    """Eight patients: one too old, one ineligible then eligible, one without consent, one never
    evaluated; four enrolled: dosing, never dosed, discontinued and off study, completed."""
    users = factories.seed(db)
    uid = users["investigator"]
    ids = {
        "too_old": _screen(db, uid, "too_old", factories.eligible_record(), dob="1940-01-01"),
        "rescreened": _screen(
            db,
            uid,
            "rescreened",
            factories.eligible_record(
                blood_pressure=[
                    {"date": "2026-02-20", "systolic": 150, "diastolic": 95, "on_treatment": False}
                ]
            ),
        ),
        "no_consent": _screen(db, uid, "no_consent", factories.eligible_record(consent={})),
        "not_evaluated": _screen(db, uid, "not_evaluated", None),
    }
    with writing(db, reason="test: the first evaluation was made at screening") as session:
        first = session.scalar(
            select(EligibilityEvaluation).where(EligibilityEvaluation.patient_id == ids["rescreened"])
        )
        first.evaluated_at = dt.datetime(2026, 2, 20, 9, tzinfo=dt.UTC)
    with writing(db) as session:
        patient = session.get(Patient, ids["rescreened"])
        save_screening_record(session, patient=patient, record=factories.eligible_record(), user_id=uid)
        evaluate_patient(session, patient=patient, protocol=PROTOCOL, user_id=uid)
    participants = {
        name: factories.enrolled(db, uid, name=name) for name in ("dosing", "undosed", "stopped", "completed")
    }
    with writing(db, reason="test: screening and enrolment dated on the study's timeline") as session:
        for patient in session.scalars(select(Patient)):
            patient.created_at = dt.datetime(2026, 2, 16, 9, tzinfo=dt.UTC)
        for participant_id in participants.values():
            session.get(Participant, participant_id).enrolled_at = factories.ENROLLED_AT
    with writing(db) as session:
        people = {name: session.get(Participant, pid) for name, pid in participants.items()}
        common = {"protocol": PROTOCOL, "dose_level": 0, "start_date": FIRST, "today": TODAY}
        treatment.add_period(session, participant=people["dosing"], **common)
        stop = FIRST + 40 * DAY
        treatment.add_period(
            session, participant=people["stopped"], stop_date=stop, stop_reason="discontinued", **common
        )
        end = FIRST + 167 * DAY
        treatment.add_period(
            session, participant=people["completed"], stop_date=end, stop_reason="completed", **common
        )
        for name, phase, status, day, reason in (
            ("stopped", "treatment", "adverse_event", stop, "Hypertension grade 4"),
            ("stopped", "study", "withdrawn", stop + 10 * DAY, "withdrew consent"),
            ("completed", "treatment", "completed", end, None),
        ):
            create_disposition(
                session, participant=people[name], phase=phase, status=status, status_date=day, reason=reason
            )
    with db.session(write=False) as session:
        numbers = {name: session.get(Patient, pid).screening_number for name, pid in ids.items()}
        return numbers | {name: session.get(Participant, pid).study_id for name, pid in participants.items()}


def _flow(db, cutoff: dt.date):
    with db.session(write=False) as session:
        return consort_flow(session, PROTOCOL, cutoff)


def test_a_small_study_flows_box_by_box(db):
    who = _study(db)
    flow = _flow(db, TODAY)
    _closes(flow)
    members = {b.id: set(b.members) for b in flow.boxes}
    assert flow.box("screened").n == 8
    assert members["not_eligible"] == {who["too_old"]}
    assert [(c.key, c.n) for c in flow.box("not_eligible").breakdown] == [("I2", 1)]
    assert members["eligible_not_enrolled"] == {who["rescreened"]}  # the latest evaluation counts
    assert members["screening_incomplete"] == {who["no_consent"], who["not_evaluated"]}
    incomplete = {c.key: c.n for c in flow.box("screening_incomplete").breakdown}
    assert incomplete["I1"] == 1 and incomplete["not_evaluated"] == 1
    assert members["enrolled"] == {who[n] for n in ("dosing", "undosed", "stopped", "completed")}
    assert members["not_treated"] == {who["undosed"]}
    assert [(c.key, c.n) for c in flow.box("not_treated").breakdown] == [("awaiting_first_dose", 1)]
    assert members["completed_treatment"] == {who["completed"]}
    assert members["discontinued_treatment"] == {who["stopped"]}
    assert [(c.key, c.n) for c in flow.box("discontinued_treatment").breakdown] == [("adverse_event", 1)]
    assert members["on_treatment"] == {who["dosing"]}
    assert members["in_follow_up"] == {who["completed"]}
    assert members["off_study"] == {who["stopped"]}
    assert [(c.key, c.n) for c in flow.box("off_study").breakdown] == [("withdrawn", 1)]
    assert members["analysed"] == {who[n] for n in ("dosing", "stopped", "completed")}


def test_an_earlier_cutoff_counts_the_evaluation_and_the_doses_of_its_day(db):
    who = _study(db)
    before_dosing = _flow(db, FIRST - DAY)
    _closes(before_dosing)
    # On that day the rescreened patient's only evaluation said INELIGIBLE (E3).
    assert who["rescreened"] in before_dosing.box("not_eligible").members
    assert ("E3", 1) in [(c.key, c.n) for c in before_dosing.box("not_eligible").breakdown]
    assert before_dosing.box("started_treatment").n == 0 and before_dosing.box("not_treated").n == 4
    mid_course = _flow(db, FIRST + 100 * DAY)  # after the discontinuation, before the completion
    _closes(mid_course)
    assert set(mid_course.box("on_treatment").members) == {who["dosing"], who["completed"]}
    assert mid_course.box("off_study").members == (who["stopped"],)


def test_the_participant_table_behind_the_flow(db):
    who = _study(db)
    with db.session(write=False) as session:
        table = participant_flow(session, PROTOCOL, TODAY).set_index("SUBJID")
    completed, stopped = table.loc[who["completed"]], table.loc[who["stopped"]]
    assert (completed["TRTEDT"], completed["CYCLES"], completed["COMPLFL"]) == (FIRST + 167 * DAY, 6, "Y")
    assert (stopped["TRTEDT"], stopped["EOTSTT"], stopped["EOSSTT"]) == (
        FIRST + 40 * DAY,
        "adverse_event",
        "withdrawn",
    )
    assert (stopped["TRTOUT"], stopped["FUSTAT"]) == ("discontinued", "off_study")
    assert table.loc[who["undosed"], "TRTSDT"] is None and table.loc[who["undosed"], "FUSTAT"] is None


# --- the demo study ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_flow(demo_db):
    with demo_db.session(write=False) as session:
        return consort_flow(session, PROTOCOL, DEMO_CUTOFF)


def test_the_demo_flow_closes_with_the_demo_numbers(demo_flow):
    _closes(demo_flow)
    counts = {b.id: b.n for b in demo_flow.boxes}
    assert counts["screened"] == 60
    assert counts["not_eligible"] == 22
    assert counts["screening_incomplete"] == 3
    assert counts["eligible_not_enrolled"] == 0
    assert counts["enrolled"] == 35
    assert counts["started_treatment"] == counts["analysed"] == 35


def test_demo_screen_failures_by_criterion_follow_the_demo_data(demo_flow):
    # Which criterion each screen-failure kind of demo_data.yaml breaks (its comments say so).
    breaks = {
        "stage_ii": ["I3", "I4"],
        "nec": ["I3", "I4"],
        "platelets": ["I5"],
        "alt": ["I5"],
        "hypertension": ["E3"],
        "myocardial_infarction": ["E4"],
        "deep_vein_thrombosis": ["E6"],
        "recent_surgery": ["E1"],
        "over_80": ["I2"],
    }
    kinds = load_yaml(DEMO_DATA.read_text(encoding="utf-8"))["kinds"]
    expected: dict[str, int] = {}
    for kind, criteria in breaks.items():
        for criterion in criteria:
            expected[criterion] = expected.get(criterion, 0) + kinds[kind]["count"]
    box = demo_flow.box("not_eligible")
    assert {c.key: c.n for c in box.breakdown} == expected
    assert box.n == sum(kinds[k]["count"] for k in breaks)  # each patient once in the total
    incomplete = demo_flow.box("screening_incomplete")
    assert {c.key: c.n for c in incomplete.breakdown}["I1"] == kinds["no_consent"]["count"]


def test_demo_treatment_and_follow_up_agree_with_the_stored_statuses(demo_db, demo_flow):
    with demo_db.session(write=False) as session:
        statuses = dict(
            session.execute(select(Participant.status, func.count()).group_by(Participant.status)).all()
        )
        completed = session.scalar(
            select(func.count()).where(Disposition.phase == "treatment", Disposition.status == "completed")
        )
        left = dict(
            session.execute(
                select(Disposition.status, func.count())
                .where(Disposition.phase == "study")
                .group_by(Disposition.status)
            ).all()
        )
    counts = {b.id: b.n for b in demo_flow.boxes}
    assert counts["on_treatment"] == statuses["enrolled"]  # no disposition yet
    assert counts["in_follow_up"] == statuses["follow_up"]
    assert counts["off_study"] == statuses.get("off_study", 0) + statuses.get("died", 0)
    assert counts["completed_treatment"] == completed
    assert {c.key: c.n for c in demo_flow.box("off_study").breakdown} == left
    reasons = demo_flow.box("discontinued_treatment").breakdown
    assert sum(c.n for c in reasons) == counts["discontinued_treatment"]


def test_the_demo_flow_explains_itself(demo_flow):
    data = json.loads(json.dumps(demo_flow.to_dict()))
    assert data["cutoff"] == DEMO_CUTOFF.isoformat() and data["protocol_version"] == PROTOCOL.protocol_version
    assert [b["id"] for b in data["boxes"]][:5] == [
        "screened",
        "not_eligible",
        "screening_incomplete",
        "eligible_not_enrolled",
        "enrolled",
    ]
    text = demo_flow.explain()
    assert "Screened: 60" in text and "Enrolled: 35" in text
    assert "latest eligibility evaluation" in text
    assert "once under each criterion" in text


def test_completion_is_counted_alike_by_the_flow_the_exposure_table_and_the_subject_table(demo_db):
    from nettrial.analysis import safety_tables, subjects

    with demo_db.session(write=False) as session:
        flow = consort_flow(session, PROTOCOL, DEMO_CUTOFF)
        exposure = safety_tables.exposure(session, PROTOCOL, DEMO_CUTOFF)
        adsl = subjects.subject_table(session, PROTOCOL, DEMO_CUTOFF)
    summary = safety_tables.exposure_summary(exposure).set_index("item")
    completed = flow.box("completed_treatment").n
    assert completed == 11  # the demo's treatment dispositions: 11 completed
    assert (adsl["COMPLFL"] == "Y").sum() == completed
    assert (exposure["COMPLFL"] == "Y").sum() == completed
    assert summary.loc["completed", "n"] == completed
