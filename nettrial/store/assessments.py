"""Tumour assessments (imaging for recurrence) and dispositions (how treatment and the study ended).

Both feed the endpoints (protocol.md 4): recurrence-free survival counts the first radiologically
documented local, nodal or distant recurrence, or death, and censors at the last adequate imaging
(before any new anticancer therapy); dispositions give deaths, withdrawals and losses to follow-up.
A participant has at most one disposition per phase; recording one moves the participant's status
on (``follow_up`` after treatment, ``off_study`` or ``completed`` after the study, ``died``), in the
same audited transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError, InputError
from nettrial.store import audit
from nettrial.store._dates import earliest_local_date, not_before, not_in_future
from nettrial.store._rows import get_row, participant_rows
from nettrial.store.models import Disposition, Participant, TumourAssessment

METHODS = ("CT", "MRI", "PET-CT")
RESULTS = ("no_evidence_of_disease", "recurrence")
RECURRENCE_SITES = ("local", "nodal", "liver", "other_distant")
PHASES = ("treatment", "study")
DISPOSITION_STATUSES = {
    "treatment": (
        "completed",
        "adverse_event",
        "withdrawn",
        "investigator_decision",
        "recurrence",
        "death",
        "lost_to_follow_up",
        "other",
    ),
    "study": ("completed", "withdrawn", "lost_to_follow_up", "death", "other"),
}
# Participant status implied by a disposition, and which wins when both phases have one.
_STATUS_RANK = {"follow_up": 1, "off_study": 2, "completed": 2, "died": 3}


# --- tumour assessments -------------------------------------------------------------------------


def get_tumour_assessment(session: Session, assessment_id: int) -> TumourAssessment:
    return get_row(session, TumourAssessment, assessment_id, "tumour assessment")


def list_tumour_assessments(session: Session, *, participant: Participant) -> list[TumourAssessment]:
    """A participant's imaging in date order."""
    return participant_rows(
        session, TumourAssessment, participant, TumourAssessment.assessed_on, TumourAssessment.id
    )


def create_tumour_assessment(
    session: Session,
    *,
    participant: Participant,
    assessed_on: dt.date,
    method: str,
    result: str,
    recurrence_sites: Iterable[str] = (),
    visit_code: str | None = None,
    new_anticancer_therapy_on: dt.date | None = None,
) -> TumourAssessment:
    assessment = TumourAssessment(
        participant_id=participant.id,
        assessed_on=assessed_on,
        method=method,
        result=result,
        recurrence_sites=_sites(recurrence_sites),
        visit_code=visit_code,
        new_anticancer_therapy_on=new_anticancer_therapy_on,
    )
    _check_assessment(assessment)
    session.add(assessment)
    session.flush()
    return assessment


def update_tumour_assessment(
    session: Session, *, assessment: TumourAssessment, **changes: Any
) -> TumourAssessment:
    """Correct an assessment (the session carries the reason)."""
    _apply_changes(assessment, changes, clearable=("visit_code", "new_anticancer_therapy_on"))
    if "recurrence_sites" in changes:
        assessment.recurrence_sites = _sites(changes["recurrence_sites"])
    _check_assessment(assessment)
    session.flush()
    return assessment


def _sites(sites: Iterable[str]) -> list[str]:
    given = list(sites)
    unknown = [s for s in given if s not in RECURRENCE_SITES]
    if unknown:
        raise InputError("recurrence_sites", f"{unknown[0]!r} is not a site", allowed=RECURRENCE_SITES)
    # In a fixed order, without repeats, so equal findings are stored (and audited) alike.
    return [s for s in RECURRENCE_SITES if s in given]


def _check_assessment(assessment: TumourAssessment) -> None:
    if assessment.method not in METHODS:
        raise InputError("method", f"{assessment.method!r} is not an imaging method", allowed=METHODS)
    if assessment.result not in RESULTS:
        raise InputError("result", f"{assessment.result!r} is not a result", allowed=RESULTS)
    if assessment.result == "recurrence" and not assessment.recurrence_sites:
        raise InputError("recurrence_sites", "a recurrence needs its sites", allowed=RECURRENCE_SITES)
    if assessment.result != "recurrence" and assessment.recurrence_sites:
        raise InputError("recurrence_sites", "only a recurrence has sites")
    not_in_future(assessment.assessed_on, "assessed_on")
    not_in_future(assessment.new_anticancer_therapy_on, "new_anticancer_therapy_on")


# --- dispositions -------------------------------------------------------------------------------


def get_disposition(session: Session, disposition_id: int) -> Disposition:
    return get_row(session, Disposition, disposition_id, "disposition")


def list_dispositions(session: Session, *, participant: Participant) -> list[Disposition]:
    """The participant's dispositions, treatment before study."""
    found = session.scalars(select(Disposition).where(Disposition.participant_id == participant.id))
    return sorted(found, key=lambda d: PHASES.index(d.phase) if d.phase in PHASES else len(PHASES))


def create_disposition(
    session: Session,
    *,
    participant: Participant,
    phase: str,
    status: str,
    status_date: dt.date,
    reason: str | None = None,
    cause_of_death: str | None = None,
) -> Disposition:
    """Record how a phase ended (one per phase) and move the participant's status on."""
    if phase not in PHASES:
        raise InputError("phase", f"{phase!r} is not a phase", allowed=PHASES)
    if any(d.phase == phase for d in list_dispositions(session, participant=participant)):
        raise ConflictError("phase", f"{participant.study_id} already has a {phase} disposition: correct it")
    disposition = Disposition(
        participant_id=participant.id,
        phase=phase,
        status=status,
        status_date=status_date,
        reason=_text(reason),
        cause_of_death=_text(cause_of_death),
    )
    _check_disposition(session, participant, disposition)
    session.add(disposition)
    session.flush()
    _update_status(session, participant, f"{phase} disposition: {status}")
    return disposition


def update_disposition(session: Session, *, disposition: Disposition, **changes: Any) -> Disposition:
    """Correct a disposition (the session carries the reason); the participant's status follows."""
    if "phase" in changes:
        raise InputError("phase", "the phase of a disposition cannot change")
    for key in ("reason", "cause_of_death"):
        if key in changes:
            changes[key] = _text(changes[key])
    _apply_changes(disposition, changes, clearable=("reason", "cause_of_death"))
    participant = session.get(Participant, disposition.participant_id)
    _check_disposition(session, participant, disposition)
    session.flush()
    _update_status(session, participant)  # under the correction's own reason
    return disposition


def _text(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _check_disposition(session: Session, participant: Participant, disposition: Disposition) -> None:
    allowed = DISPOSITION_STATUSES[disposition.phase]
    if disposition.status not in allowed:
        raise InputError(
            "status", f"{disposition.status!r} does not end the {disposition.phase}", allowed=allowed
        )
    if disposition.status != "completed" and disposition.reason is None:
        raise InputError("reason", f"say why the {disposition.phase} ended ({disposition.status})")
    death = disposition.status == "death"
    if death and disposition.cause_of_death is None:
        raise InputError("cause_of_death", "a death needs its cause (or 'unknown')")
    if not death and disposition.cause_of_death is not None:
        raise InputError("cause_of_death", "only a death has a cause of death")
    not_in_future(disposition.status_date, "status_date")
    not_before(
        disposition.status_date, earliest_local_date(participant.enrolled_at), "status_date", "enrolment"
    )
    other = next(
        (
            d
            for d in list_dispositions(session, participant=participant)
            if d.phase != disposition.phase and d.id != disposition.id
        ),
        None,
    )
    if other is not None:
        _check_phases_agree(
            *((disposition, other) if disposition.phase == "treatment" else (other, disposition))
        )


def _check_phases_agree(treatment: Disposition, study: Disposition) -> None:
    """Treatment ends no later than the study; a death during treatment is also the study's end."""
    if treatment.status_date > study.status_date:
        raise InputError(
            "status_date",
            f"treatment ended on {treatment.status_date}, after the study ended ({study.status_date})",
        )
    if treatment.status == "death" and study.status != "death":
        raise InputError("status", "the participant died on treatment: the study ended with the death too")
    if treatment.status == "death" and treatment.status_date != study.status_date:
        raise InputError(
            "status_date", f"the death was recorded on {treatment.status_date} in the treatment disposition"
        )


def _implied_status(disposition: Disposition) -> str:
    if disposition.status == "death":
        return "died"
    if disposition.phase == "study":
        return "completed" if disposition.status == "completed" else "off_study"
    return "follow_up"


def _update_status(session: Session, participant: Participant, reason: str | None = None) -> None:
    """The status the dispositions imply (the strongest of them), audited with ``reason``."""
    implied = [_implied_status(d) for d in list_dispositions(session, participant=participant)]
    status = max(implied, key=_STATUS_RANK.__getitem__)
    if participant.status != status:
        with audit.because(session, reason) if reason else nullcontext():
            participant.status = status
            session.flush()


def _apply_changes(row: Any, changes: dict[str, Any], *, clearable: Iterable[str]) -> None:
    if not changes:
        raise InputError("body", "nothing to change")
    for key, value in changes.items():
        if value is None and key not in clearable:
            raise InputError(key, "cannot be removed; give a value")
        setattr(row, key, value)
