"""Survival command: Kaplan-Meier, log-rank and Cox of any CSV (trial or registry data)."""

from __future__ import annotations

import click

from nettrial.cli import main, reports_errors, show
from nettrial.exceptions import InputError


@main.command("survival")
@click.option("--data", "path", required=True, help="CSV file, one row per participant or case.")
@click.option("--time", "time_column", required=True, help="Column of follow-up times (>= 0).")
@click.option("--event", "event_column", required=True, help="Column of event flags (1/0 or true/false).")
@click.option("--group", "group_column", help="Column whose levels are compared (log-rank test).")
@click.option("--covariates", help="Cox model terms, a,b,c; text columns are dummy-coded.")
@click.option("--landmarks", default="12,24,36", show_default=True, help="Times for survival, t1,t2,...")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@reports_errors
def survival_command(path, time_column, event_column, group_column, covariates, landmarks, as_json) -> None:
    """Kaplan-Meier (log-log 95% intervals), log-rank test and Cox model (Efron ties) of a CSV."""
    from nettrial.analysis.survival import SurvivalAnalysis

    analysis = SurvivalAnalysis(landmarks=parse_landmarks(landmarks))
    frame = read_csv(path)
    names = [name.strip() for name in (covariates or "").split(",") if name.strip()]
    analysis.fit(frame, time=time_column, event=event_column, group=group_column, covariates=names)
    show(analysis, as_json)


def parse_landmarks(text: str) -> list[float]:
    """``12,24,36`` as numbers (an empty text gives no landmarks)."""
    values = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            value = float(part)
        except ValueError:
            raise InputError("landmarks", f"{part!r} is not a number") from None
        values.append(int(value) if value.is_integer() else value)
    return values


def read_csv(path: str):
    """The CSV as a DataFrame; a file that cannot be read is bad input of ``data``."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError("data", f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError("data", f"cannot read {path} as CSV: {first_line}") from None
