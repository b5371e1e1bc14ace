"""Design command: power and sample size of the one-sample test of the landmark RFS rate."""

from __future__ import annotations

import click

from nettrial.cli import emit_json, main, reports_errors
from nettrial.exceptions import InputError

PROTOCOL = "nct07279532"

# The design's field names, as the options that set them (errors name what the user typed).
OPTIONS = {
    "p0": "--p0",
    "p1": "--p1",
    "alpha": "--alpha",
    "landmark_months": "--landmark",
    "accrual_months": "--accrual",
    "follow_up_months": "--follow-up",
    "dropout_rate_per_year": "--dropout-per-year",
    "n": "--n",
    "target_power": "--power",
    "n_sim": "--simulations",
    "seed": "--seed",
}


@main.command("design")
@click.option("--p0", type=float, required=True, help="Landmark RFS rate under H0 (historical control).")
@click.option("--p1", type=float, required=True, help="Landmark RFS rate under H1 (hoped for), > p0.")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="One-sided significance level.")
@click.option("--landmark", type=float, default=24.0, show_default=True, help="Landmark, months.")
@click.option("--accrual", type=float, required=True, help="Uniform accrual period, months.")
@click.option("--follow-up", type=float, required=True, help="Follow-up after the last patient, months.")
@click.option(
    "--dropout-per-year", type=float, default=0.0, show_default=True, help="Proportion lost per year."
)
@click.option("--n", "n", type=int, help="Patients (default: the protocol's target enrolment).")
@click.option("--power", "target_power", type=float, default=0.8, show_default=True, help="Target power.")
@click.option("--simulations", "n_sim", type=int, default=2000, show_default=True, help="Simulated trials.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulation.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@reports_errors
def design_command(
    p0, p1, alpha, landmark, accrual, follow_up, dropout_per_year, n, target_power, n_sim, seed, as_json
) -> None:
    """Power at n, sample size for a target power, exact binomial comparison and a simulation check."""
    from nettrial.analysis.design import OneSampleSurvivalDesign
    from nettrial.protocol.load import load_protocol

    n_from = "--n"
    if n is None:
        n, n_from = load_protocol(PROTOCOL).identity.target_enrolment, f"target enrolment of {PROTOCOL}"
    try:
        design = OneSampleSurvivalDesign(
            p0,
            p1,
            alpha=alpha,
            landmark_months=landmark,
            accrual_months=accrual,
            follow_up_months=follow_up,
            dropout_rate_per_year=dropout_per_year,
        )
        summary = design.summary(n, target_power, n_sim=n_sim, seed=seed)
    except InputError as error:
        raise InputError(OPTIONS.get(error.field, error.field), error.detail, allowed=error.allowed) from None
    if as_json:
        emit_json({**summary.to_dict(), "n_from": n_from})
    else:
        click.echo(f"n = {n} ({n_from})")
        click.echo(summary.explain())
