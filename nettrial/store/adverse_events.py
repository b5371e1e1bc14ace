"""Adverse events: CTCAE term and grade, seriousness, and the protocol's dose recommendation.

The grade is the investigator's. When structured answers or a value are given, CTCAE's suggestion
(``safety.ctcae.grade``, shared/spec/ctcae.md) is stored beside it as ``suggested_grade`` and
returned with its rule and review flag; a grade that differs from the suggestion is kept, and the
suggestion fills in the grade only when none is entered. The dose-modification recommendation
(``safety.dosing.recommend``, protocol.md 2) is computed at the participant's dose level when the
event is recorded, stored with that level, and computed again at the same level when the term or
grade is corrected. Seriousness and outcome follow ICH E2A (criteria) and E2B (outcome codes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from nettrial.exceptions import InputError
from nettrial.protocol.model import Protocol
from nettrial.safety import ctcae
from nettrial.safety.ctcae import GradeResult
from nettrial.safety.dosing import DoseRecommendation, recommend
from nettrial.safety.terms import Term, find_term
from nettrial.store._dates import not_before, not_in_future
from nettrial.store._rows import get_row, participant_rows
from nettrial.store.models import AdverseEvent, Participant
from nettrial.store.participants import current_dose_level

SERIOUS_CRITERIA = (
    "death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "congenital_anomaly",
    "important_medical_event",
)
RELATEDNESS = ("not_related", "unlikely", "possible", "probable", "definite")
ACTIONS_TAKEN = ("none", "dose_interrupted", "dose_reduced", "drug_withdrawn", "not_applicable")
OUTCOMES = ("recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal", "unknown")
# An end date says the event is over: it recovered (perhaps with sequelae) or the participant died.
_ENDED = ("recovered", "recovered_with_sequelae", "fatal")
# What CTCAE grades from; any of these in a correction means grading again.
GRADING_INPUTS = ("answers", "value", "unit", "lln", "uln", "baseline")
_CLEARABLE = {"resolved_date", *GRADING_INPUTS, "measures"}


@dataclass(frozen=True, slots=True)
class Assessment:
    """An event's grade, CTCAE's suggestion (when it could make one) and the dose recommendation."""

    term: Term
    grade: int
    suggestion: GradeResult | None
    recommendation: DoseRecommendation
    dose_level: int
    measures: dict[str, float] = field(default_factory=dict)

    def ctcae_view(self) -> dict[str, Any] | None:
        """The suggestion as the form shows it: grade, rule, review flag, and whether it agrees."""
        s = self.suggestion
        if s is None:
            return None
        return {
            "version": s.version,
            "suggested_grade": s.grade,
            "description": s.description,
            "rule": s.rule,
            "needs_review": s.needs_review,
            "review_reasons": list(s.review_reasons),
            "possible": list(s.possible),
            "notes": list(s.notes),
            "agrees": s.grade == self.grade,
        }

    def stored_recommendation(self) -> dict[str, Any]:
        """The recommendation with the level and measures it was judged at (they explain it later)."""
        stored = self.recommendation.to_dict()
        stored["unresolved"] = list(stored["unresolved"])
        return stored | {"at_dose_level": self.dose_level, "measures": dict(self.measures)}


def assess(
    protocol: Protocol,
    *,
    dose_level: int,
    term: str,
    grade: int | None = None,
    answers: Mapping[str, Any] | None = None,
    value: Any = None,
    unit: str | None = None,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
    measures: Mapping[str, Any] | None = None,
) -> Assessment:
    """Grade an event (suggestion only, unless no grade is entered) and recommend what to do with the dose.

    ``measures`` are the dose rules' extra values (e.g. ``urine_protein_g_24h``); ``x_uln`` is
    derived from ``value`` and ``uln`` when not given.
    """
    version = str(protocol.settings["ctcae_version"].value)
    spec = find_term(term, version)
    suggestion = None
    if value is not None or answers:
        suggestion = ctcae.grade(
            spec.name,
            value,
            unit,
            lln=lln,
            uln=uln,
            baseline=baseline,
            answers=answers,
            version=version,
        )
    if grade is None:
        grade = _grade_from(suggestion)
    given = dict(measures or {})
    if "x_uln" not in given and uln and isinstance(value, int | float) and not isinstance(value, bool):
        # Same unit as the value: ctcae.grade has refused a limit in another unit by now.
        given["x_uln"] = round(float(value) / float(uln), 6)
    advice = recommend(protocol, level=dose_level, term=spec.name, grade=grade, measures=given)
    return Assessment(spec, grade, suggestion, advice, dose_level, given)


def _grade_from(suggestion: GradeResult | None) -> int:
    if suggestion is None:
        raise InputError("grade", "enter a grade, or answers or a value for CTCAE to suggest one")
    if suggestion.grade is None:
        raise InputError("grade", f"CTCAE could not suggest a grade ({suggestion.rule}): enter one")
    if suggestion.grade == 0:
        raise InputError(
            "grade",
            "within normal limits (CTCAE grade 0): enter a grade if the investigator judges otherwise",
        )
    return suggestion.grade


def get_adverse_event(session: Session, event_id: int) -> AdverseEvent:
    return get_row(session, AdverseEvent, event_id, "adverse event")


def list_adverse_events(session: Session, *, participant: Participant) -> list[AdverseEvent]:
    """A participant's events in order of onset."""
    return participant_rows(session, AdverseEvent, participant, AdverseEvent.onset_date, AdverseEvent.id)


def create_adverse_event(
    session: Session,
    *,
    participant: Participant,
    protocol: Protocol,
    term: str,
    onset_date: dt.date,
    serious: bool,
    relatedness: str,
    action_taken: str,
    outcome: str,
    grade: int | None = None,
    serious_criteria: Iterable[str] = (),
    resolved_date: dt.date | None = None,
    answers: Mapping[str, Any] | None = None,
    value: Any = None,
    unit: str | None = None,
    lln: float | None = None,
    uln: float | None = None,
    baseline: float | None = None,
    measures: Mapping[str, Any] | None = None,
) -> tuple[AdverseEvent, Assessment]:
    """Record an event with CTCAE's suggestion and the dose recommendation at the current level."""
    assessment = assess(
        protocol,
        dose_level=current_dose_level(session, participant),
        term=term,
        grade=grade,
        answers=answers,
        value=value,
        unit=unit,
        lln=lln,
        uln=uln,
        baseline=baseline,
        measures=measures,
    )
    event = AdverseEvent(
        participant_id=participant.id,
        onset_date=onset_date,
        resolved_date=resolved_date,
        serious=serious,
        serious_criteria=list(serious_criteria),
        relatedness=relatedness,
        action_taken=action_taken,
        outcome=outcome,
    )
    _apply(event, assessment)
    _check(event)
    session.add(event)
    session.flush()
    return event, assessment


def update_adverse_event(
    session: Session, *, event: AdverseEvent, protocol: Protocol, **changes: Any
) -> tuple[AdverseEvent, Assessment | None]:
    """Correct an event (the session carries the reason); a new term, grade or grading input re-assesses it.

    The recommendation is judged again at the dose level it was first judged at: a correction of
    the grade does not move the event to a later dose level. Grading inputs are not stored, so a
    new value must come with its unit and limits.
    """
    if not changes:
        raise InputError("body", "nothing to change")
    for key, value in changes.items():
        if value is None and key not in _CLEARABLE:
            raise InputError(key, "cannot be removed; give a value")
    grading = {k: changes.pop(k) for k in (*GRADING_INPUTS, "measures") if k in changes}
    term, grade = changes.pop("term", None), changes.pop("grade", None)
    assessment = None
    if term is not None or grade is not None or grading:
        stored = event.recommendation or {}
        level = stored.get("at_dose_level")
        if level is None:
            level = current_dose_level(session, session.get(Participant, event.participant_id))
        measures = grading.pop("measures", None)
        if measures is None and term is None and grading.get("value") is None:
            # Same event, same value: the measures it was judged with still hold.
            measures = stored.get("measures")
        assessment = assess(
            protocol,
            dose_level=level,
            term=term or event.term,
            grade=grade if grade is not None else event.grade,
            measures=measures,
            **grading,
        )
        # New answers or a new value replace the old ones (and their suggestion), even when emptied.
        regraded = "value" in grading or "answers" in grading
        if not regraded and assessment.term.name != event.term:
            # The old suggestion was for another term: it no longer says anything about this one.
            event.suggested_grade, event.answers = None, None
        _apply(event, assessment, regraded=regraded)
    for key, value in changes.items():
        if key == "serious_criteria":
            value = list(value)
        setattr(event, key, value)
    _check(event)
    session.flush()
    return event, assessment


def _apply(event: AdverseEvent, assessment: Assessment, *, regraded: bool = True) -> None:
    event.term = assessment.term.name
    event.soc = assessment.term.soc
    event.ctcae_version = assessment.term.version
    event.grade = assessment.grade
    event.recommendation = assessment.stored_recommendation()
    if regraded:
        suggestion = assessment.suggestion
        event.suggested_grade = suggestion.grade if suggestion else None
        # The answers as CTCAE read them (``"yes"`` stored as true), so both databases hold the same.
        event.answers = (suggestion.inputs["answers"] or None) if suggestion else None


def _check(event: AdverseEvent) -> None:
    """The event's fields must agree with each other (checked after every create and correction)."""
    for name, value, allowed in (
        ("relatedness", event.relatedness, RELATEDNESS),
        ("action_taken", event.action_taken, ACTIONS_TAKEN),
        ("outcome", event.outcome, OUTCOMES),
    ):
        if value not in allowed:
            raise InputError(name, f"{value!r} is not recorded here", allowed=allowed)
    criteria = list(event.serious_criteria or [])
    unknown = [c for c in criteria if c not in SERIOUS_CRITERIA]
    if unknown:
        raise InputError("serious_criteria", f"{unknown[0]!r} is not a criterion", allowed=SERIOUS_CRITERIA)
    if len(set(criteria)) != len(criteria):
        raise InputError("serious_criteria", "a criterion is listed twice")
    if event.serious and not criteria:
        raise InputError(
            "serious_criteria", "a serious event needs at least one criterion", allowed=SERIOUS_CRITERIA
        )
    if not event.serious and criteria:
        raise InputError("serious_criteria", "only a serious event has seriousness criteria")
    if event.outcome == "fatal" and "death" not in criteria:
        raise InputError("outcome", "a fatal event is serious with the criterion death")
    if "death" in criteria and event.outcome != "fatal":
        raise InputError("outcome", "the event resulted in death: its outcome is fatal", allowed="fatal")
    # CTCAE grade 5 is death related to the event: the same fact as a fatal outcome.
    if (event.grade == 5) != (event.outcome == "fatal"):
        if event.grade == 5:
            raise InputError("outcome", "grade 5 is death related to the event: its outcome is fatal")
        raise InputError("grade", "a fatal event is CTCAE grade 5 (death related to the event)")
    not_in_future(event.onset_date, "onset_date")
    not_in_future(event.resolved_date, "resolved_date")
    not_before(event.resolved_date, event.onset_date, "resolved_date", "the onset")
    if event.resolved_date is not None and event.outcome not in _ENDED:
        raise InputError(
            "resolved_date", f"the outcome is {event.outcome}: the event has not ended", allowed=_ENDED
        )
