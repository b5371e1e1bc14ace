"""Safety commands: CTCAE grade, dose-modification recommendation, visit schedule."""

from __future__ import annotations

import click

from nettrial.cli import emit_json, main, parse_date, parse_pairs, reports_errors, show
from nettrial.exceptions import InputError

# --- safety ------------------------------------------------------------------------------------


@main.command("ctcae")
@click.option("--term", required=True, help='CTCAE term, e.g. "Alanine aminotransferase increased".')
@click.option("--value", help="Reported value (blood pressure as systolic/diastolic, dipstick as 2+).")
@click.option("--unit", help="Unit of the value, and of --lln, --uln and --baseline.")
@click.option("--lln", help="Lower limit of normal, in the value's unit.")
@click.option("--uln", help="Upper limit of normal, in the value's unit.")
@click.option("--baseline", help="Baseline value, in the value's unit.")
@click.option("--answer", "answers", multiple=True, help="Structured answer name=value (repeatable).")
@click.option("--ctcae-version", "version", default="5.0", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@reports_errors
def ctcae_command(term, value, unit, lln, uln, baseline, answers, version, as_json) -> None:
    """CTCAE grade of a lab value, vital sign or clinical event, with the rule that decided it."""
    from nettrial.safety.ctcae import grade

    result = grade(
        term,
        value,
        unit,
        lln=lln,
        uln=uln,
        baseline=baseline,
        answers=parse_pairs(answers, "answer"),
        version=version,
    )
    show(result, as_json)


@main.command("dose")
@click.option("--level", type=int, required=True, help="Current dose level (0, -1, ...).")
@click.option("--term", required=True, help="CTCAE term of the adverse event.")
@click.option("--grade", "grade_", type=int, required=True, help="CTCAE grade of the event.")
@click.option("--measure", "measures", multiple=True, help="Measure name=value, e.g. x_uln=2.5 (repeatable).")
@click.option("--days-interrupted", type=int, help="For an interruption under way: days since it began.")
@click.option("--current-grade", type=int, help="For an interruption under way: the event's grade now.")
@click.option("--current-measure", "current", multiple=True, help="Measure name=value now (repeatable).")
@click.option("--protocol", "source", default="nct07279532", show_default=True, help="Built-in name or file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@reports_errors
def dose_command(
    level, term, grade_, measures, days_interrupted, current_grade, current, source, as_json
) -> None:
    """The protocol's dose-modification recommendation for an adverse event."""
    from nettrial.protocol.load import load_protocol
    from nettrial.safety.dosing import Interruption, recommend

    interruption = None
    if (days_interrupted is None) != (current_grade is None):
        raise InputError("current_grade", "give --days-interrupted and --current-grade together")
    if days_interrupted is not None:
        interruption = Interruption(days_interrupted, current_grade, parse_pairs(current, "current_measure"))
    result = recommend(
        load_protocol(source),
        level=level,
        term=term,
        grade=grade_,
        measures=parse_pairs(measures, "measure"),
        interruption=interruption,
    )
    show(result, as_json)


@main.command("schedule")
@click.option("--first-dose", required=True, help="Date of the first dose (C1D1), YYYY-MM-DD.")
@click.option("--last-dose", help="Date of the last dose, when treatment has ended.")
@click.option("--done", help="Visits done, ID=YYYY-MM-DD,... (e.g. C1D1=2026-03-02).")
@click.option("--missed", help="Visits recorded as not done, ID,...")
@click.option(
    "--interruption", "interruptions", multiple=True, help="Dose interruption START:END (repeatable)."
)
@click.option("--today", help="Date the statuses are given for (default: today).")
@click.option("--protocol", "source", default="nct07279532", show_default=True, help="Built-in name or file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full schedule as JSON.")
@reports_errors
def schedule_command(first_dose, last_dose, done, missed, interruptions, today, source, as_json) -> None:
    """Every protocol visit with its window and status."""
    from dataclasses import asdict
    from datetime import date

    from nettrial.protocol.load import load_protocol
    from nettrial.safety.schedule import plan_visits, visit_statuses

    periods = []
    for i, text in enumerate(interruptions):
        start, sep, end = text.partition(":")
        if not sep:
            raise InputError(f"interruption[{i}]", f"{text!r} is not START:END")
        periods.append(
            (parse_date(start, f"interruption[{i}].start"), parse_date(end, f"interruption[{i}].end"))
        )
    visits = plan_visits(
        load_protocol(source),
        parse_date(first_dose, "first_dose"),
        last_dose=parse_date(last_dose, "last_dose"),
        interruptions=periods,
    )
    recorded = {k: parse_date(v, f"done.{k}") for k, v in parse_pairs(done, "done").items()}
    missed_ids = [m.strip() for m in (missed or "").split(",") if m.strip()]
    statuses = visit_statuses(
        visits, today=parse_date(today, "today") or date.today(), done=recorded, missed=missed_ids
    )
    if as_json:
        emit_json([asdict(s) for s in statuses])
        return
    click.echo(f"{'visit':<10} {'target':<10} {'window':<23} {'status':<8} detail")
    for s in statuses:
        v = s.visit
        click.echo(f"{v.id:<10} {v.target} {v.earliest} - {v.latest} {s.status:<8} {s.reason}")
