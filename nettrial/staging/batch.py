"""Stage a registry export: one output row per input row, bad rows reported, never dropped.

The batch path gives exactly the row path's answer (:func:`stage_row`) for every row, but calls it
once per *distinct* case. Two rows are the same case when every text input is equal and every
number falls on the same side of every threshold the rule tables use (and of the plausibility
limits), so a million rows collapse to a few thousand calls. Values that fail validation keep
their raw text as the key, so each gets the row path's own error message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from nettrial.exceptions import InputError
from nettrial.staging.engine import stage
from nettrial.staging.findings import FINDING_FIELDS, findings_from, input_specs
from nettrial.staging.tables import editions, site_tables, sites

CATEGORY_COLUMNS = ("t", "n", "m")
SCOPE_COLUMNS = ("tumour_type", "differentiation", "histology")
INPUT_COLUMNS = ("edition", "site", *CATEGORY_COLUMNS, *FINDING_FIELDS, *SCOPE_COLUMNS)
OUTPUT_COLUMNS = ("t", "n", "m", "stage_group", "status", "message")
NUMERIC_COLUMNS = tuple(name for name in FINDING_FIELDS if name in input_specs())


def stage_row(row: dict[str, Any], default_edition: str = "9") -> dict[str, str]:
    """The row path: stage one record of raw values; a bad value gives status ``error``."""
    try:
        findings = findings_from(row)
        edition = row.get("edition") or default_edition
        result = stage(
            row.get("site") or _missing("site"),
            edition,
            explain=False,
            findings=findings,
            **{name: row.get(name) for name in (*CATEGORY_COLUMNS, *SCOPE_COLUMNS)},
        )
    except InputError as error:
        return {
            "t": "",
            "n": "",
            "m": "",
            "stage_group": "unknown",
            "status": "error",
            "message": str(error),
        }
    return {
        "t": result.t or "",
        "n": result.n or "",
        "m": result.m or "",
        "stage_group": result.stage_label,
        "status": result.status,
        "message": result.reason or "",
    }


def _missing(field: str) -> str:
    raise InputError(field, "is empty")


@cache
def thresholds(field: str) -> np.ndarray:
    """Every value a rule or a plausibility limit compares ``field`` with, across all tables."""
    values: set[float] = set()
    for site in sites():
        for edition in editions():
            tables = site_tables(site, edition)
            for table in (tables.t, tables.n, tables.m):
                values |= table.thresholds(field)
    spec = input_specs()[field]
    values |= {spec[k] for k in ("min", "max", "min_exclusive") if k in spec}
    return np.array(sorted(values), dtype=float)


def _numeric_keys(values: np.ndarray, field: str) -> list[object]:
    """Key of each distinct text value: its bin when valid, else the text itself.

    Two valid values share a bin when they lie on the same side of every threshold (equality to a
    threshold is a bin of its own), so every rule treats them alike.
    """
    text = pd.Series(values, dtype=object).str.strip()
    number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    cuts = thresholds(field)
    bins = np.searchsorted(cuts, number, "left") + np.searchsorted(cuts, number, "right")
    spec = input_specs()[field]
    ok = np.isfinite(number) & (number >= cuts[0]) & (number <= cuts[-1])
    if "min_exclusive" in spec:
        ok &= number > spec["min_exclusive"]
    if spec["type"] == "integer":
        ok &= np.mod(number, 1) == 0
    return [
        int(b) if good else ("" if t == "" else f"raw:{t}") for b, good, t in zip(bins, ok, text, strict=True)
    ]


def _group_keys(frame: pd.DataFrame) -> tuple[np.ndarray, list[tuple], np.ndarray]:
    """Group code of every row, and a stable key (tuple) per group for reuse across blocks.

    Work is done per distinct value of each column (a few thousand), never per row in Python.
    """
    columns = list(frame.columns)
    codes_per_column, keys_per_column, uniques_per_column = [], [], []
    for column in columns:
        codes, uniques = pd.factorize(frame[column].to_numpy(dtype=object))
        keys = _numeric_keys(uniques, column) if column in NUMERIC_COLUMNS else list(uniques)
        codes_per_column.append(codes)
        keys_per_column.append(keys)
        uniques_per_column.append(uniques)
    if {"nodes_positive", "nodes_examined"} <= set(columns):
        # The one check comparing two numbers quotes both in its message: such rows keep raw values.
        i, j = columns.index("nodes_positive"), columns.index("nodes_examined")
        numbers = [
            pd.to_numeric(pd.Series(uniques_per_column[k], dtype=object), errors="coerce").to_numpy()[
                codes_per_column[k]
            ]
            for k in (i, j)
        ]
        conflict = numbers[0] > numbers[1]
        for k in (i, j):
            offset = len(keys_per_column[k])
            keys_per_column[k] = keys_per_column[k] + [f"raw:{v}" for v in uniques_per_column[k]]
            codes_per_column[k] = np.where(conflict, offset + codes_per_column[k], codes_per_column[k])
    # Re-number each column by its key (several raw values may share one bin), then combine.
    combined = np.zeros(len(frame), dtype=np.int64)
    for codes, keys in zip(codes_per_column, keys_per_column, strict=True):
        key_codes, key_uniques = pd.factorize(pd.Series(keys, dtype=object))
        combined = combined * (len(key_uniques) + 1) + key_codes[codes]
        combined = pd.factorize(combined)[0].astype(np.int64)
    _, firsts = np.unique(combined, return_index=True)
    group_keys = [
        tuple(keys[codes[row]] for codes, keys in zip(codes_per_column, keys_per_column, strict=True))
        for row in firsts
    ]
    return combined, group_keys, firsts


def stage_frame(
    frame: pd.DataFrame, default_edition: str = "9", cache: dict[tuple, dict[str, str]] | None = None
) -> pd.DataFrame:
    """Stage every row of ``frame`` (all columns text); returns it with the output columns set.

    ``cache`` (group key -> result) carries results from one block of a file to the next.
    """
    used = [c for c in frame.columns if c in INPUT_COLUMNS]
    if "site" not in used:
        raise InputError("site", "the file has no 'site' column", allowed=INPUT_COLUMNS)
    cache = {} if cache is None else cache
    combined, group_keys, firsts = _group_keys(frame[used])
    keys = [(tuple(used), default_edition, key) for key in group_keys]
    new = [i for i, key in enumerate(keys) if key not in cache]
    representatives = frame[used].iloc[firsts[new]].astype(object).to_dict("records")
    for i, row in zip(new, representatives, strict=True):
        cache[keys[i]] = stage_row(row, default_edition)
    results = [cache[key] for key in keys]
    table = pd.DataFrame(results)
    out = frame.copy()
    for column in OUTPUT_COLUMNS:
        out[column] = table[column].to_numpy()[combined]
    return out


def read_batches(path: Path, block_rows: int) -> Iterator[pd.DataFrame]:
    """The CSV as text columns, a block at a time (blank cells stay empty strings)."""
    convert = pacsv.ConvertOptions(strings_can_be_null=False, auto_dict_encode=False)
    header = pacsv.open_csv(path).schema.names
    convert.column_types = {name: pa.string() for name in header}
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 22), convert_options=convert)
    pending: list[pd.DataFrame] = []
    size = 0
    for batch in reader:
        pending.append(batch.to_pandas())
        size += batch.num_rows
        if size >= block_rows:
            yield pd.concat(pending, ignore_index=True)
            pending, size = [], 0
    if pending:
        yield pd.concat(pending, ignore_index=True)


def stage_file(
    source: Path,
    target: Path,
    default_edition: str = "9",
    block_rows: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Stage ``source`` CSV into ``target`` CSV; returns the count of rows per status."""
    counts: dict[str, int] = {}
    cache: dict[tuple, dict[str, str]] = {}
    writer = None
    try:
        for frame in read_batches(source, block_rows):
            staged = stage_frame(frame, default_edition, cache)
            table = pa.Table.from_pandas(staged, preserve_index=False)
            if writer is None:
                writer = pacsv.CSVWriter(target, table.schema)
            writer.write_table(table)
            for status, count in staged["status"].value_counts().items():
                counts[status] = counts.get(status, 0) + int(count)
            if progress:
                progress(len(staged))
    finally:
        if writer is not None:
            writer.close()
    return counts
