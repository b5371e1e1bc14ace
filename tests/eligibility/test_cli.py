"""``nettrial screen``, ``prescreen``, ``schema screening-record`` and ``protocol show``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from nettrial.cli import main

RECORD = json.loads((Path(__file__).parent / "eligible_record.json").read_text())


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def write(tmp_path: Path, record: dict, name: str = "record.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(record))
    return path


def test_screen_eligible_exits_0_and_shows_every_criterion(tmp_path: Path) -> None:
    result = run("screen", str(write(tmp_path, RECORD)))
    assert result.exit_code == 0, result.output
    for criterion in ("I1", "I2", "I3", "I4", "I5", "I6", *(f"E{i}" for i in range(1, 10))):
        assert f"\n{criterion} " in result.output
    assert "decision: ELIGIBLE" in result.output
    assert "earliest allowed first dose: 2026-02-17" in result.output


def test_screen_ineligible_exits_1_and_json_names_the_failure(tmp_path: Path) -> None:
    record = copy.deepcopy(RECORD)
    record["labs"][1]["value"] = 99  # platelets 99 x 10^9/L
    result = run("screen", str(write(tmp_path, record)), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["decision"] == "INELIGIBLE" and data["failed"] == ["I5"]
    i5 = next(v for v in data["verdicts"] if v["criterion"] == "I5")
    platelets = next(e for e in i5["evidence"] if e["field"] == "labs.platelets")
    assert (platelets["value"], platelets["unit"], platelets["date"], platelets["threshold"]) == (
        99.0,
        "10^9/L",
        "2026-02-24",
        ">= 100 10^9/L",
    )


def test_first_dose_option_moves_the_index(tmp_path: Path) -> None:
    result = run("screen", str(write(tmp_path, RECORD)), "--first-dose", "2026-02-10", "--json")
    data = json.loads(result.output)
    assert data["index_date"] == "2026-02-10"
    assert data["decision"] == "INELIGIBLE"  # 21 days after surgery: E1
    assert "E1" in data["failed"]


def test_incomplete_exits_1_and_lists_missing(tmp_path: Path) -> None:
    record = copy.deepcopy(RECORD)
    record["labs"] = [lab for lab in record["labs"] if lab["test"] != "anc"]
    result = run("screen", str(write(tmp_path, record)))
    assert result.exit_code == 1
    assert "decision: INCOMPLETE" in result.output
    assert "I5: labs.anc" in result.output


def test_bad_record_exits_2_naming_the_field(tmp_path: Path) -> None:
    record = copy.deepcopy(RECORD)
    record["labs"][2] = {"test": "haemoglobin", "value": 120, "unit": "g/dL", "date": "2026-02-24"}
    result = run("screen", str(write(tmp_path, record)))
    assert result.exit_code == 2
    assert result.output.startswith("error: labs.2:")
    assert "g/L" in result.output


def test_prescreen_jsonl_and_csv_give_rows_and_attrition(tmp_path: Path) -> None:
    good = copy.deepcopy(RECORD)
    low = copy.deepcopy(RECORD)
    low["identity"]["patient_id"] = "S-002"
    low["labs"][1]["value"] = 50
    source = tmp_path / "records.jsonl"
    source.write_text("\n".join([json.dumps(good), json.dumps(low), '{"identity": {}}']) + "\n")
    out = tmp_path / "results.csv"
    result = run("prescreen", str(source), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(out, keep_default_na=False)
    assert list(rows["decision"]) == ["ELIGIBLE", "INELIGIBLE", "ERROR"]
    assert rows.loc[1, "I5"] == "NOT_MET"
    assert "identity.patient_id" in rows.loc[2, "error"]
    attrition = pd.read_csv(tmp_path / "results_attrition.csv", keep_default_na=False)
    i5 = attrition[attrition["criterion"] == "I5"].iloc[0]
    assert int(i5["rules_out"]) == 1 and int(i5["passes"]) == 1


FLAT = {
    "identity.patient_id": "F-1",
    "identity.date_of_birth": "1965-05-10",
    "identity.sex": "male",
    "screening_date": "2026-02-20",
    "surgery.date": "2026-01-20",
    "pathology.site": "pancreas",
    "pathology.size_mm": "32",
    "pathology.extent": "limited",
    "pathology.nodes_positive": "3",
    "pathology.nodes_examined": "15",
    "pathology.metastasis": "none",
    "pathology.ki67_percent": "8",
    "pathology.differentiation": "well",
}


def test_prescreen_flat_csv(tmp_path: Path) -> None:
    flat = {**FLAT, "labs.anc.value": "1.4", "labs.anc.unit": "10^9/L", "labs.anc.date": "2026-02-19"}
    source = tmp_path / "records.csv"
    pd.DataFrame([flat]).to_csv(source, index=False)
    out = tmp_path / "results.csv"
    assert run("prescreen", str(source), "--out", str(out)).exit_code == 0
    row = pd.read_csv(out, keep_default_na=False).iloc[0]
    assert (row["I3"], row["I5"], row["decision"]) == ("MET", "NOT_MET", "INELIGIBLE")


def test_schema_and_protocol_show() -> None:
    schema = json.loads(run("schema", "screening-record").output)
    assert schema["title"].endswith("version 1.0")
    assert {"identity", "labs", "pathology", "attestations"} <= set(schema["properties"])
    shown = run("protocol", "show").output
    assert shown.startswith("# NCT07279532")
    assert "### E9 (exclusion)" in shown and "lab_max_age_days" in shown


def test_prescreen_parquet(tmp_path: Path) -> None:
    flat = {
        **FLAT,
        "identity.patient_id": "Q-1",
        "pathology.size_mm": "12",
        "pathology.nodes_positive": "0",
        "pathology.nodes_examined": "9",
        "pathology.ki67_percent": "2",
    }
    source = tmp_path / "records.parquet"
    pd.DataFrame([flat, {**flat, "identity.patient_id": "Q-2", "pathology.ki67_percent": "140"}]).to_parquet(
        source
    )
    out = tmp_path / "results.csv"
    assert run("prescreen", str(source), "--out", str(out)).exit_code == 0
    rows = pd.read_csv(out, keep_default_na=False)
    # stage I G1 pancreatic NET: I3 not met; with I4 (attestation) unanswered the OR group stays open
    assert (rows.loc[0, "I3"], rows.loc[0, "decision"]) == ("NOT_MET", "INCOMPLETE")
    assert rows.loc[1, "decision"] == "ERROR" and "pathology.ki67_percent" in rows.loc[1, "error"]
