"""``nettrial survival``: any CSV in, the issue's JSON (or a readable table) out; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from nettrial.analysis.survival import SurvivalAnalysis
from nettrial.cli import main

REFERENCE = Path(__file__).parents[1] / "analysis" / "reference"
TIES = REFERENCE / "ties.csv"
R_OUTPUT = json.loads((REFERENCE / "survival_reference.json").read_text())


def run(*args: str):
    return CliRunner().invoke(main, ["survival", *args])


def as_json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_json_is_the_analysis_of_the_parsed_csv():
    out = as_json("--data", str(TIES), "--time", "time", "--event", "status", "--landmarks", "3,8.5")
    expected = SurvivalAnalysis(landmarks=(3, 8.5)).fit(pd.read_csv(TIES), "time", "status").to_dict()
    assert out == json.loads(json.dumps(expected))
    assert [p["time"] for p in out["landmarks"]] == [3, 8.5]
    assert set(out) == {"n", "events", "median", "landmarks", "follow_up", "at_risk"}


def test_group_and_covariates_add_logrank_and_cox_with_dummy_names():
    out = as_json(
        "--data", str(TIES), "--time", "time", "--event", "status",
        "--group", "site", "--covariates", "site, ki67",
    )  # fmt: skip
    reference = R_OUTPUT["ties"]
    assert out["logrank"]["df"] == 2
    assert out["logrank"]["statistic"] == pytest.approx(reference["logrank"]["statistic"], rel=1e-6)
    assert [t["term"] for t in out["cox"]] == ["site[rectum]", "site[small_bowel]", "ki67"]
    assert [t["coef"] for t in out["cox"]] == pytest.approx(reference["cox"]["coef"], rel=1e-6)


def test_default_landmarks_are_12_24_36():
    out = as_json("--data", str(REFERENCE / "lung.csv"), "--time", "time", "--event", "status")
    assert [p["time"] for p in out["landmarks"]] == [12, 24, 36]
    assert out["n"] == 228 and out["events"] == 165
    assert out["median"] == pytest.approx(R_OUTPUT["lung"]["median"])


def test_text_output_explains_the_method():
    result = run("--data", str(TIES), "--time", "time", "--event", "status", "--landmarks", "5")
    assert result.exit_code == 0, result.output
    assert "log-log" in result.output and "median 6 (95% CI 5 to 7)" in result.output


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--time", "days", "--event", "status"], "time"),
        (["--time", "time", "--event", "dead"], "event"),
        (["--time", "time", "--event", "status", "--group", "arm"], "group"),
        (["--time", "time", "--event", "status", "--covariates", "age,stage"], "covariates"),
        (["--time", "time", "--event", "status", "--landmarks", "12,two"], "landmarks"),
        (["--time", "time", "--event", "status", "--landmarks", "-6"], "landmarks"),
        (["--time", "time", "--event", "site"], "event"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_field(args, field):
    result = run("--data", str(TIES), *args)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {field}:") and result.output.count("\n") == 1


def test_missing_values_are_reported_with_their_count(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("time,status\n1,1\n,0\n3,\n4,1\n")
    result = run("--data", str(path), "--time", "time", "--event", "status")
    assert result.exit_code == 2 and result.output.startswith("error: time:")
    assert "1 of 4 rows" in result.output


@pytest.mark.parametrize("content", [None, "", 'time,status\n1,1,1,1\n2\n"3,0\n'])
def test_unreadable_data_file_is_bad_input(tmp_path, content):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    result = run("--data", str(path), "--time", "time", "--event", "status")
    assert result.exit_code == 2
    assert result.output.startswith("error: data:") and result.output.count("\n") == 1
