"""The ODM metadata nettrial writes and reads back: namespaces, the forms, their items and code lists.

Source: CDISC Operational Data Model 1.3.2. Shared by the export (``nettrial.export.odm``, which
writes these definitions into the ``MetaDataVersion``) and the import (``nettrial.export.odm_import``,
which accepts nothing else): one ``FormSpec`` per record kind (``FORMS``, one per table), item OIDs
``IT.<form>.<COLUMN>``, ODM data types from the columns' types, and ``CodeList``s from the store's
vocabularies (``CODELISTS``). Values ODM has no element for are attributes in the ``nettrial``
extension namespace ``NT``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from sqlalchemy import JSON, Boolean, Column, Date, Float, Integer

from nettrial.eligibility.verdicts import Decision
from nettrial.store import adverse_events, assessments, queries, screening, treatment, visits
from nettrial.store.models import (
    AdverseEvent,
    Base,
    Consent,
    DataQuery,
    Disposition,
    DosingPeriod,
    EligibilityEvaluation,
    LabResult,
    Participant,
    Patient,
    ScreeningRecordVersion,
    TumourAssessment,
    UTCDateTime,
    Visit,
    VitalSigns,
)

NS = "http://www.cdisc.org/ns/odm/v1.3"
NT = "urn:nettrial:odm:1"  # the nettrial vendor extension
ODM_VERSION = "1.3.2"
LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ET.register_namespace("", NS)
ET.register_namespace("nt", NT)


def tag(name: str) -> str:
    return f"{{{NS}}}{name}"


def ext(name: str) -> str:
    return f"{{{NT}}}{name}"


@dataclass(frozen=True)
class FormSpec:
    """One record kind: a table, the column naming its subject, and the event it belongs in."""

    oid: str
    name: str
    model: type[Base]
    owner: str  # "id" (the patient itself), "patient_id", "participant_id", or "" (a data query)
    placement: str  # "SCREENING", "LOGS", or "VISIT" (the event of its visit_code)

    @property
    def table(self) -> str:
        return self.model.__tablename__

    def columns(self) -> list[Column]:
        """The columns written as items (not the id, the subject link or the visit code)."""
        skipped = {"id", self.owner, "visit_code" if self.placement == "VISIT" else ""}
        if self.table == "patient":
            skipped |= {"screening_number", "site_id"}  # the SubjectKey and the SiteRef
        return [c for c in self.model.__table__.columns if c.name not in skipped]


FORMS = (
    FormSpec("PATIENT", "Patient", Patient, "id", "SCREENING"),
    FormSpec(
        "SCREENING_RECORD", "Screening record version", ScreeningRecordVersion, "patient_id", "SCREENING"
    ),
    FormSpec("ELIGIBILITY", "Eligibility evaluation", EligibilityEvaluation, "patient_id", "SCREENING"),
    FormSpec("CONSENT", "Informed consent", Consent, "patient_id", "SCREENING"),
    FormSpec("ENROLMENT", "Enrolment", Participant, "patient_id", "SCREENING"),
    FormSpec("VISIT", "Visit", Visit, "participant_id", "VISIT"),
    FormSpec("LAB", "Lab result", LabResult, "participant_id", "VISIT"),
    FormSpec("VITALS", "Vital signs", VitalSigns, "participant_id", "VISIT"),
    FormSpec("TUMOUR", "Tumour assessment", TumourAssessment, "participant_id", "VISIT"),
    FormSpec("DOSING", "Dosing period", DosingPeriod, "participant_id", "LOGS"),
    FormSpec("AE", "Adverse event", AdverseEvent, "participant_id", "LOGS"),
    FormSpec("DISPOSITION", "Disposition", Disposition, "participant_id", "LOGS"),
    FormSpec("QUERY", "Data query", DataQuery, "", "LOGS"),
)
FORM_BY_OID = {f.oid: f for f in FORMS}

# Columns that hold a user: written as the user's login name.
USER_COLUMNS = frozenset(
    {"saved_by", "evaluated_by", "enrolled_by", "reviewed_by", "opened_by", "answered_by", "closed_by"}
)
IDENTIFYING = frozenset({("patient", "full_name"), ("patient", "medical_record_number")})
YEAR_ONLY = frozenset({("patient", "date_of_birth")})

_GRADES = ("1", "2", "3", "4", "5")
CODELISTS: dict[str, tuple[str, ...]] = {
    "SEX": screening.SEXES,
    "DECISION": tuple(d.value for d in Decision),
    "VISIT_STATUS": visits.VISIT_STATUSES,
    "STOP_REASON": treatment.STOP_REASONS,
    "CTCAE_GRADE": _GRADES,
    "LAB_GRADE": ("0", *_GRADES),  # 0: within normal limits
    "RELATEDNESS": adverse_events.RELATEDNESS,
    "ACTION_TAKEN": adverse_events.ACTIONS_TAKEN,
    "OUTCOME": adverse_events.OUTCOMES,
    "METHOD": assessments.METHODS,
    "ASSESSMENT_RESULT": assessments.RESULTS,
    "PHASE": assessments.PHASES,
    "DISPOSITION_STATUS": tuple(
        dict.fromkeys(s for p in assessments.PHASES for s in assessments.DISPOSITION_STATUSES[p])
    ),
    "QUERY_ENTITY": queries.QUERYABLE,
    "QUERY_STATUS": queries.STATUSES,
}
INTEGER_CODELISTS = frozenset({"CTCAE_GRADE", "LAB_GRADE"})
CODELIST_OF = {
    ("patient", "sex"): "SEX",
    ("eligibility_evaluation", "decision"): "DECISION",
    ("visit", "status"): "VISIT_STATUS",
    ("dosing_period", "stop_reason"): "STOP_REASON",
    ("lab_result", "ctcae_grade"): "LAB_GRADE",
    ("adverse_event", "grade"): "CTCAE_GRADE",
    ("adverse_event", "relatedness"): "RELATEDNESS",
    ("adverse_event", "action_taken"): "ACTION_TAKEN",
    ("adverse_event", "outcome"): "OUTCOME",
    ("tumour_assessment", "method"): "METHOD",
    ("tumour_assessment", "result"): "ASSESSMENT_RESULT",
    ("disposition", "phase"): "PHASE",
    ("disposition", "status"): "DISPOSITION_STATUS",
    ("data_query", "entity"): "QUERY_ENTITY",
    ("data_query", "status"): "QUERY_STATUS",
}
# JSON lists whose every element comes from a vocabulary (checked on import).
LIST_VOCABULARIES = {
    ("adverse_event", "serious_criteria"): adverse_events.SERIOUS_CRITERIA,
    ("tumour_assessment", "recurrence_sites"): assessments.RECURRENCE_SITES,
}


def item_oid(form: FormSpec, column: Column) -> str:
    return f"IT.{form.oid}.{column.name.upper()}"


def data_type(form: FormSpec, column: Column) -> str:
    """The ODM DataType of a column (JSON documents and user references are text)."""
    if (form.table, column.name) in YEAR_ONLY:
        return "partialDate"  # a full date, or the year alone when pseudonymised
    if column.name in USER_COLUMNS or isinstance(column.type, JSON):
        return "text"
    for kind, name in ((Boolean, "boolean"), (UTCDateTime, "datetime"), (Date, "date"), (Float, "float")):
        if isinstance(column.type, kind):
            return name
    return "integer" if isinstance(column.type, Integer) else "text"


def item_def(form: FormSpec, column: Column) -> ET.Element:
    """The ``ItemDef`` of a column: its OID, name, type and length, what a text item holds, its code list."""
    attributes = {
        "OID": item_oid(form, column),
        "Name": f"{form.table}.{column.name}",
        "DataType": data_type(form, column),
    }
    length = getattr(column.type, "length", None)
    if attributes["DataType"] == "text" and length:
        attributes["Length"] = str(length)
    item = ET.Element(tag("ItemDef"), attributes)
    if isinstance(column.type, JSON) or column.name in USER_COLUMNS:
        what = "login name of a user in AdminData" if column.name in USER_COLUMNS else "canonical JSON"
        if (form.table, column.name) in LIST_VOCABULARIES:
            what += " list of: " + ", ".join(LIST_VOCABULARIES[(form.table, column.name)])
        description = ET.SubElement(item, tag("Description"))
        ET.SubElement(description, tag("TranslatedText"), {LANG: "en"}).text = what
    if (form.table, column.name) in CODELIST_OF:
        ET.SubElement(item, tag("CodeListRef"), CodeListOID=f"CL.{CODELIST_OF[(form.table, column.name)]}")
    return item
