"""The ``nettrial`` command: one sub-command per job.

Bad input exits with status 2 and one line naming the field and what is allowed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from nettrial import __version__
from nettrial.config import get_settings
from nettrial.exceptions import InputError, NettrialError

EXIT_BAD_INPUT = 2


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nettrial's own errors into a one-line message and exit status 2."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except NettrialError as error:  # bad input or a malformed data/protocol file
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def _show(result: Any, as_json: bool) -> None:
    """A result that explains itself: its ``explain()`` text, or its ``to_dict()`` as JSON."""
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.explain())


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nettrial")
def main() -> None:
    """nettrial: staging, eligibility, safety and data management for NCT07279532."""


# --- staging -----------------------------------------------------------------------------------


@main.command("stage")
@click.option("--site", help="Site name (pancreas, stomach, ...) or ICD-O-3 topography (C25.1).")
@click.option("--edition", help="AJCC edition: 8 or 9 (default 9).")
@click.option("--t", "t", help="T category, e.g. T2 or pT3 (instead of the pathology findings).")
@click.option("--n", "n", help="N category, e.g. N1.")
@click.option("--m", "m", help="M category, e.g. M0 or M1a.")
@click.option("--size-mm", help="Greatest dimension of the largest tumour, mm.")
@click.option("--extent", help="Deepest structure invaded (site vocabulary; see errors for the list).")
@click.option("--nodes-positive", help="Regional lymph nodes with tumour.")
@click.option("--nodes-examined", help="Regional lymph nodes examined.")
@click.option("--mesenteric-mass-mm", help="Largest mesenteric mass, mm (jejunum/ileum).")
@click.option("--metastasis", help="Distant metastasis sites, e.g. none, liver or liver,lung.")
@click.option("--multiple-tumours", is_flag=True, default=None, help="Several primary tumours: suffix (m).")
@click.option("--tumour-type", help="net, nec or minen.")
@click.option("--differentiation", help="well or poor (poor = NEC, not staged by the NET chapters).")
@click.option("--histology", help="ICD-O-3 histology code, e.g. 8240/3.")
@click.option(
    "--batch",
    "batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Stage every row of this CSV instead.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Output CSV for --batch.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@reports_errors
def stage_command(batch: Path | None, out: Path | None, as_json: bool, **values: Any) -> None:
    """AJCC 8th / Version 9 stage of a GEP-NET, from pathology findings or T/N/M categories."""
    from nettrial.staging.engine import stage
    from nettrial.staging.findings import findings_from

    edition = values.pop("edition") or get_settings().default_edition
    if batch is not None:
        _stage_batch(batch, out, edition)
        return
    if not values["site"]:
        raise InputError("site", "is required (or give --batch FILE)")
    scope = {k: values.pop(k) for k in ("tumour_type", "differentiation", "histology")}
    categories = {k: values.pop(k) for k in ("t", "n", "m")}
    site = values.pop("site")
    result = stage(site, edition, findings=findings_from(values), **categories, **scope)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"{result.site}, {_edition_label(result.edition)}: {result.t} {result.n} {result.m}")
    click.echo(f"stage group: {result.stage_label}" + (f" ({result.reason})" if result.reason else ""))
    for step in result.trace:
        click.echo(f"  {step.table}: {step.rule} -> {step.result}  {step.because}")


def _edition_label(edition: str) -> str:
    return {"8": "AJCC 8th edition", "9": "AJCC Version 9"}.get(edition, edition)


def _stage_batch(source: Path, target: Path | None, edition: str) -> None:
    from tqdm import tqdm

    from nettrial.staging.batch import stage_file

    if target is None:
        raise InputError("out", "--batch needs --out OUT.csv")
    total = max(sum(1 for _ in source.open("rb")) - 1, 0)
    with tqdm(total=total, unit="rows", disable=None, file=sys.stderr) as bar:
        counts = stage_file(source, target, edition, get_settings().batch_chunk_rows, bar.update)
    summary = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
    click.echo(f"{sum(counts.values())} rows staged into {target}: {summary}")


@main.command("grade")
@click.option("--ki67", help="Ki-67 index, % of tumour cells (0-100).")
@click.option("--mitoses", help="Mitotic count per 2 mm^2.")
@click.option("--differentiation", help="well or poor.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@reports_errors
def grade_command(ki67: str | None, mitoses: str | None, differentiation: str | None, as_json: bool) -> None:
    """WHO 2019 grade from Ki-67, mitotic count and differentiation."""
    from nettrial.staging.grade import grade

    result = grade(ki67, mitoses, differentiation)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"{result.grade or 'no grade'}: {result.classification}")
    for note in result.notes:
        click.echo(f"  {note}")


# --- protocol and eligibility ---------------------------------------------------------------------


@main.group("protocol")
def protocol_group() -> None:
    """The study protocol as data."""


@protocol_group.command("show")
@click.option("--protocol", "source", default="nct07279532", show_default=True, help="Built-in name or file.")
@reports_errors
def protocol_show(source: str) -> None:
    """Render the protocol's settings and eligibility criteria as Markdown."""
    from nettrial.eligibility.render import protocol_markdown
    from nettrial.protocol.load import load_protocol

    click.echo(protocol_markdown(load_protocol(source)))


@main.group("schema")
def schema_group() -> None:
    """JSON Schemas of nettrial's input documents."""


@schema_group.command("screening-record")
def schema_screening_record() -> None:
    """Print the JSON Schema of the screening record."""
    from nettrial.eligibility.record import screening_record_schema

    emit_json(screening_record_schema())


@main.command("screen")
@click.argument("record_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--first-dose", help="Planned first dose (YYYY-MM-DD or YYYY-MM-DDTHH:MM).")
@click.option("--protocol", "source", default="nct07279532", show_default=True, help="Built-in name or file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@reports_errors
def screen_command(record_file: Path, first_dose: str | None, source: str, as_json: bool) -> None:
    """Evaluate one screening record. Exit 0 eligible, 1 ineligible or incomplete, 2 bad input."""
    from nettrial.eligibility.evaluate import evaluate
    from nettrial.eligibility.io import parse_first_dose, read_record
    from nettrial.eligibility.render import screening_table
    from nettrial.eligibility.verdicts import Decision
    from nettrial.protocol.load import load_protocol

    protocol = load_protocol(source)
    result = evaluate(read_record(record_file), protocol, parse_first_dose(first_dose))
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(screening_table(result))
    sys.exit(0 if result.decision is Decision.ELIGIBLE else 1)


@main.command("prescreen")
@click.argument("records", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Results CSV.")
@click.option("--first-dose", help="Evaluate every record against this first-dose date.")
@click.option("--protocol", "source", default="nct07279532", show_default=True, help="Built-in name or file.")
@reports_errors
def prescreen_command(records: Path, out: Path, first_dose: str | None, source: str) -> None:
    """Prescreen many records (jsonl, csv or parquet): one row per patient, then the attrition table."""
    from tqdm import tqdm

    from nettrial.eligibility.io import parse_first_dose
    from nettrial.eligibility.prescreen import prescreen_file
    from nettrial.protocol.load import load_protocol

    protocol = load_protocol(source)
    with tqdm(unit="records", disable=None, file=sys.stderr) as bar:
        attrition = prescreen_file(records, out, protocol, parse_first_dose(first_dose), bar.update)
    click.echo(f"results written to {out}")
    click.echo(attrition.to_string(index=False))


# --- safety ------------------------------------------------------------------------------------


def _pairs(items: tuple[str, ...] | str | None, field: str) -> dict[str, str]:
    """``k=v`` pairs from repeated options or one comma-separated option."""
    if not items:
        return {}
    parts = items.split(",") if isinstance(items, str) else [p for item in items for p in item.split(",")]
    pairs = {}
    for part in filter(None, (p.strip() for p in parts)):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InputError(field, f"{part!r} is not name=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _date(text: str | None, field: str):
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


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
        answers=_pairs(answers, "answer"),
        version=version,
    )
    _show(result, as_json)


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
        interruption = Interruption(days_interrupted, current_grade, _pairs(current, "current_measure"))
    result = recommend(
        load_protocol(source),
        level=level,
        term=term,
        grade=grade_,
        measures=_pairs(measures, "measure"),
        interruption=interruption,
    )
    _show(result, as_json)


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
        periods.append((_date(start, f"interruption[{i}].start"), _date(end, f"interruption[{i}].end")))
    visits = plan_visits(
        load_protocol(source),
        _date(first_dose, "first_dose"),
        last_dose=_date(last_dose, "last_dose"),
        interruptions=periods,
    )
    recorded = {k: _date(v, f"done.{k}") for k, v in _pairs(done, "done").items()}
    missed_ids = [m.strip() for m in (missed or "").split(",") if m.strip()]
    statuses = visit_statuses(
        visits, today=_date(today, "today") or date.today(), done=recorded, missed=missed_ids
    )
    if as_json:
        emit_json([asdict(s) for s in statuses])
        return
    click.echo(f"{'visit':<10} {'target':<10} {'window':<23} {'status':<8} detail")
    for s in statuses:
        v = s.visit
        click.echo(f"{v.id:<10} {v.target} {v.earliest} - {v.latest} {s.status:<8} {s.reason}")


@main.command("demo")
def demo_command() -> None:
    """Show the staging engine on a few worked cases (the service replaces this later)."""
    from nettrial.staging.engine import stage
    from nettrial.staging.findings import Findings
    from nettrial.staging.grade import grade

    cases = [
        (
            "pancreas",
            Findings(size_mm=25, extent="limited", nodes_positive=2, nodes_examined=14, metastasis=()),
        ),
        (
            "jejunum_ileum",
            Findings(size_mm=18, extent="subserosa", nodes_positive=12, nodes_examined=20, metastasis=()),
        ),
        (
            "appendix",
            Findings(size_mm=15, extent="muscularis_propria", nodes_examined=0, metastasis=()),
        ),
        (
            "colon_rectum",
            Findings(
                size_mm=10,
                extent="submucosa",
                nodes_positive=0,
                nodes_examined=8,
                metastasis=("liver",),
            ),
        ),
    ]
    click.echo("nettrial staging demo (AJCC Version 9)\n")
    for site, findings in cases:
        result = stage(site, "9", findings=findings)
        click.echo(f"{site}: {result.t} {result.n} {result.m} -> stage {result.stage_label}")
        for step in result.trace[1:]:
            click.echo(f"    {step.table}: {step.rule} -> {step.result}")
    g = grade(4, 1, "well")
    click.echo(f"\nKi-67 4 %, 1 mitosis/2 mm2, well differentiated -> {g.classification}")
