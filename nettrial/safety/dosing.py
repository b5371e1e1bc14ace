"""Dose modification and dose intensity, run from the protocol's dose ladder and rules.

Source: protocol.md §2 (surufatinib label table 1, and the assumptions marked in the protocol file):
interrupt first; restart one level lower only if the event recovers to grade <= 1 within 28 days,
otherwise discontinue permanently; below the lowest level, discontinue. The rules are data
(``dose_modification`` in the protocol file, first rule that holds decides); this module knows no
drug and no event by name. It recommends; the investigator decides and records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from nettrial._conditions import all_of, parse_conditions
from nettrial.exceptions import InputError
from nettrial.protocol.model import DoseLevel, DoseRule, Protocol
from nettrial.safety.terms import Term, find_term

Action = Literal["continue", "interrupt", "resume", "discontinue"]


@dataclass(frozen=True, slots=True)
class Interruption:
    """An interruption under way: days since it began, and the event's grade (and measures) now."""

    days_since_start: int
    current_grade: int
    current_measures: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DoseRecommendation:
    """What the protocol recommends for an event, and why."""

    action: Action
    dose_level: int | None
    dose: str
    rule: str
    source: str
    reason: str
    needs_review: bool = False
    unresolved: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        lines = [
            f"{self.action.upper()}: {self.dose}",
            f"  rule: {self.rule} ({self.source})",
            f"  {self.reason}",
        ]
        lines += [f"  unresolved: {u}" for u in self.unresolved]
        return "\n".join(lines)


def _level(protocol: Protocol, level: int) -> DoseLevel:
    for candidate in protocol.dose_levels.levels:
        if candidate.level == level:
            return candidate
    allowed = [str(lv.level) for lv in protocol.dose_levels.levels]
    raise InputError("level", f"{level} is not a dose level of this protocol", allowed=allowed)


def _lower(protocol: Protocol, level: int) -> DoseLevel | None:
    levels = protocol.dose_levels.levels
    index = levels.index(_level(protocol, level))
    return levels[index + 1] if index + 1 < len(levels) else None


def _facts(protocol: Protocol, term: str, grade: int, measures: Mapping[str, Any]) -> dict[str, Any]:
    rules = protocol.dose_modification
    facts: dict[str, Any] = {"term": term, "grade": grade}
    # A term in no group is a known fact ("none"), not a missing one.
    facts["term_group"] = next((g for g, terms in rules.term_groups.items() if term in terms), "none")
    for name, value in measures.items():
        if name not in rules.measures:
            raise InputError(f"measures.{name}", "not a measure of the dose rules", allowed=rules.measures)
        try:
            facts[name] = None if value is None else float(value)
        except (TypeError, ValueError):
            raise InputError(f"measures.{name}", f"{value!r} is not a number") from None
        if facts[name] is not None and facts[name] < 0:
            raise InputError(f"measures.{name}", f"{value!r} cannot be negative")
    return facts


def _missing(rule: DoseRule, facts: Mapping[str, Any]) -> list[str]:
    return [name for name in rule.when if facts.get(name) is None]


def _check_grade(value: int, field: str, term: Term, *, event: bool = True) -> None:
    """An event's grade must be one CTCAE defines for the term; a current grade may also be 0."""
    defined = sorted({*term.texts, term.minimum_grade} - {0}) or [1, 2, 3, 4, 5]
    allowed = ([0] if not event else []) + [g for g in defined if g >= term.minimum_grade]
    if isinstance(value, bool) or value not in allowed:
        raise InputError(
            field, f"{value!r} is not a CTCAE grade of {term.name}", allowed=[str(g) for g in allowed]
        )


def _check_interruption(protocol: Protocol, interruption: Interruption, term: Term) -> None:
    days = interruption.days_since_start
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise InputError("days_since_start", f"{days!r} must be a whole number of days, 0 or more")
    _check_grade(interruption.current_grade, "current_grade", term, event=False)
    _facts(protocol, term.name, interruption.current_grade, interruption.current_measures)


def recommend(
    protocol: Protocol,
    *,
    level: int,
    term: str,
    grade: int,
    measures: Mapping[str, Any] | None = None,
    interruption: Interruption | None = None,
) -> DoseRecommendation:
    """The protocol's recommendation for an adverse event at the current dose ``level``.

    For a new event: continue, interrupt (then resume one level lower) or discontinue. For an
    interruption under way: keep interrupting, resume one level lower once the event has recovered
    (grade <= 1, or the rule's ``resume_when``) within the recovery window, or discontinue.
    A rule that cannot be decided for want of a measure is listed in ``unresolved`` and flags the
    recommendation for review; it is never assumed not to apply.
    """
    current = _level(protocol, level)
    spec = find_term(term)
    _check_grade(grade, "grade", spec)
    facts = _facts(protocol, spec.name, grade, measures or {})
    if interruption is not None:
        _check_interruption(protocol, interruption, spec)
    rules = protocol.dose_modification
    unresolved: list[str] = []
    decided: DoseRule | None = None
    for rule in rules.rules:
        truth = all_of(parse_conditions(rule.when, f"dose_modification.{rule.id}"), facts)
        if truth:
            decided = rule
            break
        if truth is None:
            unresolved.append(f"{rule.id}: needs {', '.join(_missing(rule, facts))}")
    if decided is None:
        reason = f"no dose-modification rule applies to {spec.name} grade {grade}"
        return DoseRecommendation(
            "continue", current.level, current.description, "none", rules.source, reason, bool(unresolved),
            tuple(unresolved),
        )  # fmt: skip
    if decided.action == "discontinue":
        reason = f"{spec.name} grade {grade}: the protocol requires permanent discontinuation"
        return _stop(decided, reason, unresolved)
    lower = _lower(protocol, level)
    if interruption is None:
        if lower is None:
            reason = f"already at the lowest dose level ({current.level}); a reduction means discontinuation"
            return _stop(decided, reason, unresolved, rule_suffix=" + below lowest level")
        reason = (
            f"interrupt; resume at level {lower.level} ({lower.description}) only if the event recovers "
            f"within {rules.recovery_window_days} days, otherwise discontinue"
        )
        return DoseRecommendation(
            "interrupt",
            None,
            "interrupted",
            decided.id,
            decided.source,
            reason,
            bool(unresolved),
            tuple(unresolved),
        )
    return _after_interruption(protocol, decided, interruption, lower, unresolved)


def _after_interruption(
    protocol: Protocol,
    rule: DoseRule,
    interruption: Interruption,
    lower: DoseLevel | None,
    unresolved: list[str],
) -> DoseRecommendation:
    rules = protocol.dose_modification
    days, window = interruption.days_since_start, rules.recovery_window_days
    if rule.resume_when:
        now = _facts(protocol, "", interruption.current_grade, interruption.current_measures)
        recovered = all_of(parse_conditions(rule.resume_when, f"{rule.id}.resume_when"), now)
        criterion = ", ".join(f"{k} {v}" for k, v in rule.resume_when.items())
    else:
        recovered = interruption.current_grade <= rules.recovery_to_grade_at_most
        criterion = f"grade <= {rules.recovery_to_grade_at_most}"
    if recovered is None:
        unresolved.append(f"{rule.id} recovery: needs {criterion.split(' ')[0]} now")
    if recovered and days <= window:
        if lower is None:
            reason = "recovered, but a reduction below the lowest dose level means discontinuation"
            return _stop(rule, reason, unresolved, rule_suffix=" + below lowest level")
        reason = f"recovered ({criterion}) on day {days} of the interruption, within {window} days"
        return DoseRecommendation(
            "resume",
            lower.level,
            lower.description,
            rule.id,
            rule.source,
            reason,
            bool(unresolved),
            tuple(unresolved),
        )
    if days > window:
        reason = f"not recovered ({criterion}) within {window} days (day {days} of the interruption)"
        return _stop(rule, reason, unresolved, rule_suffix=" + not recovered in time")
    left = window - days
    reason = f"not yet recovered ({criterion}); {left} day(s) left of the {window}-day recovery window"
    return DoseRecommendation(
        "interrupt", None, "interrupted", rule.id, rule.source, reason, bool(unresolved), tuple(unresolved)
    )


def _stop(rule: DoseRule, reason: str, unresolved: list[str], rule_suffix: str = "") -> DoseRecommendation:
    return DoseRecommendation(
        "discontinue", None, "permanently discontinued", rule.id + rule_suffix, rule.source, reason,
        bool(unresolved), tuple(unresolved),
    )  # fmt: skip


# --- dose intensity -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DosingPeriod:
    """Dosing at one level from ``start`` to ``end`` (both included), with doses missed in it."""

    start: date
    end: date
    level: int
    missed_doses: int = 0


@dataclass(frozen=True, slots=True)
class DoseIntensity:
    """Cumulative dose and relative dose intensity (actual / planned cumulative dose)."""

    cumulative_mg: float
    planned_mg: float
    relative_dose_intensity: float
    dosing_days: int
    missed_doses: int
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dose_intensity(protocol: Protocol, first_dose: date, periods: Sequence[DosingPeriod]) -> DoseIntensity:
    """Cumulative dose and relative dose intensity from a dosing log.

    Planned: the starting level's dose on every scheduled day of ``cycles`` x ``cycle_days``. Actual:
    each period's dose on its level's dosing days (e.g. 21 of every 28 days at level -1, counted in
    cycles from the first dose), less missed doses. Gaps between periods are interruptions.
    """
    treatment = protocol.treatment
    start_level = protocol.dose_levels.levels[0]
    total_days = treatment.cycles * treatment.cycle_days
    planned = start_level.dose_mg * _on_days(start_level, first_dose, first_dose, total_days)
    cumulative, dosing_days, missed, previous_end = 0.0, 0, 0, None
    # Sorted by start, but errors name each period by its place in the log as given.
    for i, period in sorted(enumerate(periods), key=lambda item: item[1].start):
        where = f"periods[{i}]"
        level = _level(protocol, period.level)
        if period.end < period.start:
            raise InputError(f"{where}.end", f"{period.end} is before the start {period.start}")
        if period.start < first_dose:
            raise InputError(f"{where}.start", f"{period.start} is before the first dose {first_dose}")
        if previous_end is not None and period.start <= previous_end:
            raise InputError(
                f"{where}.start", f"{period.start} overlaps the previous period (to {previous_end})"
            )
        days = _on_days(level, first_dose, period.start, (period.end - period.start).days + 1)
        if not 0 <= period.missed_doses <= days:
            raise InputError(f"{where}.missed_doses", f"{period.missed_doses} is not between 0 and {days}")
        cumulative += level.dose_mg * (days - period.missed_doses)
        dosing_days += days - period.missed_doses
        missed += period.missed_doses
        previous_end = period.end
    rdi = round(cumulative / planned, 6) if planned else 0.0
    explanation = (
        f"{cumulative:g} mg taken on {dosing_days} days of {planned:g} mg planned "
        f"({start_level.dose_mg:g} mg x {total_days} days): relative dose intensity {rdi:.1%}"
    )
    return DoseIntensity(round(cumulative, 6), planned, rdi, dosing_days, missed, explanation)


def _on_days(level: DoseLevel, first_dose: date, start: date, length: int) -> int:
    """Days of ``length`` from ``start`` on which ``level`` doses (cycle days 1..days_on)."""
    cycle = level.days_on + level.days_off
    return sum(
        1
        for offset in range(length)
        if ((start + timedelta(days=offset)) - first_dose).days % cycle < level.days_on
    )
