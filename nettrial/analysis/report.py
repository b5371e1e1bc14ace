"""The study report: one self-contained HTML file, a PDF, and the figures as PNG and SVG.

:func:`build_report` reads the study database through the analysis modules (subject table,
time-to-event tables, AE table, safety tables, CONSORT flow, survival statistics) and writes::

    OUT/report.html       CSS inline, figures embedded as SVG data URIs
    OUT/report.pdf        reportlab platypus, tables and the PNG figures
    OUT/figures/*.png|svg  the figures, for slides and the sponsor's own documents

Why figures are embedded as ``data:`` URIs rather than linked or inlined as ``<svg>``: the HTML is one
file a statistician can e-mail or archive without its folder, and each figure keeps its own SVG
document, so the element ids matplotlib writes (``figure_1``, ``axes_1``...) cannot clash between
figures as they would in inline SVG.

Repeatable: the same database and cut-off give the same bytes in every file (no "now" anywhere, fixed
SVG ids, PNG without software/time tags, PDF written with reportlab's ``invariant=1``). Pseudonymised:
participants appear by study id only; names, record numbers and dates of birth are never read.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

import nettrial
from nettrial.analysis.document import (
    FigureBlock,
    Section,
    Table,
    Text,
    missing,
    number,
    percent,
    render_html,
    render_pdf,
)


@dataclass(frozen=True)
class ReportResult:
    """What :func:`build_report` wrote and the headline figures it reported."""

    out_dir: Path
    files: tuple[Path, ...]
    cutoff: dt.date
    protocol_id: str
    protocol_version: str
    software_version: str
    sections: tuple[str, ...]
    primary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "files": [str(p) for p in self.files],
            "cutoff": self.cutoff.isoformat(),
            "protocol_id": self.protocol_id,
            "protocol_version": self.protocol_version,
            "software_version": self.software_version,
            "sections": list(self.sections),
            "primary": self.primary,
            "seconds": round(self.seconds, 2),
        }

    def explain(self) -> str:
        lines = [
            f"study report of {self.protocol_id} (protocol {self.protocol_version}, "
            f"nettrial {self.software_version}), data cut-off {self.cutoff.isoformat()}",
            *(f"  wrote {p}" for p in self.files),
            f"{len(self.files)} files in {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


# --- the study's results ---------------------------------------------------------------------------


@dataclass
class StudyResults:
    """Every analysis the report shows, computed once from the study database at the cut-off."""

    protocol: Any
    cutoff: dt.date
    subjects: pd.DataFrame
    tte: dict[str, pd.DataFrame]
    survival: dict[str, Any]
    adae: pd.DataFrame
    worst: pd.DataFrame
    overview: pd.DataFrame
    by_term: pd.DataFrame
    exposure: pd.DataFrame
    exposure_summary: pd.DataFrame
    flow: Any
    settings: Any


def study_results(session, protocol, cutoff: dt.date) -> StudyResults:
    """Derive the analysis datasets and statistics the report shows (read only)."""
    from nettrial.analysis import adverse_events, safety_tables
    from nettrial.analysis.consort import consort_flow
    from nettrial.analysis.endpoints import endpoint_settings
    from nettrial.analysis.rfs import time_to_event_tables
    from nettrial.analysis.subjects import subject_table
    from nettrial.analysis.survival import SurvivalAnalysis

    settings = endpoint_settings(protocol)
    tte = time_to_event_tables(session, protocol, cutoff, settings=settings)
    survival = {}
    for parameter, frame in tte.items():
        endpoint = settings.endpoint(parameter)
        analysis = SurvivalAnalysis(landmarks=endpoint.landmarks_months, ci_method=endpoint.ci_method)
        survival[parameter] = analysis.fit(frame, time="AVAL", event="EVENT") if len(frame) else None
    adae = adverse_events.adverse_event_table(session, protocol, cutoff)
    exposure = safety_tables.exposure(session, protocol, cutoff)
    return StudyResults(
        protocol=protocol,
        cutoff=cutoff,
        subjects=subject_table(session, protocol, cutoff),
        tte=tte,
        survival=survival,
        adae=adae,
        worst=adverse_events.worst_grade(adae, per="term"),
        overview=safety_tables.overview(adae, exposure),
        by_term=safety_tables.by_term(adae, exposure),
        exposure=exposure,
        exposure_summary=safety_tables.exposure_summary(exposure),
        flow=consort_flow(session, protocol, cutoff),
        settings=settings,
    )


# --- sections -----------------------------------------------------------------------------------


def report_sections(results: StudyResults) -> list[Section]:
    """The report's sections, in order, from the study's results."""
    swimmer = FigureBlock("swimmer", _SWIMMER)
    return [
        _populations(results),
        _consort(results),
        _baseline(results),
        _primary(results),
        _secondary(results),
        _exposure(results),
        _safety(results),
        Section("swimmer", "Treatment and follow-up per participant", (swimmer,)),
        _methods(results),
    ]


_SWIMMER = (
    "Treatment (first to last dose) and follow-up to the last date known alive, one bar per participant;"
    " recurrence or RFS censoring marked at the RFS date"
)
_NO_ANALYSIS_SET = "No participant is in the RFS analysis set at this cut-off: no Kaplan-Meier estimate."
_KM = "Kaplan-Meier estimate of RFS with its 95% log-log band, censor marks and the number at risk"


def _populations(r: StudyResults) -> Section:
    rfs = r.tte["RFS"]
    rows = [
        ("Screened", "screening started on or before the cut-off", r.flow.box("screened").n),
        ("Enrolled (ITT)", "enrolled on or before the cut-off", _count(r.subjects["ITTFL"] == "Y")),
        ("Safety", "received any dose of the study drug", _count(r.exposure["SAFFL"] == "Y")),
        ("RFS analysis set", "enrolled with a first dose (the origin of RFS)", len(rfs)),
    ]
    blocks: list[Any] = [
        _table("populations", "Analysis populations", ("Population", "Definition", "n"), rows)
    ]
    excluded = rfs.attrs.get("excluded") or []
    if excluded:
        listed = "; ".join(f"{e['SUBJID']}: {e['REASON']}" for e in excluded)
        blocks.append(Text(f"Not in the RFS analysis set: {listed}."))
    return Section("populations", "Analysis populations", tuple(blocks))


def _consort(r: StudyResults) -> Section:
    rows = []
    for box in r.flow.to_dict()["boxes"]:
        breakdown = "; ".join(f"{c['label']} ({c['key']}): {c['n']}" for c in box["breakdown"])
        rows.append((("  - " if box["side"] else "") + box["label"], box["n"], breakdown or "-"))
    table = _table("consort", "CONSORT flow (side boxes marked -)", ("Box", "n", "Breakdown"), rows)
    table = replace(table, note="Counting rules: " + "; ".join(r.flow.rules) + ".")
    figure = FigureBlock("consort", "CONSORT flow diagram")
    return Section("consort", "Participant flow (CONSORT)", (figure, table))


_BASELINE_COUNTS = (
    ("SEX", "Sex"),
    ("PRIMARY_SITE", "Primary site"),
    ("STAGE", "Stage group (AJCC 9th edition)"),
    ("GRADE", "WHO grade"),
    ("NODES", "Regional nodes (pN)"),
    ("SITEID", "Study site"),
)


def _baseline(r: StudyResults) -> Section:
    itt = r.subjects[r.subjects["ITTFL"] == "Y"]
    total = len(itt)
    rows: list[tuple[str, str]] = [("Participants", str(total))]
    for column, label in (("AGE", "Age, years"), ("KI67", "Ki-67 index, %")):
        values = pd.to_numeric(itt[column], errors="coerce").dropna()
        shown = f"{number(values.median())} ({number(values.min())} to {number(values.max())})"
        missing = f"; not recorded: {total - len(values)}" if len(values) < total else ""
        rows.append((f"{label}: median (range)", (shown if len(values) else "-") + missing))
    for column, label in _BASELINE_COUNTS:
        rows.append((label, ""))
        counts = itt[column].fillna("not recorded").astype(str).value_counts()
        rows += [(f"  {level}", _n_pct(int(counts[level]), total)) for level in sorted(counts.index)]
    caption = "Baseline characteristics (intention to treat), n (%)"
    return Section(
        "baseline", "Baseline characteristics", (_table("baseline", caption, ("", "Value"), rows),)
    )


def _primary(r: StudyResults) -> Section:
    endpoint, frame = r.settings.rfs, r.tte["RFS"]
    censored = frame.loc[frame["EVENT"] == 0, "CNSDTDSC"].value_counts()
    primary = endpoint.primary_landmark_months
    blocks = [
        Text(
            f"The primary statistic is the {number(primary)}-month recurrence-free survival rate with its "
            f"95% confidence interval (Kaplan-Meier, {endpoint.ci_method} interval)."
        ),
        _table("rfs-definition", "RFS as analysed", ("Setting", "Value", "Source"), _rules(endpoint)),
        *_survival_tables("rfs", "RFS", frame, r.survival["RFS"]),
        _table("rfs-censoring", "Reasons for censoring", ("Reason", "n"), sorted(censored.items())),
        FigureBlock("km-rfs", _KM) if r.survival["RFS"] is not None else Text(_NO_ANALYSIS_SET),
    ]
    return Section("primary", "Primary endpoint: recurrence-free survival (RFS)", tuple(blocks))


def _rules(endpoint: Any) -> list[tuple[str, str, str]]:
    """Each setting of a time-to-event endpoint with its source (the protocol file, or a caller)."""
    rows = [
        ("origin", endpoint.origin),
        ("events", ", ".join(endpoint.events)),
        ("landmarks_months", ", ".join(number(m) for m in endpoint.landmarks_months)),
        ("ci_method", endpoint.ci_method),
    ]
    for name, value in endpoint.censoring.model_dump().items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        rows.append((f"censoring: {name}", "off" if value is None else str(value)))
    return [(k, v, endpoint.sources.get(k.removeprefix("censoring: "), endpoint.source)) for k, v in rows]


def _secondary(r: StudyResults) -> Section:
    blocks: list[Any] = []
    for parameter in ("DMFS", "OS"):
        endpoint = r.settings.endpoint(parameter)
        blocks.append(Text(f"{parameter}: {endpoint.name}; events: {', '.join(endpoint.events)}."))
        blocks += _survival_tables(parameter.lower(), parameter, r.tte[parameter], r.survival[parameter])
    return Section("secondary", "Secondary endpoints: DMFS and OS", tuple(blocks))


def _survival_tables(key: str, name: str, frame: pd.DataFrame, analysis: Any) -> list[Table]:
    """Events and medians, and the rates at the landmarks, of one time-to-event endpoint."""
    if analysis is None:
        return [_table(f"{key}-summary", f"{name}: events and medians", ("", "Value"), [("Analysed", 0)])]
    kinds = frame.loc[frame["EVENT"] == 1, "EVNTDESC"].fillna("").str.split(":").str[0].value_counts()
    rows: list[tuple[str, Any]] = [("Participants analysed", analysis.n_), ("Events", analysis.events_)]
    rows += [(f"  {kind}", int(n)) for kind, n in sorted(kinds.items())]
    rows += [
        ("Censored", analysis.n_ - analysis.events_),
        ("Median, months (95% CI)", _estimate(analysis.median_)),
        ("Median follow-up, months (reverse Kaplan-Meier, 95% CI)", _estimate(analysis.follow_up_)),
    ]
    landmarks = []
    for point in analysis.landmarks_:
        at_risk = int(analysis.at_risk_.loc[point["time"], "all"])
        if point["survival"] is None:
            landmarks.append((number(point["time"]), at_risk, "not estimable", "-"))
            continue
        interval = f"{percent(point['lower'])} to {percent(point['upper'])}"
        landmarks.append((number(point["time"]), at_risk, percent(point["survival"]), interval))
    header = ("Months", "At risk", f"{name}, %", "95% CI (log-log), %")
    return [
        _table(f"{key}-summary", f"{name}: events and medians", ("", "Value"), rows),
        _table(f"{key}-landmarks", f"{name} at landmark times (Kaplan-Meier)", header, landmarks),
    ]


def _estimate(value: dict[str, Any]) -> str:
    """``5.7 (3.0 to 5.9)``; a bound the data do not reach reads "NR"."""
    if value["estimate"] is None:
        return "not reached"
    lower, upper = ("NR" if b is None else number(b) for b in (value["lower"], value["upper"]))
    return f"{number(value['estimate'])} ({lower} to {upper})"


def _exposure(r: StudyResults) -> Section:
    rows = []
    for line in r.exposure_summary.to_dict("records"):
        if missing(line.get("median")):
            rows.append((line["label"], _n_pct(line["n"], line["N"]), ""))
            continue
        digits = 2 if line["item"] == "rdi" else 0
        spread = [number(float(line[k]), digits) for k in ("median", "min", "max")]
        rows.append((line["label"], str(line["n"]), f"{spread[0]} ({spread[1]} to {spread[2]})"))
    header = ("", "n (% of safety population)", "Median (range)")
    table = _table("exposure", "Exposure to the study drug", header, rows)
    return Section("exposure", "Exposure: dose intensity and completion", (table,))


def _safety(r: StudyResults) -> Section:
    overview = [(x["label"], _n_pct(x["n"], x["N"]), x["events"]) for x in r.overview.to_dict("records")]
    terms = []
    for x in r.by_term.to_dict("records"):
        name = x["AEBODSYS"] if x["level"] == "soc" else f"  {x['AEDECOD']}"
        grades = [x[f"grade_{g}"] for g in range(1, 6)]
        terms.append((name, *grades, _n_pct(x["n_any"], x["N"]), _n_pct(x["n_grade_3_plus"], x["N"])))
    days = r.settings.safety.treatment_emergent_until_days_after_last_dose
    total = _count(r.exposure["SAFFL"] == "Y")
    header = ("System organ class / term", *(f"Grade {g}" for g in range(1, 6)), "Any grade", "Grade 3-5")
    blocks = (
        Text(
            f"Treatment-emergent adverse events (onset from the first dose to {days} days after the last"
            f" dose), CTCAE v5.0, in the safety population (N = {total}); a participant counts once per"
            " row, at the worst grade."
        ),
        _table("ae-overview", "Participants with adverse events", ("", "n (%)", "Events"), overview),
        _table("ae-by-term", "Participants by system organ class, term and worst grade", header, terms),
        FigureBlock("ae-grades", "Participants by worst CTCAE grade, most frequent terms"),
    )
    return Section("safety", "Safety", blocks)


def _methods(r: StudyResults) -> Section:
    import lifelines

    from nettrial.analysis.rfs import DAYS_PER_MONTH

    return Section(
        "methods",
        "Methods and software",
        (
            Text(
                f"Times are months from the first dose, (date - first dose + 1 day) / {DAYS_PER_MONTH}."
                " Survival: Kaplan-Meier with log-log 95% intervals, medians by the rule of R's"
                " quantile.survfit, median follow-up by reverse Kaplan-Meier (validated against R survival)."
            ),
            Text(
                f"Records dated after the data cut-off ({r.cutoff.isoformat()}) are not used. Percentages"
                " are rounded half away from zero to one decimal."
            ),
            Text(f"Software: nettrial {nettrial.__version__}, lifelines {lifelines.__version__}."),
        ),
    )


def _table(id: str, caption: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A report table; numbers formatted by ``_number``, numeric columns right-aligned."""
    cells = tuple(tuple(c if isinstance(c, str) else number(c) for c in row) for row in rows)
    numeric = tuple(
        bool(rows) and all(isinstance(row[i], numbers.Number) for row in rows) for i in range(len(header))
    )
    return Table(id, caption, tuple(header), cells, numeric)


def _n_pct(n: int, total: int) -> str:
    """``n (p%)`` with the safety tables' rounding (half away from zero)."""
    from nettrial.analysis.safety_tables import percent as rounded

    return f"{n} ({number(rounded(int(n), int(total)))}%)" if total else str(n)


def _count(mask: pd.Series) -> int:
    return int(mask.sum())


def _km_rfs_figure(results: StudyResults):
    """The RFS curve with the number at risk every 3 months (6, 12 on longer follow-up).

    The table under the plot is a ``SurvivalAnalysis``' own ``at_risk_`` at those tick times;
    the protocol's landmarks within the follow-up are marked.
    """
    from nettrial.analysis import plots
    from nettrial.analysis.survival import SurvivalAnalysis

    frame, endpoint = results.tte["RFS"], results.settings.rfs
    horizon = float(frame["AVAL"].max()) if len(frame) else 0.0
    step = 3 if horizon <= 24 else 6 if horizon <= 48 else 12
    ticks = tuple(range(step, step * max(1, math.ceil(horizon / step)) + 1, step))
    analysis = SurvivalAnalysis(landmarks=ticks, ci_method=endpoint.ci_method).fit(frame)
    landmarks = [m for m in endpoint.landmarks_months if m <= ticks[-1]]
    return plots.km_figure(analysis, landmarks=landmarks, ylabel="Recurrence-free survival")


# --- building ------------------------------------------------------------------------------------


def build_report(database, protocol, out_dir: str | Path, *, cutoff: dt.date) -> ReportResult:
    """Write the study report at a data cut-off: HTML, PDF and the figures.

    Parameters
    ----------
    database : nettrial.store.db.Database
        The study database (read only).
    protocol : Protocol
        The study's protocol (identity, version, endpoints).
    out_dir : str or Path
        Directory written to (created if missing): ``report.html``, ``report.pdf``,
        ``figures/{consort,km-rfs,ae-grades,swimmer}.{png,svg}``.
    cutoff : datetime.date
        The data cut-off: records dated after it are not used.

    Returns
    -------
    ReportResult
        The files written (in a fixed order), the cut-off and versions, and the primary
        endpoint's statistics (``SurvivalAnalysis.to_dict()`` of RFS).
    """
    from nettrial.analysis import consort_diagram, plots

    started = time.perf_counter()
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    with database.session(write=False) as session:
        results = study_results(session, protocol, cutoff)
    files: list[Path] = []
    figures = {
        "consort": lambda: consort_diagram.consort_figure(results.flow),
        "km-rfs": lambda: _km_rfs_figure(results) if results.survival["RFS"] is not None else None,
        "ae-grades": lambda: plots.ae_grade_figure(results.worst),
        "swimmer": lambda: plots.swimmer_figure(results.subjects, results.tte["RFS"], cutoff=cutoff),
    }
    for name, draw in figures.items():
        figure = draw()
        files += plots.save_figure(figure, figures_dir, name) if figure is not None else []
    sections = report_sections(results)
    identity = protocol.identity
    title = f"{identity.nct_id} study report: {identity.brief_title}"
    facts = [
        ("Protocol", f"{identity.nct_id} ({identity.org_study_id})"),
        ("Protocol version", protocol.protocol_version),
        ("Sponsor", identity.sponsor.name),
        ("Data cut-off", cutoff.isoformat()),
        ("Software", f"nettrial {nettrial.__version__}"),
        ("Participants", "identified by study number only (pseudonymised)"),
    ]
    footer = (
        f"{identity.nct_id} - protocol version {protocol.protocol_version} - data cut-off "
        f"{cutoff.isoformat()} - nettrial {nettrial.__version__}"
    )
    html = out_dir / "report.html"
    html.write_text(render_html(title, facts, sections, figures_dir, footer), encoding="utf-8")
    pdf = out_dir / "report.pdf"
    render_pdf(pdf, title, facts, sections, figures_dir, footer)
    return ReportResult(
        out_dir=out_dir,
        files=(html, pdf, *files),
        cutoff=cutoff,
        protocol_id=identity.nct_id,
        protocol_version=protocol.protocol_version,
        software_version=nettrial.__version__,
        sections=tuple(s.title for s in sections),
        primary=results.survival["RFS"].to_dict() if results.survival["RFS"] is not None else {},
        seconds=time.perf_counter() - started,
    )
