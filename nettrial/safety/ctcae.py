"""CTCAE auto-grading: a value (with unit, LLN/ULN, baseline) and structured answers to a grade.

The rules are the version's data tables (``terms.py``); this module knows no term by name. Every
result names the term, the CTCAE version, the grade, the rule that decided it, and whether a person
must review it: CTCAE leaves some grades to clinical judgement (shared/spec/ctcae.md), and a grade
that an unanswered question could change is reported as the lowest grade the value supports,
flagged, never guessed upward or downward.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nettrial._conditions import all_of
from nettrial.exceptions import InputError
from nettrial.safety.terms import Cut, Route, Term, find_term, questions
from nettrial.units import normalise_unit, same_unit_limit, to_canonical, unit_factor

_TRUE = {"true", "yes", "y", "1"}
_FROM_BASELINE = ("increase", "drop", "percent_drop")
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True, slots=True)
class Firing:
    """A route or rule that gave a grade."""

    grade: int
    rule: str
    review: bool = False


@dataclass(frozen=True, slots=True)
class GradeResult:
    """A CTCAE grade that explains itself."""

    term: str
    version: str
    meddra_code: str
    soc: str
    grade: int | None
    description: str
    rule: str
    needs_review: bool
    review_reasons: tuple[str, ...]
    notes: tuple[str, ...]
    fired: tuple[Firing, ...]
    possible: tuple[str, ...]
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        shown = "not determined" if self.grade is None else f"grade {self.grade}"
        flag = " (needs review)" if self.needs_review else ""
        lines = [f"{self.term} (CTCAE v{self.version}): {shown}{flag}"]
        if self.description:
            lines.append(f"  CTCAE: {self.description}")
        lines.append(f"  rule: {self.rule}")
        lines += [f"  review: {r}" for r in self.review_reasons]
        lines += [f"  possible: {p}" for p in self.possible]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def grade(
    term: str,
    value: Any = None,
    unit: str | None = None,
    *,
    lln: Any = None,
    uln: Any = None,
    baseline: Any = None,
    answers: Mapping[str, Any] | None = None,
    version: str = "5.0",
) -> GradeResult:
    """Grade one observation of ``term``.

    ``lln``, ``uln`` and ``baseline`` are in the value's unit. ``answers`` are the term's structured
    questions (see ``Term.questions``). Raises ``InputError`` naming the field for an unknown term,
    unit or answer, an implausible value, or a reference limit the term needs but was not given.
    """
    spec = find_term(term, version)
    given = _check_answers(spec, answers or {})
    if value is None and not given:
        need = "value" if spec.graded_by_value else "answers"
        raise InputError(need, f"{spec.name} needs a {need}", allowed=None if spec.routes else spec.questions)
    if value is not None and not spec.graded_by_value:
        raise InputError("value", f"{spec.name} is graded from answers, not a value", allowed=spec.questions)
    notes: list[str] = []
    fired: list[Firing] = []
    references: dict[str, float | None] = {}
    if value is not None:
        references = _grade_value(spec, value, unit, lln, uln, baseline, given, fired, notes)
    possible: list[tuple[int, list[str]]] = []
    for rule in spec.rules:
        truth = all_of(rule.answers, given)
        if rule.value is not None and truth is not False:
            measured = references.get("value")
            holds = None if measured is None else rule.value.holds(measured, references)
            truth = False if holds is False else (None if holds is None or truth is None else True)
        if truth:
            fired.append(Firing(rule.grade, rule.text, rule.review))
        elif truth is None:
            missing = [c.field for c in rule.answers if given.get(c.field) is None]
            if missing != ["death"]:  # death is always possible; not worth listing
                possible.append((rule.grade, missing or ["value"]))
    result_grade = max((f.grade for f in fired), default=None)
    if spec.minimum_grade and (result_grade or 0) < spec.minimum_grade:
        result_grade = spec.minimum_grade
        fired.append(Firing(spec.minimum_grade, f"CTCAE defines no grade below {spec.minimum_grade}"))
    inputs = {"value": value, "unit": unit, "lln": lln, "uln": uln, "baseline": baseline, "answers": given}
    return _result(spec, result_grade, fired, possible, notes, inputs)


def _result(
    spec: Term,
    result_grade: int | None,
    fired: list[Firing],
    possible: list[tuple[int, list[str]]],
    notes: list[str],
    inputs: dict[str, Any],
) -> GradeResult:
    deciding = [f for f in fired if f.grade == result_grade]
    reasons = [f"CTCAE leaves grade {f.grade} to clinical judgement ({f.rule})" for f in deciding if f.review]
    higher = [(g, missing) for g, missing in possible if g > (result_grade or 0)]
    for g, missing in higher:
        if set(missing) & spec.review_if_unanswered:
            reasons.append(f"grade {g} if {', '.join(missing)} (not answered)")
    if result_grade is None:
        reasons.append("the answers given match no CTCAE grade")
    if result_grade == 0:
        description = "within normal limits or below grade 1"
    else:
        description = spec.texts.get(result_grade, "") if result_grade else ""
    return GradeResult(
        term=spec.name,
        version=spec.version,
        meddra_code=spec.meddra_code,
        soc=spec.soc,
        grade=result_grade,
        description=description,
        rule="; ".join(dict.fromkeys(f.rule for f in deciding)) or "no rule fired",
        needs_review=bool(reasons),
        review_reasons=tuple(dict.fromkeys(reasons)),
        notes=tuple(dict.fromkeys(notes)),
        fired=tuple(fired),
        possible=tuple(dict.fromkeys(f"grade {g} if {', '.join(m)}" for g, m in higher)),
        inputs=inputs,
    )


def _check_answers(spec: Term, answers: Mapping[str, Any]) -> dict[str, Any]:
    known = questions(spec.version)
    allowed = spec.questions
    checked: dict[str, Any] = {}
    for name, raw in answers.items():
        where = f"answers.{name}"
        if name not in allowed:
            raise InputError(where, f"not a question for {spec.name}", allowed=allowed or "none")
        if raw is None or raw == "":
            continue
        question = known[name]
        if question.type == "bool":
            text = str(raw).strip().lower()
            if isinstance(raw, bool):
                checked[name] = raw
            elif text in _TRUE | _FALSE:
                checked[name] = text in _TRUE
            else:
                raise InputError(where, f"{raw!r} is not yes/no", allowed=("true", "false"))
        elif question.type == "choice":
            if str(raw) not in question.values:
                raise InputError(where, f"{raw!r} is not a choice", allowed=question.values)
            checked[name] = str(raw)
        else:
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise InputError(where, f"{raw!r} is not a number") from None
            if not question.minimum <= number <= question.maximum:
                raise InputError(
                    where, f"{number:g} is not plausible ({question.minimum:g}-{question.maximum:g})"
                )
            checked[name] = number
    return checked


def _grade_value(spec, value, unit, lln, uln, baseline, given, fired, notes) -> dict[str, float | None]:
    """Run the numeric routes; return the references (in the value's unit) for relative rules."""
    if unit is None or str(unit).strip() == "":
        raise InputError("unit", "a unit is required")
    if spec.value_kind == "blood_pressure":
        return _grade_blood_pressure(spec, value, unit, given, fired)
    categorical = [r for r in spec.routes if r.categories and _same_unit(None, r.unit, unit)]
    if categorical:
        route = categorical[0]
        if str(value) not in route.categories:
            raise InputError("value", f"{value!r} is not a {route.unit} reading", allowed=route.categories)
        grade_ = max((g for g, cut in route.cuts.items() if str(value) in cut), default=0)
        fired.append(Firing(grade_, f"{route.name}: {value}"))
        return {}
    numeric = [r for r in spec.routes if not r.categories]
    test = spec.test or numeric[0].test
    reported = to_canonical(test, value, unit, "value")
    if baseline is not None:
        to_canonical(test, baseline, unit, "baseline")
    refs = {
        "value": reported.reported_value,
        "LLN": _limit(test, lln, unit, "lln"),
        "ULN": _limit(test, uln, unit, "uln"),
        "baseline": None if baseline is None else float(baseline),
    }
    facts = dict(given)
    if refs["baseline"] is not None and refs["ULN"] is not None:
        facts["baseline_status"] = "abnormal" if refs["baseline"] > refs["ULN"] else "normal"
    applicable = []
    for route in numeric:
        truth = all_of(route.when, facts)
        if truth is None and route.apply_if_unanswered:
            fields = ", ".join("baseline" if c.field == "baseline_status" else c.field for c in route.when)
            assumed = _describe_when(route)
            notes.append(f"{fields} not given: graded by the {route.name} route, as if {assumed}")
            truth = True
        if truth:
            applicable.append((route, truth))
    unit_routes = [r for r, _ in applicable if r.unit]
    chosen_unit = next((r.unit for r in unit_routes if _same_unit(test, r.unit, unit)), None)
    if unit_routes and chosen_unit is None:
        chosen_unit = unit_routes[0].unit
        notes.append(f"converted from {unit} to {chosen_unit}, the unit CTCAE gives cut points in")
    scale = unit_factor(test, unit, "unit") / unit_factor(test, chosen_unit, "unit") if chosen_unit else 1.0
    scaled = {k: (None if v is None else round(v * scale, 9)) for k, v in refs.items()}
    if not applicable:
        raise InputError("unit", f"no {spec.name} cut points apply to a value in {unit} with these answers")
    graded = False
    for route, _ in applicable:
        if route.unit and route.unit != chosen_unit:
            continue
        graded |= _run_route(spec, route, scaled, fired, notes)
    if not graded:
        raise InputError("baseline", f"{spec.name} needs a baseline value in {unit} to be graded")
    return refs


def _limit(test: str, limit: Any, unit: str, field: str) -> float | None:
    """A reference limit in the value's unit (validated: a positive number)."""
    if limit is None:
        return None
    same_unit_limit(test, limit, unit, field)
    return float(limit)


def _run_route(
    spec: Term, route: Route, refs: dict[str, float | None], fired: list[Firing], notes: list[str]
) -> bool:
    """Grade one route; False when it needs a baseline that was not given."""
    needs_baseline = route.measure in _FROM_BASELINE or "baseline" in route.references
    if needs_baseline and refs["baseline"] is None:
        notes.append(f"baseline not given: the {route.name} route was not applied")
        return False
    if route.only_if is not None and not _holds(spec, route.only_if, refs["value"], refs):
        fired.append(Firing(0, f"{route.name}: not applied, value not {route.only_if.text} (normal range)"))
        return True
    measured = _measure(route.measure, refs)
    grade_, text = 0, "below every cut point"
    # From the highest grade down: a reference limit is needed only if the grade depends on it.
    for g, cut in sorted(route.cuts.items(), reverse=True):
        assert isinstance(cut, Cut)
        if _holds(spec, cut, measured, refs):
            grade_, text = g, cut.text
            break
    label = route.name if route.measure == "value" else f"{route.name} ({route.measure} {measured:g})"
    fired.append(Firing(grade_, f"{label}: grade {grade_} ({text})" if grade_ else f"{label}: {text}"))
    return True


def _holds(spec: Term, cut: Cut, measured: float, refs: Mapping[str, float | None]) -> bool:
    holds = cut.holds(measured, refs)
    if holds is None:
        message = f"{spec.name} is graded against the {cut.reference}: give it in the value's unit"
        raise InputError(str(cut.reference).lower(), message)
    return holds


def _measure(measure: str, refs: Mapping[str, float | None]) -> float:
    if measure in ("value", "systolic", "diastolic"):
        return refs[measure]
    value, base = refs["value"], refs["baseline"]
    if measure == "increase":
        return round(value - base, 9)
    if measure == "drop":
        return round(base - value, 9)
    return round(100 * (base - value) / base, 9)  # percent_drop


def _grade_blood_pressure(spec: Term, value: Any, unit: str, given, fired) -> dict[str, float | None]:
    parts = str(value).replace(" ", "").split("/")
    if len(parts) != 2:
        raise InputError("value", f"{value!r} is not a blood pressure; write systolic/diastolic, e.g. 150/95")
    readings = {
        "systolic": to_canonical("systolic_bp", parts[0], unit, "value.systolic").value,
        "diastolic": to_canonical("diastolic_bp", parts[1], unit, "value.diastolic").value,
    }
    if readings["diastolic"] >= readings["systolic"]:
        raise InputError("value", f"{value!r}: the diastolic pressure must be below the systolic")
    for route in spec.routes:
        _run_route(spec, route, {**readings, "baseline": None}, fired, [])
    return {"value": None}


def _same_unit(test: str | None, route_unit: str, unit: str) -> bool:
    if normalise_unit(route_unit) == normalise_unit(unit):
        return True
    if test is None:
        return False
    try:
        return unit_factor(test, route_unit, "unit") == unit_factor(test, unit, "unit")
    except InputError:
        return False


def _describe_when(route: Route) -> str:
    normal = "the baseline were normal (<= ULN)"
    return ", ".join(normal if c.field == "baseline_status" else c.describe() for c in route.when)


def worst(results: Iterable[GradeResult]) -> GradeResult | None:
    """The highest grade among observations of one event, after the term's overrides.

    A 24-hour urine protein overrides the dipstick (ctcae.md): a dipstick result is dropped when a
    result in the overriding unit is present for the same term.
    """
    kept = list(results)
    for r in list(kept):
        overrides = find_term(r.term, r.version).overrides
        if str(r.inputs.get("unit")) in overrides.values():
            stronger = [k for k, v in overrides.items() if v == r.inputs.get("unit")]
            if any(o.term == r.term and str(o.inputs.get("unit")) in stronger for o in kept):
                kept.remove(r)
    graded = [r for r in kept if r.grade is not None]
    return max(graded, key=lambda r: r.grade, default=None)
