"""Safety tables: counting once per participant at the worst grade, percentages, order, exposure."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest
from sqlalchemy import func, select

from nettrial.analysis.adverse_events import adverse_event_table, worst_grade
from nettrial.analysis.safety_tables import (
    BY_TERM_COLUMNS,
    EXPOSURE_COLUMNS,
    OVERVIEW,
    by_term,
    exposure,
    exposure_summary,
    overview,
    percent,
    safety_population,
)
from nettrial.exceptions import InputError
from nettrial.store import treatment
from nettrial.store.assessments import create_disposition
from nettrial.store.models import Disposition, DosingPeriod, Participant
from tests import factories
from tests.analysis.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL, writing

D = dt.date.fromisoformat
DAY = dt.timedelta(days=1)
TODAY = dt.datetime.now(dt.UTC).date()

# --- percentages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "total", "expected"),
    [
        (1, 16, 6.3),  # 6.25: half away from zero (Python's round() gives 6.2)
        (5, 16, 31.3),  # 31.25 (round() gives 31.2)
        (1, 160, 0.6),  # 0.625: only the first decimal is rounded
        (1, 8, 12.5),
        (2, 3, 66.7),
        (1, 3, 33.3),
        (0, 35, 0.0),
        (35, 35, 100.0),
    ],
)
def test_percentages_round_half_away_from_zero_to_one_decimal(n, total, expected):
    assert percent(n, total) == expected


def test_no_percentage_of_nobody_and_no_count_beyond_its_total():
    assert math.isnan(percent(0, 0))
    with pytest.raises(InputError):
        percent(4, 3)
    with pytest.raises(InputError):
        percent(-1, 3)


# --- the safety population ------------------------------------------------------------------------


def test_the_safety_population_from_a_table_or_from_ids():
    subjects = pd.DataFrame({"USUBJID": ["B", "A", "C"], "SAFFL": ["Y", "Y", "N"]})
    assert safety_population(subjects) == ("A", "B")
    dated = pd.DataFrame({"USUBJID": ["B", "A"], "TRTSDT": [D("2026-03-02"), None]})
    assert safety_population(dated) == ("B",)
    assert safety_population(["C", "A", "C"]) == ("A", "C")
    with pytest.raises(InputError):
        safety_population("A")
    with pytest.raises(InputError):
        safety_population(pd.DataFrame({"SUBJID": ["A"]}))


# --- overview and by term, on hand-built events ------------------------------------------------------

GI, GENERAL, INFECTIONS, VASCULAR = (
    "Gastrointestinal disorders",
    "General disorders and administration site conditions",
    "Infections and infestations",
    "Vascular disorders",
)
POPULATION = ("A", "B", "C", "D")  # D has no event


def _events() -> pd.DataFrame:
    rows = [
        # participant, SOC, term, grade, serious, related, action, treatment-emergent
        ("A", GI, "Diarrhea", 2, "N", "Y", "none", "Y"),
        ("A", GI, "Diarrhea", 2, "N", "Y", "none", "Y"),
        ("A", GI, "Diarrhea", 3, "N", "Y", "dose_interrupted", "Y"),
        ("A", GI, "Nausea", 1, "N", "Y", "none", "Y"),
        ("B", GI, "Diarrhea", 2, "N", "N", "dose_reduced", "Y"),
        ("B", GI, "Abdominal pain", 1, "N", "N", "none", "Y"),
        ("B", GENERAL, "Fatigue", 1, "N", "N", "none", "Y"),
        ("B", VASCULAR, "Hypertension", 4, "Y", "N", "none", "N"),  # before the first dose
        ("C", INFECTIONS, "Sepsis", 5, "Y", "N", "drug_withdrawn", "Y"),
    ]
    columns = ["USUBJID", "AEBODSYS", "AEDECOD", "AETOXGR", "AESER", "RELFL", "AEACN", "TRTEMFL"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(SUBJID=frame["USUBJID"])


def test_overview_counts_participants_once_and_treatment_emergent_events_only():
    table = overview(_events(), POPULATION)
    assert table["category"].tolist() == [c for c, _, _ in OVERVIEW]
    got = {row.category: (row.n, row.pct, row.events) for row in table.itertuples()}
    assert got == {
        "any": (3, 75.0, 8),
        "grade_3_plus": (2, 50.0, 2),  # A (grade 3) and C (grade 5); B's grade 4 is not emergent
        "serious": (1, 25.0, 1),
        "related": (1, 25.0, 4),
        "interruption": (1, 25.0, 1),
        "reduction": (1, 25.0, 1),
        "discontinuation": (1, 25.0, 1),
        "fatal": (1, 25.0, 1),
    }
    assert set(table["N"]) == {4}


def test_by_term_counts_each_participant_once_at_the_worst_grade_sorted_by_soc_frequency_term():
    table = by_term(_events(), POPULATION)
    assert list(table.columns) == list(BY_TERM_COLUMNS)
    shown = table[["level", "AEBODSYS", "AEDECOD", "grade_1", "grade_2", "grade_3", "grade_4", "grade_5"]]
    assert shown.values.tolist() == [
        ["soc", GI, "", 0, 1, 1, 0, 0],  # A: Nausea 1 + Diarrhea up to 3 -> worst 3; B: worst 2
        ["term", GI, "Diarrhea", 0, 1, 1, 0, 0],  # A's two grade 2 and one grade 3 count once, at 3
        ["term", GI, "Abdominal pain", 1, 0, 0, 0, 0],  # 1 participant, ties broken by term
        ["term", GI, "Nausea", 1, 0, 0, 0, 0],
        ["soc", GENERAL, "", 1, 0, 0, 0, 0],
        ["term", GENERAL, "Fatigue", 1, 0, 0, 0, 0],
        ["soc", INFECTIONS, "", 0, 0, 0, 0, 1],
        ["term", INFECTIONS, "Sepsis", 0, 0, 0, 0, 1],
    ]
    # GI's SOC row is not the sum of its terms (4): A and B count once there too.
    gi = table.iloc[0]
    assert (gi["n_any"], gi["pct_any"], gi["n_grade_3_plus"], gi["pct_grade_3_plus"]) == (2, 50.0, 1, 25.0)
    diarrhea = table.iloc[1]
    assert (diarrhea["n_any"], diarrhea["pct_any"], diarrhea["n_grade_3_plus"]) == (2, 50.0, 1)
    assert VASCULAR not in set(table["AEBODSYS"])


def test_events_of_someone_outside_the_population_are_refused():
    with pytest.raises(InputError, match="C has treatment-emergent events"):
        overview(_events(), ("A", "B", "D"))
    with pytest.raises(InputError, match="population"):
        by_term(_events(), ("A", "B"))


def test_tables_without_events_have_their_rows_and_columns():
    empty = _events().iloc[0:0]
    table = overview(empty, POPULATION)
    assert table["n"].tolist() == [0] * len(OVERVIEW) and table["pct"].tolist() == [0.0] * len(OVERVIEW)
    terms = by_term(empty, POPULATION)
    assert terms.empty and list(terms.columns) == list(BY_TERM_COLUMNS)


# --- exposure from a hand-built study -------------------------------------------------------------

FIRST = D("2026-03-02")
FULL = 6 * 28  # days of six cycles of 28 (protocol settings)


def _study(db) -> dict[str, str]:
    """Four participants: six full cycles; one day short; reduced and still dosing; never dosed."""
    ids = factories.enrolled_before_first_dose(db, "complete", "short", "reduced", "undosed")
    with writing(db) as session:

        def period(
            name: str, level: int, start: dt.date, stop: dt.date | None, reason: str | None, **kw
        ) -> None:
            treatment.add_period(
                session,
                participant=session.get(Participant, ids[name]),
                protocol=PROTOCOL,
                dose_level=level,
                start_date=start,
                stop_date=stop,
                stop_reason=reason,
                today=TODAY,
                **kw,
            )

        period("complete", 0, FIRST, FIRST + (FULL - 1) * DAY, "completed")  # day 168 is the last
        period("short", 0, FIRST, FIRST + (FULL - 2) * DAY, "completed", missed_doses=2)
        period("reduced", 0, FIRST, FIRST + 20 * DAY, "reduction")
        period("reduced", -1, FIRST + 28 * DAY, None, None)
        for name, day in (("complete", FULL - 1), ("short", FULL - 2)):
            create_disposition(
                session,
                participant=session.get(Participant, ids[name]),
                phase="treatment",
                status="completed",
                status_date=FIRST + day * DAY,
            )
    with db.session(write=False) as session:
        return {name: session.get(Participant, pid).study_id for name, pid in ids.items()}


def _exposure(db, cutoff: dt.date) -> pd.DataFrame:
    with db.session(write=False) as session:
        return exposure(session, PROTOCOL, cutoff)


def test_completion_needs_the_last_day_of_cycle_6(db):
    study = _study(db)
    raw = _exposure(db, TODAY)
    assert list(raw.columns) == list(EXPOSURE_COLUMNS)
    table = raw.set_index("SUBJID")
    complete, short = table.loc[study["complete"]], table.loc[study["short"]]
    assert (complete["COMPLFL"], complete["CYCLES"], complete["TRTOUT"]) == ("Y", 6, "completed")
    assert (complete["TRTDURD"], complete["CUMDOSE"], complete["RDI"]) == (168, 200.0 * 168, 1.0)
    # Recorded as completed one day early: five full cycles, not a completion.
    assert (short["COMPLFL"], short["CYCLES"], short["TRTOUT"], short["EOTSTT"]) == (
        "N",
        5,
        "discontinued",
        "completed",
    )
    assert short["CUMDOSE"] == 200.0 * (167 - 2) and short["MISSDOSE"] == 2
    assert short["RDI"] == round(165 / 168, 6)


def test_reductions_and_interruptions_are_counted_from_the_dosing_log(db):
    study = _study(db)
    table = _exposure(db, TODAY).set_index("SUBJID")
    reduced = table.loc[study["reduced"]]
    assert (reduced["NREDUCE"], reduced["NINTERR"], reduced["TRTOUT"]) == (1, 1, "ongoing")
    assert reduced["TRTEDT"] is None and reduced["TRTDURD"] == (TODAY - FIRST).days + 1
    assert (table.loc[study["complete"], "NREDUCE"], table.loc[study["complete"], "NINTERR"]) == (0, 0)
    undosed = table.loc[study["undosed"]]
    assert (undosed["SAFFL"], undosed["TRTOUT"], undosed["CUMDOSE"]) == ("N", "not_started", 0.0)
    assert pd.isna(undosed["TRTDURD"]) and math.isnan(undosed["RDI"])


def test_an_earlier_cutoff_sees_treatment_still_going(db):
    study = _study(db)
    cutoff = FIRST + 99 * DAY
    table = _exposure(db, cutoff).set_index("SUBJID")
    complete = table.loc[study["complete"]]
    assert (complete["TRTOUT"], complete["TRTEDT"], complete["COMPLFL"]) == ("ongoing", None, "N")
    assert (complete["TRTDURD"], complete["CYCLES"], complete["CUMDOSE"]) == (100, 3, 200.0 * 100)
    # The interruption of "reduced" (days 22-28) had not happened yet 10 days after the first dose.
    early = _exposure(db, FIRST + 10 * DAY).set_index("SUBJID")
    assert (early.loc[study["reduced"], "NINTERR"], early.loc[study["reduced"], "NREDUCE"]) == (0, 0)


def test_the_exposure_summary_over_the_safety_population(db):
    _study(db)
    table = _exposure(db, TODAY)
    summary = exposure_summary(table).set_index("item")
    counts = {item: (summary.loc[item, "n"], summary.loc[item, "pct"]) for item in summary.index[:6]}
    assert counts == {
        "treated": (3, 100.0),
        "completed": (1, 33.3),
        "discontinued": (1, 33.3),
        "ongoing": (1, 33.3),
        "reduced": (1, 33.3),
        "interrupted": (1, 33.3),
    }
    rdi = summary.loc["rdi"]
    assert rdi["n"] == 2  # the two ended courses; the ongoing one's RDI is not final
    assert (rdi["min"], rdi["max"]) == (round(165 / 168, 6), 1.0)
    assert rdi["median"] == pytest.approx((1.0 + round(165 / 168, 6)) / 2)
    assert set(summary["N"]) == {3}


# --- the demo study ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_db):
    with demo_db.session(write=False) as session:
        return adverse_event_table(session, PROTOCOL, DEMO_CUTOFF), exposure(session, PROTOCOL, DEMO_CUTOFF)


def test_demo_overview_agrees_with_the_event_table(demo):
    adae, exposed = demo
    emergent = adae[adae["TRTEMFL"] == "Y"]
    table = overview(adae, exposed).set_index("category")
    assert table.loc["any", "N"] == 35
    assert table.loc["any", "n"] == emergent["USUBJID"].nunique()
    assert table.loc["any", "events"] == len(emergent)
    serious = emergent[emergent["AESER"] == "Y"]
    assert (table.loc["serious", "n"], table.loc["serious", "events"]) == (
        serious["USUBJID"].nunique(),
        len(serious),
    )
    assert table.loc["grade_3_plus", "n"] == emergent.loc[emergent["AETOXGR"] >= 3, "USUBJID"].nunique()


def test_demo_by_term_rows_add_up(demo):
    adae, exposed = demo
    table = by_term(adae, exposed)
    grades = table[[f"grade_{g}" for g in range(1, 6)]].sum(axis=1)
    assert (grades == table["n_any"]).all()
    terms = table[table["level"] == "term"].set_index("AEDECOD")
    per_term = worst_grade(adae).groupby("AEDECOD").size()
    assert terms["n_any"].sort_index().to_dict() == per_term.sort_index().to_dict()
    for _, rows in table.groupby("AEBODSYS", sort=False):
        soc_row, term_rows = rows.iloc[0], rows.iloc[1:]
        assert soc_row["level"] == "soc" and (term_rows["level"] == "term").all()
        assert term_rows["n_any"].max() <= soc_row["n_any"] <= term_rows["n_any"].sum()
        assert term_rows["n_any"].is_monotonic_decreasing
    assert table["AEBODSYS"].is_monotonic_increasing


def test_demo_exposure_agrees_with_the_stored_dispositions_and_log(demo_db, demo):
    _, exposed = demo
    with demo_db.session(write=False) as session:
        completed = session.scalar(
            select(func.count()).where(Disposition.phase == "treatment", Disposition.status == "completed")
        )
        reduced = session.scalar(
            select(func.count(func.distinct(DosingPeriod.participant_id))).where(
                DosingPeriod.stop_reason == "reduction"
            )
        )
        dosing = session.scalar(select(func.count()).where(Participant.status == "enrolled"))
    summary = exposure_summary(exposed).set_index("item")
    assert summary.loc["treated", "n"] == 35
    assert summary.loc["completed", "n"] == completed
    assert summary.loc["ongoing", "n"] == dosing  # no disposition yet: still on treatment
    assert summary.loc["reduced", "n"] == reduced
    assert summary.loc[["completed", "discontinued", "ongoing"], "n"].sum() == 35
    assert exposed["RDI"].between(0, 1).all()
