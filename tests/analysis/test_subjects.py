"""The subject-level table: one pseudonymised row per participant, as at the data cut-off."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
from sqlalchemy import select

from nettrial.analysis._study import Dosing, Ending, Source, StudyParticipant
from nettrial.analysis.subjects import COLUMNS, as_at, staging_edition, subject_frame, subject_table
from nettrial.store import audit, treatment
from nettrial.store.models import (
    Disposition,
    EligibilityEvaluation,
    Participant,
    Patient,
)
from nettrial.store.screening import enrol, save_screening_record
from tests import factories
from tests.analysis.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL

D = dt.date.fromisoformat
CUTOFF = D("2026-12-31")
UTC = dt.UTC


def record(**pathology) -> dict:
    found = factories.eligible_record()
    found["identity"] = {"patient_id": "S-0001"}
    found["pathology"] = {**found["pathology"], **pathology}
    return found


def period(
    start: str, stop: str | None, reason: str | None = None, *, level: int = 0, missed: int = 0, row: int = 1
):
    return Dosing(row, level, D(start), D(stop) if stop else None, missed, reason)


def participant(
    *periods: Dosing,
    endings: tuple[Ending, ...] = (),
    born: str = "1960-06-15",
    enrolled: str = "2025-12-20",
    sex: str = "female",
    alive: str | None = None,
) -> StudyParticipant:
    return StudyParticipant(
        id=1,
        patient_id=1,
        study_number=1,
        study_id="NET-001",
        site_code="ZJU2",
        sex=sex,
        date_of_birth=D(born),
        enrolled_at=dt.datetime.fromisoformat(f"{enrolled}T06:00:00+00:00"),
        evaluation_id=None,
        periods=periods,
        assessments=(),
        endings=endings,
        last_alive=Source(D(alive or enrolled), "visit", 3),
    )


def row(one: StudyParticipant, cutoff: dt.date = CUTOFF, tumour: dict | None = None) -> dict:
    frame = subject_frame([one], {one.id: tumour or record()}, PROTOCOL, cutoff)
    assert len(frame) == 1
    return frame.iloc[0].to_dict()


# --- rules on plain facts -------------------------------------------------------------------------


@pytest.mark.parametrize(("last_day", "cycles"), [("2026-06-16", 5), ("2026-06-17", 6), ("2026-09-30", 6)])
def test_completed_cycles_count_whole_28_day_cycles_up_to_six(last_day, cycles):
    # First dose 2026-01-01: day 168 (the last of cycle 6) is 2026-06-17.
    found = row(participant(period("2026-01-01", last_day, "completed")))
    assert found["CYCLES"] == cycles
    assert found["COMPLFL"] == ("Y" if cycles == 6 else "N")
    assert found["TRTDURD"] == (D(last_day) - D("2026-01-01")).days + 1


def test_treatment_still_going_at_the_cutoff_has_no_last_dose():
    found = row(participant(period("2026-01-01", None)), cutoff=D("2026-03-01"))
    assert (found["TRTSDT"], found["TRTEDT"], found["EOTSTT"]) == (D("2026-01-01"), None, "ONGOING")
    assert found["TRTDURD"] == 60 and found["CYCLES"] == 2


def test_a_period_running_past_the_cutoff_is_cut_there_with_its_missed_doses_in_proportion():
    # 28 days with 4 missed doses, cut after 14: 2 missed, 12 doses of 200 mg of 168 planned.
    found = row(
        participant(period("2026-01-01", "2026-01-28", "completed", missed=4)), cutoff=D("2026-01-14")
    )
    assert found["TRTEDT"] is None and found["EOTSTT"] == "ONGOING"
    assert found["CUMDOSE"] == 200 * 12
    assert found["RDI"] == pytest.approx(2400 / (200 * 168), abs=1e-6)
    (kept,) = as_at(PROTOCOL, [period("2026-01-01", "2026-01-28", "completed", missed=4)], D("2026-01-14"))
    assert (kept.stop_date, kept.stop_reason, kept.missed_doses) == (None, None, 2)


def test_missed_doses_never_exceed_the_dosing_days_kept():
    # Level -1 doses 21 of every 28 days: 10 missed, cut after 3 days, keeps at most 3.
    (kept,) = as_at(PROTOCOL, [period("2026-01-01", None, level=-1, missed=10)], D("2026-01-03"))
    assert kept.missed_doses == 3


def test_periods_after_the_cutoff_are_not_there():
    periods = [period("2026-01-01", "2026-01-10", "interruption"), period("2026-02-01", None, row=2)]
    assert [p.row_id for p in as_at(PROTOCOL, periods, D("2026-01-31"))] == [1]


def test_treatment_ended_during_an_interruption_has_its_last_dose_where_dosing_stopped():
    ended = Ending(5, "treatment", "adverse_event", D("2026-02-01"), None)
    found = row(participant(period("2026-01-01", "2026-01-20", "interruption"), endings=(ended,)))
    assert (found["TRTEDT"], found["EOTSTT"], found["DCTREAS"]) == (
        D("2026-01-20"),
        "DISCONTINUED",
        "adverse_event",
    )


def test_a_participant_never_dosed():
    found = row(participant())
    assert (found["SAFFL"], found["ITTFL"], found["EOTSTT"], found["CYCLES"], found["COMPLFL"]) == (
        "N",
        "Y",
        "NOT TREATED",
        0,
        "N",
    )
    assert found["TRTSDT"] is None and pd.isna(found["RDI"]) and pd.isna(found["TRTDURD"])
    withdrawn = Ending(5, "treatment", "withdrawn", D("2026-01-05"), None)
    assert row(participant(endings=(withdrawn,)))["EOTSTT"] == "DISCONTINUED"


def test_dispositions_and_death_as_at_the_cutoff():
    endings = (
        Ending(5, "treatment", "death", D("2026-03-01"), "pneumonia"),
        Ending(6, "study", "death", D("2026-03-01"), "pneumonia"),
    )
    one = participant(period("2026-01-01", "2026-03-01", "discontinued"), endings=endings, alive="2026-03-01")
    found = row(one)
    assert (found["DTHFL"], found["DTHDT"], found["DTHCAUS"]) == ("Y", D("2026-03-01"), "pneumonia")
    assert (found["EOSSTT"], found["DCSREAS"], found["EOTSTT"], found["DCTREAS"]) == (
        "DISCONTINUED",
        "death",
        "DISCONTINUED",
        "death",
    )
    before = row(one, cutoff=D("2026-02-28"))
    assert (before["DTHFL"], before["DTHDT"], before["EOSSTT"], before["EOTSTT"]) == (
        None,
        None,
        "ONGOING",
        "ONGOING",
    )


@pytest.mark.parametrize(("born", "age"), [("1960-12-20", 65), ("1960-12-21", 64)])
def test_age_is_whole_years_at_enrolment(born, age):
    assert row(participant(born=born, enrolled="2025-12-20"))["AGE"] == age


def test_sex_is_coded_f_or_m():
    assert row(participant(sex="male"))["SEX"] == "M"
    assert row(participant(sex="female"))["SEX"] == "F"


def test_the_tumour_is_staged_and_graded_as_eligibility_did():
    found = row(participant())
    # Pancreas, 32 mm limited to the pancreas (T2), 3 of 15 nodes (N1), M0: AJCC V9 stage III.
    # Ki-67 8 % and 3 mitoses per 2 mm2 are both WHO 2019 G2.
    assert (found["PRIMARY_SITE"], found["STAGE"], found["GRADE"], found["KI67"], found["NODES"]) == (
        "pancreas",
        "III",
        "G2",
        8.0,
        "N1",
    )
    assert found["NODEPOS"] == 3
    explicit = row(participant(), tumour=record(grade="G3", grade_source="review", stage_group="IIIB"))
    assert (explicit["GRADE"], explicit["STAGE"]) == ("G3", "IIIB")
    unstaged = row(participant(), tumour=record(site=None, ki67_percent=None, mitoses_per_2mm2=None))
    assert (unstaged["STAGE"], unstaged["GRADE"], unstaged["PRIMARY_SITE"]) == (None, None, None)


def test_the_staging_edition_is_the_protocols_tumour_criterion():
    assert staging_edition(PROTOCOL) == "9"


def test_an_empty_study_keeps_the_columns():
    frame = subject_frame([], {}, PROTOCOL, CUTOFF)
    assert tuple(frame.columns) == COLUMNS and frame.empty


# --- the store ------------------------------------------------------------------------------------------


def test_the_record_the_enrolment_relied_on_gives_the_tumour(db):
    users = factories.seed(db)
    user = users["investigator"]
    judged = factories.enrolled(db, user, name="Judged")
    overridden = factories.patient(db, user, name="Overridden")
    with db.session() as session:
        audit.acting_as(session, user, "investigator")
        # A correction saved after enrolment is not what the participant was enrolled on.
        patient = session.get(Participant, judged).patient
        corrected = factories.eligible_record(
            pathology={**factories.eligible_record()["pathology"], "ki67_percent": 40}
        )
        save_screening_record(session, patient=patient, record=corrected, user_id=user)
        # Enrolled by an investigator's override without any evaluation: the latest record by then.
        other = session.get(Patient, overridden)
        save_screening_record(
            session,
            patient=other,
            record=factories.eligible_record(
                pathology={**factories.eligible_record()["pathology"], "ki67_percent": 25}
            ),
            user_id=user,
        )
        enrol(
            session, patient=other, protocol=PROTOCOL, user_id=user, may_override=True, override_reason="test"
        )
        treatment.add_period(
            session,
            participant=session.get(Participant, judged),
            protocol=PROTOCOL,
            dose_level=0,
            start_date=D("2026-03-02"),
        )
    today = dt.datetime.now(UTC).date()
    with db.session(write=False) as session:
        frame = subject_table(session, PROTOCOL, today).set_index("SUBJID")
    assert frame.loc["NET-001", "KI67"] == 8.0
    assert frame.loc["NET-002", "KI67"] == 25.0 and frame.loc["NET-002", "GRADE"] == "G3"
    assert (frame.loc["NET-001", "SAFFL"], frame.loc["NET-002", "SAFFL"]) == ("Y", "N")
    assert frame.loc["NET-001", "TRTSDT"] == D("2026-03-02")


# --- the demo study -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_db):
    with demo_db.session(write=False) as session:
        yield session, subject_table(session, PROTOCOL, DEMO_CUTOFF)


def test_the_demo_study_has_one_row_per_participant_in_order(demo):
    _session, frame = demo
    assert len(frame) == 35 and tuple(frame.columns) == COLUMNS
    assert list(frame["SUBJID"]) == [f"NET-{i:03d}" for i in range(1, 36)]
    assert (frame["USUBJID"] == "NCT07279532-" + frame["SUBJID"]).all()
    assert set(frame["ITTFL"]) == {"Y"}


def test_no_names_record_numbers_or_dates_of_birth(demo):
    session, frame = demo
    patients = session.scalars(select(Patient)).all()
    personal = {p.full_name for p in patients} | {p.medical_record_number for p in patients}
    births = {p.date_of_birth for p in patients}
    cells = {value for column in frame.columns for value in frame[column]}
    assert not cells & personal
    assert not cells & births and not cells & {b.isoformat() for b in births}
    assert not {"NAME", "BRTHDT", "DOB", "MRN"} & set(frame.columns)


def test_stage_and_grade_are_those_of_the_stored_eligibility_evaluation(demo):
    session, frame = demo
    evaluations = dict(
        session.execute(
            select(Participant.study_id, EligibilityEvaluation.result).join(
                EligibilityEvaluation, Participant.evaluation_id == EligibilityEvaluation.id
            )
        ).all()
    )
    checked = 0
    for _, one in frame.iterrows():
        verdict = next(v for v in evaluations[one["SUBJID"]]["verdicts"] if v["criterion"] == "I3")
        evidence = {e["field"]: e["value"] for e in verdict["evidence"]}
        assert re.search(r"stage (\S+)$", evidence["stage"]).group(1) == one["STAGE"], one["SUBJID"]
        assert evidence["grade"] == one["GRADE"], one["SUBJID"]
        checked += 1
    assert checked == 35


def test_dosing_agrees_with_the_treatment_summary_once_treatment_ended(demo):
    session, frame = demo
    ended = frame[frame["TRTEDT"].notna()]
    assert len(ended) >= 10
    for _, one in ended.iterrows():
        stored = session.scalar(select(Participant).where(Participant.study_id == one["SUBJID"]))
        summary = treatment.summary(session, participant=stored, protocol=PROTOCOL, today=DEMO_CUTOFF)
        assert (one["TRTSDT"], one["TRTEDT"]) == (summary.first_dose_date, summary.last_dose_date)
        assert one["RDI"] == summary.dose_intensity.relative_dose_intensity
        assert one["CUMDOSE"] == summary.dose_intensity.cumulative_mg


def test_dispositions_death_and_completion_in_the_demo(demo):
    session, frame = demo
    by_id = frame.set_index("SUBJID")
    completed = set(
        session.scalars(
            select(Participant.study_id)
            .join(Disposition, Disposition.participant_id == Participant.id)
            .where(Disposition.phase == "treatment", Disposition.status == "completed")
        )
    )
    assert set(by_id.index[by_id["EOTSTT"] == "COMPLETED"]) == completed
    assert (by_id.loc[sorted(completed), "COMPLFL"] == "Y").all()
    died = by_id[by_id["DTHFL"] == "Y"]
    assert list(died.index) == ["NET-003"]
    assert (died["DTHDT"].iloc[0], died["DCSREAS"].iloc[0]) == (D("2026-07-19"), "death")
    assert died["LSTALVDT"].iloc[0] == died["DTHDT"].iloc[0]
    assert (frame["LSTALVDT"] <= DEMO_CUTOFF).all() and (frame["LSTALVDT"] >= frame["TRTSDT"]).all()
    assert set(frame["SAFFL"]) == {"Y"}


def test_an_earlier_cutoff_leaves_out_what_came_after_it(demo_db):
    cutoff = D("2026-06-30")
    with demo_db.session(write=False) as session:
        frame = subject_table(session, PROTOCOL, cutoff).set_index("SUBJID")
        enrolled = session.scalars(select(Participant.enrolled_at)).all()
    assert len(frame) == sum(at.astimezone(UTC).date() <= cutoff for at in enrolled) < 35
    assert (frame["ENRLDT"] <= cutoff).all() and (frame["LSTALVDT"] <= cutoff).all()
    assert frame.loc["NET-003", "DTHFL"] is None  # died on 2026-07-19
    assert (frame.loc["NET-001", "TRTEDT"], frame.loc["NET-001", "EOTSTT"]) == (
        None,
        "ONGOING",
    )  # completed 07-12


def test_the_table_is_the_same_each_time(demo_db, demo):
    _session, frame = demo
    with demo_db.session(write=False) as session:
        assert subject_table(session, PROTOCOL, DEMO_CUTOFF).equals(frame)
