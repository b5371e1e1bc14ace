"""The screening record as a web form: its fields, the form values of a saved record, and back.

Form fields are named by their path in the record (``pathology.size_mm``, ``labs.platelets.value``,
``blood_pressure.0.systolic``), so an ``InputError`` from the store names the field it belongs to.
Sections the form does not edit (explicit T/N/M, supportive-care items, other labs, details of a
history event) are kept from the previous version: saving the form never drops data it cannot show.
The record model (``eligibility/record.py``) validates; this module only moves values.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from nettrial.eligibility.record import HistoryKind
from nettrial.exceptions import InputError
from nettrial.protocol import model
from nettrial.protocol.model import Protocol
from nettrial.staging.findings import metastasis_sites
from nettrial.staging.tables import site_tables, sites
from nettrial.units import lab_tests

TRI = (("", "screening.choice.not_recorded"), ("yes", "screening.choice.yes"), ("no", "screening.choice.no"))
STUDY_EDITION = "9"  # I3 stages by AJCC Version 9 (protocol nct07279532.yaml, criterion I3)
BLANK_ROWS = 2  # empty rows offered under the recorded ones in list sections


@dataclass(frozen=True, slots=True)
class Field:
    """One form control: ``kind`` is date, time, datetime, text, number, integer, choice, tri or check."""

    name: str
    kind: str
    choices: tuple[tuple[str, str | None], ...] = ()  # (value, label key; None shows the value)
    hint: str | None = None


def _choices(*values: str, prefix: str | None = None) -> tuple[tuple[str, str | None], ...]:
    return (
        ("", "screening.choice.not_recorded"),
        *((v, f"{prefix}.{v}" if prefix else None) for v in values),
    )


@cache
def _site_choices() -> tuple[tuple[str, str | None], ...]:
    return (("", "screening.choice.not_recorded"), *((key, f"screening.site.{key}") for key in sites()))


SECTIONS: dict[str, tuple[Field, ...]] = {
    "dates": (
        Field("screening_date", "date"),
        Field("planned_first_dose.date", "date", hint="screening.hint.planned_first_dose"),
        Field("planned_first_dose.time", "time"),
    ),
    "consent": (Field("consent.signed", "tri", TRI), Field("consent.date", "date")),
    "weight": (
        Field("identity.weight.value", "number"),
        Field("identity.weight.unit", "choice", (("kg", None), ("lb", None))),
        Field("identity.weight.date", "date"),
    ),
    "surgery": (
        Field("surgery.date", "date"),
        Field("surgery.procedure", "text"),
        Field("surgery.margin", "choice", _choices("R0", "R1", "R2")),
    ),
    "pathology": (
        Field("pathology.site", "choice", _site_choices()),
        Field("pathology.size_mm", "number"),
        Field("pathology.extent", "extent"),
        Field("pathology.nodes_positive", "integer"),
        Field("pathology.nodes_examined", "integer"),
        Field("pathology.metastasis", "text", hint="screening.hint.metastasis"),
        Field("pathology.ki67_percent", "number"),
        Field("pathology.mitoses_per_2mm2", "number"),
        Field(
            "pathology.differentiation",
            "choice",
            _choices("well", "poor", prefix="screening.differentiation"),
        ),
        Field(
            "pathology.tumour_type", "choice", _choices("net", "nec", "minen", prefix="screening.tumour_type")
        ),
        Field("pathology.lymphovascular_invasion", "tri", TRI),
        Field("pathology.perineural_invasion", "tri", TRI),
    ),
    "disease": (Field("liver_metastases", "tri", TRI), Field("symptomatic", "tri", TRI)),
    "supportive_care": (Field("supportive_care.reviewed", "check", hint="screening.hint.supportive_care"),),
    "history": (Field("history.reviewed", "check", hint="screening.hint.history"),),
    "reproductive": (
        Field("reproductive.childbearing_potential", "tri", TRI),
        Field("reproductive.partner_childbearing_potential", "tri", TRI),
        Field("reproductive.contraception_agreed", "tri", TRI),
        Field("reproductive.pregnant", "tri", TRI),
        Field("reproductive.lactating", "tri", TRI),
        Field(
            "reproductive.pregnancy_test.type", "choice", _choices("serum", "urine", prefix="screening.test")
        ),
        Field(
            "reproductive.pregnancy_test.result",
            "choice",
            _choices("negative", "positive", prefix="screening.test"),
        ),
        Field("reproductive.pregnancy_test.taken_at", "datetime"),
    ),
}
SCALARS = {f.name: f for fields in SECTIONS.values() for f in fields}
# Fields moved by their own code below rather than as one value at one path.
_COMPOSITE = (
    "planned_first_dose.",
    "identity.weight.",
    "reproductive.pregnancy_test.",
    "pathology.metastasis",
)


@dataclass(frozen=True, slots=True)
class LabRow:
    """One laboratory test on the form: its units and the study's limit from the protocol."""

    test: str
    units: tuple[str, ...]
    limits: tuple[model.Lab, ...]

    @property
    def needs_uln(self) -> bool:
        return any(limit.times_uln is not None for limit in self.limits)

    @property
    def unit_choices(self) -> tuple[tuple[str, None], ...]:
        return tuple((unit, None) for unit in self.units)


def _nodes(node: Any):
    yield node
    for child in getattr(node, "all", None) or getattr(node, "any", None) or getattr(node, "of", None) or []:
        yield from _nodes(child)
    for child in (getattr(node, "if_", None), getattr(node, "then", None)):
        if child is not None:
            yield from _nodes(child)


def lab_rows(protocol: Protocol) -> list[LabRow]:
    """The tests the eligibility criteria read, in the protocol's order, with their limits."""
    found: dict[str, list[model.Lab]] = {}
    for criterion in protocol.eligibility.criteria:
        for node in _nodes(criterion.rule):
            if isinstance(node, model.Lab):
                found.setdefault(node.test, []).append(node)
    return [LabRow(test, tuple(lab_tests()[test]["units"]), tuple(limits)) for test, limits in found.items()]


def attestation_ids(protocol: Protocol) -> list[str]:
    """Criteria answered by the investigator (I4, E9): the form asks for answer, by, at."""
    return [c.id for c in protocol.eligibility.criteria if isinstance(c.rule, model.Attestation)]


HISTORY_KINDS: tuple[str, ...] = HistoryKind.__args__
HISTORY_CHOICES = (
    ("", "screening.choice.choose"),
    *((kind, f"screening.history.{kind}") for kind in HISTORY_KINDS),
)


@cache
def extent_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """Each site's extent vocabulary (the deepest structure invaded), for a grouped select."""
    return [(key, list(site_tables(key, STUDY_EDITION).extent.items())) for key in sites()]


# --- record -> form values -----------------------------------------------------------------------


def _get(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(value: Any, kind: str = "text") -> str:
    if value is None:
        return ""
    if kind == "tri":
        return "yes" if value else "no"
    if kind == "check":
        return "on" if value else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if kind == "datetime":
        return str(value)[:16]
    return str(value)


def form_values(record: Mapping[str, Any] | None, protocol: Protocol) -> dict[str, str]:
    """The form's values for a saved record (or an empty form)."""
    record = record or {}
    values = {
        name: _text(_get(record, name), spec.kind)
        for name, spec in SCALARS.items()
        if not name.startswith(_COMPOSITE)
    }
    planned = str(record.get("planned_first_dose") or "")
    values["planned_first_dose.date"], _, time = planned.partition("T")
    values["planned_first_dose.time"] = time[:5]
    for part in ("value", "unit", "date"):
        values[f"identity.weight.{part}"] = _text(_get(record, f"identity.weight.{part}"))
    values["identity.weight.unit"] = values["identity.weight.unit"] or "kg"
    for part in ("type", "result", "taken_at"):
        name = f"reproductive.pregnancy_test.{part}"
        values[name] = _text(_get(record, name), "datetime" if part == "taken_at" else "text")
    sites_found = _get(record, "pathology.metastasis")
    values["pathology.metastasis"] = (
        "" if sites_found is None else ", ".join(sites_found) if sites_found else "none"
    )
    labs = {lab["test"]: lab for lab in record.get("labs", [])}  # the last result of each test
    for row in lab_rows(protocol):
        lab = labs.get(row.test, {})
        for part in ("value", "unit", "uln", "date"):
            values[f"labs.{row.test}.{part}"] = _text(lab.get(part))
        values[f"labs.{row.test}.unit"] = values[f"labs.{row.test}.unit"] or row.units[0]
    for i, reading in enumerate(record.get("blood_pressure", [])):
        for part in ("date", "systolic", "diastolic"):
            values[f"blood_pressure.{i}.{part}"] = _text(reading.get(part))
        values[f"blood_pressure.{i}.on_treatment"] = _text(reading.get("on_treatment"), "tri")
    for i, event in enumerate(_get(record, "history.events") or []):
        for part in ("kind", "date", "note"):
            values[f"history.events.{i}.{part}"] = _text(event.get(part))
    for criterion in attestation_ids(protocol):
        given = (record.get("attestations") or {}).get(criterion, {})
        for part in ("answer", "by", "at", "note"):
            values[f"attestations.{criterion}.{part}"] = _text(
                given.get(part), "datetime" if part == "at" else "text"
            )
    return values


def row_count(values: Mapping[str, str], section: str) -> int:
    """Rows to show in a list section: the recorded ones and ``BLANK_ROWS`` empty ones."""
    pattern = re.compile(rf"^{re.escape(section)}\.(\d+)\.")
    used = [int(m.group(1)) + 1 for name, value in values.items() if value and (m := pattern.match(name))]
    return max(used, default=0) + BLANK_ROWS


# --- form values -> record -------------------------------------------------------------------------


@dataclass
class Parsed:
    """The record document built from a form, and which form row each list item came from."""

    document: dict[str, Any]
    rows: dict[tuple[str, int], str] = field(default_factory=dict)


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target.setdefault(part, {})
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value


def _value(raw: str, kind: str) -> Any:
    text = raw.strip()
    if kind == "tri":
        return {"yes": True, "no": False}.get(text)
    return text or None


def record_from_form(
    form: Mapping[str, str], previous: Mapping[str, Any] | None, protocol: Protocol
) -> Parsed:
    """The record document the form describes, on top of the previous version."""
    document: dict[str, Any] = copy.deepcopy(dict(previous or {}))
    parsed = Parsed(document)

    def get(name: str) -> str:
        return str(form.get(name) or "").strip()

    for name, spec in SCALARS.items():
        if name.startswith(_COMPOSITE):
            continue
        _put(document, name, (name in form) if spec.kind == "check" else _value(get(name), spec.kind))
    day, time = get("planned_first_dose.date"), get("planned_first_dose.time")
    if time and not day:
        raise InputError("planned_first_dose", "a time of day needs its date")
    _put(document, "planned_first_dose", f"{day}T{time}" if time else day or None)
    weight = {p: get(f"identity.weight.{p}") or None for p in ("value", "unit", "date")}
    _put(document, "identity.weight", {k: v for k, v in weight.items() if v} if weight["value"] else None)
    test = {p: get(f"reproductive.pregnancy_test.{p}") or None for p in ("type", "result", "taken_at")}
    _put(
        document,
        "reproductive.pregnancy_test",
        {k: v for k, v in test.items() if v} if any(test.values()) else None,
    )
    try:
        found = metastasis_sites(get("pathology.metastasis") or None)
    except InputError as error:
        raise InputError("pathology.metastasis", error.detail, allowed=error.allowed) from None
    _put(document, "pathology.metastasis", None if found is None else list(found))
    _labs(form, document, parsed, protocol)
    _blood_pressure(form, document, parsed)
    _history(form, document, parsed)
    attestations = dict(document.get("attestations") or {})
    for criterion in attestation_ids(protocol):
        given = {p: get(f"attestations.{criterion}.{p}") for p in ("answer", "by", "at", "note")}
        attestations.pop(criterion, None)
        if any(given.values()):
            attestations[criterion] = {k: v for k, v in given.items() if v}
    _put(document, "attestations", attestations or None)
    return parsed


def _labs(form: Mapping[str, str], document: dict[str, Any], parsed: Parsed, protocol: Protocol) -> None:
    rows = lab_rows(protocol)
    on_form = {row.test for row in rows}
    before = {lab["test"]: lab for lab in document.get("labs", [])}
    labs = [lab for lab in document.get("labs", []) if lab["test"] not in on_form]
    for row in rows:
        given = {p: str(form.get(f"labs.{row.test}.{p}") or "").strip() for p in ("value", "uln", "date")}
        if not any(given.values()):
            continue
        unit = str(form.get(f"labs.{row.test}.unit") or "").strip()
        lab = {"test": row.test, "unit": unit, **{k: v for k, v in given.items() if v}}
        old = before.get(row.test, {})
        if old.get("lln") is not None and old.get("unit") == unit:
            lab["lln"] = old["lln"]  # the laboratory's lower limit is not on the form: keep it
        parsed.rows[("labs", len(labs))] = row.test
        labs.append(lab)
    _put(document, "labs", labs or None)


def _list_rows(form: Mapping[str, str], section: str, parts: tuple[str, ...]):
    """(form row, values) of each list row the user filled in."""
    pattern = re.compile(rf"^{re.escape(section)}\.(\d+)\.")
    indices = sorted({int(m.group(1)) for name in form if (m := pattern.match(name))})
    for i in indices:
        given = {p: str(form.get(f"{section}.{i}.{p}") or "").strip() for p in parts}
        if any(given.values()):
            yield i, given


def _blood_pressure(form: Mapping[str, str], document: dict[str, Any], parsed: Parsed) -> None:
    readings = []
    for i, given in _list_rows(form, "blood_pressure", ("date", "systolic", "diastolic", "on_treatment")):
        reading = {k: v for k, v in given.items() if v and k != "on_treatment"}
        treated = _value(given["on_treatment"], "tri")
        if treated is not None:
            reading["on_treatment"] = treated
        parsed.rows[("blood_pressure", len(readings))] = str(i)
        readings.append(reading)
    _put(document, "blood_pressure", readings or None)


def _history(form: Mapping[str, str], document: dict[str, Any], parsed: Parsed) -> None:
    history = dict(document.get("history") or {})
    # Details the form does not show (NYHA class, severity, ...) stay with the same kind and date.
    before = {(e.get("kind"), e.get("date")): e for e in history.get("events", [])}
    events = []
    for i, given in _list_rows(form, "history.events", ("kind", "date", "note")):
        event = {
            **before.get((given["kind"], given["date"] or None), {}),
            **{k: v for k, v in given.items() if v},
        }
        if not given["note"]:
            event.pop("note", None)
        parsed.rows[("history.events", len(events))] = str(i)
        events.append(event)
    history["events"] = events
    document["history"] = history


# --- errors -> form fields ---------------------------------------------------------------------------

_DEFAULT_PART = {"labs": "value", "blood_pressure": "diastolic", "history.events": "kind"}
_FIRST = {
    "planned_first_dose": "planned_first_dose.date",
    "identity.weight": "identity.weight.value",
    "reproductive.pregnancy_test": "reproductive.pregnancy_test.type",
}


def form_field(error: InputError, parsed: Parsed | None) -> str | None:
    """The form field an error of the record belongs to, or None when it is about the whole record."""
    path = error.field
    for section, default in _DEFAULT_PART.items():
        match = re.match(rf"^{re.escape(section)}\.(\d+)(?:\.(\w+))?", path)
        if match and parsed is not None:
            row = parsed.rows.get((section, int(match.group(1))))
            if row is None:
                return None
            part = match.group(2) or default
            if section == "labs" and error.detail.startswith(f"{row}.unit"):
                part = "unit"  # the unit check names itself in the message ("haemoglobin.unit: ...")
            return f"{section}.{row}.{part}"
    if path in SCALARS or path == "pathology.metastasis":
        return path
    if path.startswith("attestations."):
        parts = path.split(".")
        return f"attestations.{parts[1]}.{parts[2] if len(parts) > 2 else 'answer'}"
    while path:
        if path in _FIRST:
            return _FIRST[path]
        if path in SCALARS:
            return path
        path = path.rpartition(".")[0]
    return None
