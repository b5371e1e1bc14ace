"""``nettrial design``: JSON keys, the protocol's target enrolment as n, exit status 2 naming the option."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nettrial.cli import main
from nettrial.protocol.load import load_protocol

BASE = (
    "design",
    "--p0",
    "0.5",
    "--p1",
    "0.7",
    "--accrual",
    "24",
    "--follow-up",
    "12",
    "--simulations",
    "200",
)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_json_has_every_answer_and_n_from_the_protocol() -> None:
    result = run(*BASE, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"design", "power", "sample_size", "binomial", "simulation", "n_from"}
    target = load_protocol("nct07279532").identity.target_enrolment
    assert data["power"]["n"] == data["binomial"]["n"] == data["simulation"]["n"] == target
    assert data["n_from"] == "target enrolment of nct07279532"
    assert data["design"] == {
        "p0": 0.5,
        "p1": 0.7,
        "alpha": 0.05,
        "landmark_months": 24.0,
        "accrual_months": 24.0,
        "follow_up_months": 12.0,
        "dropout_rate_per_year": 0.0,
    }
    assert {"power", "alpha", "followed_to_landmark", "method"} <= set(data["power"])
    assert {"n", "power", "power_below", "target_power"} <= set(data["sample_size"])
    assert {"critical_value", "actual_alpha", "power", "sample_size"} <= set(data["binomial"])
    assert {"type_i_error", "type_i_error_se", "power", "power_se", "analytic_power", "agrees"} <= set(
        data["simulation"]
    )
    assert data["simulation"]["n_sim"] == 200 and data["simulation"]["seed"] == 1
    assert data["sample_size"]["target_power"] == 0.8


def test_options_reach_the_design() -> None:
    args = ("--n", "60", "--power", "0.9", "--alpha", "0.025", "--landmark", "12", "--seed", "5")
    data = json.loads(run(*BASE, *args, "--dropout-per-year", "0.1", "--json").output)
    assert data["n_from"] == "--n" and data["power"]["n"] == 60
    assert data["sample_size"]["target_power"] == 0.9 and data["sample_size"]["power"] >= 0.9
    assert (data["design"]["alpha"], data["design"]["landmark_months"]) == (0.025, 12.0)
    assert data["design"]["dropout_rate_per_year"] == 0.1 and data["simulation"]["seed"] == 5


def test_text_output_gives_power_sample_size_binomial_and_simulation() -> None:
    result = run(*BASE)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("n = 35 (target enrolment of nct07279532)")
    for phrase in ("power ", "sample size ", "binomial comparison", "simulation check (200 trials"):
        assert phrase in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--p1", "0.4"),
        ("--p0", "1.5"),
        ("--alpha", "0.7"),
        ("--landmark", "0"),
        ("--accrual", "-3"),
        ("--follow-up", "-1"),
        ("--dropout-per-year", "1"),
        ("--n", "1"),
        ("--power", "1.5"),
        ("--simulations", "50"),
        ("--seed", "-1"),
    ],
)
def test_bad_input_exits_2_naming_the_option(option, value) -> None:
    args = list(BASE)
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result = run(*args)
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {option}:")


def test_follow_up_too_short_to_reach_the_landmark_is_named() -> None:
    result = run("design", "--p0", "0.5", "--p1", "0.7", "--accrual", "6", "--follow-up", "12")
    assert result.exit_code == 2
    assert result.output.startswith("error: --follow-up:") and "landmark" in result.output


def test_p0_and_p1_are_required() -> None:
    result = run("design", "--p1", "0.7", "--accrual", "24", "--follow-up", "12")
    assert result.exit_code == 2
    assert "--p0" in result.output
