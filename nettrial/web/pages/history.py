"""The history of one record: every audited change, field by field, with who, when (UTC), the old and the
new value, and why. Personal values are hidden from readers without ``study.read``
(``privacy.audit_value_view``, the rule the API's audit route applies)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.api.privacy import audit_value_view
from nettrial.exceptions import NotFoundError
from nettrial.store.models import (
    AdverseEvent,
    AuditEntry,
    Base,
    Disposition,
    DosingPeriod,
    LabResult,
    Participant,
    TumourAssessment,
    Visit,
    VitalSigns,
)
from nettrial.store.queries import QUERYABLE
from nettrial.web.pages._forms import row_id
from nettrial.web.render import render
from nettrial.web.session import page_actor, require

router = APIRouter(include_in_schema=False)

# The study records a history can be asked for (the ones a query can be about), and queries.
ENTITIES = (*QUERYABLE, "data_query")
# The participant's records, and where each kind is shown on the participant's page.
RECORDS: dict[str, tuple[type[Base], str]] = {
    "participant": (Participant, ""),
    "visit": (Visit, "visits"),
    "dosing_period": (DosingPeriod, "dosing"),
    "adverse_event": (AdverseEvent, "adverse-events"),
    "lab_result": (LabResult, "labs"),
    "vital_signs": (VitalSigns, "vitals"),
    "tumour_assessment": (TumourAssessment, "imaging"),
    "disposition": (Disposition, "disposition"),
}


def participant_of(session: Session, entity: str, entity_id: int) -> tuple[str, str] | None:
    """The study id and page section of the participant a record belongs to, when it belongs to one."""
    if entity not in RECORDS:
        return None
    model, section = RECORDS[entity]
    row = session.get(model, entity_id)
    if row is None:
        return None
    participant = row if isinstance(row, Participant) else session.get(Participant, row.participant_id)
    return participant.study_id, section


@router.get("/history/{entity}/{entity_id}")
def history(request: Request, entity: str, entity_id: str):
    """Every audited change of one record, oldest first."""
    actor = page_actor(request)
    require(actor, "audit.read")
    if entity not in ENTITIES:
        raise NotFoundError("kind of record", entity)
    number = row_id(entity_id, entity.replace("_", " "))
    with request.app.state.db.session(write=False) as session:
        found = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(number))
            .order_by(AuditEntry.id)
        ).all()
        entries = [
            {
                "at": entry.at,
                "username": entry.username,
                "action": entry.action,
                "field": entry.field,
                "old": audit_value_view(entity, entry.field, entry.old_value, actor),
                "new": audit_value_view(entity, entry.field, entry.new_value, actor),
                "reason": entry.reason,
            }
            for entry in found
        ]
        readable = actor.may("study.read") or actor.may("study.read_pseudonymised")
        owner = participant_of(session, entity, number) if readable else None
        return render(request, "history.html", entity=entity, entity_id=number, entries=entries, owner=owner)
