"""CDISC ODM 1.3.2: the document's structure, pseudonymisation, and the round trip through import."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nettrial.exceptions import AuthenticationError, ConflictError, InputError
from nettrial.export import exporter
from nettrial.export.odm import export
from nettrial.export.odm_import import import_odm
from nettrial.export.odm_metadata import NS
from nettrial.store import audit, migrate, queries
from nettrial.store.db import Database, connect
from nettrial.store.models import AuditEntry, Base, Participant, Patient, User
from nettrial.store.users import authenticate
from tests.export.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL, enrolled, seed

Q = f"{{{NS}}}"  # an ODM tag is Q + name
# Compared field by field after a round trip; accounts lose only what ODM cannot carry.
ACCOUNT_STATE = {"password_hash", "active", "failed_logins", "last_failed_login"}
NOT_CARRIED = {"audit_log", "api_token", "alembic_version"}


def _export(db: Database, out: Path, **kwargs) -> Path:
    with db.session(write=False) as session:
        result = export(session, PROTOCOL, out, cutoff=DEMO_CUTOFF, **kwargs)
    return result.files[0]


def _counts(db: Database) -> dict[str, int]:
    with db.session(write=False) as session:
        return {
            t.name: session.execute(select(func.count()).select_from(t)).scalar()
            for t in Base.metadata.sorted_tables
        }


def _rows(db: Database, table_name: str) -> list[dict]:
    table = Base.metadata.tables[table_name]
    with db.session(write=False) as session:
        found = session.execute(select(table).order_by(table.c.id)).mappings()
        return [{k: v for k, v in row.items() if k not in ACCOUNT_STATE} for row in found]


def _fresh(tmp_path: Path, name: str) -> Database:
    database = connect(f"sqlite:///{tmp_path / name}")
    migrate.upgrade(database)
    return database


@pytest.fixture(scope="module")
def demo_odm(demo_db, tmp_path_factory) -> Path:
    return _export(demo_db, tmp_path_factory.mktemp("odm"))


@pytest.fixture(scope="module")
def demo_tree(demo_odm) -> ET.Element:
    return ET.parse(demo_odm).getroot()


# --- structure -----------------------------------------------------------------------------------


def test_root_is_an_odm_132_snapshot_dated_by_the_cutoff(demo_tree):
    assert demo_tree.tag == f"{Q}ODM"
    assert demo_tree.get("ODMVersion") == "1.3.2"
    assert demo_tree.get("FileType") == "Snapshot"
    assert demo_tree.get("FileOID")
    assert demo_tree.get("CreationDateTime") == f"{DEMO_CUTOFF.isoformat()}T00:00:00Z"
    assert [child.tag.removeprefix(Q) for child in demo_tree] == ["Study", "AdminData", "ClinicalData"]
    assert len(demo_tree.findall(f"{Q}Study/{Q}MetaDataVersion")) == 1


def test_every_reference_in_the_metadata_is_defined(demo_tree):
    mdv = demo_tree.find(f"{Q}Study/{Q}MetaDataVersion")
    defined = {kind: {e.get("OID") for e in mdv.iter(f"{Q}{kind}")} for kind in
               ("StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList")}  # fmt: skip
    references = {
        "StudyEventDef": ("StudyEventRef", "StudyEventOID"),
        "FormDef": ("FormRef", "FormOID"),
        "ItemGroupDef": ("ItemGroupRef", "ItemGroupOID"),
        "ItemDef": ("ItemRef", "ItemOID"),
        "CodeList": ("CodeListRef", "CodeListOID"),
    }
    for kind, (ref, attribute) in references.items():
        used = {e.get(attribute) for e in mdv.iter(f"{Q}{ref}")}
        assert used, ref
        assert used <= defined[kind], (kind, used - defined[kind])
    # The schedule's visits are events, beside screening, unscheduled visits and the logs.
    events = {e.get("Name") for e in mdv.iter(f"{Q}StudyEventDef")}
    assert {v.id for v in PROTOCOL.schedule.visits} | {"SCREENING", "EOT", "UNSCHEDULED", "LOGS"} <= events
    # Every record kind of the brief has a form.
    forms = {e.get("OID") for e in mdv.iter(f"{Q}FormDef")}
    for kind in ("SCREENING_RECORD", "ELIGIBILITY", "CONSENT", "VISIT", "DOSING", "LAB", "VITALS", "AE",
                 "TUMOUR", "DISPOSITION", "QUERY"):  # fmt: skip
        assert f"F.{kind}" in forms


def test_code_lists_hold_the_store_vocabularies(demo_tree):
    lists = {
        c.get("OID"): [i.get("CodedValue") for i in c.findall(f"{Q}CodeListItem")]
        for c in demo_tree.iter(f"{Q}CodeList")
    }
    assert lists["CL.CTCAE_GRADE"] == ["1", "2", "3", "4", "5"]
    assert lists["CL.RELATEDNESS"] == ["not_related", "unlikely", "possible", "probable", "definite"]
    assert set(lists["CL.METHOD"]) == {"CT", "MRI", "PET-CT"}
    assert "death" in lists["CL.DISPOSITION_STATUS"] and "adverse_event" in lists["CL.DISPOSITION_STATUS"]


def _check_type(data_type: str, value: str) -> None:
    if data_type == "integer":
        int(value)
    elif data_type == "float":
        float(value)
    elif data_type == "boolean":
        assert value in ("true", "false")
    elif data_type == "date":
        dt.date.fromisoformat(value)
    elif data_type == "datetime":
        assert dt.datetime.fromisoformat(value).tzinfo is not None
    elif data_type == "partialDate":
        assert re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", value)


def test_every_item_value_is_defined_typed_and_in_its_code_list(demo_tree):
    mdv = demo_tree.find(f"{Q}Study/{Q}MetaDataVersion")
    items = {e.get("OID"): e for e in mdv.iter(f"{Q}ItemDef")}
    groups = {
        g.get("OID"): {r.get("ItemOID") for r in g.findall(f"{Q}ItemRef")}
        for g in mdv.iter(f"{Q}ItemGroupDef")
    }
    lists = {
        c.get("OID"): {i.get("CodedValue") for i in c.iter(f"{Q}CodeListItem")}
        for c in mdv.iter(f"{Q}CodeList")
    }
    users = {u.get("OID") for u in demo_tree.iter(f"{Q}User")}
    locations = {loc.get("OID") for loc in demo_tree.iter(f"{Q}Location")}
    checked = coded = 0
    for group in demo_tree.iter(f"{Q}ItemGroupData"):
        for item in group.findall(f"{Q}ItemData"):
            oid, value = item.get("ItemOID"), item.get("Value")
            assert oid in groups[group.get("ItemGroupOID")], oid
            _check_type(items[oid].get("DataType"), value)
            codelist = items[oid].find(f"{Q}CodeListRef")
            if codelist is not None:
                assert value in lists[codelist.get("CodeListOID")], (oid, value)
                coded += 1
            record = item.find(f"{Q}AuditRecord")
            if record is not None:
                assert record.find(f"{Q}UserRef").get("UserOID") in users
                assert record.find(f"{Q}LocationRef").get("LocationOID") in locations
            checked += 1
    assert checked > 20_000 and coded > 1_000


def test_clinical_data_counts_equal_the_database(demo_db, demo_tree):
    counts = _counts(demo_db)
    subjects = demo_tree.findall(f"{Q}ClinicalData/{Q}SubjectData")
    assert len(subjects) == counts["patient"]  # screened patients too, not only the enrolled
    forms: dict[str, int] = {}
    for form in demo_tree.iter(f"{Q}FormData"):
        forms[form.get("FormOID")] = forms.get(form.get("FormOID"), 0) + 1
    tables = {
        "F.PATIENT": "patient",
        "F.SCREENING_RECORD": "screening_record",
        "F.CONSENT": "consent",
        "F.ENROLMENT": "participant",
        "F.VISIT": "visit",
        "F.LAB": "lab_result",
        "F.VITALS": "vital_signs",
        "F.TUMOUR": "tumour_assessment",
        "F.DOSING": "dosing_period",
        "F.AE": "adverse_event",
        "F.DISPOSITION": "disposition",
    }
    for form, table in tables.items():
        assert forms.get(form, 0) == counts[table], form
    with demo_db.session(write=False) as session:
        screened_then_enrolled = set(
            session.scalars(
                select(Patient.screening_number).join(Participant, Participant.patient_id == Patient.id)
            )
        )
    enrolled_keys = {
        s.get("SubjectKey") for s in subjects if s.find(f".//{Q}FormData[@FormOID='F.ENROLMENT']") is not None
    }
    assert enrolled_keys == screened_then_enrolled


def test_audit_records_are_each_items_latest_change(demo_db, demo_tree):
    with demo_db.session(write=False) as session:
        entries = session.execute(
            select(AuditEntry.entity_id, AuditEntry.username, AuditEntry.at, AuditEntry.reason)
            .where(AuditEntry.entity == "patient", AuditEntry.field == "status", AuditEntry.action != "event")
            .order_by(AuditEntry.id)
        ).all()
        keys = dict(session.execute(select(Patient.id, Patient.screening_number)).all())
    latest = {int(e.entity_id): e for e in entries}
    assert any(e.reason for e in latest.values())  # some statuses were changed, with a reason
    for subject in demo_tree.iter(f"{Q}SubjectData"):
        form = subject.find(f".//{Q}FormData[@FormOID='F.PATIENT']")
        entry = latest[int(form.get("FormRepeatKey"))]
        assert keys[int(form.get("FormRepeatKey"))] == subject.get("SubjectKey")
        record = form.find(f".//{Q}ItemData[@ItemOID='IT.PATIENT.STATUS']/{Q}AuditRecord")
        assert record.find(f"{Q}UserRef").get("UserOID") == f"USR.{entry.username}"
        assert dt.datetime.fromisoformat(record.findtext(f"{Q}DateTimeStamp")) == entry.at
        assert record.findtext(f"{Q}ReasonForChange") == entry.reason


def test_export_is_deterministic(demo_db, demo_odm, tmp_path):
    again = _export(demo_db, tmp_path)
    assert again.read_bytes() == demo_odm.read_bytes()


def test_the_format_is_registered(demo_db, tmp_path):
    with demo_db.session(write=False) as session:
        result = exporter("odm")(session, PROTOCOL, tmp_path, cutoff=DEMO_CUTOFF)
    assert result.format == "odm" and result.files == (tmp_path / "odm.xml",)
    assert result.counts["subjects"] == _counts(demo_db)["patient"]
    assert "odm export" in result.explain() and result.to_dict()["pseudonymised"] is False


# --- pseudonymisation ----------------------------------------------------------------------------


def test_pseudonymised_export_has_no_names_record_numbers_or_birth_dates(demo_db, tmp_path):
    path = _export(demo_db, tmp_path, pseudonymised=True)
    text = path.read_text(encoding="utf-8")
    with demo_db.session(write=False) as session:
        patients = session.execute(
            select(Patient.full_name, Patient.medical_record_number, Patient.date_of_birth)
        ).all()
        staff = session.scalars(select(User.full_name)).all()
    for name, number, born in patients:
        assert name not in text and f'"{number}"' not in text and born.isoformat() not in text
    for name in staff:
        assert name not in text
    root = ET.fromstring(text)
    assert not list(root.iter(f"{Q}FullName"))
    years = [
        i.get("Value") for i in root.iter(f"{Q}ItemData") if i.get("ItemOID") == "IT.PATIENT.DATE_OF_BIRTH"
    ]
    assert sorted(years) == sorted(str(born.year) for _n, _m, born in patients)
    # The clinical data are still there.
    assert len(root.findall(f".//{Q}FormData[@FormOID='F.AE']")) == _counts(demo_db)["adverse_event"]


def test_a_pseudonymised_export_cannot_be_imported(demo_db, tmp_path):
    path = _export(demo_db, tmp_path, pseudonymised=True)
    target = _fresh(tmp_path, "target.db")
    with pytest.raises(InputError, match="pseudonymised"):
        import_odm(target, path)
    assert not any(_counts(target).values())


# --- round trip ----------------------------------------------------------------------------------


def test_round_trip_of_the_demo_study_gives_the_same_document_and_data(demo_db, demo_odm, db, tmp_path):
    result = import_odm(db, demo_odm)
    again = _export(db, tmp_path)
    assert again.read_bytes() == demo_odm.read_bytes()
    before, after = _counts(demo_db), _counts(db)
    assert {t: n for t, n in after.items() if t not in NOT_CARRIED} == {
        t: n for t, n in before.items() if t not in NOT_CARRIED
    }
    assert result.counts["adverse_event"] == before["adverse_event"]
    for table in Base.metadata.sorted_tables:
        if table.name not in NOT_CARRIED:
            assert _rows(db, table.name) == _rows(demo_db, table.name), table.name
    with db.session(write=False) as session:
        assert audit.verify_chain(session).ok
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert (last.action, last.reason) == ("event", "imported from ODM file odm.xml")
        assert not any(session.scalars(select(User.active)))


def test_imported_users_cannot_sign_in(demo_odm, tmp_path):
    target = _fresh(tmp_path, "target.db")
    import_odm(target, demo_odm)
    with target.session() as session, pytest.raises(AuthenticationError):
        audit.acting_as(session, None, "test")
        authenticate(session, username="coordinator", password="anything-at-all")


def test_round_trip_keeps_queries_and_reasons_for_change(db, tmp_path):
    users = seed(db)
    participant = enrolled(db, users["investigator"])
    with db.session() as session:
        audit.acting_as(session, users["monitor"], "monitor")
        query = queries.open_query(
            session, entity="participant", entity_id=participant, field="first_dose_date",
            text="Source says 3 days later?", user_id=users["monitor"],
        )  # fmt: skip
        queries.answer_query(session, query=query, answer="Checked: correct.", user_id=users["coordinator"])
        patient = session.get(Patient, 1)
        with audit.because(session, "typo in the medical record number"):
            patient.medical_record_number = "MRN-fixed"
    first = _export(db, tmp_path / "first")
    target = _fresh(tmp_path, "target.db")
    import_odm(target, first)
    assert _export(target, tmp_path / "second").read_bytes() == first.read_bytes()
    assert _rows(target, "data_query") == _rows(db, "data_query")
    record = ET.parse(first).getroot().find(f".//{Q}ItemData[@ItemOID='IT.PATIENT.MEDICAL_RECORD_NUMBER']")
    assert record.get("Value") == "MRN-fixed"
    assert record.findtext(f"{Q}AuditRecord/{Q}ReasonForChange") == "typo in the medical record number"


# --- refusals ------------------------------------------------------------------------------------


def test_import_refuses_a_database_that_is_not_empty(demo_odm, tmp_path):
    target = _fresh(tmp_path, "target.db")
    seed(target)
    before = _counts(target)
    with pytest.raises(ConflictError, match="empty database"):
        import_odm(target, demo_odm)
    assert _counts(target) == before


def _first(pattern: str, replacement: str, text: str) -> str:
    changed, n = re.subn(pattern, replacement, text, count=1)
    assert n == 1, pattern
    return changed


TAMPERING = {
    # value outside its code list
    "relatedness": (r'(ItemOID="IT.AE.RELATEDNESS" Value=")[^"]*"', r'\1maybe"', "IT.AE.RELATEDNESS"),
    # CTCAE grades of an adverse event run 1-5: 0 is only a lab's "within normal limits"
    "ae grade 0": (r'(ItemOID="IT.AE.GRADE" Value=")[^"]*"', r'\g<1>0"', "IT.AE.GRADE"),
    "ae grade 6": (r'(ItemOID="IT.AE.GRADE" Value=")[^"]*"', r'\g<1>6"', "IT.AE.GRADE"),
    "bad date": (r'(ItemOID="IT.AE.ONSET_DATE" Value=")[^"]*"', r'\g<1>2026-02-30"', "IT.AE.ONSET_DATE"),
    "unknown item": (
        r'<ItemData ItemOID="IT.AE.TERM"',
        '<ItemData ItemOID="IT.AE.VERBATIM"',
        "IT.AE.VERBATIM",
    ),
    "recurrence site": (r"&quot;liver&quot;", "&quot;lung&quot;", "IT.TUMOUR.RECURRENCE_SITES"),
    "wrong namespace": (r'xmlns="http://www.cdisc.org/ns/odm/v1.3"', 'xmlns="http://example.org/odm"', "ODM"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_import_refuses_a_tampered_file_and_writes_nothing(name, demo_odm, tmp_path):
    pattern, replacement, named = TAMPERING[name]
    tampered = tmp_path / "tampered.xml"
    tampered.write_text(_first(pattern, replacement, demo_odm.read_text(encoding="utf-8")), encoding="utf-8")
    target = _fresh(tmp_path, "target.db")
    with pytest.raises(InputError) as raised:
        import_odm(target, tampered)
    assert named in raised.value.field
    assert not any(_counts(target).values())


def test_a_tampered_file_writes_nothing_on_either_database(demo_odm, db, tmp_path):
    pattern, replacement, _named = TAMPERING["relatedness"]
    tampered = tmp_path / "tampered.xml"
    tampered.write_text(_first(pattern, replacement, demo_odm.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(InputError, match=r"CL\.RELATEDNESS"):
        import_odm(db, tampered)
    assert not any(_counts(db).values())
