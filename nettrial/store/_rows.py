"""Reading rows the same way in every store module: one by id, or a participant's in order."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from nettrial.exceptions import NotFoundError

Row = TypeVar("Row")


def get_row(session: Session, model: type[Row], row_id: int, entity: str) -> Row:
    """The ``model`` row with ``row_id``; ``NotFoundError`` naming ``entity`` when there is none."""
    found = session.get(model, row_id)
    if found is None:
        raise NotFoundError(entity, row_id)
    return found


def participant_rows(
    session: Session,
    model: type[Row],
    participant: Any,
    *order_by: Any,
    where: ColumnElement[bool] | None = None,
) -> list[Row]:
    """The participant's ``model`` rows (optionally only those ``where`` holds), in ``order_by`` order."""
    query = select(model).where(model.participant_id == participant.id)
    if where is not None:
        query = query.where(where)
    return list(session.scalars(query.order_by(*order_by)))
