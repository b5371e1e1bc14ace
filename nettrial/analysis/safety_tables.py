"""Safety tables: treatment-emergent adverse events (overview; by SOC, term and worst grade) and exposure.

Source: protocol.md 4 (safety: incidence of adverse events by CTCAE v5.0 term and worst grade;
relative dose intensity and completion of 6 cycles).

Counting rules, the same in every table:

- Only treatment-emergent events count (TRTEMFL "Y" of ``adverse_event_table``).
- A participant counts once per row, at the worst grade of the events the row covers: two grade 2
  and one grade 3 of the same term count once, under grade 3.
- The denominator N is the safety population: participants with any dose by the cut-off.
- Percentages are ``100 n / N`` rounded to one decimal, half away from zero (6.25 -> 6.3, as SAS
  ``ROUND`` and most clinical study reports do), computed in exact decimal arithmetic so that a
  binary fraction never decides a tie; there is no percentage when N is 0.

Rows come in a fixed order (overview: as ``OVERVIEW``; by term: SOC alphabetically, then terms by
descending number of participants, then alphabetically), so the same data give the same table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from nettrial.analysis.adverse_events import GRADES, worst_grade
from nettrial.analysis.consort import LoggedPeriod, dosing_log, participant_flow
from nettrial.exceptions import InputError
from nettrial.protocol.model import Protocol
from nettrial.safety import dosing
from nettrial.store import treatment
from nettrial.store.models import Participant

# (category, label, condition on the event's row): the overview's rows, in order.
OVERVIEW = (
    ("any", "Any treatment-emergent adverse event", "AETOXGR >= 1"),
    ("grade_3_plus", "Grade 3 or higher", "AETOXGR >= 3"),
    ("serious", "Serious", "AESER == 'Y'"),
    ("related", "Related to the study drug", "RELFL == 'Y'"),
    ("interruption", "Leading to dose interruption", "AEACN == 'dose_interrupted'"),
    ("reduction", "Leading to dose reduction", "AEACN == 'dose_reduced'"),
    ("discontinuation", "Leading to discontinuation of the study drug", "AEACN == 'drug_withdrawn'"),
    ("fatal", "Fatal (grade 5)", "AETOXGR == 5"),
)
BY_TERM_COLUMNS = (
    "level",
    "AEBODSYS",
    "AEDECOD",
    *(f"grade_{g}" for g in GRADES),
    "n_any",
    "pct_any",
    "n_grade_3_plus",
    "pct_grade_3_plus",
    "N",
)
EXPOSURE_COLUMNS = (
    "STUDYID",
    "USUBJID",
    "SUBJID",
    "SAFFL",
    "TRTSDT",
    "TRTEDT",
    "TRTSTATE",
    "TRTOUT",
    "TRTDURD",
    "CYCLES",
    "COMPLFL",
    "EOTSTT",
    "DCTREAS",
    "CUMDOSE",
    "PLANDOSE",
    "RDI",
    "DOSEDAYS",
    "MISSDOSE",
    "NREDUCE",
    "NINTERR",
)


def percent(n: int, total: int) -> float:
    """``100 n / total`` to one decimal, half away from zero; NaN when ``total`` is 0."""
    if total < 0 or not 0 <= n <= max(total, 0):
        raise InputError("n", f"{n} of {total} is not a count within its total")
    if total == 0:
        return math.nan
    exact = Decimal(100 * n) / Decimal(total)  # a tie (x.x5) is a terminating decimal: exact here
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def safety_population(population: pd.DataFrame | Iterable[str]) -> tuple[str, ...]:
    """USUBJIDs of the safety population, sorted.

    Accepts the ``exposure`` table or a subject table (rows with SAFFL "Y"; without SAFFL, rows
    with a first dose TRTSDT), or the USUBJIDs themselves.
    """
    if isinstance(population, pd.DataFrame):
        if "USUBJID" not in population.columns:
            raise InputError("population", "a table of participants needs a USUBJID column")
        if "SAFFL" in population.columns:
            population = population.loc[population["SAFFL"] == "Y", "USUBJID"]
        elif "TRTSDT" in population.columns:
            population = population.loc[population["TRTSDT"].notna(), "USUBJID"]
        else:
            population = population["USUBJID"]
    elif isinstance(population, str):
        raise InputError("population", "give the participants' USUBJIDs, not one text")
    return tuple(sorted(set(population)))


def _emergent(adae: pd.DataFrame, population: pd.DataFrame | Iterable[str]) -> tuple[pd.DataFrame, int]:
    """The treatment-emergent rows and N, the size of the safety population they must all belong to."""
    members = safety_population(population)
    rows = adae[adae["TRTEMFL"] == "Y"]
    outside = sorted(set(rows["USUBJID"]) - set(members))
    if outside:
        raise InputError(
            "population", f"{outside[0]} has treatment-emergent events but is not in the safety population"
        )
    return rows, len(members)


def overview(adae: pd.DataFrame, population: pd.DataFrame | Iterable[str]) -> pd.DataFrame:
    """Participants (and events) with treatment-emergent adverse events of each kind of ``OVERVIEW``.

    Parameters
    ----------
    adae : pandas.DataFrame
        ``adverse_event_table`` rows (TRTEMFL, AETOXGR, AESER, RELFL, AEACN, USUBJID).
    population : pandas.DataFrame or iterable of str
        The safety population (see ``safety_population``): the denominator N.

    Returns
    -------
    pandas.DataFrame
        One row per category of ``OVERVIEW``, in its order: category, label, n (participants),
        pct (of N, rounded as the module says), events, N.
    """
    rows, total = _emergent(adae, population)
    lines = []
    for category, label, condition in OVERVIEW:
        chosen = rows[rows.eval(condition)] if len(rows) else rows
        n = chosen["USUBJID"].nunique()
        lines.append(
            {
                "category": category,
                "label": label,
                "n": n,
                "pct": percent(n, total),
                "events": len(chosen),
                "N": total,
            }
        )
    return pd.DataFrame(lines).astype({"n": "int64", "pct": "float64", "events": "int64", "N": "int64"})


def by_term(adae: pd.DataFrame, population: pd.DataFrame | Iterable[str]) -> pd.DataFrame:
    """Participants by worst grade, for each system organ class and each CTCAE term in it.

    Parameters
    ----------
    adae : pandas.DataFrame
        ``adverse_event_table`` rows (TRTEMFL, USUBJID, SUBJID, AEBODSYS, AEDECOD, AETOXGR).
    population : pandas.DataFrame or iterable of str
        The safety population (see ``safety_population``): the denominator N.

    Returns
    -------
    pandas.DataFrame
        ``BY_TERM_COLUMNS``: a row with level "soc" (AEDECOD empty: participants with any term of
        the SOC, at their worst grade in it), then its "term" rows; grade_1..grade_5 count
        participants by worst grade, n_any and n_grade_3_plus with their percentages of N.
    """
    rows, total = _emergent(adae, population)
    terms = worst_grade(rows, per="term", treatment_emergent_only=False)
    socs = terms.groupby(["USUBJID", "AEBODSYS"], as_index=False)["AETOXGR"].max()
    term_counts = _by_grade(terms, ["AEBODSYS", "AEDECOD"])
    soc_counts = _by_grade(socs, ["AEBODSYS"])
    lines = []
    for soc in sorted(soc_counts.index):
        lines.append(_line("soc", soc, "", soc_counts.loc[soc], total))
        in_soc = term_counts.xs(soc, level="AEBODSYS")
        for term in sorted(in_soc.index, key=lambda t: (-int(in_soc.loc[t].sum()), t)):
            lines.append(_line("term", soc, term, in_soc.loc[term], total))
    table = pd.DataFrame(lines, columns=list(BY_TERM_COLUMNS))
    counts = [c for c in BY_TERM_COLUMNS if c.startswith(("grade_", "n_")) or c == "N"]
    return table.astype(
        dict.fromkeys(counts, "int64") | {"pct_any": "float64", "pct_grade_3_plus": "float64"}
    )


def _by_grade(worst: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Participants at each worst grade (columns 1..5) per key."""
    if worst.empty:
        index = pd.MultiIndex.from_tuples([], names=keys) if len(keys) > 1 else pd.Index([], name=keys[0])
        return pd.DataFrame(columns=list(GRADES), index=index, dtype="int64")
    counts = worst.groupby(keys)["AETOXGR"].value_counts().unstack(fill_value=0)
    return counts.reindex(columns=list(GRADES), fill_value=0)


def _line(level: str, soc: str, term: str, grades: pd.Series, total: int) -> dict[str, object]:
    n_any, severe = int(grades.sum()), int(grades[[g for g in GRADES if g >= 3]].sum())
    return {
        "level": level,
        "AEBODSYS": soc,
        "AEDECOD": term,
        **{f"grade_{g}": int(grades[g]) for g in GRADES},
        "n_any": n_any,
        "pct_any": percent(n_any, total),
        "n_grade_3_plus": severe,
        "pct_grade_3_plus": percent(severe, total),
        "N": total,
    }


# --- exposure ------------------------------------------------------------------------------------


def exposure(session: Session, protocol: Protocol, cutoff: dt.date) -> pd.DataFrame:
    """Per participant: treatment dates and state, cycles, completion, dose intensity, modifications.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A session on the study database (read only).
    protocol : Protocol
        The study's protocol (dose ladder, cycles).
    cutoff : datetime.date
        The data cut-off: a period still open then counts up to it (up to the last dose when a
        disposition ended treatment), as the store's treatment summary counts up to today.

    Returns
    -------
    pandas.DataFrame
        ``EXPOSURE_COLUMNS``, one row per participant enrolled by the cut-off, sorted by SUBJID.
        Dates, state, CYCLES, COMPLFL, TRTOUT, EOTSTT and DCTREAS are ``consort.participant_flow``'s;
        TRTDURD: days from the first to the last dose (to the cut-off while on treatment);
        CUMDOSE, PLANDOSE (mg), RDI, DOSEDAYS, MISSDOSE: ``safety.dosing.dose_intensity`` of the
        log (RDI is relative to the whole planned course, so it is final only once treatment has
        ended); NREDUCE: steps down the dose ladder; NINTERR: gaps in dosing
        (``store.treatment.interruptions``, one still under way at the cut-off included);
        SAFFL: Y when any dose was taken.
    """
    flow = participant_flow(session, protocol, cutoff)
    log = dosing_log(session, cutoff)
    ids = {study_id: pid for study_id, pid in session.execute(select(Participant.study_id, Participant.id))}
    ladder = {level.level: i for i, level in enumerate(protocol.dose_levels.levels)}
    rows = []
    for course in flow.to_dict("records"):
        periods = log.get(ids[course["SUBJID"]], [])
        row = {key: course[key] for key in EXPOSURE_COLUMNS if key in course}
        row |= {"SAFFL": "Y" if periods else "N", "TRTDURD": None, "CUMDOSE": 0.0, "PLANDOSE": math.nan}
        row |= {"RDI": math.nan, "DOSEDAYS": 0, "MISSDOSE": 0, "NREDUCE": 0, "NINTERR": 0}
        if periods:
            until = course["TRTEDT"] or cutoff
            intensity = _intensity(protocol, periods, until)
            row |= {
                "TRTDURD": (until - course["TRTSDT"]).days + 1,
                "CUMDOSE": intensity.cumulative_mg,
                "PLANDOSE": intensity.planned_mg,
                "RDI": intensity.relative_dose_intensity,
                "DOSEDAYS": intensity.dosing_days,
                "MISSDOSE": intensity.missed_doses,
                "NREDUCE": sum(ladder[b.dose_level] > ladder[a.dose_level] for a, b in pairwise(periods)),
                "NINTERR": len(treatment.interruptions(periods, until)),
            }
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(EXPOSURE_COLUMNS))
    integers = {"TRTDURD": "Int64", "CYCLES": "int64", "DOSEDAYS": "int64", "MISSDOSE": "int64"}
    return table.astype(integers | {"NREDUCE": "int64", "NINTERR": "int64", "CUMDOSE": "float64"})


def _intensity(protocol: Protocol, periods: list[LoggedPeriod], until: dt.date) -> dosing.DoseIntensity:
    """The dose intensity of the log, open periods counted up to ``until``."""
    first, dosed = periods[0].start_date, []
    for p in periods:
        end, missed = p.stop_date or max(p.start_date, until), p.missed_doses
        if p.stop_date is None and missed:
            # Recorded for a longer span than the cut-off leaves: at most the doses due up to it.
            due = dosing.dose_intensity(
                protocol, first, [dosing.DosingPeriod(p.start_date, end, p.dose_level)]
            )
            missed = min(missed, due.dosing_days)
        dosed.append(dosing.DosingPeriod(p.start_date, end, p.dose_level, missed))
    return dosing.dose_intensity(protocol, first, dosed)


def exposure_summary(exposure_table: pd.DataFrame) -> pd.DataFrame:
    """Completion, modifications and dose intensity over the safety population.

    Parameters
    ----------
    exposure_table : pandas.DataFrame
        The ``exposure`` table.

    Returns
    -------
    pandas.DataFrame
        Rows item, label, n, pct (of N, the safety population), median, min, max, N, in a fixed
        order. RDI, cumulative dose and duration are summarised over the courses that had ended
        by the cut-off (n says how many): an ongoing course's values are not final.
    """
    treated = exposure_table[exposure_table["SAFFL"] == "Y"]
    total = len(treated)
    ended = treated[treated["TRTOUT"].isin(["completed", "discontinued"])]
    counts = (
        ("treated", "Participants treated (safety population)", pd.Series(True, index=treated.index)),
        ("completed", "Completed all cycles", treated["COMPLFL"] == "Y"),
        ("discontinued", "Discontinued treatment", treated["TRTOUT"] == "discontinued"),
        ("ongoing", "Still on treatment at the cut-off", treated["TRTOUT"] == "ongoing"),
        ("reduced", "At least one dose reduction", treated["NREDUCE"] > 0),
        ("interrupted", "At least one dose interruption", treated["NINTERR"] > 0),
    )
    lines = []
    for item, label, mask in counts:
        n = int(mask.sum())
        lines.append({"item": item, "label": label, "n": n, "pct": percent(n, total)})
    for item, label, column in (
        ("rdi", "Relative dose intensity (courses ended)", "RDI"),
        ("cumulative_dose_mg", "Cumulative dose, mg (courses ended)", "CUMDOSE"),
        ("duration_days", "Duration of treatment, days (courses ended)", "TRTDURD"),
    ):
        values = ended[column].astype("float64")
        lines.append(
            {
                "item": item,
                "label": label,
                "n": len(values),
                "pct": math.nan,
                "median": values.median(),
                "min": values.min(),
                "max": values.max(),
            }
        )
    table = pd.DataFrame(lines, columns=["item", "label", "n", "pct", "median", "min", "max"])
    table["N"] = total
    return table.astype({"n": "int64", "N": "int64"})
