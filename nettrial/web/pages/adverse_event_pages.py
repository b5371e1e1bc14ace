"""The adverse-event form: CTCAE's suggestion and the dose-modification recommendation before saving.

"Preview" (a submit button, so it works without JavaScript) renders the page again with the
assessment and nothing saved; participant.js asks the fragment endpoint for the same assessment when
the term or the grade changes. Both run ``store.adverse_events.assess`` at the participant's current
dose level with the body the API's ``/adverse-events/preview`` checks; "Save" calls
``create_adverse_event`` as the API route does, and the page then shows the stored recommendation.
"""

from __future__ import annotations

import math
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nettrial.api.routes.adverse_events import AdverseEventCreate, AdverseEventPreview
from nettrial.exceptions import InputError
from nettrial.protocol.model import Protocol
from nettrial.safety.terms import Term, find_term, questions
from nettrial.store import adverse_events
from nettrial.store.models import Participant
from nettrial.store.participants import current_dose_level, get_participant
from nettrial.web.pages._forms import FormState, form_data, note_refusal, study_id, validated
from nettrial.web.pages.participant_forms import writer_form
from nettrial.web.pages.participants import participant_page, submit
from nettrial.web.render import render
from nettrial.web.session import check_csrf

router = APIRouter(include_in_schema=False)

LISTS = ("serious_criteria",)
GRADING = ("term", "grade", "answers", "value", "unit", "lln", "uln", "baseline", "measures")


def _version(protocol: Protocol) -> str:
    return str(protocol.settings["ctcae_version"].value)


def _term(name: str, protocol: Protocol) -> Term | None:
    """The CTCAE term named (exactly, case-insensitively or by alias), None when none is named yet."""
    return find_term(name, _version(protocol)) if name else None


def grading_body(state: FormState, term: Term | None, fields: tuple[str, ...]) -> dict[str, Any]:
    """The form as the API's body: answers only to the chosen term's questions, a number as a number.

    Answers left from another term (the term was changed without JavaScript) are dropped rather
    than refused; the page then asks the new term's questions.
    """
    values = {
        key: value
        for key, value in state.values.items()
        if not key.startswith("answers.") or (term is not None and key[8:] in term.questions)
    }
    body = form_data(values, fields, flags=("serious",), lists=LISTS)
    value = body.get("value")
    if isinstance(value, str):
        # A number as a number (the dose rules derive x ULN from it); a blood pressure, "165/95", as text.
        with suppress(ValueError):
            number = float(value)
            body["value"] = number if math.isfinite(number) else value
    return body


def _questions(term: Term | None) -> list[dict[str, Any]]:
    if term is None:
        return []
    known = questions(term.version)
    return [
        {
            "name": known[name].name,
            "type": known[name].type,
            "text": known[name].text,
            "options": [(v, v.replace("_", " ")) for v in known[name].values],
            "minimum": known[name].minimum,
            "maximum": known[name].maximum,
        }
        for name in term.questions
    ]


def preview(session: Session, participant: Participant, protocol: Protocol, state: FormState, language: str):
    """The term's questions and, when a grade or something to grade from is given, the assessment."""
    term = None
    try:
        term = _term(state.value("term"), protocol)
    except InputError as error:
        note_refusal(state, error)
    found: dict[str, Any] = {"term": term, "questions": _questions(term), "assessment": None}
    body = grading_body(state, term, GRADING)
    if term is None or not ({"grade", "answers", "value"} & body.keys()):
        return found  # nothing to assess yet: the page says what to enter
    try:
        checked = validated(AdverseEventPreview, {**body, "participant_id": participant.id}, language)
        found["assessment"] = adverse_events.assess(
            protocol,
            dose_level=current_dose_level(session, participant),
            **checked.model_dump(exclude={"participant_id"}),
        )
    except InputError as error:
        note_refusal(state, error)
    return found


def _preview(request: Request, ref: str, state: FormState) -> dict[str, Any]:
    with request.app.state.db.session(write=False) as session:
        participant = get_participant(session, ref)
        return preview(session, participant, request.app.state.protocol, state, request.state.actor.language)


@router.post("/participants/{ref}/adverse-events")
async def record_adverse_event(request: Request, ref: str):
    """Preview the CTCAE suggestion and dose recommendation (button "preview"), or save the event."""
    await check_csrf(request)
    state = await writer_form(request, "ae", lists=LISTS)
    ref = study_id(ref)
    protocol = request.app.state.protocol
    if "preview" in state.values:
        found = await run_in_threadpool(_preview, request, ref, state)
        status = 422 if state.errors else 200
        return await run_in_threadpool(
            participant_page, request, ref, form=state, preview=found, status=status
        )

    def save(session: Session, participant: Participant):
        try:
            term = _term(state.value("term"), protocol)
        except InputError:
            term = None  # create_adverse_event refuses the term, naming it
        body = grading_body(state, term, tuple(AdverseEventCreate.model_fields))
        fields = validated(AdverseEventCreate, body, state.language)
        event, _ = adverse_events.create_adverse_event(
            session, participant=participant, protocol=protocol, **fields.model_dump()
        )
        return event

    def again(refused: FormState, status: int):
        # The term's questions again, so the answers given are shown (and kept) beside the refusal.
        found = _preview(request, ref, FormState("ae", dict(refused.values), language=refused.language))
        return participant_page(request, ref, form=refused, status=status, preview=found)

    return await run_in_threadpool(
        submit, request, ref, state, save, section="adverse-events", done="adverse_event", page=again
    )


@router.post("/participants/{ref}/adverse-events/preview")
async def preview_fragment(request: Request, ref: str):
    """The term's questions and the assessment as an HTML fragment (for participant.js; writes nothing)."""
    await check_csrf(request)
    state = await writer_form(request, "ae", lists=LISTS)
    found = await run_in_threadpool(_preview, request, study_id(ref), state)
    return render(request, "ae_preview.html", f=state, preview=found)
