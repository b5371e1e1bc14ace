"""Exports in the audit trail: who took which export of the study, in which form, cut off when.

An export changes no data, so it is an audited event (``audit.record_event``) in the same hash chain as
every change: entity ``export``, the format as its id, ``export (identified)`` or ``export
(pseudonymised)`` as what happened, and the cut-off, file names and record counts as its detail. The
command line and the web page both record their exports here, and read them back with
``recent_exports``.

Which form a person may take is decided once, by ``choose_form``, from the two actions of the role
matrix (``export.identified``, ``export.pseudonymised``); the store does not read the matrix itself,
the caller passes its answer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.exceptions import InputError, PermissionDeniedError
from nettrial.store import audit
from nettrial.store._dates import not_in_future
from nettrial.store.models import AuditEntry

ENTITY = "export"
IDENTIFIED = "export.identified"
PSEUDONYMISED = "export.pseudonymised"
FORMS = ("identified", "pseudonymised")


def choose_form(role: str, may: Callable[[str], bool], requested: str | None) -> bool:
    """Whether the export is pseudonymised, for a person of ``role`` who asked for ``requested``.

    ``requested`` is ``"identified"``, ``"pseudonymised"`` or None (not said). Not said gives the
    fullest form the role may take. Asking for an identified export without ``export.identified`` is
    refused rather than quietly pseudonymised: the person asked for one thing and would get another,
    and a file that looks like the full data set but is not can be passed on as if it were.
    A role with neither action is refused.
    """
    if requested is not None and requested not in FORMS:
        raise InputError("identity", f"{requested!r} is not a form of export", allowed=FORMS)
    if not (may(IDENTIFIED) or may(PSEUDONYMISED)):
        raise PermissionDeniedError(role, f"{IDENTIFIED} or {PSEUDONYMISED}")
    if requested == "pseudonymised":
        if not may(PSEUDONYMISED):
            raise PermissionDeniedError(role, PSEUDONYMISED)
        return True
    if requested == "identified" and not may(IDENTIFIED):
        raise PermissionDeniedError(role, IDENTIFIED)
    return not may(IDENTIFIED)


def cutoff_date(text: str | None, today: dt.date) -> dt.date:
    """The data cut-off of an export: ``today`` when not given; a cut-off not yet reached is refused.

    A cut-off in the future would label data that can still change as final.
    """
    if text is None or not text.strip():
        return today
    try:
        found = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InputError("cutoff", f"{text!r} is not a date (YYYY-MM-DD)") from None
    not_in_future(found, "cutoff")
    return found


def record_export(
    session: Session,
    *,
    user_id: int | None,
    username: str,
    format: str,
    cutoff: dt.date,
    pseudonymised: bool,
    files: Iterable[str | PurePath],
    counts: Mapping[str, int] | None = None,
    root: str | PurePath | None = None,
) -> None:
    """Add the export to the audit trail as done by ``username`` (required: every export has a who).

    The files are kept by their path inside ``root`` (the folder the export was written to), or by
    their names without one: where they were written is the exporter's machine, not the study.
    """
    if not username or not username.strip():
        raise InputError("username", "an export is recorded with the person who made it")
    audit.acting_as(session, user_id, username)
    form = "pseudonymised" if pseudonymised else "identified"
    detail = {
        "format": format,
        "form": form,
        "cutoff": cutoff.isoformat(),
        "files": [_inside(PurePath(f), root) for f in files],
        "counts": dict(counts or {}),
    }
    audit.record_event(session, entity=ENTITY, entity_id=format, what=f"export ({form})", detail=detail)


def _inside(path: PurePath, root: str | PurePath | None) -> str:
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.name


@dataclass(frozen=True)
class ExportRecord:
    """One recorded export, as the audit trail holds it."""

    entry_id: int
    at: dt.datetime
    username: str
    format: str
    pseudonymised: bool
    cutoff: dt.date
    files: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "at": self.at.isoformat(),
            "username": self.username,
            "format": self.format,
            "pseudonymised": self.pseudonymised,
            "cutoff": self.cutoff.isoformat(),
            "files": list(self.files),
            "counts": dict(self.counts),
        }

    def explain(self) -> str:
        form = "pseudonymised" if self.pseudonymised else "identified"
        when = self.at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{when}: {self.username} exported {self.format} ({form}, cut-off {self.cutoff})"


def recent_exports(session: Session, *, limit: int = 20, username: str | None = None) -> list[ExportRecord]:
    """The latest exports, newest first (only ``username``'s when given)."""
    query = select(AuditEntry).where(AuditEntry.action == "event", AuditEntry.entity == ENTITY)
    if username is not None:
        query = query.where(AuditEntry.username == username)
    entries = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))
    found = []
    for entry in entries:
        detail = json.loads(entry.new_value or "{}")
        found.append(
            ExportRecord(
                entry_id=entry.id,
                at=entry.at,
                username=entry.username,
                format=detail.get("format", entry.entity_id),
                pseudonymised=detail.get("form") == "pseudonymised",
                cutoff=dt.date.fromisoformat(detail["cutoff"]),
                files=tuple(detail.get("files", ())),
                counts=dict(detail.get("counts", {})),
            )
        )
    return found
