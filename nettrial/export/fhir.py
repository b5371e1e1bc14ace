"""FHIR R4B: the study as one Bundle of ResearchStudy, ResearchSubject and pseudonymised Patient resources.

What a hospital system needs to know that a patient is in NCT07279532 and where they stand in it, as at
the data cut-off. Every resource is built with the ``fhir.resources.R4B`` models (so each is validated
as it is made) and the Bundle is written from its model, deterministically: ids are UUID 5 of the study
and the study id, entries are in study-number order, and no clock is read (``Bundle.timestamp`` is the
end of the cut-off day, UTC).

The Patient resources are pseudonymised in every export (issue 8): no name, no medical record number,
the year of birth only, and the study id as the only identifier. Pseudonymised and identified bundles
are therefore the same; ``pseudonymised`` is recorded in the result for the audit trail.

Where each participant stands comes from the subject-level table of the analysis
(``analysis.subjects.subject_table``: first dose, treatment and study dispositions as at the cut-off)
and is mapped to the FHIR status by the tables below, which cite their value sets.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.researchstudy import ResearchStudy
from fhir.resources.R4B.researchsubject import ResearchSubject
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.analysis.subjects import subject_table
from nettrial.exceptions import InputError
from nettrial.export import ExportResult
from nettrial.protocol.model import Protocol
from nettrial.store.models import Disposition, Participant
from nettrial.store.models import Patient as PatientRow

FILE_NAME = "fhir-bundle.json"

# Identifier systems. ClinicalTrials.gov's is the one HL7's identifier registry lists for NCT numbers;
# the others are this study's own namespaces (a URN names them without pretending to be a web page).
CTGOV_SYSTEM = "https://clinicaltrials.gov"
ORG_STUDY_ID_SYSTEM = "urn:nettrial:org-study-id"
STUDY_ID_SYSTEM = "urn:nettrial:study-id"
# UUID 5 namespace of every resource id: the same study and participant give the same id in every export.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:nettrial:fhir")

# Where a participant stands at the cut-off, from the subject-level table (first match wins):
#   died         a study disposition of death
#   completed    a study disposition of completed
#   off_study    any other study disposition (withdrawn, lost to follow-up, other)
#   follow_up    treatment ended (completed or discontinued), study not ended
#   on_treatment a first dose taken, treatment not ended
#   enrolled     enrolled, no dose yet, nothing ended
STATES = ("enrolled", "on_treatment", "follow_up", "completed", "off_study", "died")

# FHIR R4B ResearchSubject.status (value set research-subject-status, required binding;
# http://hl7.org/fhir/R4B/valueset-research-subject-status.html). Definitions quoted from its code system:
RESEARCH_SUBJECT_STATUS: Mapping[str, str] = {
    # on-study: "A person that is enrolled or registered on a study."
    "enrolled": "on-study",
    # on-study-intervention: "The person is receiving the treatment ... that the study is evaluating."
    "on_treatment": "on-study-intervention",
    # follow-up: "no longer receiving study intervention ... but being monitored on a protocol-prescribed
    # schedule" (imaging for recurrence, protocol.md 3).
    "follow_up": "follow-up",
    # off-study: "ended their participation on a study either because their treatment/observation is
    # complete or through not responding, withdrawal, non-compliance and/or adverse event." (The code
    # "withdrawn" is for a withdrawal *before* registration, so it does not apply to a participant.)
    "completed": "off-study",
    "off_study": "off-study",
    "died": "off-study",
}

# FHIR R4B ResearchStudy.status (value set research-study-status, required binding;
# http://hl7.org/fhir/R4B/valueset-research-study-status.html), from the study at the cut-off; first
# rule that holds wins. "Full" means the protocol's target enrolment is reached.
#   completed                          full, and every participant's study has ended
#   closed-to-accrual-and-intervention full, and nobody is enrolled without a dose or on treatment
#   closed-to-accrual                  full
#   approved                           nobody enrolled before the protocol's start date
#   active                             otherwise (enrolling)
RESEARCH_STUDY_STATUS_RULES: tuple[tuple[str, str], ...] = (
    ("completed", "full and all off study"),
    ("closed-to-accrual-and-intervention", "full and none enrolled or on treatment"),
    ("closed-to-accrual", "full"),
    ("approved", "none enrolled before the start date"),
    ("active", "otherwise"),
)

# ClinicalTrials.gov phase codes (API v2 ``phases``) -> FHIR research-study-phase
# (http://terminology.hl7.org/CodeSystem/research-study-phase).
PHASE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-phase"
PHASES: Mapping[str, str] = {
    "NA": "n-a",
    "EARLY_PHASE1": "early-phase-1",
    "PHASE1": "phase-1",
    "PHASE1_PHASE2": "phase-1-phase-2",
    "PHASE2": "phase-2",
    "PHASE2_PHASE3": "phase-2-phase-3",
    "PHASE3": "phase-3",
    "PHASE4": "phase-4",
}
# ClinicalTrials.gov primary purpose -> FHIR research-study-prim-purp-type.
PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/research-study-prim-purp-type"
PURPOSES: Mapping[str, str] = {
    "TREATMENT": "treatment",
    "PREVENTION": "prevention",
    "DIAGNOSTIC": "diagnostic",
    "SUPPORTIVE_CARE": "supportive-care",
    "SCREENING": "screening",
    "HEALTH_SERVICES_RESEARCH": "health-services-research",
    "BASIC_SCIENCE": "basic-science",
    "DEVICE_FEASIBILITY": "device-feasibility",
}
_UCUM = "http://unitsofmeasure.org"
# Patient.gender (administrative-gender) from the store's sex codes.
GENDERS: Mapping[str, str] = {"female": "female", "male": "male"}
# HL7 v3 ObservationValue PSEUDED: "pseudonymized", the security label of every Patient.
PSEUDONYMISED_LABEL = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}


def participant_state(row: Mapping[str, Any]) -> str:
    """Where a participant stands at the cut-off (one of ``STATES``), from a subject-table row."""
    if row["EOSSTT"] == "COMPLETED":
        return "completed"
    if row["EOSSTT"] == "DISCONTINUED":
        return "died" if row["DCSREAS"] == "death" else "off_study"
    if row["EOTSTT"] in ("COMPLETED", "DISCONTINUED"):
        return "follow_up"
    if not _missing(row["TRTSDT"]):
        return "on_treatment"
    return "enrolled"


def study_status(states: list[str], target: int, cutoff: dt.date, start: dt.date) -> str:
    """The ResearchStudy status (``RESEARCH_STUDY_STATUS_RULES``) of participants in ``states``."""
    full = len(states) >= target
    ended = {"completed", "off_study", "died"}
    if full and all(s in ended for s in states):
        return "completed"
    if full and not any(s in ("enrolled", "on_treatment") for s in states):
        return "closed-to-accrual-and-intervention"
    if full:
        return "closed-to-accrual"
    if not states and cutoff < start:
        return "approved"
    return "active"


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def _allowed(model: type, field: str, value: str) -> str:
    """``value`` checked against the codes the model lists for ``field`` (the models do not enforce them)."""
    codes = (model.model_fields[field].json_schema_extra or {}).get("enum_values") or ()
    if value not in codes:
        raise InputError(field, f"{value!r} is not a {model.__name__}.{field} code", allowed=codes)
    return value


def _research_study(protocol: Protocol, status: str, study_ref: str, enrolled: int) -> ResearchStudy:
    identity = protocol.identity
    if identity.phase not in PHASES:
        raise InputError("phase", f"{identity.phase!r} has no FHIR research-study-phase", allowed=PHASES)
    resource: dict[str, Any] = {
        "resourceType": "ResearchStudy",
        "id": study_ref,
        "contained": [
            {"resourceType": "Organization", "id": "sponsor", "active": True, "name": identity.sponsor.name},
            {
                "resourceType": "Group",
                "id": "enrolment",
                "type": "person",
                "actual": False,
                "quantity": identity.target_enrolment,
                "name": f"{identity.nct_id} target enrolment ({enrolled} enrolled by the cut-off)",
                "characteristic": [
                    {
                        "code": {"text": "age at enrolment"},
                        "valueRange": {
                            "low": {"value": identity.minimum_age_years, "unit": "a", "system": _UCUM},
                            "high": {"value": identity.maximum_age_years, "unit": "a", "system": _UCUM},
                        },
                        "exclude": False,
                    }
                ],
            },
        ],
        "identifier": [
            {"use": "official", "system": CTGOV_SYSTEM, "value": identity.nct_id},
            {"use": "secondary", "system": ORG_STUDY_ID_SYSTEM, "value": identity.org_study_id},
        ],
        "title": identity.brief_title,
        "status": _allowed(ResearchStudy, "status", status),
        "primaryPurposeType": _coded(PURPOSES, PURPOSE_SYSTEM, identity.primary_purpose),
        "phase": _coded(PHASES, PHASE_SYSTEM, identity.phase),
        "condition": [{"text": condition} for condition in identity.conditions],
        "description": identity.official_title,
        "enrollment": [{"reference": "#enrolment"}],
        "period": {"start": identity.start_date.isoformat()},
        "sponsor": {"reference": "#sponsor", "display": identity.sponsor.name},
        "arm": [
            {"name": arm.label, "type": {"text": arm.type}, "description": arm.description}
            for arm in identity.arms
        ],
    }
    if resource["primaryPurposeType"] is None:
        del resource["primaryPurposeType"]
    return ResearchStudy.model_validate(resource)


def _coded(table: Mapping[str, str], system: str, code: str) -> dict[str, Any] | None:
    return {"coding": [{"system": system, "code": table[code]}], "text": code} if code in table else None


def _patient(ref: str, study_id: str, sex: str, born: dt.date, died: bool) -> Patient:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": ref,
        "meta": {"security": [PSEUDONYMISED_LABEL]},
        "identifier": [{"use": "usual", "system": STUDY_ID_SYSTEM, "value": study_id}],
        "gender": GENDERS.get(sex, "unknown"),
        "birthDate": f"{born.year:04d}",  # the year only: a full date of birth identifies a person
    }
    if died:
        resource["deceasedBoolean"] = True
    return Patient.model_validate(resource)


def _research_subject(
    ref: str, row: Mapping[str, Any], state: str, study: str, patient: str, arm: str, ended: dt.date | None
) -> ResearchSubject:
    period = {"start": row["ENRLDT"].isoformat()}
    if ended is not None and state in ("completed", "off_study", "died"):
        period["end"] = ended.isoformat()
    resource: dict[str, Any] = {
        "resourceType": "ResearchSubject",
        "id": ref,
        "identifier": [{"use": "usual", "system": STUDY_ID_SYSTEM, "value": row["SUBJID"]}],
        "status": _allowed(ResearchSubject, "status", RESEARCH_SUBJECT_STATUS[state]),
        "period": period,
        "study": {"reference": f"urn:uuid:{study}"},
        "individual": {"reference": f"urn:uuid:{patient}"},
        "assignedArm": arm,
    }
    if not _missing(row["TRTSDT"]):
        resource["actualArm"] = arm
    return ResearchSubject.model_validate(resource)


def _people(session: Session, cutoff: dt.date) -> tuple[dict[str, tuple[str, dt.date]], dict[str, dt.date]]:
    """By study id: (sex, date of birth), and the date the study ended for those whose study ended."""
    people = session.execute(
        select(Participant.study_id, PatientRow.sex, PatientRow.date_of_birth).join(
            PatientRow, Participant.patient_id == PatientRow.id
        )
    )
    ended = session.execute(
        select(Participant.study_id, Disposition.status_date)
        .join(Disposition, Disposition.participant_id == Participant.id)
        .where(Disposition.phase == "study", Disposition.status_date <= cutoff)
    )
    return {sid: (sex, born) for sid, sex, born in people}, dict(ended.all())


def build_bundle(session: Session, protocol: Protocol, cutoff: dt.date) -> tuple[Bundle, Counter[str]]:
    """The Bundle of the study as at ``cutoff``, and how many participants have each ResearchSubject status.

    Parameters
    ----------
    session
        A session on the study database (only read).
    protocol
        The protocol: identity, phase, arms, target enrolment, start date.
    cutoff
        The data cut-off: participants enrolled after it are left out, and their state is as at it.

    Returns
    -------
    tuple
        The validated ``fhir.resources.R4B`` Bundle (type ``collection``) and a Counter of
        ResearchSubject status codes.
    """
    table = subject_table(session, protocol, cutoff)
    rows = table.to_dict("records")
    people, ended = _people(session, cutoff)
    states = [participant_state(row) for row in rows]
    nct = protocol.identity.nct_id
    study_ref = _id(nct, "ResearchStudy")
    status = study_status(states, protocol.identity.target_enrolment, cutoff, protocol.identity.start_date)
    arm = protocol.identity.arms[0].label if len(protocol.identity.arms) == 1 else None
    resources: list[Any] = [_research_study(protocol, status, study_ref, len(rows))]
    statuses: Counter[str] = Counter()
    for row, state in zip(rows, states, strict=True):
        sex, born = people[row["SUBJID"]]
        patient_ref = _id(nct, "Patient", row["SUBJID"])
        subject_ref = _id(nct, "ResearchSubject", row["SUBJID"])
        resources.append(_patient(patient_ref, row["SUBJID"], sex, born, state == "died"))
        subject = _research_subject(
            subject_ref, row, state, study_ref, patient_ref, arm, ended.get(row["SUBJID"])
        )
        statuses[subject.status] += 1
        resources.append(subject)
    bundle = Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "id": _id(nct, "Bundle", cutoff.isoformat()),
            "type": "collection",
            # An instant needs a time: the end of the cut-off day, the last moment whose records count.
            "timestamp": f"{cutoff.isoformat()}T23:59:59Z",
            "entry": [{"fullUrl": f"urn:uuid:{r.id}", "resource": r} for r in resources],
        }
    )
    return bundle, statuses


def export(
    session: Session, protocol: Protocol, out: Path, *, cutoff: dt.date, pseudonymised: bool = False
) -> ExportResult:
    """Write ``<out>/fhir-bundle.json``: the FHIR R4B Bundle of the study as at ``cutoff``.

    Parameters
    ----------
    session
        A session on the study database (only read).
    protocol
        The protocol the study runs.
    out
        Directory to write to (created if missing).
    cutoff
        The data cut-off date.
    pseudonymised
        Recorded in the result; the Patient resources are pseudonymised either way.

    Returns
    -------
    ExportResult
        The file, the count of each resource type and of each ResearchSubject status.
    """
    bundle, statuses = build_bundle(session, protocol, cutoff)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE_NAME
    path.write_text(bundle.model_dump_json(indent=2) + "\n", encoding="utf-8")
    kinds = Counter(entry.resource.get_resource_type() for entry in bundle.entry or ())
    counts = {kind: kinds[kind] for kind in ("ResearchStudy", "ResearchSubject", "Patient")}
    counts |= {f"ResearchSubject.status {code}": n for code, n in sorted(statuses.items())}
    return ExportResult(
        format="fhir",
        files=(path,),
        counts=counts,
        cutoff=cutoff,
        pseudonymised=pseudonymised,
        notes=(
            "Patient resources are pseudonymised in every export: "
            "no name, no record number, the year of birth only",
        ),
    )
