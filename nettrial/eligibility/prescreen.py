"""Prescreen many records: one result row per patient and an attrition table.

A record that cannot be read gets decision ``ERROR`` with the field named; the others go on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nettrial.config import get_settings
from nettrial.eligibility.columnar import Evaluator
from nettrial.eligibility.evaluate import evaluate
from nettrial.eligibility.flat import read_flat, supported
from nettrial.eligibility.io import record_from_json, record_from_row
from nettrial.eligibility.record import ScreeningRecord
from nettrial.eligibility.verdicts import EligibilityResult
from nettrial.exceptions import InputError
from nettrial.protocol.model import Protocol


def read_flat_table(path: Path) -> pd.DataFrame:
    """A csv or parquet file as text cells; blank and null cells are empty strings."""
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, engine="pyarrow")
    table = pq.read_table(path)
    columns = {
        name: pc.fill_null(pc.cast(table[name], pa.string()), "").to_numpy(zero_copy_only=False)
        for name in table.column_names
    }
    return pd.DataFrame(columns).astype(str)


def read_records(path: Path) -> Iterator[tuple[int, Callable[[], ScreeningRecord]]]:
    """(record number, loader) per record; the loader raises InputError for a bad record."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, lambda line=line: record_from_json(line)
    elif suffix in (".csv", ".parquet"):
        for number, row in enumerate(read_flat_table(path).to_dict("records"), start=1):
            yield number, lambda row=row: record_from_row(row)
    else:
        raise InputError(
            "records", f"unsupported file type {suffix!r}", allowed=[".jsonl", ".csv", ".parquet"]
        )


def result_row(result: EligibilityResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record": None,
        "patient_id": result.patient_id,
        "decision": result.decision.value,
    }
    row.update({v.criterion: v.truth.value for v in result.verdicts})
    row["failed"] = ";".join(result.failed)
    row["missing"] = "; ".join(result.missing)
    row["earliest_first_dose"] = result.earliest_first_dose.isoformat() if result.earliest_first_dose else ""
    row["provisional"] = result.provisional
    row["error"] = ""
    return row


def attrition_table(results: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Per criterion: how many records it rules out, how many are unknown; then the decisions."""
    lines = []
    for criterion in protocol.eligibility.criteria:
        counts = results[criterion.id].value_counts()
        excluding = "NOT_MET" if criterion.kind == "inclusion" else "MET"
        lines.append(
            {
                "criterion": criterion.id,
                "kind": criterion.kind,
                "rules_out": int(counts.get(excluding, 0)),
                "unknown": int(counts.get("UNKNOWN", 0)),
                "passes": int(counts.get("MET" if criterion.kind == "inclusion" else "NOT_MET", 0)),
            }
        )
    decisions = results["decision"].value_counts()
    for decision in ("ELIGIBLE", "INELIGIBLE", "INCOMPLETE", "ERROR"):
        lines.append(
            {
                "criterion": decision,
                "kind": "decision",
                "rules_out": int(decisions.get(decision, 0)),
                "unknown": "",
                "passes": "",
            }
        )
    return pd.DataFrame(lines)


def _row_path(load: Callable[[], ScreeningRecord], protocol: Protocol, first_dose: Any) -> dict[str, Any]:
    try:
        return result_row(evaluate(load(), protocol, first_dose))
    except InputError as error:
        return {"patient_id": "", "decision": "ERROR", "error": str(error)}


RESULT_COLUMNS = (
    "record",
    "patient_id",
    "decision",
    "failed",
    "missing",
    "earliest_first_dose",
    "provisional",
    "error",
)


def _as_table(rows: list[dict[str, Any]], protocol: Protocol) -> pd.DataFrame:
    ids = [c.id for c in protocol.eligibility.criteria]
    columns = [*RESULT_COLUMNS[:3], *ids, *RESULT_COLUMNS[3:]]
    return pd.DataFrame(rows, columns=columns, dtype=object).fillna("")


def prescreen_table(
    source: Path,
    protocol: Protocol,
    first_dose: dt.date | dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
    block_rows: int | None = None,
) -> pd.DataFrame:
    """One result row per record. Flat files go column by column (``columnar.py``), with the row
    path for the rows it leaves; json lines go record by record."""
    if source.suffix.lower() in (".csv", ".parquet"):
        frame = read_flat_table(source)
        if supported(list(frame.columns)):
            return _prescreen_columnar(frame, protocol, first_dose, progress, block_rows)
    rows = []
    for number, load in read_records(source):
        row = _row_path(load, protocol, first_dose)
        row["record"] = number
        rows.append(row)
        if progress and number % 1000 == 0:
            progress(1000)
    return _as_table(rows, protocol)


def prescreen_rows(
    source: Path, protocol: Protocol, first_dose: Any = None, block_rows: int | None = None
) -> list[dict[str, Any]]:
    return prescreen_table(source, protocol, first_dose, block_rows=block_rows).to_dict("records")


def _prescreen_columnar(
    frame: pd.DataFrame,
    protocol: Protocol,
    first_dose: Any,
    progress: Callable[[int], None] | None,
    block_rows: int | None = None,
) -> pd.DataFrame:
    """Block by block (bounded memory, a progress bar that moves), each block column by column."""
    size = block_rows or get_settings().prescreen_block_rows
    blocks = []
    for start in range(0, len(frame), size):
        block = frame.iloc[start : start + size].reset_index(drop=True)
        blocks.append(_columnar_block(block, start, protocol, first_dose))
        if progress:
            progress(len(block))
    return pd.concat(blocks, ignore_index=True) if blocks else _as_table([], protocol)


def _columnar_block(frame: pd.DataFrame, offset: int, protocol: Protocol, first_dose: Any) -> pd.DataFrame:
    numbers = np.arange(offset + 1, offset + len(frame) + 1)
    table = read_flat(frame)
    valid = table.valid
    evaluator = Evaluator(table.rows(valid), protocol, first_dose)
    done = evaluator.results(numbers[valid])
    done = done[~evaluator.failed_rows]
    left = np.setdiff1d(numbers, done["record"].to_numpy())
    rows = []
    for number in left:
        cells = frame.iloc[number - 1 - offset].to_dict()
        row = _row_path(lambda cells=cells: record_from_row(cells), protocol, first_dose)
        row["record"] = int(number)
        rows.append(row)
    combined = pd.concat([done, _as_table(rows, protocol)], ignore_index=True) if rows else done
    return combined.sort_values("record", kind="stable").reset_index(drop=True)


def write_csv(results: pd.DataFrame, target: Path) -> None:
    """The result table as CSV, every cell as text (pyarrow's writer: pandas' is slow at this size)."""
    columns = {
        name: pa.array(results[name].astype(str).to_numpy(dtype=object), pa.string()) for name in results
    }
    pacsv.write_csv(pa.table(columns), target)


def prescreen_file(
    source: Path,
    target: Path,
    protocol: Protocol,
    first_dose: dt.date | dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Evaluate every record of ``source``; write the result rows to ``target``; return attrition."""
    results = prescreen_table(source, protocol, first_dose, progress)
    write_csv(results, target)
    attrition = attrition_table(results, protocol)
    attrition.to_csv(target.with_name(target.stem + "_attrition.csv"), index=False)
    return attrition
