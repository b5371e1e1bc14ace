"""The protocol file's model: data only, validated on load (see ``load.py``).

A protocol is identity, treatment, dose ladder, schedule, endpoints and eligibility criteria. A
criterion's ``rule`` is one recursive tree (after OHDSI Circe's CriteriaGroup): ``all`` / ``any`` /
``at_least`` groups, ``if``/``then`` for criteria that apply only to some patients, and typed leaf
checks. Nothing here is specific to one drug or disease; the evaluator gives the leaves meaning.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Comparison = Literal["<", "<=", ">", ">=", "=="]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- leaves ------------------------------------------------------------------------------------


class Equals(_Model):
    """A recorded value equals ``value`` (MET), differs (NOT_MET), or is missing (UNKNOWN)."""

    check: Literal["equals"]
    field: str
    value: Any


class Present(_Model):
    """A value is recorded."""

    check: Literal["present"]
    field: str


class DateNotAfter(_Model):
    """A recorded date is on or before a reference date of the record."""

    check: Literal["date_not_after"]
    field: str
    reference: str


class Age(_Model):
    """Age in whole years on a date of the record, between two bounds inclusive."""

    check: Literal["age"]
    birth: str
    at: str
    min_years: int = Field(ge=0)
    max_years: int = Field(ge=0)


class TumourOption(_Model):
    stage_group_prefix: str | None = None
    grades: list[Literal["G1", "G2", "G3"]]


class Tumour(_Model):
    """Stage (staging engine) and WHO grade of a well-differentiated NET fit one of the options."""

    check: Literal["tumour"]
    edition: Literal["8", "9"] = "9"
    any: list[TumourOption] = Field(min_length=1)


class Attestation(_Model):
    """The investigator's recorded answer for this criterion (never computed)."""

    check: Literal["attestation"]


class UlnWhenTrue(_Model):
    field: str
    times_uln: float = Field(gt=0)


class Lab(_Model):
    """The latest value of a lab test, no older than ``max_age_days``, against a limit.

    The limit is absolute (``value`` in ``unit``) or relative (``times_uln``); ``when_true`` gives
    another multiple when a record field is true (e.g. ALT with liver metastases).
    """

    check: Literal["lab"]
    test: str
    op: Comparison
    value: float | None = None
    unit: str | None = None
    times_uln: float | None = Field(default=None, gt=0)
    when_true: UlnWhenTrue | None = None
    max_age_days: int = Field(ge=0)

    @model_validator(mode="after")
    def _one_limit(self) -> Lab:
        if (self.value is None) == (self.times_uln is None):
            raise ValueError("give exactly one of value (with unit) or times_uln")
        if self.value is not None and not self.unit:
            raise ValueError("an absolute limit needs its unit")
        return self


class CreatinineClearance(_Model):
    """Cockcroft-Gault creatinine clearance (mL/min) from the latest creatinine, age, sex, weight."""

    check: Literal["creatinine_clearance"]
    op: Comparison
    value: float = Field(gt=0)
    max_age_days: int = Field(ge=0)


class NoneWithin(_Model):
    """No item of these kinds in a reviewed list within ``days`` before the index date."""

    check: Literal["none_within"]
    list: str
    kinds: list[str] = Field(min_length=1)
    days: int = Field(ge=0)


class PregnancyTest(_Model):
    """A pregnancy test of this type and result, taken within ``within_hours`` before the index."""

    check: Literal["pregnancy_test"]
    type: Literal["serum", "urine"]
    result: Literal["negative", "positive"]
    within_hours: int = Field(gt=0)


class Window(_Model):
    """A look-back before the index date; an event exactly this far back is outside it."""

    days: int | None = Field(default=None, ge=0)
    months: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_unit(self) -> Window:
        if (self.days is None) == (self.months is None):
            raise ValueError("give exactly one of days or months")
        return self


class History(_Model):
    """A history event of these kinds (qualifiers in ``where``), optionally within a window.

    MET when such an event is recorded; NOT_MET only when the history was reviewed and none is.
    """

    check: Literal["history"]
    kinds: list[str] = Field(min_length=1)
    where: dict[str, Any] = {}
    except_where: dict[str, Any] = {}
    within: Window | None = None
    include_index_surgery: bool = False


class BloodPressure(_Model):
    """Mean of the recorded readings at or above either threshold (mmHg)."""

    check: Literal["blood_pressure"]
    systolic_at_least: int
    diastolic_at_least: int
    untreated_counts: bool


Leaf = Annotated[
    Equals
    | Present
    | DateNotAfter
    | Age
    | Tumour
    | Attestation
    | Lab
    | CreatinineClearance
    | NoneWithin
    | PregnancyTest
    | History
    | BloodPressure,
    Field(discriminator="check"),
]


# --- groups ------------------------------------------------------------------------------------


class AllOf(_Model):
    all: list[Node] = Field(min_length=1)


class AnyOf(_Model):
    any: list[Node] = Field(min_length=1)


class AtLeast(_Model):
    at_least: int = Field(ge=1)
    of: list[Node] = Field(min_length=1)


class IfThen(_Model):
    """Applies only when ``if`` holds: Kleene implication (not if) or then."""

    if_: Node = Field(alias="if")
    then: Node


def _node_kind(value: Any) -> str | None:
    """Which node a mapping is, from its key, so errors name one model rather than all of them."""
    keys = value if isinstance(value, dict) else vars(value)
    return next((k for k in ("check", "all", "any", "at_least", "if", "if_") if k in keys), None)


Node = Annotated[
    Annotated[Leaf, Tag("check")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[AtLeast, Tag("at_least")]
    | Annotated[IfThen, Tag("if")]
    | Annotated[IfThen, Tag("if_")],
    Discriminator(
        _node_kind,
        custom_error_type="rule_node",
        custom_error_message="a rule node needs one of the keys check, all, any, at_least, if",
    ),
]
for _group in (AllOf, AnyOf, AtLeast, IfThen):
    _group.model_rebuild()


# --- schedule of assessments -------------------------------------------------------------------


class ScreeningWindow(_Model):
    """Screening days relative to the first dose (C1D1): day -28 is 28 days before it."""

    from_day: int
    to_day: int

    @model_validator(mode="after")
    def _before_first_dose(self) -> ScreeningWindow:
        if not self.from_day <= self.to_day < 0:
            raise ValueError("screening needs from_day <= to_day < 0 (days before the first dose)")
        return self


class ScheduledVisit(_Model):
    """An on-treatment visit on ``day`` of ``cycle``, within ``window_days`` either side."""

    id: str
    cycle: int = Field(ge=1)
    day: int = Field(ge=1)
    window_days: int = Field(ge=0)


class EndOfTreatment(_Model):
    """The end-of-treatment visit, ``days_after_last_dose`` after the last dose."""

    days_after_last_dose: int = Field(ge=0)
    window_days: int = Field(ge=0)


class ImagingPhase(_Model):
    """Imaging every ``every_months`` calendar months after the first dose, up to ``until_months``.

    A phase starts where the previous one ended (the first at the first dose).
    """

    every_months: int = Field(gt=0)
    until_months: int = Field(gt=0)
    window_days: int = Field(ge=0)


# The schedule engine names the visits it adds itself; a treatment visit of the same name would make a
# recorded visit ambiguous.
_ENGINE_VISIT_IDS = ("SCREENING", "EOT")
_ENGINE_VISIT_PREFIX = "IMG-"


class Schedule(_Model):
    """The schedule of assessments: screening, visits by cycle and day, end of treatment, imaging."""

    source: str
    screening: ScreeningWindow
    visits: list[ScheduledVisit] = Field(min_length=1)
    end_of_treatment: EndOfTreatment
    imaging: list[ImagingPhase]
    interruptions_shift_cycles: bool

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        ids = [v.id for v in self.visits]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"visit ids must be unique: {', '.join(repeated)} repeated")
        taken = [i for i in ids if i in _ENGINE_VISIT_IDS or i.startswith(_ENGINE_VISIT_PREFIX)]
        if taken:
            raise ValueError(
                f"visit ids {', '.join(taken)} are names of screening, end-of-treatment or imaging visits"
            )
        start = 0
        for number, phase in enumerate(self.imaging):
            if phase.until_months <= start:
                raise ValueError(
                    f"imaging phase {number} ends at month {phase.until_months}, "
                    f"not after the previous phase (month {start}): order phases by until_months"
                )
            # Otherwise the phase's last scan would fall short of its end and where the next phase
            # starts counting would be unclear.
            if (phase.until_months - start) % phase.every_months:
                raise ValueError(
                    f"imaging phase {number}: months {start} to {phase.until_months} are not a whole "
                    f"number of {phase.every_months}-month intervals"
                )
            start = phase.until_months
        return self


# --- dose modification -----------------------------------------------------------------------------


class DoseRule(_Model):
    """One dose-modification rule: when its conditions hold for an event, the action applies.

    ``when`` maps a fact (``term``, ``term_group``, ``grade`` or one of the protocol's measures) to a
    list of allowed values or a comparison such as ``">= 3"``; ``resume_when`` replaces the
    recovery-to-grade test for events judged by a measure (proteinuria: < 1 g/24 h).
    """

    id: str
    when: dict[str, Any] = Field(min_length=1)
    action: Literal["discontinue", "interrupt_then_reduce"]
    resume_when: dict[str, Any] | None = None
    source: str


class DoseModification(_Model):
    """The protocol's dose-modification rules, in order of precedence (first that holds decides)."""

    source: str
    recovery_to_grade_at_most: int = Field(ge=0, le=4)
    recovery_window_days: int = Field(gt=0)
    term_groups: dict[str, list[str]]
    measures: dict[str, str]
    rules: list[DoseRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_facts(self) -> DoseModification:
        facts = {"term", "term_group", "grade", *self.measures}
        for rule in self.rules:
            unknown = sorted(set(rule.when) - facts)
            if unknown:
                raise ValueError(f"rule {rule.id}: unknown fact(s) {unknown}; allowed: {sorted(facts)}")
            groups = set(rule.when.get("term_group", [])) - set(self.term_groups)
            if groups:
                raise ValueError(f"rule {rule.id}: term group(s) {sorted(groups)} not in term_groups")
        return self


# --- protocol ------------------------------------------------------------------------------------


class Criterion(_Model):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    kind: Literal["inclusion", "exclusion"]
    text: str = Field(description="the registry's wording")
    source: str
    needs: list[str] = Field(min_length=1, description="the record fields the rule reads")
    note: str | None = None
    information: str | None = Field(default=None, description="information shown beside the verdict")
    rule: Node


class InclusionGroup(_Model):
    any: list[str] = Field(min_length=2)


class Eligibility(_Model):
    index: Literal["planned_first_dose"]
    provisional_index: Literal["screening_date"]
    inclusion_logic: list[str | InclusionGroup]
    criteria: list[Criterion]

    @model_validator(mode="after")
    def _consistent(self) -> Eligibility:
        ids = [c.id for c in self.criteria]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"criterion ids must be unique: {', '.join(repeated)} repeated")
        inclusions = {c.id for c in self.criteria if c.kind == "inclusion"}
        named = [i for e in self.inclusion_logic for i in ([e] if isinstance(e, str) else e.any)]
        problems = {
            "not named": sorted(inclusions - set(named)),
            "not inclusion criteria": sorted(set(named) - inclusions),
            "named twice": sorted({i for i in named if named.count(i) > 1}),
        }
        shown = "; ".join(f"{label}: {', '.join(ids)}" for label, ids in problems.items() if ids)
        if shown:
            raise ValueError(f"inclusion_logic must name every inclusion criterion once ({shown})")
        return self


class Setting(_Model):
    value: Any
    source: Literal["registry", "assumption", "label", "ctcae", "ajcc"]
    note: str | None = None


class Sponsor(_Model):
    name: str
    class_: str = Field(alias="class")
    role: str


class Arm(_Model):
    label: str
    type: str
    description: str
    interventions: list[str]


class Identity(_Model):
    nct_id: str = Field(pattern=r"^NCT\d{8}$")
    org_study_id: str
    brief_title: str
    official_title: str
    sponsor: Sponsor
    phase: str
    study_type: str
    allocation: str
    intervention_model: str
    masking: str
    primary_purpose: str
    target_enrolment: int = Field(gt=0)
    start_date: dt.date
    completion_date: dt.date
    minimum_age_years: int
    maximum_age_years: int
    sex: Literal["ALL", "FEMALE", "MALE"]
    healthy_volunteers: bool
    conditions: list[str]
    arms: list[Arm]
    source: str


class Treatment(_Model):
    drug: str
    dose_mg: float = Field(gt=0)
    route: str
    frequency: str
    units_per_dose: str
    cycle_days: int = Field(gt=0)
    cycles: int = Field(gt=0)
    source: str


class DoseLevel(_Model):
    level: int
    dose_mg: float = Field(gt=0)
    days_on: int = Field(gt=0)
    days_off: int = Field(ge=0)
    description: str


class DoseLevels(_Model):
    source: str
    below_lowest: Literal["discontinue"]
    levels: list[DoseLevel] = Field(min_length=1)


class Protocol(_Model):
    """A whole protocol file. The endpoints section is free-form, validated by the analysis that
    runs it."""

    format_version: Literal["1.0"]
    protocol_version: str
    identity: Identity
    settings: dict[str, Setting]
    treatment: Treatment
    dose_levels: DoseLevels
    dose_modification: DoseModification
    schedule: Schedule
    endpoints: dict[str, Any]
    eligibility: Eligibility

    def criterion(self, criterion_id: str) -> Criterion:
        return next(c for c in self.eligibility.criteria if c.id == criterion_id)
