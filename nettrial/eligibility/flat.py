"""Flat screening records (csv, parquet) as typed columns, checked once per distinct value.

A flat file names each column by its path in the screening record. Every check the record model
makes is made here with the model's own validators, but on the distinct values of a column (or
the distinct value/unit pairs of a lab) instead of on every row: the same answers, a thousandth of
the work. A row that fails any check, or that the checks here do not cover, is marked for the row
path, which gives the exact message.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, TypeAdapter, ValidationError

from nettrial.eligibility.io import JSON_COLUMNS, cell_value, is_blank
from nettrial.eligibility.record import ScreeningRecord, Weight
from nettrial.exceptions import InputError
from nettrial.units import lab_tests, same_unit_limit, to_canonical

LAB_FIELDS = ("value", "unit", "lln", "uln", "date")


@dataclass
class FlatTable:
    """Raw text, typed values (None = blank) and the rows the checks here accepted."""

    raw: pd.DataFrame
    typed: dict[str, np.ndarray]
    valid: np.ndarray
    canonical: dict[str, np.ndarray] = field(default_factory=dict)  # lab test -> canonical values
    uln_canonical: dict[str, np.ndarray] = field(default_factory=dict)

    def rows(self, mask: np.ndarray) -> FlatTable:
        """The same table restricted to the masked rows."""
        return FlatTable(
            self.raw[mask].reset_index(drop=True),
            {name: values[mask] for name, values in self.typed.items()},
            self.valid[mask],
            {test: values[mask] for test, values in self.canonical.items()},
            {test: values[mask] for test, values in self.uln_canonical.items()},
        )

    def column(self, name: str) -> np.ndarray:
        """Typed values of a column; all None when the file has no such column."""
        if name in self.typed:
            return self.typed[name]
        return np.full(len(self.raw), None, dtype=object)


def submodel_of(annotation: Any) -> type[BaseModel] | None:
    """The sub-model a field holds (``Model`` or ``Model | None``), not a list or dict of models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None


def objects(values: list[Any]) -> np.ndarray:
    """A 1-d object array of the values as they are (numpy would unpack lists into more dimensions)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


@cache
def _field(path: str) -> tuple[type[BaseModel], str] | None:
    """The model and field name a dotted column path ends in, or None if it is not a field."""
    model: type[BaseModel] = ScreeningRecord
    parts = path.split(".")
    for part in parts[:-1]:
        info = model.model_fields.get(part)
        inner = submodel_of(info.annotation) if info else None
        if inner is None:
            return None
        model = inner
    return (model, parts[-1]) if parts[-1] in model.model_fields else None


@cache
def _adapter(path: str) -> TypeAdapter:
    model, name = _field(path)
    info = model.model_fields[name]
    return TypeAdapter(Annotated[info.annotation, info])


WEIGHT_COLUMNS = ("identity.weight.value", "identity.weight.unit", "identity.weight.date")


def _column_supported(column: str) -> bool:
    parts = column.split(".")
    if parts[0] == "labs":
        return len(parts) == 3 and parts[1] in lab_tests() and parts[2] in LAB_FIELDS
    if column in WEIGHT_COLUMNS or column in JSON_COLUMNS:
        return True
    found = _field(column)
    # A whole sub-model in one cell is left to the row path.
    return found is not None and submodel_of(found[0].model_fields[found[1]].annotation) is None


def supported(columns: list[str]) -> bool:
    """Whether the checks here cover every column (else the whole file takes the row path)."""
    required = {"identity.patient_id", "screening_date"}
    return required <= set(columns) and "labs" not in columns and all(map(_column_supported, columns))


def _typed(raw: pd.Series, path: str, adapter: TypeAdapter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Typed values and validity of one column, validating each distinct value once."""
    adapter = adapter or _adapter(path)
    codes, uniques = pd.factorize(raw)
    values, ok = [], []
    for value in uniques.tolist():
        if is_blank(value):
            values.append(None)
            ok.append(True)
            continue
        try:
            # python mode on the parsed cell, exactly as the row path validates it
            values.append(adapter.validate_python(cell_value(path, value)))
            ok.append(True)
        except (ValidationError, InputError, ValueError):
            values.append(None)
            ok.append(False)
    # code -1 (none here, all cells are text) would pick the trailing blank
    return objects([*values, None])[codes], np.array([*ok, True])[codes]


def _pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, list[tuple[Any, Any]]]:
    """Codes of the distinct (a, b) pairs and the pairs, without building a tuple per row."""
    codes_a, _ = pd.factorize(a)
    codes_b, uniques_b = pd.factorize(b)
    codes = pd.factorize(codes_a * (len(uniques_b) + 2) + codes_b + 1)[0]
    return codes, [(a[i], b[i]) for i in first_positions(codes)]


def _per_pair(a: np.ndarray, b: np.ndarray, convert: Any, refused: Any) -> np.ndarray:
    """``convert(a, b)`` once per distinct pair (None where either is None, ``refused`` on error)."""
    codes, pairs = _pairs(a, b)
    results = []
    for x, y in pairs:
        try:
            results.append(None if x is None or y is None else convert(x, y))
        except (InputError, KeyError):
            results.append(refused)
    return objects([*results, None])[codes]


def first_positions(codes: np.ndarray) -> np.ndarray:
    """Where each code first appears, for codes numbered 0, 1, ... in order of first appearance."""
    seen = np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))
    return np.flatnonzero(codes > seen)


def read_flat(frame: pd.DataFrame) -> FlatTable:
    """Type and check every column of a flat table (all cells text)."""
    n = len(frame)
    table = FlatTable(frame, {}, np.ones(n, dtype=bool))
    for column in frame.columns:
        if column.startswith("labs.") or column.startswith("identity.weight."):
            continue
        typed, ok = _typed(frame[column], column)
        table.typed[column] = typed
        table.valid &= ok
    _check_weight(frame, table)
    for test in {c.split(".")[1] for c in frame.columns if c.startswith("labs.")}:
        _check_lab(frame, table, test)
    _check_required(frame, table)
    return table


def _blank_mask(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return frame[column].str.strip().eq("").to_numpy()


def _check_weight(frame: pd.DataFrame, table: FlatTable) -> None:
    columns = [c for c in WEIGHT_COLUMNS if c in frame]
    if not columns:
        return
    given = ~np.logical_and.reduce([_blank_mask(frame, c) for c in columns])
    raw = [
        frame[c].to_numpy(dtype=object) if c in frame else np.full(len(frame), "", dtype=object)
        for c in WEIGHT_COLUMNS
    ]
    codes, uniques = pd.factorize(pd.Series(list(zip(*raw, strict=True)), dtype=object))
    kg, ok = [], []
    for value, unit, day in uniques:
        document = {k: v for k, v in (("value", value), ("unit", unit), ("date", day)) if not is_blank(v)}
        try:
            kg.append(Weight.model_validate(document).kg)
            ok.append(True)
        except ValidationError:
            kg.append(None)
            ok.append(False)
    table.typed["identity.weight.kg"] = np.where(given, objects(kg)[codes], None)
    table.valid &= ~given | np.array(ok)[codes]


def _check_lab(frame: pd.DataFrame, table: FlatTable, test: str) -> None:
    """A lab's columns: each field by its own validator, then unit and plausibility per pair."""
    prefix = f"labs.{test}."
    blank = {f: _blank_mask(frame, prefix + f) for f in LAB_FIELDS}
    given = ~np.logical_and.reduce(list(blank.values()))
    complete = ~(blank["value"] | blank["unit"] | blank["date"])
    table.valid &= ~given | complete  # value, unit and date are required once any field is given
    typed = {}
    for name in ("value", "lln", "uln", "date"):
        if prefix + name in frame:
            values, ok = _typed(frame[prefix + name], prefix + name, _lab_adapters()[name])
            table.valid &= ok
            typed[name] = values
        else:
            typed[name] = np.full(len(frame), None, dtype=object)
    unit = (
        frame[prefix + "unit"].to_numpy(dtype=object) if prefix + "unit" in frame else np.full(len(frame), "")
    )
    typed["unit"] = np.where(blank["unit"], None, unit)
    for name, values in typed.items():
        table.typed[prefix + name] = np.where(given, values, None)
    # canonical value and ULN per distinct (value, unit) pair, as the record model computes them
    canonical = np.full(len(frame), None, dtype=object)
    uln_canonical = np.full(len(frame), None, dtype=object)
    converted = _per_pair(typed["value"], typed["unit"], lambda v, u: to_canonical(test, v, u).value, False)
    table.valid &= ~(given & (converted == False))  # noqa: E712  (False marks a refused pair)
    canonical[given] = converted[given]
    limits = _per_pair(typed["uln"], typed["unit"], lambda v, u: same_unit_limit(test, v, u, ""), None)
    uln_canonical[given] = limits[given]
    table.canonical[test] = canonical
    table.uln_canonical[test] = uln_canonical


@cache
def _lab_adapters() -> dict[str, TypeAdapter]:
    from nettrial.eligibility.record import LabResult

    return {
        name: TypeAdapter(Annotated[info.annotation, info]) for name, info in LabResult.model_fields.items()
    }


def _check_required(frame: pd.DataFrame, table: FlatTable) -> None:
    """A sub-model given in part must have its required fields (as the model would insist)."""
    prefixes = {c.rsplit(".", 1)[0] for c in frame.columns if "." in c and not c.startswith("labs.")}
    for prefix in prefixes:
        found = _field(prefix)
        model = submodel_of(found[0].model_fields[found[1]].annotation) if found else ScreeningRecord
        if model is None:
            continue
        columns = [
            c for c in frame.columns if c.startswith(prefix + ".") and c.count(".") == prefix.count(".") + 1
        ]
        given = ~np.logical_and.reduce([_blank_mask(frame, c) for c in columns])
        for name, info in model.model_fields.items():
            if info.is_required():
                table.valid &= ~given | ~_blank_mask(frame, f"{prefix}.{name}")
    for name in ("identity.patient_id", "screening_date"):
        table.valid &= ~_blank_mask(frame, name)
