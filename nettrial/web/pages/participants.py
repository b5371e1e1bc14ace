"""Participants: the list, and one participant's page (visits, dosing, adverse events, labs, vital signs,
imaging, disposition), each section with its forms for the roles that may use them.

Every form posts to a handler in ``participant_forms``, ``adverse_event_pages`` or ``corrections``; a
refusal renders this page again (``participant_page``) with the message next to the field and the
values as entered; a success redirects back to the section (post, redirect, get).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from nettrial.api.deps import writing
from nettrial.api.privacy import patient_view
from nettrial.exceptions import ConflictError, InputError
from nettrial.protocol.model import Protocol
from nettrial.safety.terms import terms
from nettrial.store import adverse_events, assessments, measurements, schedule, treatment, visits
from nettrial.store.models import AdverseEvent, DosingPeriod, Participant
from nettrial.store.participants import get_participant
from nettrial.units import lab_tests
from nettrial.web.i18n import translate
from nettrial.web.pages._forms import FormState, note_refusal, require_any, study_id
from nettrial.web.render import render
from nettrial.web.session import page_actor

router = APIRouter(include_in_schema=False)

READ = ("study.read", "study.read_pseudonymised")
SECTIONS = ("visits", "dosing", "adverse-events", "labs", "vitals", "imaging", "disposition")
# What a redirect after a save may announce (``?done=``): the key of a message, nothing else.
DONE = ("visit", "dosing", "stopped", "adverse_event", "lab", "vitals", "imaging", "disposition", "corrected")
VOCABULARY = {
    "visit": visits.VISIT_STATUSES,
    "stop_reason": treatment.STOP_REASONS,
    "serious_criterion": adverse_events.SERIOUS_CRITERIA,
    "relatedness": adverse_events.RELATEDNESS,
    "action_taken": adverse_events.ACTIONS_TAKEN,
    "outcome": adverse_events.OUTCOMES,
    "method": assessments.METHODS,
    "imaging_result": assessments.RESULTS,
    "recurrence_site": assessments.RECURRENCE_SITES,
    "disposition_phase": assessments.PHASES,
    "disposition_status": assessments.DISPOSITION_STATUSES,
}
_VITAL_TESTS = {test for test, _ in measurements.VITAL_SIGNS.values()}
_ALL_DISPOSITION_STATUSES = tuple(
    dict.fromkeys(s for phase in assessments.PHASES for s in assessments.DISPOSITION_STATUSES[phase])
)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _summary(participant: Participant, periods: list[DosingPeriod]) -> dict[str, Any]:
    return {
        "participant": participant,
        "screening_number": participant.patient.screening_number,
        # The starting level (0) until the dosing log says otherwise.
        "current_dose_level": periods[-1].dose_level if periods else 0,
        "treatment_state": treatment.state(periods),
    }


@router.get("/participants")
def participant_list(request: Request):
    """Every participant with where each stands in treatment."""
    require_any(page_actor(request), *READ)
    with request.app.state.db.session(write=False) as session:
        found = session.scalars(
            select(Participant).options(joinedload(Participant.patient)).order_by(Participant.study_number)
        ).all()
        periods = treatment.periods_by_participant(session, (p.id for p in found))
        return render(request, "participants.html", rows=[_summary(p, periods.get(p.id, [])) for p in found])


@router.get("/participants/{ref}")
def participant_detail(request: Request, ref: str, done: str = "", event: str = ""):
    """One participant's page: schedule, dosing, adverse events, labs, vital signs, imaging, disposition."""
    actor = page_actor(request)
    require_any(actor, *READ)
    message = translate(f"done.{done}", actor.language) if done in DONE else None
    saved_event = int(event) if event.isascii() and event.isdigit() and len(event) < 10 else None
    return participant_page(request, study_id(ref), message=message, saved_event=saved_event)


@router.get("/participants/{ref}/{section}")
def back_to_participant(request: Request, ref: str, section: str):
    """A form's address opened as a page (after a sign-in or a language switch): the participant's page."""
    page_actor(request)
    anchor = section if section in SECTIONS else ""
    anchor = {"vital-signs": "vitals", "dispositions": "disposition"}.get(section, anchor)
    return RedirectResponse(f"/participants/{study_id(ref)}" + (f"#{anchor}" if anchor else ""), 303)


def participant_page(
    request: Request,
    ref: str,
    *,
    form: FormState | None = None,
    status: int = 200,
    message: str | None = None,
    preview: dict[str, Any] | None = None,
    saved_event: int | None = None,
) -> Response:
    """The participant's page; ``form`` is the form that was posted (with its refusal, if any)."""
    actor = request.state.actor
    protocol: Protocol = request.app.state.protocol
    on = today()
    with request.app.state.db.session(write=False) as session:
        participant = get_participant(session, ref)
        try:
            plan = schedule.participant_schedule(
                session, participant=participant, protocol=protocol, today=on
            )
        except ConflictError:
            plan = None  # no first dose date yet: the page says so
        events = adverse_events.list_adverse_events(session, participant=participant)
        context = {
            **_summary(participant, treatment.list_periods(session, participant)),
            "patient": patient_view(participant.patient, actor),
            "schedule": plan,
            "dosing": treatment.summary(session, participant=participant, protocol=protocol, today=on),
            "events": events,
            "saved_event": next((e for e in events if e.id == saved_event), None),
            "labs": measurements.list_labs(session, participant),
            "vitals": measurements.list_vital_signs(session, participant),
            "imaging": assessments.list_tumour_assessments(session, participant=participant),
            "dispositions": assessments.list_dispositions(session, participant=participant),
        }
        return render(
            request,
            "participant.html",
            status=status,
            **context,
            **choices(protocol, actor.language),
            forms=_forms(form, context),
            preview=preview,
            message=message,
        )


def choices(protocol: Protocol, language: str) -> dict[str, Any]:
    """What the forms offer: the protocol's ladder and visits, CTCAE terms, lab tests and vocabularies.

    ``coded(kind, codes)`` pairs each code with its text (key ``<kind>.<code>``); ``plain`` pairs a
    value with itself; ``levels`` pairs each dose level with the protocol's description of it.
    """
    version = str(protocol.settings["ctcae_version"].value)
    return {
        "coded": lambda kind, codes: [(c, translate(f"{kind}.{c}", language)) for c in codes],
        "plain": lambda values: [(v, v) for v in values],
        "levels": lambda ladder: [(lv.level, f"{lv.level}: {lv.description}") for lv in ladder],
        "all_statuses": _ALL_DISPOSITION_STATUSES,
        "vocabulary": VOCABULARY,
        "dose_levels": protocol.dose_levels.levels,
        "visit_codes": visits.visit_codes(protocol),
        "ctcae_terms": sorted(terms(version)),
        "lab_tests": {name: spec for name, spec in lab_tests().items() if name not in _VITAL_TESTS},
        "measures": protocol.dose_modification.measures,
    }


def _forms(posted: FormState | None, context: dict[str, Any]) -> dict[str, FormState]:
    """Every form of the page: the one posted as it was, the others with their starting values."""
    plan, dosing = context["schedule"], context["dosing"]
    next_visit = ""
    if plan is not None:
        next_visit = next((s.visit.id for s in plan.statuses if s.status in ("overdue", "due")), "")
    open_period = dosing.periods[-1] if dosing.periods and dosing.periods[-1].stop_date is None else None
    forms = {
        "visit": FormState("visit", {"visit_code": next_visit, "status": "done"}),
        "dosing": FormState("dosing", {"dose_level": str(dosing.current_dose_level), "missed_doses": "0"}),
        "stop": FormState("stop", {"missed_doses": str(open_period.missed_doses) if open_period else "0"}),
        "ae": FormState("ae"),
        "lab": FormState("lab"),
        "vitals": FormState("vitals"),
        "imaging": FormState("imaging", {"recurrence_sites": []}),
        "disposition": FormState("disposition"),
    }
    if posted is not None:
        forms[posted.name] = posted
    forms["stop"].values.setdefault("period", open_period.id if open_period else None)
    return forms


def submit(
    request: Request,
    ref: str,
    state: FormState,
    save: Callable[[Session, Participant], Any],
    *,
    section: str,
    done: str,
    reason: str | None = None,
    page: Callable[..., Response] | None = None,
) -> Response:
    """Run ``save`` in one audited write; redirect to ``section`` on success, or show the refusal.

    Nothing is written when ``save`` raises: the transaction is rolled back before the page renders.
    """
    actor = request.state.actor
    try:
        with writing(request.app.state.db, actor, reason) as session:
            participant = get_participant(session, ref)
            saved = save(session, participant)
    except (InputError, ConflictError) as error:
        status = 409 if isinstance(error, ConflictError) else 422
        note_refusal(state, error)
        if page is not None:
            return page(state, status)
        return participant_page(request, ref, form=state, status=status)
    query = f"?done={done}"
    if isinstance(saved, AdverseEvent):
        query += f"&event={saved.id}"  # the page shows the recommendation stored with it
    return RedirectResponse(f"/participants/{ref}{query}#{section}", status_code=303)
