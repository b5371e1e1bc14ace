"""Correcting a record after first entry: one page per record, its form filled with what is stored,
and a Reason (the audit trail records it with every field that changes).

Only the fields the form changes are sent to the store, so the audit trail shows exactly what was
corrected; each kind of record is corrected by the store function its API route calls, with the
route's update schema as the validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nettrial.api.routes.adverse_events import AdverseEventUpdate
from nettrial.api.routes.assessments import TumourAssessmentUpdate
from nettrial.api.routes.dispositions import DispositionUpdate
from nettrial.api.routes.dosing import DosingUpdate
from nettrial.api.routes.measurements import LabUpdate, VitalSignsUpdate
from nettrial.api.routes.participants import VisitUpdate
from nettrial.exceptions import InputError, NotFoundError
from nettrial.protocol.model import Protocol
from nettrial.store import adverse_events, assessments, measurements, treatment, visits
from nettrial.store.models import Participant
from nettrial.store.participants import get_participant
from nettrial.web.i18n import translate
from nettrial.web.pages._forms import FormState, entered, form_data, row_id, shown, study_id, validated
from nettrial.web.pages.participants import choices, submit
from nettrial.web.render import render
from nettrial.web.session import check_csrf, page_actor, require

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Correction:
    """How one kind of record is found, shown and corrected."""

    entity: str  # the table, as the audit trail and the history page name it
    section: str  # where it is on the participant's page
    model: type[BaseModel]  # the API route's update schema
    fields: tuple[str, ...]  # what the form may change
    find: Callable[[Session, Participant, str], Any]
    correct: Callable[[Session, Any, Protocol, dict[str, Any]], Any]
    flags: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (form field, column) where they differ


def _owned(get: Callable[[Session, int], Any], entity: str) -> Callable[[Session, Participant, str], Any]:
    """Find a record by id, as long as it is the participant's (else: no such record)."""

    def find(session: Session, participant: Participant, key: str) -> Any:
        found = get(session, row_id(key, entity))
        if found.participant_id != participant.id:
            raise NotFoundError(entity, key)
        return found

    return find


def _visit(session: Session, participant: Participant, key: str) -> Any:
    return visits.get_visit(session, participant=participant, visit_code=key)


def _event(session: Session, event: Any, protocol: Protocol, changes: dict[str, Any]) -> Any:
    return adverse_events.update_adverse_event(session, event=event, protocol=protocol, **changes)[0]


def _disposition(session: Session, row: Any, protocol: Protocol, changes: dict[str, Any]) -> Any:
    return assessments.update_disposition(session, disposition=row, **changes)


KINDS: dict[str, Correction] = {
    "visits": Correction(
        "visit",
        "visits",
        VisitUpdate,
        ("status", "visit_date", "note"),
        _visit,
        lambda s, row, p, changes: visits.update_visit(s, visit=row, changes=changes),
    ),
    "dosing": Correction(
        "dosing_period",
        "dosing",
        DosingUpdate,
        ("stop_date", "stop_reason", "missed_doses", "adverse_event_id"),
        _owned(treatment.get_period, "dosing period"),
        lambda s, row, p, changes: treatment.update_period(s, period=row, protocol=p, changes=changes),
    ),
    "adverse-events": Correction(
        "adverse_event",
        "adverse-events",
        AdverseEventUpdate,
        (
            *("term", "grade", "onset_date", "resolved_date", "serious", "serious_criteria"),
            *("relatedness", "action_taken", "outcome"),
        ),
        _owned(adverse_events.get_adverse_event, "adverse event"),
        _event,
        flags=("serious",),
        lists=("serious_criteria",),
    ),
    "labs": Correction(
        "lab_result",
        "labs",
        LabUpdate,
        ("value", "unit", "lln", "uln", "collected_on", "visit_code"),
        _owned(measurements.get_lab, "lab result"),
        lambda s, row, p, changes: measurements.update_lab(s, lab=row, protocol=p, changes=changes),
    ),
    "vital-signs": Correction(
        "vital_signs",
        "vitals",
        VitalSignsUpdate,
        ("measured_on", *measurements.VITAL_SIGNS, "visit_code"),
        _owned(measurements.get_vital_signs, "vital signs"),
        lambda s, row, p, changes: measurements.update_vital_signs(
            s, vitals=row, protocol=p, changes=changes
        ),
    ),
    "imaging": Correction(
        "tumour_assessment",
        "imaging",
        TumourAssessmentUpdate,
        ("assessed_on", "method", "result", "recurrence_sites", "visit_code", "new_anticancer_therapy_on"),
        _owned(assessments.get_tumour_assessment, "tumour assessment"),
        lambda s, row, p, changes: assessments.update_tumour_assessment(s, assessment=row, **changes),
        lists=("recurrence_sites",),
    ),
    "dispositions": Correction(
        "disposition",
        "disposition",
        DispositionUpdate,
        ("status", "status_date", "status_reason", "cause_of_death"),
        _owned(assessments.get_disposition, "disposition"),
        _disposition,
        renamed=(("status_reason", "reason"),),
    ),
}


def _kind(name: str) -> Correction:
    if name not in KINDS:
        raise NotFoundError("kind of record", name)
    return KINDS[name]


def _stored(kind: Correction, row: Any) -> dict[str, Any]:
    """The record's values under the form's field names."""
    columns = dict(kind.renamed)
    return {name: getattr(row, columns.get(name, name)) for name in kind.fields}


def changes_asked(kind: Correction, row: Any, state: FormState, language: str) -> dict[str, Any]:
    """The fields the form changes, checked by the update schema (with the reason)."""
    given = form_data(state.values, (*kind.fields, "reason"), flags=kind.flags, lists=kind.lists)
    # An emptied field is a request to clear it (the store says whether it may be cleared).
    body = {name: given.get(name) for name in kind.fields} | {"reason": given.get("reason")}
    checked = validated(kind.model, {k: v for k, v in body.items() if v is not None}, language)
    stored = _stored(kind, row)
    changes = {}
    for name in kind.fields:
        new, old = getattr(checked, name), stored[name]
        if name in kind.lists:
            new, old = list(new or []), list(old or [])
        if new != old:
            changes[name] = new
    if not changes:
        raise InputError("body", translate("form.nothing_changed", language))
    columns = dict(kind.renamed)
    return {columns.get(name, name): value for name, value in changes.items()}


def correction_page(
    request: Request, ref: str, kind_name: str, key: str, state: FormState | None = None, status: int = 200
) -> Response:
    kind = _kind(kind_name)
    with request.app.state.db.session(write=False) as session:
        participant = get_participant(session, ref)
        row = kind.find(session, participant, key)
        if state is None:
            state = FormState("correct", {name: shown(value) for name, value in _stored(kind, row).items()})
        return render(
            request,
            "correct.html",
            status=status,
            participant=participant,
            kind=kind_name,
            correction=kind,
            key=key,
            row=row,
            events=adverse_events.list_adverse_events(session, participant=participant),
            f=state,
            **choices(request.app.state.protocol, request.state.actor.language),
        )


@router.get("/participants/{ref}/{kind}/{key}/correct")
def correct_page(request: Request, ref: str, kind: str, key: str):
    """The correction form of one record, filled with what is stored."""
    require(page_actor(request), "clinical.write")
    return correction_page(request, study_id(ref), kind, key)


@router.post("/participants/{ref}/{kind}/{key}/correct")
async def correct(request: Request, ref: str, kind: str, key: str):
    """Correct one record, with a reason; only the fields that change are written (and audited)."""
    await check_csrf(request)
    actor = await run_in_threadpool(page_actor, request)
    require(actor, "clinical.write")
    found, ref = _kind(kind), study_id(ref)
    state = FormState("correct", entered(await request.form(), found.lists), language=actor.language)
    protocol = request.app.state.protocol

    def save(session: Session, participant: Participant):
        row = found.find(session, participant, key)
        return found.correct(session, row, protocol, changes_asked(found, row, state, actor.language))

    def again(refused: FormState, status: int) -> Response:
        return correction_page(request, ref, kind, key, refused, status)

    return await run_in_threadpool(
        submit,
        request,
        ref,
        state,
        save,
        section=found.section,
        done="corrected",
        reason=state.value("reason") or None,
        page=again,
    )
