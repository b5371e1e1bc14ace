"""The ``nettrial`` command: outputs, JSON, and exit status 2 with a one-line message for bad input."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nettrial.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_stage_from_pathology_prints_stage_and_trace() -> None:
    result = run(
        "stage",
        "--site",
        "pancreas",
        "--size-mm",
        "25",
        "--extent",
        "limited",
        "--nodes-positive",
        "2",
        "--nodes-examined",
        "14",
        "--metastasis",
        "none",
    )
    assert result.exit_code == 0, result.output
    assert "stage group: III" in result.output
    assert "T2-size" in result.output


def test_stage_from_categories_json_has_the_full_result() -> None:
    result = run("stage", "--site", "pancreas", "--t", "T2", "--n", "N1", "--m", "M0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["t"], data["n"], data["m"], data["stage_group"], data["edition"]) == (
        "T2",
        "N1",
        "M0",
        "III",
        "9",
    )
    assert data["trace"][-1]["table"] == "stage_group"


def test_edition_option_changes_the_table() -> None:
    args = ("stage", "--site", "stomach", "--t", "T4", "--n", "NX", "--m", "M0", "--json")
    assert json.loads(run(*args, "--edition", "8").output)["stage_group"] == "III"
    assert json.loads(run(*args, "--edition", "9").output)["stage_group"] == "unknown"


def test_pathology_without_metastasis_status_is_not_guessed() -> None:
    result = run(
        "stage",
        "--site",
        "pancreas",
        "--size-mm",
        "25",
        "--extent",
        "limited",
        "--nodes-positive",
        "2",
        "--nodes-examined",
        "14",
        "--json",
    )
    data = json.loads(result.output)
    assert data["stage_group"] == "unknown"
    assert "metastasis" in data["reason"] or "IV" in data["reason"]


@pytest.mark.parametrize(
    ("args", "field", "allowed_word"),
    [
        (("stage", "--site", "mars", "--t", "T1", "--n", "N0", "--m", "M0"), "site", "pancreas"),
        (("stage", "--site", "stomach", "--t", "T1", "--n", "N2", "--m", "M0"), "n", "N1"),
        (("stage", "--site", "pancreas", "--size-mm", "-3", "--extent", "limited"), "size_mm", "0"),
        (
            ("stage", "--site", "pancreas", "--size-mm", "20", "--extent", "serosa"),
            "extent",
            "limited",
        ),
        (("grade", "--ki67", "140"), "ki67", "100"),
        (("stage", "--site", "pancreas", "--edition", "7", "--t", "T1"), "edition", "8"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_field_and_allowed(args, field, allowed_word) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {field}:")
    assert allowed_word in lines[0]


def test_grade_command() -> None:
    result = run("grade", "--ki67", "4", "--mitoses", "1", "--differentiation", "well")
    assert result.exit_code == 0
    assert result.output.startswith("G2: NET G2")


def test_nec_is_not_staged() -> None:
    result = run(
        "stage",
        "--site",
        "pancreas",
        "--t",
        "T2",
        "--n",
        "N1",
        "--m",
        "M0",
        "--differentiation",
        "poor",
        "--json",
    )
    data = json.loads(result.output)
    assert data["status"] == "not_staged" and data["stage_group"] == "unknown"
    assert "NEC" in data["reason"]


def test_demo_creates_the_demo_study_and_lists_its_users(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = run("demo", "--database-url", url)
    assert result.exit_code == 0, result.output
    assert "35 enrolled (NET-001..NET-035)" in result.output
    for role in ("admin", "investigator", "coordinator", "monitor", "statistician"):
        assert f"{role:<13} password {role}-demo" in result.output
    again = run("demo", "--database-url", url)
    assert again.exit_code == 2 and "empty database" in again.output


# --- safety ------------------------------------------------------------------------------------


def test_ctcae_grades_a_lab_value() -> None:
    args = ("ctcae", "--term", "Alanine aminotransferase increased", "--value", "130", "--unit", "U/L")
    result = run(*args, "--uln", "40", "--baseline", "35")
    assert result.exit_code == 0, result.output
    assert "grade 2" in result.output
    assert "> 3.0 x ULN" in result.output
    data = json.loads(run(*args, "--uln", "40", "--json").output)
    assert (data["grade"], data["version"], data["needs_review"]) == (2, "5.0", False)


def test_ctcae_answers_grade_a_clinical_term() -> None:
    result = run("ctcae", "--term", "Diarrhea", "--answer", "stools_over_baseline=7", "--json")
    assert json.loads(result.output)["grade"] == 3


def test_dose_recommendation_names_the_rule() -> None:
    result = run("dose", "--level", "0", "--term", "Hypertension", "--grade", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["action"], data["rule"]) == ("interrupt", "hypertension-grade-3")
    late = run("dose", "--level", "0", "--term", "Hypertension", "--grade", "3")
    assert "INTERRUPT" in late.output
    after = ("--days-interrupted", "29", "--current-grade", "1", "--json")
    assert (
        json.loads(run("dose", "--level", "0", "--term", "Hypertension", "--grade", "3", *after).output)[
            "action"
        ]
        == "discontinue"
    )


def test_schedule_lists_visits_with_status() -> None:
    args = ("schedule", "--first-dose", "2026-03-02", "--done", "C1D1=2026-03-02", "--today", "2026-03-20")
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    statuses = {row["visit"]["id"]: row["status"] for row in json.loads(result.output)}
    assert statuses["C1D1"] == "done"
    assert statuses["C1D15"] == "overdue"  # window 13-19 March closed
    assert statuses["C2D1"] == "upcoming"
    assert statuses["IMG-M60"] == "upcoming"
    assert "C1D15" in run(*args).output


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("ctcae", "--term", "ALT raised", "--value", "1", "--unit", "U/L"), "term"),
        (("ctcae", "--term", "Anemia", "--value", "9", "--unit", "mg", "--lln", "12"), "value.unit"),
        (("ctcae", "--term", "Alanine aminotransferase increased", "--value", "130", "--unit", "U/L"), "uln"),
        (("ctcae", "--term", "Diarrhea", "--answer", "stools"), "answer"),
        (("dose", "--level", "2", "--term", "Hypertension", "--grade", "3"), "level"),
        (
            ("dose", "--level", "0", "--term", "Hypertension", "--grade", "3", "--days-interrupted", "3"),
            "current_grade",
        ),
        (("schedule", "--first-dose", "2026-02-30"), "first_dose"),
        (("schedule", "--first-dose", "2026-03-02", "--done", "C9D1=2026-03-02"), "done.C9D1"),
        (("schedule", "--first-dose", "2026-03-02", "--interruption", "2026-04-01"), "interruption[0]"),
    ],
)
def test_safety_bad_input_exits_2_naming_the_field(args, field) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {field}:"), result.output
    assert len(result.output.strip().splitlines()) == 1
