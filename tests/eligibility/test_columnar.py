"""The columnar prescreen gives, row for row, exactly what the row path gives."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from nettrial.eligibility import prescreen
from nettrial.eligibility.evaluate import evaluate
from nettrial.eligibility.flat import supported
from nettrial.eligibility.io import flatten, record_from_row
from nettrial.eligibility.prescreen import prescreen_rows, result_row
from nettrial.exceptions import InputError
from nettrial.protocol.load import load_protocol
from tests.eligibility.factories import random_record

PROTOCOL = load_protocol()


def row_path(row: dict[str, str]) -> dict:
    try:
        return result_row(evaluate(record_from_row(row), PROTOCOL))
    except InputError as error:
        return {"patient_id": "", "decision": "ERROR", "error": str(error)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columnar_equals_row_path(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    rows = [flatten(random_record(rng, i)) for i in range(700)]
    frame = pd.DataFrame(rows).fillna("")
    source = tmp_path / "records.csv"
    frame.to_csv(source, index=False)
    left_to_row_path = []
    original = prescreen._row_path
    monkeypatch.setattr(prescreen, "_row_path", lambda *a: left_to_row_path.append(1) or original(*a))
    got = prescreen_rows(source, PROTOCOL, block_rows=250)  # several blocks: numbering across them
    # the columnar path did the work: only refused records went record by record
    assert supported(list(frame.columns))
    assert 0 < len(left_to_row_path) <= sum(r["decision"] == "ERROR" for r in got) + 0.05 * len(rows)
    cells = frame.astype(str).to_dict("records")
    mismatches = []
    for number, (cell_row, result) in enumerate(zip(cells, got, strict=True), start=1):
        expected = row_path(cell_row)
        expected["record"] = number
        if {k: expected.get(k, "") for k in result} != result or set(expected) - set(result):
            mismatches.append((number, expected, result))
    assert not mismatches, mismatches[:2]
    decisions = {r["decision"] for r in got}
    assert decisions == {"ELIGIBLE", "INELIGIBLE", "INCOMPLETE", "ERROR"}, decisions
