"""The FHIR R4B export: a Bundle the R4B models accept, one ResearchSubject and one pseudonymised Patient
per participant, each participant's status by the mapping table, and the same bytes from the same data.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.researchstudy import ResearchStudy
from fhir.resources.R4B.researchsubject import ResearchSubject
from sqlalchemy import select

from nettrial.export import exporter, fhir
from nettrial.store import assessments, audit, treatment
from nettrial.store.models import Disposition, DosingPeriod, Participant, Patient
from nettrial.store.participants import get_participant
from tests import factories
from tests.export.conftest import DEMO_CUTOFF

PROTOCOL = factories.PROTOCOL


@pytest.fixture(scope="module")
def demo_export(demo_db, tmp_path_factory):
    """The demo study exported once (identified), its file's text and the parsed JSON."""
    out = tmp_path_factory.mktemp("fhir")
    with demo_db.session(write=False) as session:
        result = fhir.export(session, PROTOCOL, out, cutoff=DEMO_CUTOFF)
    text = result.files[0].read_text(encoding="utf-8")
    return result, text, json.loads(text)


def _resources(data: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in data["entry"] if e["resource"]["resourceType"] == kind]


def test_the_written_bundle_is_a_valid_r4b_collection_bundle(demo_export):
    result, text, data = demo_export
    assert result.files[0].name == "fhir-bundle.json"
    bundle = Bundle.model_validate_json(text)  # raises on anything R4B does not allow
    assert bundle.type == "collection"
    assert data["timestamp"] == f"{DEMO_CUTOFF.isoformat()}T23:59:59Z"  # the cut-off, not the clock
    # Every entry re-validates as its own resource type too.
    for entry in bundle.entry:
        type(entry.resource).model_validate(entry.resource.model_dump())


def test_one_research_subject_and_one_patient_per_participant_enrolled_by_the_cutoff(demo_db, demo_export):
    result, _, data = demo_export
    with demo_db.session(write=False) as session:
        enrolled = sorted(
            p.study_id
            for p in session.scalars(select(Participant))
            if p.enrolled_at.astimezone(dt.UTC).date() <= DEMO_CUTOFF
        )
    assert len(enrolled) == 35
    subjects = _resources(data, "ResearchSubject")
    patients = _resources(data, "Patient")
    assert sorted(s["identifier"][0]["value"] for s in subjects) == enrolled
    assert sorted(p["identifier"][0]["value"] for p in patients) == enrolled
    assert len(_resources(data, "ResearchStudy")) == 1
    assert result.counts["ResearchSubject"] == result.counts["Patient"] == 35


def test_the_research_study_carries_the_protocols_identity(demo_export):
    _, _, data = demo_export
    (study,) = _resources(data, "ResearchStudy")
    identity = PROTOCOL.identity
    assert {i["value"] for i in study["identifier"]} == {"NCT07279532", identity.org_study_id}
    assert study["title"] == identity.brief_title
    assert study["phase"]["coding"][0]["code"] == "phase-2"
    assert [a["name"] for a in study["arm"]] == ["Experimental Group"]
    assert study["condition"][0]["text"] == identity.conditions[0]
    assert study["period"]["start"] == "2026-01-01"
    # 35 of a target of 35 enrolled, some still on treatment: closed to accrual, not completed.
    assert study["status"] == "closed-to-accrual"
    contained = {c["id"]: c for c in study["contained"]}
    assert contained["sponsor"]["name"] == identity.sponsor.name
    assert contained["enrolment"]["quantity"] == identity.target_enrolment


def test_every_reference_resolves_inside_the_bundle(demo_export):
    _, _, data = demo_export
    full_urls = {e["fullUrl"] for e in data["entry"]}
    assert len(full_urls) == len(data["entry"])
    kinds = {e["fullUrl"]: e["resource"]["resourceType"] for e in data["entry"]}
    for subject in _resources(data, "ResearchSubject"):
        assert kinds[subject["study"]["reference"]] == "ResearchStudy"
        assert kinds[subject["individual"]["reference"]] == "Patient"
    patient_refs = {s["individual"]["reference"] for s in _resources(data, "ResearchSubject")}
    assert len(patient_refs) == 35  # each subject its own patient
    (study,) = _resources(data, "ResearchStudy")
    contained = {c["id"] for c in study["contained"]}
    local = [study["sponsor"]["reference"], *(r["reference"] for r in study["enrollment"])]
    assert all(ref.startswith("#") and ref[1:] in contained for ref in local)


def test_the_subject_and_patient_agree_with_the_same_study_id(demo_export):
    _, _, data = demo_export
    patients = {e["fullUrl"]: e["resource"] for e in data["entry"]}
    for subject in _resources(data, "ResearchSubject"):
        patient = patients[subject["individual"]["reference"]]
        assert patient["identifier"][0]["value"] == subject["identifier"][0]["value"]


def test_no_name_record_number_or_date_of_birth_leaves_in_the_file(demo_db, demo_export):
    _, text, data = demo_export
    with demo_db.session(write=False) as session:
        people = {
            p.study_id: (
                p.patient.full_name,
                p.patient.medical_record_number,
                p.patient.date_of_birth,
                p.patient.sex,
            )
            for p in session.scalars(select(Participant))
        }
    for name, mrn, born, _ in people.values():
        assert name not in text and mrn not in text and born.isoformat() not in text
    for patient in _resources(data, "Patient"):
        assert "name" not in patient and "telecom" not in patient and "address" not in patient
        assert [i["system"] for i in patient["identifier"]] == [fhir.STUDY_ID_SYSTEM]
        _, _, born, sex = people[patient["identifier"][0]["value"]]
        assert patient["birthDate"] == str(born.year)  # "1953": the year only
        assert patient["gender"] == sex
        assert patient["meta"]["security"][0]["code"] == "PSEUDED"


def test_each_subjects_status_follows_its_dispositions_and_dosing(demo_db, demo_export):
    """Checked against the store's rows directly, not against the subject table the export reads."""
    _, _, data = demo_export
    with demo_db.session(write=False) as session:
        ids = dict(session.execute(select(Participant.id, Participant.study_id)).all())
        ended = {
            (ids[d.participant_id], d.phase)
            for d in session.scalars(select(Disposition).where(Disposition.status_date <= DEMO_CUTOFF))
        }
        dosed = {
            ids[p.participant_id]
            for p in session.scalars(select(DosingPeriod).where(DosingPeriod.start_date <= DEMO_CUTOFF))
        }
    seen = {}
    for subject in _resources(data, "ResearchSubject"):
        study_id = subject["identifier"][0]["value"]
        if (study_id, "study") in ended:
            expected = "off-study"
        elif (study_id, "treatment") in ended:
            expected = "follow-up"
        elif study_id in dosed:
            expected = "on-study-intervention"
        else:
            expected = "on-study"
        assert subject["status"] == expected, study_id
        seen[expected] = seen.get(expected, 0) + 1
    # The demo has participants in three of the states (none enrolled without a dose at its cut-off).
    assert set(seen) == {"off-study", "follow-up", "on-study-intervention"}
    assert seen["off-study"] == 3  # lost to follow-up, death, withdrawal


def test_the_same_database_gives_the_same_bytes_and_both_forms_are_alike(demo_db, tmp_path):
    with demo_db.session(write=False) as session:
        first = exporter("fhir")(session, PROTOCOL, tmp_path / "a", cutoff=DEMO_CUTOFF)
        second = exporter("fhir")(session, PROTOCOL, tmp_path / "b", cutoff=DEMO_CUTOFF, pseudonymised=True)
        again = fhir.export(session, PROTOCOL, tmp_path / "c", cutoff=DEMO_CUTOFF)
        earlier_cutoff = dt.date(2026, 6, 30)
        earlier = fhir.export(session, PROTOCOL, tmp_path / "d", cutoff=earlier_cutoff)
        enrolled_by_then = sum(
            at.astimezone(dt.UTC).date() <= earlier_cutoff
            for at in session.scalars(select(Participant.enrolled_at))
        )
    assert first.files[0].read_bytes() == second.files[0].read_bytes() == again.files[0].read_bytes()
    assert second.pseudonymised and not first.pseudonymised
    # Participants enrolled after an earlier cut-off are left out.
    assert 0 < enrolled_by_then < 35
    assert earlier.counts["ResearchSubject"] == earlier.counts["Patient"] == enrolled_by_then


def test_every_mapped_status_is_a_code_of_the_r4b_value_sets():
    subject_codes = ResearchSubject.model_fields["status"].json_schema_extra["enum_values"]
    study_codes = ResearchStudy.model_fields["status"].json_schema_extra["enum_values"]
    assert set(fhir.RESEARCH_SUBJECT_STATUS) == set(fhir.STATES)
    assert set(fhir.RESEARCH_SUBJECT_STATUS.values()) <= set(subject_codes)
    assert {code for code, _ in fhir.RESEARCH_STUDY_STATUS_RULES} <= set(study_codes)


# --- each state, in a study built for it -----------------------------------------------------------


def _row(**values):
    row = {"EOSSTT": "ONGOING", "DCSREAS": None, "EOTSTT": "NOT TREATED", "TRTSDT": None}
    return row | values


@pytest.mark.parametrize(
    ("row", "state"),
    [
        (_row(), "enrolled"),
        (_row(TRTSDT=dt.date(2026, 3, 2), EOTSTT="ONGOING"), "on_treatment"),
        (_row(TRTSDT=dt.date(2026, 3, 2), EOTSTT="COMPLETED"), "follow_up"),
        (_row(TRTSDT=dt.date(2026, 3, 2), EOTSTT="DISCONTINUED"), "follow_up"),
        (_row(EOTSTT="DISCONTINUED"), "follow_up"),  # ended before a first dose
        (_row(TRTSDT=dt.date(2026, 3, 2), EOTSTT="COMPLETED", EOSSTT="COMPLETED"), "completed"),
        (_row(EOTSTT="COMPLETED", EOSSTT="DISCONTINUED", DCSREAS="withdrawn"), "off_study"),
        (_row(EOTSTT="DISCONTINUED", EOSSTT="DISCONTINUED", DCSREAS="death"), "died"),
        (
            _row(
                TRTSDT=dt.date(2026, 3, 2),
                EOTSTT="ONGOING",
                EOSSTT="DISCONTINUED",
                DCSREAS="lost_to_follow_up",
            ),
            "off_study",
        ),
    ],
)
def test_participant_state_from_the_subject_table(row, state):
    assert fhir.participant_state(row) == state


@pytest.mark.parametrize(
    ("states", "target", "expected"),
    [
        (["on_treatment"] * 34, 35, "active"),  # one short of the target
        (["on_treatment"] * 35, 35, "closed-to-accrual"),
        (["follow_up"] * 34 + ["enrolled"], 35, "closed-to-accrual"),  # one not yet dosed
        (["follow_up"] * 34 + ["died"], 35, "closed-to-accrual-and-intervention"),
        (["completed"] * 34 + ["follow_up"], 35, "closed-to-accrual-and-intervention"),
        (["completed"] * 33 + ["off_study", "died"], 35, "completed"),
        (["completed"] * 34, 35, "active"),  # everyone off study, but the target not reached
    ],
)
def test_study_status_at_the_target_enrolment(states, target, expected):
    assert fhir.study_status(states, target, dt.date(2027, 1, 1), dt.date(2026, 1, 1)) == expected


def test_a_study_not_started_is_approved_and_one_enrolling_is_active():
    start = dt.date(2026, 1, 1)
    assert fhir.study_status([], 35, start - dt.timedelta(days=1), start) == "approved"
    assert fhir.study_status([], 35, start, start) == "active"


@pytest.fixture
def six_states(db):
    """Six participants (enrolled on ENROLLED_AT), one in each state; returns (db, state by study id)."""
    users = factories.seed(db)
    user = users["coordinator"]
    today = dt.datetime.now(dt.UTC).date()
    for number in range(6):
        factories.enrolled(
            db, user, name=f"Person Number{number}", dob=f"19{50 + number}-0{number + 1}-1{number}"
        )
    with db.session() as session:
        audit.acting_as(session, user, "coordinator")

        def participant(number):
            return get_participant(session, f"NET-00{number}")

        def dose(number):
            treatment.add_period(
                session, participant=participant(number), protocol=PROTOCOL, dose_level=0, start_date=today
            )

        def ended(number, phase, status, **extra):
            reason = None if status == "completed" else "as it happened"
            assessments.create_disposition(
                session, participant=participant(number), phase=phase, status=status, status_date=today,
                reason=reason, **extra,
            )  # fmt: skip

        # NET-001 enrolled, no dose.
        dose(2)  # on treatment
        dose(3)
        ended(3, "treatment", "completed")  # follow-up
        dose(4)
        ended(4, "treatment", "completed")
        ended(4, "study", "completed")
        ended(5, "treatment", "withdrawn")
        ended(5, "study", "withdrawn")
        dose(6)
        ended(6, "treatment", "death", cause_of_death="pneumonia")
        ended(6, "study", "death", cause_of_death="pneumonia")
    expected = {
        "NET-001": "on-study",
        "NET-002": "on-study-intervention",
        "NET-003": "follow-up",
        "NET-004": "off-study",
        "NET-005": "off-study",
        "NET-006": "off-study",
    }
    return db, expected, today


def test_each_participant_state_gets_its_research_subject_status(six_states, tmp_path):
    db, expected, today = six_states
    with db.session(write=False) as session:
        result = fhir.export(session, PROTOCOL, tmp_path, cutoff=today)
        people = {
            p.study_id: session.get(Patient, p.patient_id) for p in session.scalars(select(Participant))
        }
    text = result.files[0].read_text(encoding="utf-8")
    data = json.loads(text)
    Bundle.model_validate_json(text)
    subjects = {s["identifier"][0]["value"]: s for s in _resources(data, "ResearchSubject")}
    assert {k: s["status"] for k, s in subjects.items()} == expected
    assert "end" not in subjects["NET-003"]["period"]  # follow-up: still on study
    enrolled_on = factories.ENROLLED_AT.date().isoformat()
    assert subjects["NET-004"]["period"] == {"start": enrolled_on, "end": today.isoformat()}
    assert "actualArm" not in subjects["NET-001"] and "actualArm" in subjects["NET-002"]
    by_url = {e["fullUrl"]: e["resource"] for e in data["entry"]}
    deceased = {
        by_url[s["individual"]["reference"]]["identifier"][0]["value"]
        for s in subjects.values()
        if by_url[s["individual"]["reference"]].get("deceasedBoolean")
    }
    assert deceased == {"NET-006"}
    for patient in people.values():
        assert patient.full_name not in text and patient.date_of_birth.isoformat() not in text
        assert patient.medical_record_number not in text
    (study,) = _resources(data, "ResearchStudy")
    assert study["status"] == "active"  # 6 of 35
    assert result.counts["ResearchSubject.status off-study"] == 3
    # A cut-off the day before the enrolments: nobody was enrolled yet.
    day_before = factories.ENROLLED_AT.date() - dt.timedelta(days=1)
    with db.session(write=False) as session:
        before = fhir.export(session, PROTOCOL, tmp_path / "before", cutoff=day_before)
    assert before.counts["ResearchSubject"] == before.counts["Patient"] == 0
