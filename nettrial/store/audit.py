"""The audit trail: every insert, update and delete, field by field, in a hash chain.

Each entry records who (user id and name), when (UTC), what (entity, id, field), the old and the new
value, and why (the reason; required for any change after first entry). Each entry's hash covers
its content and the previous entry's hash, so ``verify_chain`` finds the first entry that was
altered, removed or inserted out of turn. On PostgreSQL a trigger also refuses UPDATE, DELETE and
TRUNCATE on the table (migration 0001); nothing here ever changes an entry.

A session is bound to its actor with ``acting_as``; a change without an actor is refused rather
than written anonymously.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, insert, inspect, select
from sqlalchemy.orm import Session

from nettrial.exceptions import InputError
from nettrial.store.db import lock_writes
from nettrial.store.models import MASKED_FIELDS, NOT_AUDITED, NOT_AUDITED_FIELDS, AuditEntry, utcnow

GENESIS = "0" * 64
_ACTOR, _REASON = "nettrial.actor", "nettrial.reason"


def acting_as(session: Session, user_id: int | None, username: str) -> Session:
    """Bind the person (or ``system``/``cli``) whose changes this session writes."""
    session.info[_ACTOR] = (user_id, username)
    return session


@contextmanager
def because(session: Session, reason: str | None) -> Iterator[Session]:
    """Changes made inside this block carry ``reason`` (they are flushed before it ends).

    Changes pending when the block starts are flushed first, under the reason they were made with.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()
    previous = session.info.get(_REASON)
    session.info[_REASON] = reason.strip() if reason and reason.strip() else None
    try:
        yield session
        session.flush()
    finally:
        session.info[_REASON] = previous


def value_text(value: Any) -> str | None:
    """A value as the audit log stores it (dates in ISO 8601); also used to rebuild entries on import."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def entry_hash(previous: str, values: dict[str, Any]) -> str:
    content = [
        previous,
        values["at"].isoformat(),
        values["user_id"],
        values["username"],
        values["action"],
        values["entity"],
        values["entity_id"],
        values["field"],
        values["old_value"],
        values["new_value"],
        values["reason"],
    ]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest()


def _changes(
    session: Session, actions: tuple[str, ...] = ("insert", "update", "delete")
) -> list[tuple[str, Any, str, str | None, Any, Any]]:
    """(action, object, entity, field, old, new) for every audited change about to be flushed."""
    found = []
    pending = {"insert": session.new, "update": session.dirty, "delete": session.deleted}
    for action, objects in ((a, pending[a]) for a in actions):
        for obj in objects:
            state = inspect(obj)
            table = state.mapper.local_table.name
            if table in NOT_AUDITED:
                continue
            for attr in state.mapper.column_attrs:
                key = attr.key
                if (table, key) in NOT_AUDITED_FIELDS:
                    continue
                history = state.attrs[key].history
                if action == "insert":
                    old, new = None, getattr(obj, key)
                elif action == "delete":
                    old, new = (history.deleted or history.unchanged or [None])[0], None
                elif history.has_changes():
                    old, new = (history.deleted or [None])[0], (history.added or [None])[0]
                else:
                    continue
                if (action == "insert" and new is None) or (action == "update" and old == new):
                    continue
                found.append((action, obj, table, key, old, new))
    return found


@event.listens_for(Session, "before_flush")
def _require_actor_and_reason(session: Session, _context: Any, _instances: Any) -> None:
    audited = [o for o in (*session.new, *session.dirty, *session.deleted) if _audited(o)]
    if not audited:
        return
    if _ACTOR not in session.info:
        raise RuntimeError("a change without an actor: call audit.acting_as(session, ...) first")
    # Inserts never need a reason; only look at field histories when something else is pending.
    needs_reason = (session.dirty or session.deleted) and not session.info.get(_REASON)
    if needs_reason and _changes(session, ("update", "delete")):
        raise InputError("reason", "a reason is required to change or delete data after first entry")


def _audited(obj: Any) -> bool:
    return inspect(obj).mapper.local_table.name not in NOT_AUDITED


@event.listens_for(Session, "after_flush")
def _write_entries(session: Session, _context: Any) -> None:
    # Computed again now: inserted rows have their ids and defaults, and the history is still there.
    changed = _changes(session)
    if not changed:
        return
    user_id, username = session.info[_ACTOR]
    reason = session.info.get(_REASON)
    at = utcnow()
    rows = []
    for action, obj, table, key, old, new in changed:
        # The primary key, not the identity key: new rows get their identity only after the flush.
        identity = inspect(obj).mapper.primary_key_from_instance(obj)
        masked = (table, key) in MASKED_FIELDS
        rows.append(
            {
                "at": at,
                "user_id": user_id,
                "username": username,
                "action": action,
                "entity": table,
                "entity_id": "/".join(str(part) for part in identity or ()),
                "field": key,
                "old_value": "<hidden>" if masked and old is not None else value_text(old),
                "new_value": "<hidden>" if masked and new is not None else value_text(new),
                "reason": reason,
            }
        )
    _append(session, rows)


def record_event(
    session: Session, *, entity: str, entity_id: str, what: str, detail: Any = None, reason: str | None = None
) -> None:
    """An audited event that changes no field (a login, an export, an override)."""
    user_id, username = session.info.get(_ACTOR, (None, "system"))
    row = {
        "at": utcnow(),
        "user_id": user_id,
        "username": username,
        "action": "event",
        "entity": entity,
        "entity_id": str(entity_id),
        "field": what,
        "old_value": None,
        "new_value": value_text(detail),
        "reason": reason,
    }
    _append(session, [row])


def _append(session: Session, rows: list[dict[str, Any]]) -> None:
    lock_writes(session)  # the chain has one end: writers take turns appending to it
    connection = session.connection()
    previous = connection.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    previous = previous or GENESIS
    for row in rows:
        row["previous_hash"] = previous
        row["hash"] = previous = entry_hash(previous, row)
    connection.execute(insert(AuditEntry), rows)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of ``verify_chain``: entries checked and the first broken one, if any."""

    entries: int
    broken_at: int | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def _in_order(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    """Every entry by id, a batch at a time: bounded memory without a server-side cursor (which
    PostgreSQL allows only inside a transaction; reads there run in autocommit, store/db.py). The log
    only grows at its end, so reading it in id order is consistent batch to batch."""
    last = 0
    while True:
        found = session.scalars(
            select(AuditEntry).where(AuditEntry.id > last).order_by(AuditEntry.id).limit(batch)
        )
        entries = found.all()
        yield from entries
        if len(entries) < batch:
            return
        last = entries[-1].id  # checked entries are dropped: the session holds them weakly


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash in order; report the first entry that does not follow from the one before."""
    previous, count = GENESIS, 0
    for entry in _in_order(session):
        count += 1
        values = {column.name: getattr(entry, column.name) for column in AuditEntry.__table__.columns}
        if entry.previous_hash != previous:
            return ChainReport(
                count, entry.id, "does not link to the entry before it (one was removed or inserted)"
            )
        if entry_hash(previous, values) != entry.hash:
            return ChainReport(count, entry.id, "its content no longer matches its hash (it was altered)")
        previous = entry.hash
    return ChainReport(count, None, None)
