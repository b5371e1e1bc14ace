"""Clinical core commands: staging, WHO grade, protocol, screening-record schema, screening."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from nettrial.cli import emit_json, main, reports_errors
from nettrial.config import get_settings
from nettrial.exceptions import InputError

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
