"""The screening record: what is known about a patient at screening (schema version 1.0).

A documented, versioned pydantic model; ``nettrial schema screening-record`` prints its JSON Schema.
``None`` always means *not recorded*: the eligibility engine turns it into UNKNOWN, never into a
default. Units are explicit (labs carry value, unit and reference range; weight carries its unit),
and implausible values are refused on load with the path of the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nettrial.units import lab_tests, to_canonical

SCHEMA_VERSION = "1.0"

HistoryKind = Literal[
    "myocardial_infarction",
    "unstable_angina",
    "heart_failure",
    "arrhythmia",
    "arterial_thrombosis",
    "venous_thrombosis",
    "transient_ischaemic_attack",
    "cerebral_haemorrhage",
    "cerebral_infarction",
    "deep_vein_thrombosis",
    "pulmonary_embolism",
    "superficial_vein_thrombosis",
    "bleeding",
    "bleeding_tendency",
    "interstitial_lung_disease",
    "other_cancer",
    "major_surgery",
    "open_biopsy",
    "significant_trauma",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weight(_Model):
    """Actual body weight, recorded with the creatinine result it is used with."""

    value: float = Field(gt=0, description="body weight in `unit`")
    unit: Literal["kg", "lb"] = "kg"
    date: dt.date | None = None

    @property
    def kg(self) -> float:
        return self.value if self.unit == "kg" else round(self.value * 0.45359237, 6)

    @model_validator(mode="after")
    def _plausible(self) -> Weight:
        if not 20 <= self.kg <= 350:
            raise ValueError(f"weight {self.value} {self.unit} is not plausible for an adult (20-350 kg)")
        return self


class Identity(_Model):
    patient_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$", description="pseudonymous screening id")
    date_of_birth: dt.date | None = None
    sex: Literal["female", "male"] | None = None
    weight: Weight | None = None


class Consent(_Model):
    signed: bool | None = None
    date: dt.date | None = None


class Surgery(_Model):
    """The index resection."""

    date: dt.date | None = None
    procedure: str | None = None
    margin: Literal["R0", "R1", "R2"] | None = None


class Pathology(_Model):
    """Staging inputs (see ``nettrial stage``), grade inputs and invasion findings.

    Give either the findings (size, extent, nodes, metastasis) or explicit categories/stage with
    their ``stage_source``; the staging engine derives the stage from the findings.
    """

    site: str | None = None
    edition: Literal["8", "9"] = "9"
    size_mm: float | None = Field(default=None, gt=0, le=500)
    extent: str | None = None
    nodes_positive: int | None = Field(default=None, ge=0, le=150)
    nodes_examined: int | None = Field(default=None, ge=0, le=150)
    mesenteric_mass_mm: float | None = Field(default=None, ge=0, le=300)
    metastasis: list[str] | None = Field(default=None, description="distant metastasis sites; [] = none")
    multiple_tumours: bool = False
    t: str | None = None
    n: str | None = None
    m: str | None = None
    stage_group: str | None = Field(default=None, description="explicitly entered stage group")
    stage_source: str | None = Field(default=None, description="who/what gave the explicit stage")
    ki67_percent: float | None = Field(default=None, ge=0, le=100)
    mitoses_per_2mm2: float | None = Field(default=None, ge=0, le=500)
    differentiation: Literal["well", "poor"] | None = None
    tumour_type: Literal["net", "nec", "minen"] | None = None
    histology: str | None = Field(default=None, description="ICD-O-3 histology, e.g. 8240/3")
    grade: Literal["G1", "G2", "G3"] | None = Field(default=None, description="explicitly entered grade")
    grade_source: str | None = None
    lymphovascular_invasion: bool | None = None
    perineural_invasion: bool | None = None


class LabResult(_Model):
    """One laboratory value with its unit and the laboratory's reference range (same unit)."""

    test: str
    value: float
    unit: str
    lln: float | None = Field(default=None, ge=0)
    uln: float | None = Field(default=None, gt=0)
    date: dt.date

    @field_validator("test")
    @classmethod
    def _known_test(cls, test: str) -> str:
        if test not in lab_tests():
            raise ValueError(f"unknown laboratory test {test!r}; allowed: {', '.join(lab_tests())}")
        return test

    @model_validator(mode="after")
    def _unit_and_plausibility(self) -> LabResult:
        to_canonical(self.test, self.value, self.unit, field=self.test)
        return self


class SupportiveCare(_Model):
    kind: Literal["blood_transfusion", "growth_factor", "corrective_drug"]
    date: dt.date
    detail: str | None = None


class SupportiveCareHistory(_Model):
    """Blood components, growth factors or corrective drugs; ``reviewed`` with no items = none given."""

    reviewed: bool = False
    items: list[SupportiveCare] = []


class BloodPressure(_Model):
    date: dt.date
    systolic: int = Field(ge=50, le=300, description="mmHg")
    diastolic: int = Field(ge=20, le=200, description="mmHg")
    on_treatment: bool | None = Field(default=None, description="on antihypertensive treatment")

    @model_validator(mode="after")
    def _order(self) -> BloodPressure:
        if self.diastolic >= self.systolic:
            raise ValueError(f"diastolic {self.diastolic} mmHg is not below systolic {self.systolic} mmHg")
        return self


class HistoryEvent(_Model):
    kind: HistoryKind
    date: dt.date | None = Field(default=None, description="onset or event date")
    nyha_class: Literal["I", "II", "III", "IV"] | None = None
    severe: bool | None = None
    controlled: bool | None = Field(default=None, description="well controlled (arrhythmia, ILD, ...)")
    clinically_significant: bool | None = None
    active: bool | None = Field(default=None, description="other cancer: active and needing treatment")
    cancer_type: str | None = None
    allowed_by_investigator: bool | None = None
    note: str | None = None


class History(_Model):
    """Medical history; ``reviewed`` true with no event of a kind means that kind is absent."""

    reviewed: bool = False
    events: list[HistoryEvent] = []


class PregnancyTest(_Model):
    type: Literal["serum", "urine"]
    result: Literal["negative", "positive"]
    taken_at: dt.datetime


class Reproductive(_Model):
    childbearing_potential: bool | None = None
    partner_childbearing_potential: bool | None = None
    pregnancy_test: PregnancyTest | None = None
    contraception_agreed: bool | None = None
    pregnant: bool | None = None
    lactating: bool | None = None


class Attestation(_Model):
    """An investigator's recorded answer; never computed."""

    answer: Literal["yes", "no"]
    by: str = Field(min_length=1)
    at: dt.datetime
    note: str | None = None


class ScreeningRecord(_Model):
    """Everything known about one patient at screening."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    identity: Identity
    screening_date: dt.date
    planned_first_dose: dt.date | dt.datetime | None = None
    consent: Consent = Consent()
    surgery: Surgery = Surgery()
    pathology: Pathology = Pathology()
    liver_metastases: bool | None = None
    symptomatic: bool | None = Field(default=None, description="hormone-related symptoms (Zaidi score)")
    labs: list[LabResult] = []
    supportive_care: SupportiveCareHistory = SupportiveCareHistory()
    blood_pressure: list[BloodPressure] = []
    history: History = History()
    reproductive: Reproductive = Reproductive()
    attestations: dict[str, Attestation] = {}


def screening_record_schema() -> dict:
    """The JSON Schema of the screening record (``nettrial schema screening-record``)."""
    schema = ScreeningRecord.model_json_schema()
    schema["$id"] = f"https://nettrial.org/schema/screening-record/{SCHEMA_VERSION}"
    schema["title"] = f"nettrial screening record, version {SCHEMA_VERSION}"
    return schema
