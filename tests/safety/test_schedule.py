"""The visit schedule (protocol.md §3): dated visits with their windows, and their status on a day.

Every expected date here was counted by hand on a calendar, not computed with the code under test.
NCT07279532: screening days -28 to -1; C1D1 (no window), C1D15, C2D1, C2D15, C3D1-C6D1 ± 3 days in
28-day cycles; 6 cycles; end of treatment 30 days (± 7) after the last dose; imaging every 3 months
(± 14 days) to month 24, then every 6 months to month 60.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from nettrial.exceptions import InputError
from nettrial.protocol import load_protocol
from nettrial.protocol.model import Schedule
from nettrial.safety.schedule import PlannedVisit, add_months, plan_visits, visit_statuses

PROTOCOL = load_protocol("nct07279532")
SHIFTING = PROTOCOL.model_copy(
    update={"schedule": PROTOCOL.schedule.model_copy(update={"interruptions_shift_cycles": True})}
)
MADE_UP = load_protocol(Path(__file__).parents[1] / "protocol" / "made_up_study.yaml")
FIRST_DOSE = date(2026, 3, 2)  # a Monday


def d(text: str) -> date:
    return date.fromisoformat(text)


def by_id(visits: list[PlannedVisit]) -> dict[str, PlannedVisit]:
    return {v.id: v for v in visits}


def targets(visits: list[PlannedVisit]) -> dict[str, str]:
    return {v.id: v.target.isoformat() for v in visits}


# --- the plan for a first dose on 2 March 2026 ----------------------------------------------------

# id, kind, target, earliest, latest, anchor; in date order.
PLAN_2026_03_02 = [
    ("SCREENING", "screening", "2026-03-01", "2026-02-02", "2026-03-01", "first_dose"),
    ("C1D1", "treatment", "2026-03-02", "2026-03-02", "2026-03-02", "first_dose"),
    ("C1D15", "treatment", "2026-03-16", "2026-03-13", "2026-03-19", "first_dose"),
    ("C2D1", "treatment", "2026-03-30", "2026-03-27", "2026-04-02", "first_dose"),
    ("C2D15", "treatment", "2026-04-13", "2026-04-10", "2026-04-16", "first_dose"),
    ("C3D1", "treatment", "2026-04-27", "2026-04-24", "2026-04-30", "first_dose"),
    ("C4D1", "treatment", "2026-05-25", "2026-05-22", "2026-05-28", "first_dose"),
    ("IMG-M03", "imaging", "2026-06-02", "2026-05-19", "2026-06-16", "first_dose"),
    ("C5D1", "treatment", "2026-06-22", "2026-06-19", "2026-06-25", "first_dose"),
    ("C6D1", "treatment", "2026-07-20", "2026-07-17", "2026-07-23", "first_dose"),
    ("IMG-M06", "imaging", "2026-09-02", "2026-08-19", "2026-09-16", "first_dose"),
    # planned last dose: day 168 = 2026-08-16; + 30 days
    ("EOT", "end_of_treatment", "2026-09-15", "2026-09-08", "2026-09-22", "planned_last_dose"),
    ("IMG-M09", "imaging", "2026-12-02", "2026-11-18", "2026-12-16", "first_dose"),
    ("IMG-M12", "imaging", "2027-03-02", "2027-02-16", "2027-03-16", "first_dose"),
    ("IMG-M15", "imaging", "2027-06-02", "2027-05-19", "2027-06-16", "first_dose"),
    ("IMG-M18", "imaging", "2027-09-02", "2027-08-19", "2027-09-16", "first_dose"),
    ("IMG-M21", "imaging", "2027-12-02", "2027-11-18", "2027-12-16", "first_dose"),
    ("IMG-M24", "imaging", "2028-03-02", "2028-02-17", "2028-03-16", "first_dose"),  # 2028-02-29 inside
    ("IMG-M30", "imaging", "2028-09-02", "2028-08-19", "2028-09-16", "first_dose"),
    ("IMG-M36", "imaging", "2029-03-02", "2029-02-16", "2029-03-16", "first_dose"),
    ("IMG-M42", "imaging", "2029-09-02", "2029-08-19", "2029-09-16", "first_dose"),
    ("IMG-M48", "imaging", "2030-03-02", "2030-02-16", "2030-03-16", "first_dose"),
    ("IMG-M54", "imaging", "2030-09-02", "2030-08-19", "2030-09-16", "first_dose"),
    ("IMG-M60", "imaging", "2031-03-02", "2031-02-16", "2031-03-16", "first_dose"),
]


def test_every_visit_for_a_first_dose_on_2_march_2026() -> None:
    got = [
        (v.id, v.kind, v.target.isoformat(), v.earliest.isoformat(), v.latest.isoformat(), v.anchor)
        for v in plan_visits(PROTOCOL, FIRST_DOSE)
    ]
    assert got == PLAN_2026_03_02


def test_imaging_is_every_3_months_to_month_24_then_every_6_to_month_60_without_a_repeat() -> None:
    imaging = [v.id for v in plan_visits(PROTOCOL, FIRST_DOSE) if v.kind == "imaging"]
    assert imaging == [f"IMG-M{m:02d}" for m in (3, 6, 9, 12, 15, 18, 21, 24, 30, 36, 42, 48, 54, 60)]


@pytest.mark.parametrize(
    ("visit_id", "rule"),
    [
        (
            "SCREENING",
            "SCREENING: from 28 days to 1 day before the first dose on 2026-03-02 (days -28 to -1), "
            "target the last of them",
        ),
        ("C1D1", "C1D1: study day 1 (cycle 1 day 1, 28-day cycles), no window"),
        ("C2D1", "C2D1: study day 29 (cycle 2 day 1, 28-day cycles) ± 3 days"),
        ("C6D1", "C6D1: study day 141 (cycle 6 day 1, 28-day cycles) ± 3 days"),
        (
            "EOT",
            "EOT: 30 days after the planned last dose on 2026-08-16 (end of 6 cycles of 28 days) ± 7 days",
        ),
        (
            "IMG-M30",
            "IMG-M30: 30 months after the first dose on 2026-03-02 (every 6 months to month 60) ± 14 days",
        ),
    ],
)
def test_each_visit_says_how_it_was_dated(visit_id: str, rule: str) -> None:
    assert by_id(plan_visits(PROTOCOL, FIRST_DOSE))[visit_id].rule == rule


@pytest.mark.parametrize(
    ("last_dose", "target", "earliest", "latest"),
    [
        ("2026-07-01", "2026-07-31", "2026-07-24", "2026-08-07"),  # stopped early
        ("2026-08-16", "2026-09-15", "2026-09-08", "2026-09-22"),  # as planned
        ("2026-03-02", "2026-04-01", "2026-03-25", "2026-04-08"),  # a single dose
    ],
)
def test_end_of_treatment_counts_from_the_actual_last_dose(
    last_dose: str, target: str, earliest: str, latest: str
) -> None:
    eot = by_id(plan_visits(PROTOCOL, FIRST_DOSE, last_dose=d(last_dose)))["EOT"]
    assert (eot.target, eot.earliest, eot.latest) == (d(target), d(earliest), d(latest))
    assert eot.anchor == "last_dose"
    assert eot.rule == f"EOT: 30 days after the last dose on {last_dose} ± 7 days"


def test_a_last_dose_before_the_first_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        plan_visits(PROTOCOL, FIRST_DOSE, last_dose=d("2026-03-01"))
    assert caught.value.field == "last_dose"


def test_the_schedule_comes_from_the_protocol_file() -> None:
    """The invented protocol: 21-day cycles x 8, screening from day -21, EOT +28 (± 5), imaging every 2
    months to month 12."""
    plan = plan_visits(MADE_UP, FIRST_DOSE)
    assert [(v.id, v.target, v.earliest, v.latest) for v in plan if v.kind != "imaging"] == [
        ("SCREENING", d("2026-03-01"), d("2026-02-09"), d("2026-03-01")),
        ("C1D1", d("2026-03-02"), d("2026-03-02"), d("2026-03-02")),
        ("C2D1", d("2026-03-23"), d("2026-03-21"), d("2026-03-25")),
        ("EOT", d("2026-09-13"), d("2026-09-08"), d("2026-09-18")),  # planned last dose 2026-08-16
    ]
    assert [v.id for v in plan if v.kind == "imaging"] == [f"IMG-M{m:02d}" for m in (2, 4, 6, 8, 10, 12)]


# --- calendar months, month ends and leap years ---------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2026-03-02", 3, "2026-06-02"),
        ("2026-01-31", 1, "2026-02-28"),  # clamped to the end of a short month
        ("2028-01-31", 1, "2028-02-29"),  # leap year
        ("2027-11-30", 3, "2028-02-29"),
        ("2028-02-29", 12, "2029-02-28"),
        ("2026-08-31", 1, "2026-09-30"),
        ("2026-12-15", 1, "2027-01-15"),  # across a year end
        ("2026-03-31", -1, "2026-02-28"),
        ("2026-05-31", 0, "2026-05-31"),
    ],
)
def test_add_months(start: str, months: int, expected: str) -> None:
    assert add_months(d(start), months) == d(expected)


def test_imaging_counts_each_month_from_the_first_dose_so_clamping_does_not_accumulate() -> None:
    planned = targets(plan_visits(PROTOCOL, d("2027-11-30")))
    assert {k: v for k, v in planned.items() if k.startswith("IMG")} == {
        "IMG-M03": "2028-02-29",
        "IMG-M06": "2028-05-30",
        "IMG-M09": "2028-08-30",
        "IMG-M12": "2028-11-30",
        "IMG-M15": "2029-02-28",
        "IMG-M18": "2029-05-30",
        "IMG-M21": "2029-08-30",
        "IMG-M24": "2029-11-30",
        "IMG-M30": "2030-05-30",
        "IMG-M36": "2030-11-30",
        "IMG-M42": "2031-05-30",
        "IMG-M48": "2031-11-30",
        "IMG-M54": "2032-05-30",
        "IMG-M60": "2032-11-30",
    }


@pytest.mark.parametrize(
    ("visit_id", "target"),
    [
        ("IMG-M03", "2028-04-30"),
        ("IMG-M06", "2028-07-31"),
        ("IMG-M12", "2029-01-31"),
        ("IMG-M24", "2030-01-31"),
    ],
)
def test_imaging_after_a_first_dose_on_31_january_2028(visit_id: str, target: str) -> None:
    assert targets(plan_visits(PROTOCOL, d("2028-01-31")))[visit_id] == target


@pytest.mark.parametrize(
    ("first_dose", "c1d15", "c2d1", "c2d15", "c3d1", "eot"),
    [
        # 2028: 29 February falls between C2D1 and C2D15, so everything after it is a calendar day earlier.
        ("2028-01-31", "2028-02-14", "2028-02-28", "2028-03-13", "2028-03-27", "2028-08-15"),
        ("2027-01-31", "2027-02-14", "2027-02-28", "2027-03-14", "2027-03-28", "2027-08-16"),
    ],
)
def test_treatment_visits_count_days_across_29_february(
    first_dose: str, c1d15: str, c2d1: str, c2d15: str, c3d1: str, eot: str
) -> None:
    got = targets(plan_visits(PROTOCOL, d(first_dose)))
    assert [got[k] for k in ("C1D15", "C2D1", "C2D15", "C3D1", "EOT")] == [c1d15, c2d1, c2d15, c3d1, eot]


@pytest.mark.parametrize(
    ("first_dose", "earliest", "latest"),
    [("2028-03-01", "2028-02-02", "2028-02-29"), ("2027-03-01", "2027-02-01", "2027-02-28")],
)
def test_screening_window_across_29_february(first_dose: str, earliest: str, latest: str) -> None:
    screening = by_id(plan_visits(PROTOCOL, d(first_dose)))["SCREENING"]
    assert (screening.earliest, screening.latest, screening.target) == (d(earliest), d(latest), d(latest))


# --- dose interruptions --------------------------------------------------------------------------

ONE_WEEK_OFF = [(d("2026-03-20"), d("2026-03-26"))]  # 7 days, inclusive, in cycle 1


def test_interruptions_move_nothing_when_cycles_stay_on_the_calendar() -> None:
    assert PROTOCOL.schedule.interruptions_shift_cycles is False  # protocol.md 3 (assumption)
    assert plan_visits(PROTOCOL, FIRST_DOSE, interruptions=ONE_WEEK_OFF) == plan_visits(PROTOCOL, FIRST_DOSE)


def test_interruptions_move_later_treatment_visits_when_the_setting_is_true() -> None:
    moved = targets(plan_visits(SHIFTING, FIRST_DOSE, interruptions=ONE_WEEK_OFF))
    assert {k: v for k, v in moved.items() if not k.startswith("IMG")} == {
        "SCREENING": "2026-03-01",
        "C1D1": "2026-03-02",
        "C1D15": "2026-03-16",  # before the interruption
        "C2D1": "2026-04-06",  # 2026-03-30 + 7
        "C2D15": "2026-04-20",
        "C3D1": "2026-05-04",
        "C4D1": "2026-06-01",
        "C5D1": "2026-06-29",
        "C6D1": "2026-07-27",
        "EOT": "2026-09-22",  # the planned last dose moves too: 2026-08-23, + 30
    }
    assert moved["IMG-M03"] == "2026-06-02"  # imaging keeps to calendar months from C1D1
    c2d1 = by_id(plan_visits(SHIFTING, FIRST_DOSE, interruptions=ONE_WEEK_OFF))["C2D1"]
    assert (c2d1.earliest, c2d1.latest) == (d("2026-04-03"), d("2026-04-09"))
    assert c2d1.rule.endswith("± 3 days, moved 7 days later by dose interruptions")


def test_an_actual_last_dose_is_not_moved_by_interruptions() -> None:
    plan = plan_visits(SHIFTING, FIRST_DOSE, last_dose=d("2026-08-23"), interruptions=ONE_WEEK_OFF)
    assert by_id(plan)["EOT"].target == d("2026-09-22")


def test_an_interruption_starting_on_the_visit_day_moves_only_later_visits() -> None:
    moved = targets(plan_visits(SHIFTING, FIRST_DOSE, interruptions=[(d("2026-03-30"), d("2026-04-05"))]))
    assert (moved["C2D1"], moved["C2D15"]) == ("2026-03-30", "2026-04-20")


@pytest.mark.parametrize("reverse", [False, True], ids=["in_order", "listed_out_of_order"])
def test_an_interruption_counts_when_it_starts_before_the_already_moved_visit(reverse: bool) -> None:
    """10 days off from 2026-03-20 moves C2D1 from 2026-03-30 to 2026-04-09; a second period from
    2026-04-03 (after the original date, before the moved one) moves it 7 days more, so no visit
    falls on a day without treatment."""
    periods = [(d("2026-03-20"), d("2026-03-29")), (d("2026-04-03"), d("2026-04-09"))]
    moved = targets(plan_visits(SHIFTING, FIRST_DOSE, interruptions=periods[::-1] if reverse else periods))
    assert (moved["C1D15"], moved["C2D1"], moved["C2D15"]) == ("2026-03-16", "2026-04-16", "2026-04-30")


@pytest.mark.parametrize("protocol", [PROTOCOL, SHIFTING], ids=["calendar_cycles", "shifting_cycles"])
@pytest.mark.parametrize(
    ("interruptions", "field", "message"),
    [
        ([("2026-03-10", "2026-03-05")], "interruptions[0]", "before it starts"),
        (
            [("2026-03-05", "2026-03-06"), ("2026-02-27", "2026-03-03")],
            "interruptions[1]",
            "before the first dose",
        ),
        (
            [("2026-03-10", "2026-03-20"), ("2026-03-20", "2026-03-25")],
            "interruptions[1]",
            "within interruptions[0]",
        ),
    ],
    ids=["ends_before_it_starts", "before_first_dose", "overlapping"],
)
def test_bad_interruptions_are_refused(protocol: Any, interruptions: list, field: str, message: str) -> None:
    periods = [(d(start), d(end)) for start, end in interruptions]
    with pytest.raises(InputError) as caught:
        plan_visits(protocol, FIRST_DOSE, interruptions=periods)
    assert (caught.value.field, message in caught.value.detail) == (field, True), caught.value


# --- status on a day -----------------------------------------------------------------------------

PLAN = plan_visits(PROTOCOL, FIRST_DOSE)
C2D1 = by_id(PLAN)["C2D1"]  # target 2026-03-30, window 2026-03-27 to 2026-04-02


def status_of(visit_id: str, **kwargs: Any):
    return next(s for s in visit_statuses(PLAN, **kwargs) if s.visit.id == visit_id)


@pytest.mark.parametrize(
    ("today", "status", "reason"),
    [
        ("2026-03-26", "upcoming", "Not yet due: its window opens in 1 day"),  # the day before it opens
        ("2026-03-27", "due", "Due now: its window closes in 6 days"),  # opens
        ("2026-03-30", "due", "Due now: its window closes in 3 days"),
        ("2026-04-02", "due", "Due now: its window closes today"),  # last day
        ("2026-04-03", "overdue", "Overdue: its window closed 1 day ago with no record"),  # protocol.md 3
        ("2026-05-01", "overdue", "Overdue: its window closed 29 days ago with no record"),
    ],
)
def test_status_at_the_window_boundaries(today: str, status: str, reason: str) -> None:
    got = status_of("C2D1", today=d(today))
    assert (got.status, got.done_on, got.in_window, got.days_from_target) == (status, None, None, None)
    assert got.reason == f"{reason} (window 2026-03-27 to 2026-04-02, target 2026-03-30)."


@pytest.mark.parametrize(
    ("done_on", "in_window", "days_from_target", "how"),
    [
        ("2026-03-27", True, -3, "within its window"),
        ("2026-03-30", True, 0, "within its window"),
        ("2026-04-02", True, 3, "within its window"),
        ("2026-03-25", False, -5, "2 days early, outside its window"),
        ("2026-04-03", False, 4, "1 day late, outside its window"),
        ("2026-04-05", False, 6, "3 days late, outside its window"),
    ],
)
def test_a_recorded_visit_is_done_inside_its_window_or_not(
    done_on: str, in_window: bool, days_from_target: int, how: str
) -> None:
    got = status_of("C2D1", today=d("2026-04-10"), done={"C2D1": d(done_on)})
    assert (got.status, got.done_on, got.in_window, got.days_from_target) == (
        "done",
        d(done_on),
        in_window,
        days_from_target,
    )
    assert got.reason == f"Done on {done_on}, {how} (window 2026-03-27 to 2026-04-02, target 2026-03-30)."


@pytest.mark.parametrize("today", ["2026-03-01", "2026-03-30", "2026-04-10"])
def test_a_visit_recorded_as_not_done_is_missed_whatever_the_day(today: str) -> None:
    got = status_of("C2D1", today=d(today), missed=["C2D1"])
    assert (got.status, got.done_on, got.in_window) == ("missed", None, None)
    assert got.reason.startswith("Recorded as not done")


def test_statuses_follow_the_plan_one_per_visit() -> None:
    statuses = visit_statuses(
        PLAN,
        today=d("2026-03-30"),
        done={"SCREENING": d("2026-02-20"), "C1D1": d("2026-03-02")},
        missed=["C1D15"],
    )
    assert [s.visit for s in statuses] == PLAN
    assert [s.status for s in statuses[:6]] == ["done", "done", "missed", "due", "upcoming", "upcoming"]


@pytest.mark.parametrize(
    ("records", "field"),
    [
        ({"done": {"C7D1": d("2026-03-30")}}, "done.C7D1"),
        ({"missed": ["IMG-M27"]}, "missed.IMG-M27"),
        ({"done": {"C2D1": d("2026-03-30")}, "missed": ["C2D1"]}, "missed.C2D1"),  # both
        ({"done": {"C2D1": d("2026-04-11")}}, "done.C2D1"),  # after today
    ],
    ids=["unknown_done", "unknown_missed", "done_and_missed", "done_in_the_future"],
)
def test_records_that_do_not_fit_the_plan_are_refused(records: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        visit_statuses(PLAN, today=d("2026-04-10"), **records)
    assert caught.value.field == field


def test_an_unknown_visit_error_lists_the_visits_of_the_plan() -> None:
    with pytest.raises(InputError) as caught:
        visit_statuses(PLAN, today=d("2026-04-10"), done={"C7D1": d("2026-03-30")})
    assert caught.value.allowed == tuple(v.id for v in PLAN)


# --- the schedule section of a protocol file -----------------------------------------------------


def schedule_with(**changes: Any) -> dict[str, Any]:
    return PROTOCOL.schedule.model_dump() | changes


VISITS = PROTOCOL.schedule.model_dump()["visits"]
IMAGING = PROTOCOL.schedule.model_dump()["imaging"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (schedule_with(visits=[*VISITS, VISITS[2]]), "visit ids must be unique: C2D1 repeated"),
        (schedule_with(visits=[]), "at least 1 item"),
        (schedule_with(visits=[*VISITS, {**VISITS[0], "id": "EOT"}]), "names of screening"),
        (schedule_with(visits=[{**VISITS[0], "cycle": 0}]), "greater than or equal to 1"),
        (schedule_with(screening={"from_day": -28, "to_day": 0}), "to_day < 0"),
        (schedule_with(screening={"from_day": -1, "to_day": -28}), "from_day <= to_day"),
        (schedule_with(imaging=IMAGING[::-1]), "not after the previous phase"),
        (schedule_with(imaging=[{**IMAGING[0], "until_months": 20, "every_months": 6}]), "whole number"),
        (schedule_with(end_of_treatment={"days_after_last_dose": -1, "window_days": 7}), "greater than"),
    ],
    ids=[
        "duplicate_id",
        "no_visits",
        "engine_id",
        "cycle_0",
        "screening_on_day_0",
        "screening_reversed",
        "imaging_unordered",
        "imaging_uneven",
        "negative_eot",
    ],
)
def test_a_malformed_schedule_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Schedule.model_validate(data)
