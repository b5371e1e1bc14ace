"""Laboratory results and vital signs: checked for unit and plausibility, graded by CTCAE when entered.

Every value is converted with its unit (``nettrial/units.py``, ``data/labs.yaml``) before anything is
written; an unknown unit or an implausible value is refused, naming the field. A test with a
``ctcae_term`` in labs.yaml is graded by the safety engine (``safety/ctcae.py``) in the CTCAE version
the protocol sets (protocol.md §4), and the version and the whole explained result are stored with
the grade. Vital signs give Hypertension from the blood pressure and Weight loss from the weight.

Baseline (shared/spec/ctcae.md, relative criteria): the participant's latest value of the same test
collected on or before the first dose. A value collected on or before the first dose is itself a
baseline candidate and is graded without one. When a baseline may have changed (a result entered,
corrected or removed, or the first dose recorded) the participant's results are graded again in the
same transaction; only grades that change are written, with a reason of their own.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.protocol.model import Protocol
from nettrial.safety import ctcae
from nettrial.store import audit
from nettrial.store._dates import not_in_future
from nettrial.store._rows import get_row, participant_rows
from nettrial.store.models import LabResult, Participant, VitalSigns
from nettrial.store.visits import check_visit_code
from nettrial.units import lab_tests, same_unit_limit, test_spec, to_canonical, unit_factor

# Vital-sign fields: the labs.yaml entry that holds each one's plausible range, and its unit.
VITAL_SIGNS = {
    "systolic_mmhg": ("systolic_bp", "mmHg"),
    "diastolic_mmhg": ("diastolic_bp", "mmHg"),
    "heart_rate_bpm": ("heart_rate", "bpm"),
    "weight_kg": ("weight", "kg"),
    "temperature_c": ("temperature", "C"),
}
_VITAL_TESTS = {test for test, _ in VITAL_SIGNS.values()}
LAB_FIELDS = ("test", "value", "unit", "lln", "uln", "collected_on", "visit_code")


def ctcae_version(protocol: Protocol) -> str:
    return str(protocol.settings["ctcae_version"].value)


def _json(value: Any) -> Any:
    """Tuples as lists and dates as text, so a stored result reads the same on SQLite and PostgreSQL."""
    return json.loads(json.dumps(value, default=str))


def _renamed(error: InputError, field: str) -> InputError:
    """The same refusal, naming the request's field (units.py names ``<test>.value`` and the like)."""
    return type(error)(field, error.detail, allowed=error.allowed)


def _checked(test: str, value: Any, unit: str, field: str, unit_field: str = "unit") -> float:
    """The value in the test's canonical unit; refusals name ``field`` (or ``unit_field``)."""
    try:
        return to_canonical(test, value, unit).value
    except InputError as error:
        raise _renamed(error, unit_field if error.field.endswith(".unit") else field) from None


# --- laboratory results ----------------------------------------------------------------------------


def get_lab(session: Session, lab_id: int) -> LabResult:
    return get_row(session, LabResult, lab_id, "lab result")


def list_labs(session: Session, participant: Participant, test: str | None = None) -> list[LabResult]:
    only = None if test is None else LabResult.test == test
    return participant_rows(session, LabResult, participant, LabResult.collected_on, LabResult.id, where=only)


def _required(values: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if values[name] is None:
            raise InputError(name, "is required and cannot be removed")


def _check_lab(protocol: Protocol, values: Mapping[str, Any]) -> None:
    _required(values, "test", "value", "unit", "collected_on")
    test = values["test"]
    test_spec(test, "test")
    if test in _VITAL_TESTS:
        raise InputError("test", f"{test} is a vital sign: record it with the vital signs")
    _checked(test, values["value"], values["unit"], "value")
    limits = {}
    for name in ("lln", "uln"):
        if values[name] is not None and not math.isfinite(values[name]):
            raise InputError(name, f"{values[name]!r} is not a number")
        if values[name] is not None:
            limits[name] = same_unit_limit(test, values[name], values["unit"], name)
    if len(limits) == 2 and limits["lln"] >= limits["uln"]:
        raise InputError("lln", f"the LLN {values['lln']} is not below the ULN {values['uln']}")
    not_in_future(values["collected_on"], "collected_on")
    check_visit_code(protocol, values["visit_code"])


def baseline_lab(session: Session, *, participant: Participant, lab: LabResult) -> LabResult | None:
    """The baseline for ``lab``: the latest result of its test on or before the first dose, if any.

    None for a result collected on or before the first dose (it is a baseline candidate itself), and
    while no first dose is recorded.
    """
    first_dose = participant.first_dose_date
    if first_dose is None or lab.collected_on <= first_dose:
        return None
    return session.scalar(
        select(LabResult)
        .where(
            LabResult.participant_id == participant.id,
            LabResult.test == lab.test,
            LabResult.collected_on <= first_dose,
        )
        .order_by(LabResult.collected_on.desc(), LabResult.id.desc())
        .limit(1)
    )


def _grade_lab(session: Session, lab: LabResult, participant: Participant, protocol: Protocol) -> None:
    term = lab_tests()[lab.test].get("ctcae_term")
    if term is None:
        lab.ctcae_term = lab.ctcae_grade = lab.ctcae_version = lab.grading = None
        return
    base = baseline_lab(session, participant=participant, lab=lab)
    baseline = None
    if base is not None:
        # In the new value's unit: the engine compares them as given.
        scale = unit_factor(lab.test, base.unit, "unit") / unit_factor(lab.test, lab.unit, "unit")
        baseline = round(base.value * scale, 9)
    result = ctcae.grade(
        term,
        lab.value,
        lab.unit,
        lln=lab.lln,
        uln=lab.uln,
        baseline=baseline,
        version=ctcae_version(protocol),
    )
    lab.ctcae_term, lab.ctcae_grade, lab.ctcae_version = result.term, result.grade, result.version
    source = None if base is None else {"lab_id": base.id, "collected_on": base.collected_on.isoformat()}
    lab.grading = _json({**result.to_dict(), "baseline_source": source})


def add_lab(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    test: str,
    value: float,
    unit: str,
    collected_on: dt.date,
    lln: float | None = None,
    uln: float | None = None,
    visit_code: str | None = None,
) -> LabResult:
    """Check, grade and store one result; nothing is stored when it is refused."""
    values = {"test": test, "value": value, "unit": unit, "lln": lln, "uln": uln}
    values |= {"collected_on": collected_on, "visit_code": visit_code}
    _check_lab(protocol, values)
    lab = LabResult(participant_id=participant.id, **values)
    _grade_lab(session, lab, participant, protocol)
    session.add(lab)
    session.flush()
    _regrade_if_baseline(session, participant, protocol, lab.test, lab.collected_on, "entered")
    return lab


def update_lab(
    session: Session, *, lab: LabResult, protocol: Protocol, changes: Mapping[str, Any]
) -> LabResult:
    """Correct a result and grade it again; the session's reason is audited with the change."""
    if "test" in changes and changes["test"] != lab.test:
        raise InputError("test", "a result cannot change test: delete it and enter the right one")
    values = {key: getattr(lab, key) for key in LAB_FIELDS} | dict(changes)
    _check_lab(protocol, values)
    participant = session.get(Participant, lab.participant_id)
    before = lab.collected_on
    for key in LAB_FIELDS:
        setattr(lab, key, values[key])
    _grade_lab(session, lab, participant, protocol)
    session.flush()
    _regrade_if_baseline(session, participant, protocol, lab.test, min(before, lab.collected_on), "corrected")
    return lab


def delete_lab(session: Session, *, lab: LabResult, protocol: Protocol) -> None:
    """Remove a result entered in error (the session's reason is audited with every field)."""
    participant = session.get(Participant, lab.participant_id)
    test, collected_on = lab.test, lab.collected_on
    session.delete(lab)
    session.flush()
    _regrade_if_baseline(session, participant, protocol, test, collected_on, "removed")


def _regrade_if_baseline(
    session: Session,
    participant: Participant,
    protocol: Protocol,
    test: str,
    collected_on: dt.date,
    what: str,
) -> None:
    first_dose = participant.first_dose_date
    if first_dose is not None and collected_on <= first_dose:
        reason = f"graded again: a baseline {test} result was {what}"
        regrade(session, participant=participant, protocol=protocol, tests=[test], reason=reason)


def regrade(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    reason: str,
    tests: Iterable[str] | None = None,
) -> int:
    """Grade the participant's results (of ``tests``, default all) again; the number whose grade changed.

    A result that can no longer be graded (e.g. its baseline was removed and it has no ULN) keeps no
    grade and says why, for review, rather than blocking the change that caused it.
    """
    session.flush()  # the caller's own changes keep the caller's reason
    wanted = None if tests is None else set(tests)
    changed = 0
    with audit.because(session, reason):
        for lab in list_labs(session, participant):
            if wanted is not None and lab.test not in wanted:
                continue
            before = (lab.ctcae_grade, lab.grading)
            try:
                _grade_lab(session, lab, participant, protocol)
            except InputError as error:
                lab.ctcae_grade = None
                lab.grading = {"error": {"field": error.field, "message": error.detail}, "needs_review": True}
            changed += (lab.ctcae_grade, lab.grading) != before
        if wanted is None or "weight" in wanted:
            for vitals in list_vital_signs(session, participant):
                before = vitals.ctcae_grades
                _grade_vitals(session, vitals, participant, protocol)
                changed += vitals.ctcae_grades != before
    return changed


# --- vital signs -----------------------------------------------------------------------------------


def get_vital_signs(session: Session, vital_signs_id: int) -> VitalSigns:
    return get_row(session, VitalSigns, vital_signs_id, "vital signs")


def list_vital_signs(session: Session, participant: Participant) -> list[VitalSigns]:
    return participant_rows(session, VitalSigns, participant, VitalSigns.measured_on, VitalSigns.id)


def _check_vitals(protocol: Protocol, values: Mapping[str, Any]) -> None:
    _required(values, "measured_on")
    if all(values[name] is None for name in VITAL_SIGNS):
        raise InputError("body", "no measurement given", allowed=list(VITAL_SIGNS))
    for name, (test, unit) in VITAL_SIGNS.items():
        if values[name] is not None:
            _checked(test, values[name], unit, name, unit_field=name)
    systolic, diastolic = values["systolic_mmhg"], values["diastolic_mmhg"]
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise ImplausibleValueError(
            "diastolic_mmhg", f"{diastolic} mmHg is not below the systolic pressure ({systolic} mmHg)"
        )
    not_in_future(values["measured_on"], "measured_on")
    check_visit_code(protocol, values["visit_code"])


def baseline_weight(session: Session, *, participant: Participant, vitals: VitalSigns) -> VitalSigns | None:
    """The latest weight on or before the first dose, for a measurement after it (else None)."""
    first_dose = participant.first_dose_date
    if first_dose is None or vitals.measured_on <= first_dose:
        return None
    return session.scalar(
        select(VitalSigns)
        .where(
            VitalSigns.participant_id == participant.id,
            VitalSigns.weight_kg.is_not(None),
            VitalSigns.measured_on <= first_dose,
        )
        .order_by(VitalSigns.measured_on.desc(), VitalSigns.id.desc())
        .limit(1)
    )


def _grade_vitals(session: Session, vitals: VitalSigns, participant: Participant, protocol: Protocol) -> None:
    version, grades = ctcae_version(protocol), {}
    if vitals.systolic_mmhg is not None and vitals.diastolic_mmhg is not None:
        reading = f"{vitals.systolic_mmhg}/{vitals.diastolic_mmhg}"
        grades["Hypertension"] = ctcae.grade("Hypertension", reading, "mmHg", version=version).to_dict()
    base = (
        None if vitals.weight_kg is None else baseline_weight(session, participant=participant, vitals=vitals)
    )
    if base is not None:
        result = ctcae.grade("Weight loss", vitals.weight_kg, "kg", baseline=base.weight_kg, version=version)
        source = {"vital_signs_id": base.id, "measured_on": base.measured_on.isoformat()}
        grades["Weight loss"] = {**result.to_dict(), "baseline_source": source}
    vitals.ctcae_grades = _json(grades) if grades else None


def add_vital_signs(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    measured_on: dt.date,
    systolic_mmhg: int | None = None,
    diastolic_mmhg: int | None = None,
    heart_rate_bpm: int | None = None,
    weight_kg: float | None = None,
    temperature_c: float | None = None,
    visit_code: str | None = None,
) -> VitalSigns:
    """Check, grade and store one set of vital signs."""
    values = {
        "measured_on": measured_on,
        "visit_code": visit_code,
        "systolic_mmhg": systolic_mmhg,
        "diastolic_mmhg": diastolic_mmhg,
        "heart_rate_bpm": heart_rate_bpm,
        "weight_kg": weight_kg,
        "temperature_c": temperature_c,
    }
    _check_vitals(protocol, values)
    vitals = VitalSigns(participant_id=participant.id, **values)
    _grade_vitals(session, vitals, participant, protocol)
    session.add(vitals)
    session.flush()
    _regrade_weights_if_baseline(session, participant, protocol, measured_on, "entered")
    return vitals


def update_vital_signs(
    session: Session, *, vitals: VitalSigns, protocol: Protocol, changes: Mapping[str, Any]
) -> VitalSigns:
    """Correct a set of vital signs and grade it again; the session's reason is audited with it."""
    keys = ("measured_on", "visit_code", *VITAL_SIGNS)
    values = {key: getattr(vitals, key) for key in keys} | dict(changes)
    _check_vitals(protocol, values)
    participant = session.get(Participant, vitals.participant_id)
    before = vitals.measured_on
    for key in keys:
        setattr(vitals, key, values[key])
    _grade_vitals(session, vitals, participant, protocol)
    session.flush()
    earliest = min(before, vitals.measured_on)
    _regrade_weights_if_baseline(session, participant, protocol, earliest, "corrected")
    return vitals


def _regrade_weights_if_baseline(
    session: Session, participant: Participant, protocol: Protocol, measured_on: dt.date, what: str
) -> None:
    first_dose = participant.first_dose_date
    if first_dose is not None and measured_on <= first_dose:
        reason = f"graded again: a baseline weight was {what}"
        regrade(session, participant=participant, protocol=protocol, tests=["weight"], reason=reason)
