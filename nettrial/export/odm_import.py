"""Read a nettrial ODM 1.3.2 document (``nettrial.export.odm``) back into an empty study database.

The whole file is checked first (namespace, version, every OID known, every value of its type and
in its code list, every user and site defined); only then is anything written, in one
transaction, through the backup's restore (``nettrial.store.backup``): the same row-level inserts,
foreign-key order, emptiness check and PostgreSQL sequence reset. Row ids are the documents'
repeat keys, so foreign keys and the audit trail's entity ids stay as they were.

The audit log is rebuilt as a valid hash chain: one entry per ``AuditRecord`` (its user, time and
reason: the item's latest change, which is all ODM carries; older values are not in the file),
then one ``import`` event naming the file, its SHA-256 and the counts. Re-exporting the imported
database gives the same document.

Users come back without passwords: ODM carries none. They are imported **inactive** with an
unusable password hash; an administrator sets a password and activates each account.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, Float, Integer, func, select

from nettrial.exceptions import ConflictError, InputError
from nettrial.export.odm_metadata import (
    CODELIST_OF,
    CODELISTS,
    FORM_BY_OID,
    FORMS,
    LIST_VOCABULARIES,
    ODM_VERSION,
    USER_COLUMNS,
    FormSpec,
    ext,
    item_oid,
    tag,
)
from nettrial.store import audit, backup, migrate
from nettrial.store.db import Database
from nettrial.store.models import Base, UTCDateTime, utcnow
from nettrial.store.users import ROLES

# Not an argon2 hash: verification always fails, so nobody can sign in until a password is set.
UNUSABLE_PASSWORD = "!imported-from-odm"


@dataclass(frozen=True)
class ImportResult:
    """What an ODM import wrote: rows per table, and what did not come back."""

    file: Path
    counts: dict[str, int]
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.file), "counts": dict(self.counts), "notes": list(self.notes)}

    def explain(self) -> str:
        lines = [f"imported {self.file}:"]
        lines += [f"  {table}: {n}" for table, n in self.counts.items() if n]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def from_text(form: FormSpec, column: Column, text: str, where: str) -> Any:
    """An ODM value as the column's Python value; ``where`` names the element in an error."""
    try:
        if isinstance(column.type, JSON):
            return json.loads(text)
        if isinstance(column.type, Boolean):
            if text not in ("true", "false"):
                raise ValueError("not true or false")
            return text == "true"
        if isinstance(column.type, UTCDateTime):
            value = dt.datetime.fromisoformat(text)
            if value.tzinfo is None:
                raise ValueError("no time zone")
            return value.astimezone(dt.UTC)
        if isinstance(column.type, Date):
            return dt.date.fromisoformat(text)
        if isinstance(column.type, Float):
            return float(text)
        if isinstance(column.type, Integer):
            return int(text)
    except ValueError as error:
        raise InputError(
            where, f"{text!r} is not a valid {type(column.type).__name__.lower()} ({error})"
        ) from None
    length = getattr(column.type, "length", None)
    if length and len(text) > length:
        raise InputError(where, f"longer than {length} characters")
    return text


def _instant(text: str, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise InputError(where, f"{text!r} is not an ISO 8601 instant with its time zone")
    return value.astimezone(dt.UTC)


class _Reader:
    def __init__(self, root: ET.Element):
        self.root = root
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.changes: list[tuple[dt.datetime, int, int, str, dict[str, Any]]] = []
        self.user_ids: dict[str, int | None] = {}
        self.site_ids: dict[str, int] = {}
        self.events: dict[str, str | None] = {}

    def read(self) -> None:
        study = self._one(self.root, "Study")
        self._study(study)
        for event in self._one(study, "MetaDataVersion").iter(tag("StudyEventDef")):
            oid = event.get("OID", "")
            self.events[oid] = None if oid == "SE.UNSCHEDULED" else event.get("Name")
        self._admin(self._one(self.root, "AdminData"))
        for subject in self._one(self.root, "ClinicalData").findall(tag("SubjectData")):
            self._subject(subject)

    def _one(self, parent: ET.Element, name: str) -> ET.Element:
        found = parent.findall(tag(name))
        if len(found) != 1:
            raise InputError(name, f"expected one {name} element, found {len(found)}")
        return found[0]

    def _study(self, study: ET.Element) -> None:
        if study.get(ext("TargetEnrolment")) is None:
            return  # the database had no study row yet
        try:
            target, enrolled = int(study.get(ext("TargetEnrolment"))), int(study.get(ext("Enrolled"), "0"))
        except ValueError:
            raise InputError("Study", "nt:TargetEnrolment and nt:Enrolled must be integers") from None
        version = study.get(ext("ProtocolVersion"), "")
        row = {"id": 1, "nct_id": study.get("OID"), "protocol_version": version, "target_enrolment": target}
        self.rows["study"].append({**row, "enrolled": enrolled})

    def _admin(self, admin: ET.Element) -> None:
        for number, location in enumerate(admin.findall(tag("Location")), 1):
            oid = location.get("OID", "")
            if not oid.startswith("LOC.") or not location.get("Name"):
                raise InputError(f"Location {oid}", "needs an OID LOC.<site code> and a Name")
            self.site_ids[oid] = number
            self.rows["site"].append({"id": number, "code": oid[4:], "name": location.get("Name")})
        accounts = 0
        for user in admin.findall(tag("User")):
            oid, login = user.get("OID", ""), user.findtext(tag("LoginName"))
            if not oid.startswith("USR.") or login != oid[4:]:
                raise InputError(f"User {oid}", "needs an OID USR.<login name> and that LoginName")
            role = user.get(ext("Role"))
            if role is None:  # an audit actor without an account
                self.user_ids[login] = None
                continue
            if role not in ROLES:
                raise InputError(f"User {oid}", f"role {role!r} is not known", allowed=ROLES)
            full_name = user.findtext(tag("FullName"))
            if not full_name:
                raise InputError(f"User {oid}", "has no FullName (a pseudonymised file cannot be imported)")
            location = user.find(tag("LocationRef"))
            accounts += 1
            self.user_ids[login] = accounts
            self.rows["user_account"].append(
                {
                    "id": accounts,
                    "username": login,
                    "full_name": full_name,
                    "role": role,
                    "password_hash": UNUSABLE_PASSWORD,
                    "site_id": None if location is None else self._site(location.get("LocationOID"), oid),
                    "language": user.get(ext("Language"), "en"),
                    "active": False,
                    "failed_logins": 0,
                    "last_failed_login": None,
                    "created_at": _instant(user.get(ext("CreatedAt"), ""), f"User {oid} nt:CreatedAt"),
                }
            )

    def _site(self, oid: str | None, where: str) -> int:
        if oid not in self.site_ids:
            raise InputError(where, f"LocationOID {oid!r} is not a Location in AdminData")
        return self.site_ids[oid]

    def _subject(self, subject: ET.Element) -> None:
        key = subject.get("SubjectKey", "")
        where = f"SubjectData {key}"
        site_ref = subject.find(tag("SiteRef"))
        site = self._site(None if site_ref is None else site_ref.get("LocationOID"), where)
        forms = []
        for event in subject.findall(tag("StudyEventData")):
            event_oid = event.get("StudyEventOID", "")
            if event_oid not in self.events:
                raise InputError(f"{where} {event_oid}", "StudyEventOID is not a StudyEventDef")
            for data in event.findall(tag("FormData")):
                form = FORM_BY_OID.get(data.get("FormOID", "").removeprefix("F."))
                if form is None or not data.get("FormOID", "").startswith("F."):
                    raise InputError(
                        f"{where} {data.get('FormOID')}",
                        "FormOID is not a nettrial form",
                        allowed=[f"F.{f.oid}" for f in FORMS],
                    )
                forms.append((form, data, self.events[event_oid]))
        patient = [d for f, d, _e in forms if f.oid == "PATIENT"]
        participant = [d for f, d, _e in forms if f.oid == "ENROLMENT"]
        if len(patient) != 1 or len(participant) > 1:
            raise InputError(where, "needs one PATIENT form and at most one ENROLMENT form")
        owners = {"id": None, "patient_id": self._key(patient[0], where), "": None}
        owners["participant_id"] = self._key(participant[0], where) if participant else None
        for form, data, visit_code in forms:
            row = self._form(form, data, f"{where} {form.oid}", visit_code)
            if form.owner:
                if owners[form.owner] is None and form.owner != "id":
                    raise InputError(
                        f"{where} {form.oid}", "a participant's form in a subject never enrolled"
                    )
                row.setdefault(form.owner, owners[form.owner])
            if form.oid == "PATIENT":
                row.update(screening_number=key, site_id=site)
            self.rows[form.table].append(row)

    def _key(self, data: ET.Element, where: str) -> int:
        try:
            return int(data.get("FormRepeatKey", ""))
        except ValueError:
            raise InputError(
                f"{where} {data.get('FormOID')}", "FormRepeatKey must be the record's id"
            ) from None

    def _form(self, form: FormSpec, data: ET.Element, where: str, visit_code: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self._key(data, where)}
        if form.placement == "VISIT":
            if visit_code == "LOGS":
                raise InputError(where, "a visit's form is not a log: it belongs in the event of its visit")
            row["visit_code"] = visit_code
        columns = {item_oid(form, c): c for c in form.columns()}
        for group in data.findall(tag("ItemGroupData")):
            if group.get("ItemGroupOID") != f"IG.{form.oid}":
                raise InputError(f"{where} {group.get('ItemGroupOID')}", f"ItemGroupOID is not IG.{form.oid}")
            for item in group.findall(tag("ItemData")):
                oid = item.get("ItemOID", "")
                if oid not in columns:
                    raise InputError(
                        f"{where} {oid}", "ItemOID is not an item of this form", allowed=list(columns)
                    )
                column = columns[oid]
                row[column.name] = value = self._value(form, column, item.get("Value", ""), f"{where} {oid}")
                record = item.find(tag("AuditRecord"))
                if record is not None:
                    self._change(form, row["id"], column, value, record, f"{where} {oid}")
        for column in form.columns():
            if column.name not in row and not column.nullable:
                raise InputError(f"{where} {item_oid(form, column)}", "a required item is missing")
            row.setdefault(column.name, None)
        return row

    def _value(self, form: FormSpec, column: Column, text: str, where: str) -> Any:
        if column.name in USER_COLUMNS:
            if self.user_ids.get(text) is None:
                raise InputError(where, f"{text!r} is not a user account in AdminData")
            return self.user_ids[text]
        codelist = CODELIST_OF.get((form.table, column.name))
        if codelist and text not in CODELISTS[codelist]:
            raise InputError(
                where, f"{text!r} is not in code list CL.{codelist}", allowed=CODELISTS[codelist]
            )
        value = from_text(form, column, text, where)
        vocabulary = LIST_VOCABULARIES.get((form.table, column.name))
        if vocabulary is not None and not (isinstance(value, list) and set(value) <= set(vocabulary)):
            raise InputError(where, f"{text!r} is not a list of these terms", allowed=vocabulary)
        return value

    def _change(
        self, form: FormSpec, row_id: int, column: Column, value: Any, record: ET.Element, where: str
    ) -> None:
        user_ref, stamp = record.find(tag("UserRef")), record.findtext(tag("DateTimeStamp"), "")
        username = (user_ref.get("UserOID", "") if user_ref is not None else "").removeprefix("USR.")
        if username not in self.user_ids:
            raise InputError(f"{where} AuditRecord", f"UserRef {username!r} is not a User in AdminData")
        at = _instant(stamp, f"{where} AuditRecord DateTimeStamp")
        reason = record.findtext(tag("ReasonForChange"))
        entry = {
            "at": at,
            "user_id": self.user_ids[username],
            "username": username,
            "action": "update" if reason is not None else "insert",
            "entity": form.table,
            "entity_id": str(row_id),
            "field": column.name,
            "old_value": None,
            "new_value": audit.value_text(value),
            "reason": reason,
        }
        order = [c.name for c in form.model.__table__.columns].index(column.name)
        self.changes.append((at, FORMS.index(form), row_id, f"{order:03d}", entry))


def import_odm(db: Database, path: Path, *, username: str = "system") -> ImportResult:
    """Load an ODM document written by ``nettrial.export.odm.export`` into an empty database.

    Raises ``InputError`` (naming the element and OID) for a file that is not such a document or
    holds a value it may not, and ``ConflictError`` for a database that is not empty; in both
    cases nothing is written.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as error:
        raise InputError("file", f"{path.name} is not well-formed XML ({error})") from None
    if root.tag != tag("ODM"):
        raise InputError("ODM", f"root element {root.tag} is not ODM in namespace {tag('')[1:-1]}")
    if root.get("ODMVersion") != ODM_VERSION or root.get("FileType") != "Snapshot":
        raise InputError("ODM", f"expected an ODM {ODM_VERSION} Snapshot file")
    if root.get(ext("Pseudonymised")) != "No":
        raise InputError("ODM", "a pseudonymised export lacks names and birth dates: it cannot be imported")
    reader = _Reader(root)
    reader.read()
    _require_empty(db)

    counts = {
        t.name: len(reader.rows.get(t.name, ())) for t in Base.metadata.sorted_tables if t.name != "audit_log"
    }
    entries = [entry for *_order, entry in sorted(reader.changes, key=lambda c: c[:4])]
    entries.append(
        {
            "at": utcnow(),
            "user_id": None,
            "username": username,
            "action": "event",
            "entity": "study",
            "entity_id": root.find(tag("Study")).get("OID", ""),
            "field": "import_odm",
            "old_value": None,
            "new_value": audit.value_text(
                {"file": path.name, "sha256": hashlib.sha256(raw).hexdigest(), "rows": counts}
            ),
            "reason": f"imported from ODM file {path.name}",
        }
    )
    previous = audit.GENESIS
    for number, entry in enumerate(entries, 1):
        entry["id"] = number
        entry["previous_hash"] = previous
        entry["hash"] = previous = audit.entry_hash(previous, entry)
    reader.rows["audit_log"] = entries
    _restore(db, reader.rows)
    return ImportResult(
        path,
        {**counts, "audit_log": len(entries)},
        (
            "users were imported inactive, without passwords (an unusable hash): an administrator "
            "sets a password and reactivates each account",
            "the audit log holds each item's latest change as the file recorded it, then the import event",
        ),
    )


def _require_empty(db: Database) -> None:
    with db.session(write=False) as session:
        for table in Base.metadata.sorted_tables:
            if session.execute(select(func.count()).select_from(table)).scalar():
                raise ConflictError(
                    "database", f"an ODM import needs an empty database; {table.name} has rows"
                )


def _restore(db: Database, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Write the rows in one transaction through ``backup.restore``."""
    document: dict[str, Any] = {
        "format": backup.FORMAT,
        "format_version": backup.FORMAT_VERSION,
        "schema_revision": migrate.current(db),
        "tables": {},
    }
    for table in Base.metadata.sorted_tables:
        names = [c.name for c in table.columns]
        found = sorted(rows.get(table.name, ()), key=lambda r: r["id"])
        document["tables"][table.name] = {
            "columns": names,
            "rows": [[backup.plain_value(row.get(n)) for n in names] for row in found],
        }
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / "odm-import.json"
        staged.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
        backup.restore(db, staged)
