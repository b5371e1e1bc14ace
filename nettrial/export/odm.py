"""CDISC ODM 1.3.2: the study's metadata, clinical data and audit trail in one XML document.

Source: CDISC Operational Data Model 1.3.2 (namespace ``http://www.cdisc.org/ns/odm/v1.3``).
The document is a ``Snapshot`` of everything stored, stamped with the data cut-off (not the clock,
so the same database always gives the same bytes):

- ``Study``: ``MetaDataVersion`` with one ``StudyEventDef`` per visit of the protocol's schedule
  (``SCREENING``, ``C1D1`` ... ``EOT``, ``IMG-Mnn``), ``UNSCHEDULED`` and ``LOGS`` (the common
  event holding dosing, adverse events, dispositions and data queries); one ``FormDef`` and
  ``ItemGroupDef`` per record kind (``FORMS``, one per table); ``ItemDef``s typed from the columns;
  ``CodeList``s from the store's vocabularies (``CODELISTS``).
- ``AdminData``: ``User``s (login name; full name unless pseudonymised) and ``Location``s (sites).
- ``ClinicalData``: one ``SubjectData`` per screened patient, keyed by screening number. Each record
  is a ``FormData`` whose repeat key is its database id, so that foreign keys (the evaluation an
  enrolment used, the adverse event that stopped a dosing period) survive a round trip. Each
  ``ItemData`` carries an ``AuditRecord`` of its latest change from the store's audit log.

Values ODM has no element for (a user's role and language, the study's target enrolment) are
written as attributes in the ``nettrial`` extension namespace (ODM 1.3.2 section 2.6, vendor
extensions). JSON columns (a screening record, an evaluation's evidence, a grading) are one
``text`` item holding canonical JSON. The forms, items and code lists are defined in
``nettrial.export.odm_metadata``; ``nettrial.export.odm_import`` reads the document back.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, select
from sqlalchemy.orm import Session

from nettrial.exceptions import ConflictError
from nettrial.export import ExportResult
from nettrial.export.odm_metadata import (
    CODELISTS,
    FORMS,
    IDENTIFYING,
    INTEGER_CODELISTS,
    LANG,
    ODM_VERSION,
    USER_COLUMNS,
    YEAR_ONLY,
    FormSpec,
    ext,
    item_def,
    item_oid,
    tag,
)
from nettrial.protocol.model import Protocol
from nettrial.store import visits
from nettrial.store.models import AuditEntry, Site, Study, User

FILE_NAME = "odm.xml"


def as_text(column: Column, value: Any) -> str:
    """A column value as an ODM value (read back by ``odm_import.from_text``)."""
    if isinstance(column.type, JSON):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return instant(value)
    if isinstance(value, (dt.date, float)):
        return value.isoformat() if isinstance(value, dt.date) else repr(value)
    return str(value)


def instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_codes(protocol: Protocol, found: set[str]) -> list[str]:
    """The visit events: the schedule's, then codes found in the data that it lacks (sorted)."""
    planned = list(visits.visit_codes(protocol))
    return planned + sorted(found - set(planned))


# --- export ---------------------------------------------------------------------------------------


def export(
    session: Session, protocol: Protocol, out: Path, *, cutoff: dt.date, pseudonymised: bool = False
) -> ExportResult:
    """Write ``<out>/odm.xml``: metadata, admin data, clinical data and audit records.

    Everything stored is written (an archive of the database, not a cut of it); ``cutoff`` stamps
    the document's CreationDateTime so that the same data give the same bytes. Pseudonymised: no
    names or record numbers, the year of birth only, users by login name only.
    """
    data = _read(session)
    writer = _Writer(protocol, data, pseudonymised)
    root = writer.document(cutoff)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FILE_NAME
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    notes = [
        "a snapshot of everything stored; the cut-off dates the document",
        "each ItemData carries the AuditRecord of its latest change (older values stay in the audit log)",
    ]
    if pseudonymised:
        notes.append("pseudonymised: no names or record numbers, year of birth only, users by login name")
    return ExportResult("odm", (path,), writer.counts, cutoff, pseudonymised, tuple(notes))


@dataclass
class _Data:
    rows: dict[str, list[dict[str, Any]]]
    latest: dict[tuple[str, str, str], tuple[str, dt.datetime, str | None]]
    study: dict[str, Any] | None


def _read(session: Session) -> _Data:
    rows = {}
    for model in (Site, User, *(f.model for f in FORMS)):
        table = model.__table__
        rows[table.name] = [dict(r) for r in session.execute(select(table).order_by(table.c.id)).mappings()]
    tables = {f.table for f in FORMS}
    latest = {}
    audit = AuditEntry.__table__
    found = session.execute(
        select(audit.c.entity, audit.c.entity_id, audit.c.field, audit.c.username, audit.c.at, audit.c.reason)
        .where(audit.c.action.in_(("insert", "update")), audit.c.entity.in_(tables))
        .order_by(audit.c.id)
    )
    for entity, entity_id, field, username, at, reason in found:
        latest[(entity, entity_id, field)] = (username, at, reason)
    study = session.execute(select(Study.__table__)).mappings().first()
    return _Data(rows, latest, dict(study) if study else None)


class _Writer:
    def __init__(self, protocol: Protocol, data: _Data, pseudonymised: bool):
        self.protocol, self.data, self.pseudonymised = protocol, data, pseudonymised
        self.users = {u["id"]: u for u in data.rows["user_account"]}
        self.sites = {s["id"]: s for s in data.rows["site"]}
        self.counts: dict[str, int] = {"audit_records": 0}
        self.mdv = f"MDV.{protocol.protocol_version}"
        found = {r["visit_code"] for f in FORMS if f.placement == "VISIT" for r in data.rows[f.table]}
        self.events = ["SCREENING", *[c for c in event_codes(protocol, found - {None}) if c != "SCREENING"]]

    def document(self, cutoff: dt.date) -> ET.Element:
        study_oid = self.protocol.identity.nct_id
        root = ET.Element(
            tag("ODM"),
            {
                "FileType": "Snapshot",
                "FileOID": f"{study_oid}.{cutoff.isoformat()}{'.P' if self.pseudonymised else ''}",
                "CreationDateTime": f"{cutoff.isoformat()}T00:00:00Z",
                "ODMVersion": ODM_VERSION,
                "Originator": "nettrial",
                "Description": f"{study_oid}: clinical data and audit records"
                + (" (pseudonymised)" if self.pseudonymised else ""),
                ext("Pseudonymised"): "Yes" if self.pseudonymised else "No",
            },
        )
        root.append(self._study(study_oid))
        root.append(self._admin(study_oid))
        clinical = ET.SubElement(root, tag("ClinicalData"), StudyOID=study_oid, MetaDataVersionOID=self.mdv)
        for subject in self._subjects():
            clinical.append(subject)
        self.counts["subjects"] = len(clinical)
        return root

    # --- Study / MetaDataVersion -----------------------------------------------------------------

    def _study(self, study_oid: str) -> ET.Element:
        identity = self.protocol.identity
        study = ET.Element(tag("Study"), OID=study_oid)
        if self.data.study:
            study.set(ext("ProtocolVersion"), self.data.study["protocol_version"])
            study.set(ext("TargetEnrolment"), str(self.data.study["target_enrolment"]))
            study.set(ext("Enrolled"), str(self.data.study["enrolled"]))
        glob = ET.SubElement(study, tag("GlobalVariables"))
        ET.SubElement(glob, tag("StudyName")).text = identity.brief_title
        ET.SubElement(glob, tag("StudyDescription")).text = identity.official_title
        ET.SubElement(glob, tag("ProtocolName")).text = identity.org_study_id
        mdv = ET.SubElement(
            study, tag("MetaDataVersion"), OID=self.mdv, Name=f"Protocol {self.protocol.protocol_version}"
        )
        events = [*self.events, "UNSCHEDULED", "LOGS"]
        protocol = ET.SubElement(mdv, tag("Protocol"))
        for order, code in enumerate(events, 1):
            ET.SubElement(
                protocol,
                tag("StudyEventRef"),
                StudyEventOID=f"SE.{code}",
                OrderNumber=str(order),
                Mandatory="No",
            )
        for code in events:
            kind = {"UNSCHEDULED": "Unscheduled", "LOGS": "Common"}.get(code, "Scheduled")
            if code not in ("UNSCHEDULED", "LOGS") and code not in visits.visit_codes(self.protocol):
                kind = "Unscheduled"  # a visit code the schedule does not have
            event = ET.SubElement(
                mdv, tag("StudyEventDef"), OID=f"SE.{code}", Name=code, Repeating="No", Type=kind
            )
            for order, form in enumerate(self._forms_of(code), 1):
                ET.SubElement(
                    event, tag("FormRef"), FormOID=f"F.{form.oid}", OrderNumber=str(order), Mandatory="No"
                )
        for form in FORMS:
            element = ET.SubElement(mdv, tag("FormDef"), OID=f"F.{form.oid}", Name=form.name, Repeating="Yes")
            ET.SubElement(element, tag("ItemGroupRef"), ItemGroupOID=f"IG.{form.oid}", Mandatory="Yes")
        for form in FORMS:
            group = ET.SubElement(
                mdv, tag("ItemGroupDef"), OID=f"IG.{form.oid}", Name=form.name, Repeating="No"
            )
            for order, column in enumerate(form.columns(), 1):
                mandatory = "Yes" if not column.nullable else "No"
                ET.SubElement(
                    group,
                    tag("ItemRef"),
                    ItemOID=item_oid(form, column),
                    OrderNumber=str(order),
                    Mandatory=mandatory,
                )
        for form in FORMS:
            for column in form.columns():
                mdv.append(item_def(form, column))
        for name, values in CODELISTS.items():
            kind = "integer" if name in INTEGER_CODELISTS else "text"
            codelist = ET.SubElement(mdv, tag("CodeList"), OID=f"CL.{name}", Name=name, DataType=kind)
            for value in values:
                item = ET.SubElement(codelist, tag("CodeListItem"), CodedValue=value)
                decode = ET.SubElement(item, tag("Decode"))
                ET.SubElement(decode, tag("TranslatedText"), {LANG: "en"}).text = value.replace("_", " ")
        return study

    def _forms_of(self, code: str) -> list[FormSpec]:
        if code == "LOGS":
            return [f for f in FORMS if f.placement == "LOGS"]
        visit_forms = [f for f in FORMS if f.placement == "VISIT"]
        return (
            [f for f in FORMS if f.placement == "SCREENING"] + visit_forms
            if code == "SCREENING"
            else visit_forms
        )

    # --- AdminData --------------------------------------------------------------------------------

    def _admin(self, study_oid: str) -> ET.Element:
        admin = ET.Element(tag("AdminData"), StudyOID=study_oid)
        accounts = {u["username"] for u in self.users.values()}
        others = sorted({who for who, _at, _reason in self.data.latest.values()} - accounts)
        for user in self.users.values():
            element = ET.SubElement(admin, tag("User"), OID=f"USR.{user['username']}")
            element.set(ext("Role"), user["role"])
            element.set(ext("Language"), user["language"])
            element.set(ext("CreatedAt"), instant(user["created_at"]))
            ET.SubElement(element, tag("LoginName")).text = user["username"]
            if not self.pseudonymised:
                ET.SubElement(element, tag("FullName")).text = user["full_name"]
            if user["site_id"] is not None:
                ET.SubElement(
                    element, tag("LocationRef"), LocationOID=f"LOC.{self.sites[user['site_id']]['code']}"
                )
        for name in others:  # audit actors without an account ("system", a script)
            element = ET.SubElement(admin, tag("User"), OID=f"USR.{name}", UserType="Other")
            ET.SubElement(element, tag("LoginName")).text = name
        start = self.protocol.identity.start_date.isoformat()
        for site in self.sites.values():
            location = ET.SubElement(
                admin, tag("Location"), OID=f"LOC.{site['code']}", Name=site["name"], LocationType="Site"
            )
            ET.SubElement(
                location,
                tag("MetaDataVersionRef"),
                StudyOID=study_oid,
                MetaDataVersionOID=self.mdv,
                EffectiveDate=start,
            )
        self.counts["users"] = len(self.users) + len(others)
        self.counts["sites"] = len(self.sites)
        return admin

    # --- ClinicalData -----------------------------------------------------------------------------

    def _subjects(self) -> list[ET.Element]:
        patient_of_participant = {p["id"]: p["patient_id"] for p in self.data.rows["participant"]}
        owners: dict[str, dict[int, int]] = {}  # table -> row id -> patient id
        forms_of: dict[int, list[tuple[FormSpec, dict[str, Any]]]] = defaultdict(list)
        for form in FORMS:
            owners[form.table] = {}
            for row in self.data.rows[form.table]:
                if form.owner == "":
                    patient = owners[row["entity"]].get(row["entity_id"])
                    if patient is None:
                        about = f"{row['entity']} {row['entity_id']}"
                        raise ConflictError(f"data_query {row['id']}", f"is about {about}, which is gone")
                elif form.owner == "participant_id":
                    patient = patient_of_participant[row["participant_id"]]
                else:
                    patient = row[form.owner]
                owners[form.table][row["id"]] = patient
                forms_of[patient].append((form, row))
        subjects = []
        for patient in self.data.rows["patient"]:
            subjects.append(self._subject(patient, forms_of[patient["id"]]))
        for form in FORMS:
            self.counts[form.oid.lower()] = len(self.data.rows[form.table])
        return subjects

    def _subject(self, patient: dict[str, Any], forms: list[tuple[FormSpec, dict[str, Any]]]) -> ET.Element:
        site = f"LOC.{self.sites[patient['site_id']]['code']}"
        subject = ET.Element(tag("SubjectData"), SubjectKey=patient["screening_number"])
        ET.SubElement(subject, tag("SiteRef"), LocationOID=site)
        by_event: dict[str, list[tuple[FormSpec, dict[str, Any]]]] = defaultdict(list)
        for form, row in forms:
            if form.placement == "VISIT":
                by_event[row["visit_code"] or "UNSCHEDULED"].append((form, row))
            else:
                by_event[form.placement].append((form, row))
        scrub = self._scrubber(patient)
        for code in [*self.events, "UNSCHEDULED", "LOGS"]:
            if code not in by_event:
                continue
            event = ET.SubElement(subject, tag("StudyEventData"), StudyEventOID=f"SE.{code}")
            order = {f.oid: i for i, f in enumerate(FORMS)}
            for form, row in sorted(by_event[code], key=lambda fr: (order[fr[0].oid], fr[1]["id"])):
                data = ET.SubElement(
                    event, tag("FormData"), FormOID=f"F.{form.oid}", FormRepeatKey=str(row["id"])
                )
                group = ET.SubElement(data, tag("ItemGroupData"), ItemGroupOID=f"IG.{form.oid}")
                for column in form.columns():
                    item = self._item(form, column, row, site, scrub)
                    if item is not None:
                        group.append(item)
        return subject

    def _item(
        self, form: FormSpec, column: Column, row: dict[str, Any], site: str, scrub: Any
    ) -> ET.Element | None:
        value = row[column.name]
        if value is None or (self.pseudonymised and (form.table, column.name) in IDENTIFYING):
            return None
        if column.name in USER_COLUMNS:
            text = self.users[value]["username"]
        elif self.pseudonymised and (form.table, column.name) in YEAR_ONLY:
            text = str(value.year)
        else:
            text = scrub(as_text(column, value))
        item = ET.Element(tag("ItemData"), ItemOID=item_oid(form, column), Value=text)
        change = self.data.latest.get((form.table, str(row["id"]), column.name))
        if change is not None:
            who, at, reason = change
            record = ET.SubElement(item, tag("AuditRecord"))
            ET.SubElement(record, tag("UserRef"), UserOID=f"USR.{who}")
            ET.SubElement(record, tag("LocationRef"), LocationOID=site)
            ET.SubElement(record, tag("DateTimeStamp")).text = instant(at)
            if reason is not None:
                ET.SubElement(record, tag("ReasonForChange")).text = scrub(reason)
            self.counts["audit_records"] += 1
        return item

    def _scrubber(self, patient: dict[str, Any]) -> Any:
        """Free text without the patient's name, record number or date of birth, and staff by login name."""
        if not self.pseudonymised:
            return lambda text: text
        replacements = [
            (patient["full_name"], "[name removed]"),
            (patient["medical_record_number"], "[record number removed]"),
            (patient["date_of_birth"].isoformat(), str(patient["date_of_birth"].year)),
            *((u["full_name"], u["username"]) for u in self.users.values()),
        ]

        def scrub(text: str) -> str:
            for old, new in replacements:
                if old:
                    text = text.replace(old, new)
            return text

        return scrub
