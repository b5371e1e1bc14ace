"""Figures of the study report, drawn with matplotlib's object API (no pyplot global state).

Each ``*_figure`` function takes analysis results (lifelines fitters, ADaM-style frames) and returns a
:class:`matplotlib.figure.Figure`; the CONSORT diagram is ``consort_diagram``'s. :func:`save_figure`
writes any of them as PNG and SVG with the same bytes on every run (no dates, no software tag, a fixed
SVG id salt, text kept as text so that numbers in the figures can be searched and checked).

Times are months since the origin (the first dose), as in the time-to-event tables' ``AVAL``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from nettrial.analysis.rfs import DAYS_PER_MONTH  # dates drawn beside AVAL use the tables' month
from nettrial.exceptions import InputError

# Tableau's colour-blind-safe order: the same group gets the same colour in every figure.
GROUP_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
# CTCAE grade 1..5, light to dark: fixed, so that a grade has one colour in every report.
GRADE_COLOURS = {1: "#fee08b", 2: "#fdae61", 3: "#f46d43", 4: "#d73027", 5: "#67001f"}
# Written into every SVG so that its element ids are the same on every run.
SVG_HASH_SALT = "nettrial"
DPI = 150


# --- Kaplan-Meier --------------------------------------------------------------------------------


def km_figure(
    source: Any,
    *,
    landmarks: Sequence[float] | None = None,
    at_risk: pd.DataFrame | None = None,
    title: str | None = None,
    xlabel: str = "Months since first dose",
    ylabel: str = "Survival probability",
) -> Figure:
    """Kaplan-Meier curves with censor marks, the 95 % interval band and the number at risk.

    Parameters
    ----------
    source : SurvivalAnalysis, KaplanMeierFitter or mapping of group -> KaplanMeierFitter
        A fitted ``SurvivalAnalysis`` (its ``km_by_group_`` or ``km_``, ``at_risk_`` and
        ``landmarks_`` are used) or lifelines fitters.
    landmarks : sequence of float, optional
        Times (months) marked by dotted vertical lines; default the analysis' landmarks.
    at_risk : DataFrame, optional
        Number at risk, index = times, one column per group; drawn as given under the plot, its
        times are the x ticks. Default the analysis' ``at_risk_``; for bare fitters, the number
        of durations >= t (R's ``n.risk``) at 0 and the landmarks.
    title, xlabel, ylabel : str
        Labels of the plot.

    Returns
    -------
    matplotlib.figure.Figure
        Censor marks are one marker per censored row, in the SVG group ``censor-<group>``.
    """
    fitters, at_risk, landmarks = _km_inputs(source, at_risk, landmarks)
    times = [float(t) for t in at_risk.index]
    rows = list(at_risk.columns)
    fig = Figure(figsize=(7.5, 4.6 + 0.28 * len(rows)), dpi=DPI)
    grid = fig.add_gridspec(2, 1, height_ratios=[4.2, 0.45 + 0.28 * len(rows)], hspace=0.08)
    ax = fig.add_subplot(grid[0])
    table = fig.add_subplot(grid[1], sharex=ax)
    horizon = max([*times, *(float(np.max(f.durations, initial=0)) for f in fitters.values())])
    for index, (name, fitter) in enumerate(fitters.items()):
        _draw_km(ax, str(name), fitter, _colour(index))
    for t in landmarks:
        ax.axvline(t, color="#999999", linewidth=0.7, linestyle=":", zorder=0)
    ax.set_xlim(0, horizon * 1.03 or 1)
    ax.set_ylim(0, 1.04)
    ax.set_ylabel(ylabel)
    ax.set_xticks(times)
    ax.tick_params(labelbottom=False)
    ax.grid(axis="y", color="#eeeeee")
    if title:
        ax.set_title(title, loc="left")
    if len(fitters) > 1:
        ax.legend(loc="lower left", frameon=False)
    colours = {str(name): _colour(i) for i, name in enumerate(fitters)}
    for row, name in enumerate(rows):
        y = len(rows) - 1 - row
        for t in times:
            count = f"{int(at_risk.loc[t, name])}"
            table.text(t, y, count, ha="center", va="center", fontsize=8, gid=_at_risk_id(name, t))
        table.text(
            -0.04,
            y,
            str(name),
            transform=table.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=8,
            color=colours.get(str(name), "black"),
        )
    table.set_ylim(-0.6, len(rows) - 0.4)
    table.set_yticks([])
    table.set_xlabel(xlabel)
    table.set_title("Number at risk", loc="left", fontsize=8, pad=2)
    for side in ("top", "right", "left"):
        table.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.16, right=0.97, top=0.93, bottom=0.12)
    return fig


def _km_inputs(source, at_risk, landmarks):
    if isinstance(source, KaplanMeierFitter):
        fitters = {source.label or "All": source}
    elif isinstance(source, Mapping):
        fitters = dict(source)
    elif hasattr(source, "km_"):  # a fitted SurvivalAnalysis: all rows, or one curve per group
        by_group = {str(level): km for level, km in (getattr(source, "km_by_group_", None) or {}).items()}
        fitters = by_group or {"all": source.km_}
        if at_risk is None:  # its table has a column "all" and one per group: draw the curves' own
            at_risk = source.at_risk_[[c for c in source.at_risk_.columns if str(c) in fitters]]
        if landmarks is None:
            landmarks = [item["time"] for item in source.landmarks_]
    else:
        raise InputError("source", f"cannot draw a Kaplan-Meier curve from {type(source).__name__}")
    if not fitters:
        raise InputError("source", "no fitted Kaplan-Meier curve to draw")
    landmarks = [float(t) for t in (landmarks or ())]
    if at_risk is None:
        times = sorted({0.0, *landmarks})
        at_risk = pd.DataFrame(
            {name: [int(np.sum(f.durations >= t)) for t in times] for name, f in fitters.items()},
            index=times,
        )
    return fitters, at_risk.sort_index(), landmarks


def _draw_km(ax, name: str, fitter: KaplanMeierFitter, colour: str) -> None:
    curve = fitter.survival_function_.iloc[:, 0]
    band = fitter.confidence_interval_survival_function_
    ax.step(curve.index, curve.to_numpy(), where="post", color=colour, linewidth=1.6, label=name)
    ax.fill_between(
        band.index, band.iloc[:, 0], band.iloc[:, 1], step="post", color=colour, alpha=0.18, linewidth=0
    )
    censored = np.asarray(fitter.durations)[np.asarray(fitter.event_observed) == 0]
    if len(censored):
        marks = fitter.survival_function_at_times(censored).to_numpy()
        ax.plot(
            censored,
            marks,
            linestyle="none",
            marker="|",
            markersize=8,
            color=colour,
            gid=f"censor-{_slug(name)}",
        )


# --- swimmer plot --------------------------------------------------------------------------------


def swimmer_figure(subjects: pd.DataFrame, rfs: pd.DataFrame, *, cutoff=None) -> Figure:
    """One bar per participant: treatment (first to last dose), then follow-up; RFS marked on it.

    Parameters
    ----------
    subjects : DataFrame
        Subject-level table: ``SUBJID``, ``TRTSDT``, ``TRTEDT`` (missing while on treatment),
        ``DTHDT`` (missing when alive), optionally ``LSTALVDT`` (last date known alive).
    rfs : DataFrame
        RFS time-to-event table: ``SUBJID``, ``STARTDT``, ``AVAL`` (months), ``EVENT``,
        ``EVNTDESC``.
    cutoff : date, optional
        Data cut-off; a treatment still under way is drawn to it (without one, to the RFS date).

    Returns
    -------
    matplotlib.figure.Figure
        The bar runs to the latest of the RFS date, the end of treatment, the last date known alive
        and death (a participant censored on day 1 for want of imaging has still been followed);
        longest at the top. Markers at the RFS date: recurrence (red triangle) or censored (open
        circle); death (black cross) at its date; an arrow where treatment goes on at the cut-off.
    """
    _require(subjects, "subjects", ("SUBJID", "TRTSDT", "TRTEDT", "DTHDT"))
    _require(rfs, "rfs", ("SUBJID", "STARTDT", "AVAL", "EVENT", "EVNTDESC"))
    columns = ["SUBJID", "TRTEDT", "DTHDT", *(["LSTALVDT"] if "LSTALVDT" in subjects.columns else [])]
    data = rfs.merge(subjects[columns], on="SUBJID", how="left")
    spans = [_swimmer_span(row, cutoff) for row in data.itertuples(index=False)]
    data = data.assign(TREATEDM=[t for t, _ in spans], FOLLOWEDM=[f for _, f in spans])
    data = data.sort_values(["FOLLOWEDM", "SUBJID"], ascending=[True, False], kind="stable")
    fig = Figure(figsize=(7.5, 1.4 + 0.2 * max(len(data), 1)), dpi=DPI)
    ax = fig.add_subplot()
    marks: dict[str, list[tuple[float, int]]] = {"recurrence": [], "death": [], "censored": [], "ongoing": []}
    for y, row in enumerate(data.itertuples(index=False)):
        ax.barh(y, row.TREATEDM, height=0.6, color="#4c72b0", linewidth=0)
        ax.barh(y, row.FOLLOWEDM - row.TREATEDM, left=row.TREATEDM, height=0.6, color="#c7d3e6", linewidth=0)
        if _missing(row.TRTEDT):
            marks["ongoing"].append((row.TREATEDM, y))
        if int(row.EVENT) == 1 and str(row.EVNTDESC).lower().startswith("recurrence"):
            marks["recurrence"].append((float(row.AVAL), y))
        elif int(row.EVENT) == 0:
            marks["censored"].append((float(row.AVAL), y))
        if not _missing(row.DTHDT):
            marks["death"].append((_months(row.STARTDT, row.DTHDT), y))
    styles = {
        "recurrence": {"marker": "v", "color": "#d62728", "label": "Recurrence"},
        "death": {"marker": "x", "color": "black", "label": "Death"},
        "censored": {"marker": "o", "color": "#555555", "markerfacecolor": "white", "label": "Censored"},
        "ongoing": {"marker": ">", "color": "#4c72b0", "label": "On treatment at cut-off"},
    }
    for kind, points in marks.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, linestyle="none", markersize=6, gid=f"swimmer-{kind}", **styles[kind])
    ax.set_yticks(range(len(data)), list(data["SUBJID"]), fontsize=6)
    ax.set_ylim(-0.7, len(data) - 0.3)
    ax.set_xlabel("Months since first dose")
    ax.set_xlim(0, None)
    handles, _labels = ax.get_legend_handles_labels()
    handles = [Patch(color="#4c72b0", label="Treatment"), Patch(color="#c7d3e6", label="Follow-up"), *handles]
    height = fig.get_figheight()
    ax.legend(
        handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=7, frameon=False
    )
    ax.spines[["top", "right"]].set_visible(False)
    fig.subplots_adjust(left=0.12, right=0.97, top=1 - 0.55 / height, bottom=0.5 / height)
    return fig


def _swimmer_span(row, cutoff) -> tuple[float, float]:
    """Months treated and months followed (see ``swimmer_figure``)."""
    end = float(row.AVAL)
    if not _missing(row.TRTEDT):
        treated = _months(row.STARTDT, row.TRTEDT)
    else:  # still on treatment at the cut-off
        treated = end if cutoff is None else _months(row.STARTDT, cutoff)
    dates = [getattr(row, "LSTALVDT", None), row.DTHDT]
    followed = max([end, treated, *(_months(row.STARTDT, d) for d in dates if not _missing(d))])
    return treated, followed


def _months(start, end) -> float:
    return ((pd.Timestamp(end) - pd.Timestamp(start)).days + 1) / DAYS_PER_MONTH


def _missing(value) -> bool:
    return value is None or bool(pd.isna(value))


# --- adverse events ------------------------------------------------------------------------------


def ae_grade_figure(worst: pd.DataFrame, *, top: int = 15, participant: str = "USUBJID") -> Figure:
    """Participants by worst CTCAE grade for the most frequent terms (stacked horizontal bars).

    Parameters
    ----------
    worst : DataFrame
        One row per participant and term: ``participant`` column, ``AEDECOD``, ``AETOXGR`` (1-5).
    top : int
        Number of terms drawn, the most frequent first (ties: alphabetical).
    participant : str
        Column naming the participant.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _require(worst, "worst", (participant, "AEDECOD", "AETOXGR"))
    if worst.duplicated([participant, "AEDECOD"]).any():
        raise InputError("worst", "needs one row per participant and term (the worst grade)")
    grades = pd.to_numeric(worst["AETOXGR"], errors="coerce")
    if not grades.isin(list(GRADE_COLOURS)).all():
        raise InputError("AETOXGR", "CTCAE grades are whole numbers 1 to 5", allowed="1, 2, 3, 4, 5")
    if top < 1:
        raise InputError("top", "must be at least 1")
    counts = pd.crosstab(worst["AEDECOD"], grades.astype(int)).reindex(
        columns=list(GRADE_COLOURS), fill_value=0
    )
    order = counts.assign(total=counts.sum(axis=1)).reset_index()
    order = order.sort_values(["total", "AEDECOD"], ascending=[False, True], kind="stable").head(top)
    counts = counts.loc[list(order["AEDECOD"])[::-1]]
    fig = Figure(figsize=(7.5, 1.0 + 0.3 * max(len(counts), 1)), dpi=DPI)
    ax = fig.add_subplot()
    left = np.zeros(len(counts))
    for grade, colour in GRADE_COLOURS.items():
        values = counts[grade].to_numpy()
        ax.barh(range(len(counts)), values, left=left, color=colour, label=f"Grade {grade}")
        left += values
    ax.set_yticks(range(len(counts)), list(counts.index), fontsize=8)
    ax.set_xlabel("Participants (worst grade)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=5, fontsize=7, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.38, right=0.97, top=1 - 0.4 / height, bottom=0.5 / height)
    return fig


# --- saving --------------------------------------------------------------------------------------


def save_figure(fig: Figure, directory: str | Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.svg`` into ``directory``, byte for byte repeatable.

    Parameters
    ----------
    fig : Figure
    directory : str or Path
        Created if missing.
    name : str
        File stem (letters, digits, ``-`` and ``_``).

    Returns
    -------
    list of Path
        The PNG and the SVG file.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise InputError("name", f"{name!r} is not a file stem of letters, digits, - and _")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{name}.png", directory / f"{name}.svg"
    # Text stays text in the SVG (searchable, checkable); ids come from a fixed salt, not a random one.
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "none"}):
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return [png, svg]


def _require(frame: pd.DataFrame, field: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(field, f"missing column(s) {', '.join(missing)}")


def _colour(index: int) -> str:
    return GROUP_COLOURS[index % len(GROUP_COLOURS)]


def _at_risk_id(group: Any, time: float) -> str:
    """SVG id of the at-risk count of ``group`` at ``time`` (e.g. ``at-risk-all-24``)."""
    return f"at-risk-{_slug(str(group))}-{time:g}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "group"
