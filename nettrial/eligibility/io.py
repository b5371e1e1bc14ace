"""Reading screening records from files: one JSON document, or rows of a jsonl/csv/parquet file.

Flat files (csv, parquet) name each column by its dotted path in the record
(``identity.date_of_birth``, ``pathology.size_mm``); labs as ``labs.<test>.value|unit|lln|uln|date``;
list sections (``blood_pressure``, ``history.events``, ``supportive_care.items``, ``attestations``)
as JSON text in one column; ``pathology.metastasis`` as ``none`` or ``liver,lung``. Blank cells
are "not recorded". Validation errors name the field path.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from nettrial.eligibility.record import ScreeningRecord
from nettrial.exceptions import InputError

JSON_COLUMNS = {"blood_pressure", "history.events", "supportive_care.items", "attestations", "labs"}


def validation_error(error: ValidationError, prefix: str = "") -> InputError:
    """The first problem of a pydantic error as an InputError naming the field path."""
    first = error.errors()[0]
    location = ".".join(str(p) for p in first["loc"]) or "record"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return InputError(f"{prefix}{location}", f"{message}{more}")


def record_from_json(text: str | bytes) -> ScreeningRecord:
    try:
        return ScreeningRecord.model_validate_json(text)
    except ValidationError as error:
        raise validation_error(error) from None


def read_record(path: Path) -> ScreeningRecord:
    try:
        return record_from_json(path.read_bytes())
    except OSError as exc:
        raise InputError("record", f"cannot read {path}: {exc}") from None


def parse_first_dose(text: str | None) -> dt.date | dt.datetime | None:
    if not text:
        return None
    try:
        return (
            dt.datetime.fromisoformat(text)
            if "T" in text or " " in text.strip()
            else dt.date.fromisoformat(text)
        )
    except ValueError:
        raise InputError(
            "first_dose", f"{text!r} is not a date", allowed="YYYY-MM-DD or YYYY-MM-DDTHH:MM"
        ) from None


def is_blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, float) and value != value)
        or (isinstance(value, str) and not value.strip())
    )


def _loads(text: str) -> Any:
    """orjson (fast) for standard JSON; the standard library for what orjson refuses (NaN, huge
    integers), so that both give the same values."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def cell_value(column: str, value: Any) -> Any:
    """A flat cell as the record expects it: JSON sections parsed, metastasis sites split."""
    if column in JSON_COLUMNS and isinstance(value, str):
        try:
            return _loads(value)
        except json.JSONDecodeError:
            raise InputError(column, "is not valid JSON") from None
    if column == "pathology.metastasis" and isinstance(value, str):
        return [] if value.strip().lower() == "none" else [s.strip() for s in value.split(",") if s.strip()]
    return value


def nest(row: dict[str, Any]) -> dict[str, Any]:
    """A flat row (dotted column names) as the nested record document."""
    document: dict[str, Any] = {}
    labs: dict[str, dict[str, Any]] = {}
    for column, value in row.items():
        if is_blank(value):
            continue
        parts = column.split(".")
        if parts[0] == "labs" and len(parts) == 3:
            labs.setdefault(parts[1], {"test": parts[1]})[parts[2]] = value
            continue
        target = document
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = cell_value(column, value)
    if labs:
        document.setdefault("labs", []).extend(labs.values())
    return document


def record_from_row(row: dict[str, Any]) -> ScreeningRecord:
    try:
        return ScreeningRecord.model_validate(nest(row))
    except ValidationError as error:
        raise validation_error(error) from None


def flatten(document: dict[str, Any]) -> dict[str, str]:
    """A record document as one flat row (the inverse of :func:`nest`): dotted columns, text cells."""
    row: dict[str, str] = {}

    def put(prefix: str, value: Any) -> None:
        if value is None:
            return
        if prefix == "labs":
            for lab in value:
                for name, item in lab.items():
                    if name != "test" and item is not None:
                        row[f"labs.{lab['test']}.{name}"] = str(item)
        elif prefix in JSON_COLUMNS:
            row[prefix] = json.dumps(value, default=str)
        elif prefix == "pathology.metastasis":
            row[prefix] = ",".join(value) if value else "none"
        elif isinstance(value, dict):
            for name, item in value.items():
                put(f"{prefix}.{name}" if prefix else name, item)
        elif isinstance(value, bool):
            row[prefix] = "true" if value else "false"
        else:
            row[prefix] = str(value)

    put("", document)
    return row
