"""The participant page's forms for new records: visits, dosing periods (and stopping one), laboratory
results, vital signs, imaging and dispositions.

Each handler checks the CSRF token first, then the role (``clinical.write``), then validates the form
with the API route's schema and calls the same store function as the route. The database work runs in
the thread pool, as a plain route's would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nettrial.api.routes.assessments import TumourAssessmentCreate
from nettrial.api.routes.dispositions import DispositionCreate
from nettrial.api.routes.dosing import DosingCreate, DosingUpdate
from nettrial.api.routes.measurements import LabCreate, VitalSignsCreate
from nettrial.api.routes.participants import VisitCreate
from nettrial.exceptions import InputError, NotFoundError
from nettrial.store import assessments, measurements, treatment, visits
from nettrial.store.models import Participant
from nettrial.web.i18n import translate
from nettrial.web.pages._forms import FormState, entered, form_data, row_id, study_id, validated
from nettrial.web.pages.participants import submit
from nettrial.web.session import check_csrf, page_actor, require

router = APIRouter(include_in_schema=False)


async def writer_form(request: Request, name: str, lists: tuple[str, ...] = ()) -> FormState:
    """The posted form of a signed-in user who may enter clinical data (after the CSRF check)."""
    actor = await run_in_threadpool(page_actor, request)
    require(actor, "clinical.write")
    return FormState(name, entered(await request.form(), lists), language=actor.language)


def body(model: type[BaseModel], state: FormState, **kinds: Any) -> dict[str, Any]:
    """The form as the API route's request body, checked by the route's schema."""
    return validated(model, form_data(state.values, model.model_fields, **kinds), state.language).model_dump()


async def create(
    request: Request,
    ref: str,
    form: str,
    model: type[BaseModel],
    store_create: Callable[..., Any],
    *,
    section: str,
    done: str,
    lists: tuple[str, ...] = (),
    with_protocol: bool = True,
):
    """A new record from a form: CSRF, role, the route's schema, the store function, the page again."""
    await check_csrf(request)
    state = await writer_form(request, form, lists=lists)
    protocol = {"protocol": request.app.state.protocol} if with_protocol else {}

    def save(session: Session, participant: Participant):
        return store_create(session, participant=participant, **protocol, **body(model, state, lists=lists))

    return await run_in_threadpool(submit, request, study_id(ref), state, save, section=section, done=done)


@router.post("/participants/{ref}/visits")
async def record_visit(request: Request, ref: str):
    """Record a scheduled visit as done (with its date) or missed."""
    return await create(
        request, ref, "visit", VisitCreate, visits.record_visit, section="visits", done="visit"
    )


@router.post("/participants/{ref}/dosing")
async def add_dosing_period(request: Request, ref: str):
    """Record a dosing period at a level of the protocol's ladder; the first one is the first dose."""
    return await create(
        request, ref, "dosing", DosingCreate, treatment.add_period, section="dosing", done="dosing"
    )


_STOP_FIELDS = ("stop_date", "stop_reason", "missed_doses", "adverse_event_id")


@router.post("/participants/{ref}/dosing/{period_id}/stop")
async def stop_dosing_period(request: Request, ref: str, period_id: str):
    """Stop the open dosing period: the last day dosed, why it stopped, and the reason for the change."""
    await check_csrf(request)
    state = await writer_form(request, "stop")
    state.values["period"] = period_id
    protocol = request.app.state.protocol

    def save(session: Session, participant: Participant):
        period = treatment.get_period(session, row_id(period_id, "dosing period"))
        if period.participant_id != participant.id:
            raise NotFoundError("dosing period", period_id)
        # Stopping needs the last day dosed and why; other fields left empty are not changed.
        given = form_data(state.values, (*_STOP_FIELDS, "reason"))
        for name in ("stop_date", "stop_reason"):
            if name not in given:
                raise InputError(name, translate("form.missing", state.language))
        checked = validated(DosingUpdate, given, state.language)
        changes = {name: getattr(checked, name) for name in _STOP_FIELDS if name in given}
        return treatment.update_period(session, period=period, protocol=protocol, changes=changes)

    return await run_in_threadpool(
        submit,
        request,
        study_id(ref),
        state,
        save,
        section="dosing",
        done="stopped",
        reason=state.value("reason") or None,
    )


@router.get("/participants/{ref}/dosing/{period_id}/stop")
def stop_form_address(request: Request, ref: str, period_id: str):
    """The stop form's address opened as a page (after a sign-in or a language switch)."""
    page_actor(request)
    return RedirectResponse(f"/participants/{study_id(ref)}#dosing", status_code=303)


@router.post("/participants/{ref}/labs")
async def add_lab(request: Request, ref: str):
    """Enter a laboratory result; it is checked for unit and plausibility and graded by CTCAE."""
    return await create(request, ref, "lab", LabCreate, measurements.add_lab, section="labs", done="lab")


@router.post("/participants/{ref}/vital-signs")
async def add_vital_signs(request: Request, ref: str):
    """Enter vital signs; blood pressure is graded as Hypertension and weight as Weight loss."""
    add = measurements.add_vital_signs
    return await create(request, ref, "vitals", VitalSignsCreate, add, section="vitals", done="vitals")


@router.post("/participants/{ref}/imaging")
async def add_tumour_assessment(request: Request, ref: str):
    """Record an imaging assessment: no evidence of disease, or recurrence with its sites."""
    return await create(
        request,
        ref,
        "imaging",
        TumourAssessmentCreate,
        assessments.create_tumour_assessment,
        section="imaging",
        done="imaging",
        lists=("recurrence_sites",),
        with_protocol=False,
    )


@router.post("/participants/{ref}/dispositions")
async def add_disposition(request: Request, ref: str):
    """Record how treatment or the study ended; the participant's status follows."""
    return await create(
        request,
        ref,
        "disposition",
        DispositionCreate,
        assessments.create_disposition,
        section="disposition",
        done="disposition",
        with_protocol=False,
    )
