"""Screening pages: the screening log, a new patient, the screening record, eligibility and enrolment.

The same store functions as the API (``api/routes/screening.py``) do the work, and the API's own
schemas check what a person typed, so a page and the API accept and refuse the same things. Every
POST checks its CSRF token first; forms and buttons appear only for roles that may use them; a
pseudonymised reader (the statistician) sees no names, record numbers or dates of birth.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from starlette.concurrency import run_in_threadpool

from nettrial.api.deps import Actor, reading, writing
from nettrial.api.privacy import evaluation_view, patient_view, record_view
from nettrial.api.routes.screening import EnrolmentCreate, PatientCreate
from nettrial.eligibility.io import validation_error
from nettrial.exceptions import ConflictError, InputError, PermissionDeniedError
from nettrial.store import screening
from nettrial.store.models import Participant, Patient, ScreeningRecordVersion, Site
from nettrial.web import record_form
from nettrial.web.i18n import translate
from nettrial.web.pages._forms import row_id
from nettrial.web.record_form import Parsed, form_field, form_values, record_from_form
from nettrial.web.render import render
from nettrial.web.session import check_csrf, page_actor, require
from nettrial.web.stage_panel import stage_panel

router = APIRouter(prefix="/screening", include_in_schema=False)
STATUSES = ("screening", "screen_failed", "enrolled")


def _reader(request: Request) -> Actor:
    actor = page_actor(request)
    if not (actor.may("study.read") or actor.may("study.read_pseudonymised")):
        raise PermissionDeniedError(actor.role, "read screening")
    return actor


def _writer(request: Request, action: str) -> Actor:
    actor = page_actor(request)
    require(actor, action)
    return actor


async def _posted(request: Request) -> dict[str, str]:
    """The form of a POST, once its CSRF token is checked."""
    await check_csrf(request)
    form = await request.form()
    return {key: str(value) for key, value in form.items() if key != "csrf_token"}


def _message(error: InputError) -> str:
    """The message shown next to its field (a lab's "haemoglobin.value: " prefix is said by the field)."""
    detail = re.sub(r"^[a-z_]+\.(?:value|unit): ", "", error.detail)
    if not error.allowed:
        return detail
    allowed = error.allowed if isinstance(error.allowed, str) else ", ".join(error.allowed)
    return f"{detail} ({allowed})"


# --- the screening log and a new patient ------------------------------------------------------------


@router.get("")
def screening_log(request: Request):
    """Every patient in screening, and the new-patient form for those who may add one."""
    return _log_page(request, _reader(request))


def _log_page(
    request: Request,
    actor: Actor,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
):
    with reading(request.app.state.db) as session:
        rows = []
        evaluations = screening.latest_evaluations(session)
        study_ids = dict(session.execute(select(Participant.patient_id, Participant.study_id)).all())
        for patient in session.scalars(
            select(Patient).options(joinedload(Patient.site)).order_by(Patient.id)
        ):
            latest = evaluations.get(patient.id)
            rows.append(
                {
                    **patient_view(patient, actor),
                    "decision": latest.decision if latest else None,
                    "failed": latest.result.get("failed", []) if latest else [],
                    "study_id": study_ids.get(patient.id),
                }
            )
        sites = session.scalars(select(Site).order_by(Site.code)).all()
        choose = ("", translate("screening.choice.choose", actor.language))
        return render(
            request,
            "screening_list.html",
            status=status,
            rows=rows,
            site_options=[choose, *((site.code, f"{site.code}: {site.name}") for site in sites)],
            sex_options=[
                choose,
                *((sex, translate(f"screening.sex.{sex}", actor.language)) for sex in screening.SEXES),
            ],
            statuses=STATUSES,
            values=values or {},
            errors=errors or {},
        )


@router.post("")
async def create_patient(request: Request):
    """Register a patient for screening (S-0001, S-0002, ...)."""
    form = await _posted(request)
    return await run_in_threadpool(_create_patient, request, form)


def _create_patient(request: Request, form: dict[str, str]):
    actor = _writer(request, "screening.write")
    try:
        try:
            body = PatientCreate.model_validate({k: v.strip() or None for k, v in form.items()})
        except ValidationError as error:
            raise validation_error(error) from None
        with writing(request.app.state.db, actor) as session:
            patient_id = screening.create_patient(session, **body.model_dump()).id
    except InputError as error:
        errors = {error.field: _message(error)}
        return _log_page(request, actor, 422, values=form, errors=errors)
    return RedirectResponse(f"/screening/{patient_id}?created=1", status_code=303)


# --- stage and grade as they are typed -----------------------------------------------------------------


@router.get("/stage-preview")
def stage_preview(request: Request):
    """The stage-and-grade panel for the pathology fields in the query (an HTML fragment)."""
    _reader(request)
    return _stage_fragment(request, dict(request.query_params))


@router.post("/stage-preview")
async def stage_preview_form(request: Request):
    """The same, for the pathology fields of the record form (what ``screening.js`` posts)."""
    form = await _posted(request)
    _reader(request)
    return _stage_fragment(request, form)


def _stage_fragment(request: Request, fields: dict[str, str]):
    pathology = {k.removeprefix("pathology."): v for k, v in fields.items() if k.startswith("pathology.")}
    return render(request, "_screening_stage.html", panel=stage_panel(pathology))


# --- one patient ----------------------------------------------------------------------------------------


@router.get("/{ref}")
def patient_page(request: Request, ref: str, saved: str = "", evaluated: str = "", created: str = ""):
    """The patient's screening record, eligibility checklist and enrolment."""
    actor = _reader(request)
    patient_id = row_id(ref, "patient")
    message = None
    if saved.isdigit():
        message = translate("screening.saved", actor.language, version=saved)
    elif evaluated:
        message = translate("screening.evaluated", actor.language)
    elif created:
        message = translate("screening.created", actor.language)
    return _patient_page(request, actor, patient_id, message=message)


def _patient_page(
    request: Request,
    actor: Actor,
    patient_id: int,
    *,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    enrol_problem: str | None = None,
    message: str | None = None,
    **extra: Any,
):
    protocol = request.app.state.protocol
    with reading(request.app.state.db) as session:
        patient = screening.get_patient(session, patient_id)
        saved = screening.latest_record(session, patient)
        record = record_view(saved.record, actor) if saved else None
        evaluation = screening.latest_evaluation(session, patient)
        evaluated_version = (
            session.get(ScreeningRecordVersion, evaluation.record_id).version if evaluation else None
        )
        participant = session.scalar(select(Participant).where(Participant.patient_id == patient.id))
        pathology = dict((record or {}).get("pathology", {}))
        if values is not None:  # the form as it was sent: the panel shows what was typed
            pathology |= {
                k.removeprefix("pathology."): v for k, v in values.items() if k.startswith("pathology.")
            }
        return render(
            request,
            "screening_patient.html",
            status=status,
            patient=patient_view(patient, actor),
            status_known=patient.status in STATUSES,
            saved=saved,
            record=record,
            values=values if values is not None else form_values(record, protocol),
            errors=errors or {},
            problem=problem,
            enrol_problem=enrol_problem,
            message=message,
            panel=stage_panel(pathology),
            evaluation=evaluation,
            result=evaluation_view(evaluation.result, patient.date_of_birth, actor) if evaluation else None,
            evaluated_version=evaluated_version,
            stale=bool(evaluation and saved and evaluation.record_id != saved.id),
            participant=participant,
            show_enrol=_enrol_shown(actor, participant, evaluation),
            form=record_form,
            labs=record_form.lab_rows(protocol),
            attestations=record_form.attestation_ids(protocol),
            criteria={c.id: c for c in protocol.eligibility.criteria},
            **extra,
        )


def _enrol_shown(actor: Actor, participant: Participant | None, evaluation: Any) -> bool:
    """The enrol button, for those who may press it: an investigator may always override (with a
    reason); a coordinator needs an ELIGIBLE evaluation (the store checks that it is current)."""
    if participant is not None or not actor.may("enrol"):
        return False
    return actor.may("enrol.override") or (evaluation is not None and evaluation.decision == "ELIGIBLE")


@router.post("/{ref}/record")
async def save_record(request: Request, ref: str):
    """Save a new version of the screening record."""
    form = await _posted(request)
    return await run_in_threadpool(_save_record, request, ref, form)


def _save_record(request: Request, ref: str, form: dict[str, str]):
    actor = _writer(request, "screening.write")
    patient_id = row_id(ref, "patient")
    parsed: Parsed | None = None
    try:
        with writing(request.app.state.db, actor) as session:
            patient = screening.get_patient(session, patient_id)
            previous = screening.latest_record(session, patient)
            parsed = record_from_form(form, previous.record if previous else None, request.app.state.protocol)
            saved = screening.save_screening_record(
                session, patient=patient, record=parsed.document, user_id=actor.user_id
            )
            version = saved.version
    except InputError as error:
        return _refused(request, actor, patient_id, form, error, form_field(error, parsed))
    return RedirectResponse(f"/screening/{patient_id}?saved={version}#record", status_code=303)


def _refused(request: Request, actor: Actor, patient_id: int, form, error: InputError, field: str | None):
    """The page again with the values as typed and the message next to its field."""
    errors = {field: _message(error)} if field else {}
    problem = None if field else str(error)
    return _patient_page(request, actor, patient_id, status=422, values=form, errors=errors, problem=problem)


@router.post("/{ref}/evaluate")
async def evaluate(request: Request, ref: str):
    """Evaluate eligibility on the latest record and store the verdicts with their evidence."""
    await _posted(request)
    return await run_in_threadpool(_evaluate, request, ref)


def _evaluate(request: Request, ref: str):
    actor = _writer(request, "screening.write")
    patient_id = row_id(ref, "patient")
    try:
        with writing(request.app.state.db, actor) as session:
            patient = screening.get_patient(session, patient_id)
            screening.evaluate_patient(
                session, patient=patient, protocol=request.app.state.protocol, user_id=actor.user_id
            )
    except ConflictError as error:
        return _patient_page(request, actor, patient_id, status=409, problem=error.detail)
    except InputError as error:
        # The record was saved but the staging engine refuses a value (an extent unknown for the site).
        field = form_field(error, None)
        return _patient_page(
            request,
            actor,
            patient_id,
            status=422,
            errors={field: _message(error)} if field else {},
            problem=None if field else str(error),
        )
    return RedirectResponse(f"/screening/{patient_id}?evaluated=1#checklist", status_code=303)


@router.post("/{ref}/enrol")
async def enrol(request: Request, ref: str):
    """Enrol the patient as the next participant (NET-001, ...); an investigator may override."""
    form = await _posted(request)
    return await run_in_threadpool(_enrol, request, ref, form)


def _enrol(request: Request, ref: str, form: dict[str, str]):
    actor = _writer(request, "enrol")
    patient_id = row_id(ref, "patient")
    try:
        try:
            body = EnrolmentCreate.model_validate({"override_reason": form.get("override_reason") or None})
        except ValidationError as error:
            raise validation_error(error) from None
        with writing(request.app.state.db, actor) as session:
            participant = screening.enrol(
                session,
                patient=screening.get_patient(session, patient_id),
                protocol=request.app.state.protocol,
                user_id=actor.user_id,
                may_override=actor.may("enrol.override"),
                override_reason=body.override_reason,
            )
            study_id = participant.study_id
    except (ConflictError, InputError) as error:
        return _patient_page(
            request,
            actor,
            patient_id,
            status=409 if isinstance(error, ConflictError) else 422,
            enrol_problem=error.detail,
            override_reason=form.get("override_reason", ""),
        )
    return RedirectResponse(f"/participants/{study_id}", status_code=303)
