"""Time-to-event datasets: every rule of protocol.md 4 at its boundaries, then the store and the demo."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select

from nettrial.analysis.endpoints import endpoint_settings
from nettrial.analysis.rfs import (
    COLUMNS,
    DAYS_PER_MONTH,
    Course,
    Exclusion,
    Outcome,
    Scan,
    ScheduledScan,
    Source,
    derive,
    scheduled_scans,
    time_to_event,
    time_to_event_frame,
    time_to_event_tables,
)
from nettrial.exceptions import InputError
from nettrial.store import audit, treatment
from nettrial.store.assessments import create_disposition, create_tumour_assessment
from nettrial.store.models import Disposition, DosingPeriod, Participant, TumourAssessment
from tests import factories
from tests.analysis.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL

D = dt.date.fromisoformat
FIRST = D("2026-01-05")
CUTOFF = D("2027-06-30")
SETTINGS = endpoint_settings(PROTOCOL)
RFS, DMFS, OS = SETTINGS.rfs, SETTINGS.dmfs, SETTINGS.os
# Imaging every 3 calendar months from the first dose, +/- 14 days (protocol.md 3), worked by hand:
M03 = ("2026-03-22", "2026-04-19")  # target 2026-04-05
M06 = ("2026-06-21", "2026-07-19")  # target 2026-07-05
M09 = ("2026-09-21", "2026-10-19")  # target 2026-10-05
M12 = "2027-01-05"


def scan(day: str, *sites: str, therapy: str | None = None, seq: int | None = None) -> Scan:
    return Scan(D(day), sites, D(therapy) if therapy else None, seq)


def course(*scans: Scan, death: str | None = None, alive: str | None = None, first: dt.date | None = FIRST):
    return Course(
        first_dose=Source(first, "dosing_period", 1) if first else None,
        scans=scans,
        scheduled=scheduled_scans(PROTOCOL, first) if first else (),
        death=Source(D(death), "disposition", 7) if death else None,
        last_alive=Source(D(alive), "visit", 9) if alive else None,
    )


def derived(*scans: Scan, endpoint=RFS, cutoff: dt.date = CUTOFF, **facts) -> Outcome:
    found = derive(course(*scans, **facts), endpoint, cutoff)
    assert isinstance(found, Outcome), found
    return found


def test_the_schedule_the_rules_count_missed_scans_against():
    first_three = scheduled_scans(PROTOCOL, FIRST)[:3]
    assert [(s.id, s.earliest, s.latest) for s in first_three] == [
        ("IMG-M03", D(M03[0]), D(M03[1])),
        ("IMG-M06", D(M06[0]), D(M06[1])),
        ("IMG-M09", D(M09[0]), D(M09[1])),
    ]


# --- events --------------------------------------------------------------------------------------


def test_no_event_is_censored_at_the_last_adequate_imaging_with_aval_in_months_from_day_1():
    found = derived(scan("2026-04-05"), scan("2026-07-05", seq=12))
    assert (found.event, found.end, found.description) == (
        False,
        D("2026-07-05"),
        "Last adequate imaging without recurrence",
    )
    days = (D("2026-07-05") - FIRST).days + 1
    assert found.days == days == 182
    assert found.months == pytest.approx(182 / 30.4375, abs=1e-12)
    assert (found.source.table, found.source.row_id) == ("tumour_assessment", 12)


def test_the_first_recurrence_at_any_site_is_the_rfs_event():
    found = derived(
        scan("2026-04-05"), scan("2026-07-05", "nodal", "liver", seq=5), scan("2026-10-05", "liver")
    )
    assert (found.event, found.end, found.description) == (True, D("2026-07-05"), "Recurrence: nodal, liver")
    assert found.source == Source(D("2026-07-05"), "tumour_assessment", 5)


@pytest.mark.parametrize("site", ["local", "nodal", "liver", "other_distant"])
def test_every_recurrence_site_is_an_rfs_event(site):
    assert derived(scan("2026-04-05", site)).event


def test_dmfs_counts_distant_recurrence_only_local_and_nodal_are_not_events():
    scans = (scan("2026-04-05", "local"), scan("2026-07-05"), scan("2026-10-05", "nodal", "other_distant"))
    rfs, dmfs = derived(*scans), derived(*scans, endpoint=DMFS)
    assert (rfs.end, rfs.description) == (D("2026-04-05"), "Recurrence: local")
    assert (dmfs.end, dmfs.description) == (D("2026-10-05"), "Recurrence: other_distant")
    local_only = derived(scan("2026-04-05", "local"), scan("2026-07-05"), endpoint=DMFS)
    assert (local_only.event, local_only.end) == (False, D("2026-07-05"))


def test_death_is_an_event_when_it_comes_first():
    found = derived(scan("2026-04-05"), scan("2026-07-05"), scan("2026-10-05", "liver"), death="2026-08-01")
    assert (found.event, found.end, found.description) == (True, D("2026-08-01"), "Death")
    assert found.source == Source(D("2026-08-01"), "disposition", 7)


def test_a_recurrence_and_a_death_on_the_same_day_are_described_as_the_recurrence():
    found = derived(scan("2026-04-05"), scan("2026-07-05", "liver"), death="2026-07-05")
    assert (found.end, found.description) == (D("2026-07-05"), "Recurrence: liver")


def test_death_on_the_day_of_the_last_scan_is_an_event():
    found = derived(scan("2026-04-05"), scan("2026-07-05"), death="2026-07-05")
    assert (found.event, found.end, found.description) == (True, D("2026-07-05"), "Death")


def test_switching_death_off_as_an_event_censors_it():
    no_death = endpoint_settings(
        PROTOCOL, events=["local_recurrence", "nodal_recurrence", "distant_recurrence"]
    )
    found = derived(scan("2026-04-05"), death="2026-05-01", endpoint=no_death.rfs)
    assert (found.event, found.end) == (False, D("2026-04-05"))


def test_overall_survival_counts_death_and_censors_at_the_last_date_known_alive():
    death = derived(scan("2026-04-05", "liver"), death="2026-09-01", alive="2026-09-01", endpoint=OS)
    assert (death.event, death.end, death.description) == (True, D("2026-09-01"), "Death")
    alive = derived(scan("2026-04-05", "liver"), alive="2026-11-02", endpoint=OS)
    assert (alive.event, alive.end, alive.description) == (False, D("2026-11-02"), "Last known alive")
    assert alive.source == Source(D("2026-11-02"), "visit", 9)


# --- new anticancer therapy --------------------------------------------------------------------------


def test_therapy_before_recurrence_censors_at_the_last_imaging_before_it():
    scans = (scan("2026-04-05"), scan("2026-07-05", therapy="2026-07-20"), scan("2026-10-05", "liver"))
    found = derived(*scans)
    assert (found.event, found.end, found.description) == (
        False,
        D("2026-07-05"),
        "Last adequate imaging before new anticancer therapy",
    )
    switched_off = derived(*scans, endpoint=endpoint_settings(PROTOCOL, new_anticancer_therapy=None).rfs)
    assert (switched_off.event, switched_off.end) == (True, D("2026-10-05"))


def test_a_recurrence_on_the_day_therapy_starts_is_an_event():
    same_day = derived(scan("2026-04-05"), scan("2026-07-05", "liver", therapy="2026-07-05"))
    assert (same_day.event, same_day.end) == (True, D("2026-07-05"))
    day_before = derived(scan("2026-04-05"), scan("2026-07-05", "liver", therapy="2026-07-04"))
    assert (day_before.event, day_before.end) == (False, D("2026-04-05"))


def test_a_scan_on_the_day_therapy_starts_counts_as_before_it():
    on_the_day = derived(scan("2026-04-05"), scan("2026-07-05", therapy="2026-07-05"), scan("2026-10-05"))
    assert on_the_day.end == D("2026-07-05")
    day_after = derived(scan("2026-04-05"), scan("2026-07-05", therapy="2026-07-04"), scan("2026-10-05"))
    assert day_after.end == D("2026-04-05")


def test_therapy_without_any_event_still_censors_before_it():
    found = derived(scan("2026-04-05", therapy="2026-05-01"), scan("2026-07-05"), scan("2026-10-05"))
    assert (found.end, found.rule) == (D("2026-04-05"), "new_anticancer_therapy")


def test_a_death_after_therapy_is_censored_before_the_therapy():
    found = derived(scan("2026-04-05", therapy="2026-05-01"), death="2026-06-01")
    assert (found.event, found.end) == (False, D("2026-04-05"))


def test_therapy_with_no_imaging_before_it_censors_on_day_1():
    found = derived(scan("2026-07-05", "liver", therapy="2026-03-01"))
    assert (found.end, found.description) == (
        FIRST,
        "No post-baseline imaging before new anticancer therapy: day 1",
    )


# --- missed scans --------------------------------------------------------------------------------------


def test_an_event_after_two_missed_scans_is_censored_at_the_last_imaging_before_the_gap():
    found = derived(scan("2026-04-05"), scan(M12, "liver"))
    assert (found.event, found.end, found.description) == (
        False,
        D("2026-04-05"),
        "Last adequate imaging before 2 missed scans",
    )
    assert found.missed == ("IMG-M06", "IMG-M09")
    assert found.rule == "event_after_missed_scans"


def test_an_event_after_one_missed_scan_is_an_event():
    found = derived(scan("2026-04-05"), scan("2026-07-05"), scan(M12, "liver"))
    assert (found.event, found.end, found.missed) == (True, D(M12), ())


def test_the_missed_scan_rule_can_be_switched_off_or_need_more_scans():
    scans = (scan("2026-04-05"), scan(M12, "liver"))
    assert derived(*scans, endpoint=endpoint_settings(PROTOCOL, event_after_missed_scans=None).rfs).event
    assert derived(*scans, endpoint=endpoint_settings(PROTOCOL, event_after_missed_scans=3).rfs).event
    assert not derived(*scans, endpoint=endpoint_settings(PROTOCOL, event_after_missed_scans=1).rfs).event


def test_a_window_is_missed_only_once_its_last_day_has_passed_without_imaging():
    # M06 missed; the recurrence is found on M09's last window day (kept) or the day after (missed).
    on_the_last_day = derived(scan("2026-04-05"), scan(M09[1], "liver"))
    assert (on_the_last_day.event, on_the_last_day.end) == (True, D(M09[1]))
    the_day_after = derived(scan("2026-04-05"), scan("2026-10-20", "liver"))
    assert (the_day_after.event, the_day_after.missed) == (False, ("IMG-M06", "IMG-M09"))


def test_a_window_that_opens_on_the_day_of_the_last_imaging_is_not_in_the_gap():
    # The gap counts windows opening after the last imaging: M06 opens on 2026-06-21.
    opens_that_day = derived(scan(M06[0]), scan("2026-12-01", "liver"))
    assert opens_that_day.event  # only M09 lies wholly between
    opens_the_day_after = derived(scan("2026-06-20"), scan("2026-12-01", "liver"))
    assert not opens_the_day_after.event


def test_any_adequate_imaging_ends_a_gap_even_outside_a_window():
    # M06's scan is a day late (its visit was missed), yet the event was observed one interval on.
    found = derived(scan("2026-04-05"), scan("2026-07-20"), scan(M12, "liver"))
    assert (found.event, found.end) == (True, D(M12))


def test_a_death_without_imaging_is_an_event_unless_two_windows_closed_before_it():
    early = derived(death="2026-05-01")  # only M03's window has closed
    assert (early.event, early.description) == (True, "Death")
    late = derived(death="2026-08-01")  # M03 and M06 have
    assert (late.event, late.end, late.description) == (
        False,
        FIRST,
        "No post-baseline imaging before the missed scans: day 1",
    )


# --- no imaging, no first dose, baseline ------------------------------------------------------------------


def test_no_post_baseline_imaging_is_censored_on_day_1_with_aval_above_zero():
    found = derived()
    assert (found.event, found.end, found.days, found.description) == (
        False,
        FIRST,
        1,
        "No post-baseline imaging: day 1",
    )
    assert found.months == pytest.approx(1 / 30.4375) and found.months > 0
    assert found.source == Source(FIRST, "dosing_period", 1)


def test_no_post_baseline_imaging_can_exclude_the_participant_instead():
    excluding = endpoint_settings(PROTOCOL, no_post_baseline_imaging="exclude").rfs
    found = derive(course(), excluding, CUTOFF)
    assert isinstance(found, Exclusion) and "no post-baseline imaging" in found.reason
    assert isinstance(derive(course(scan("2026-04-05")), excluding, CUTOFF), Outcome)


def test_imaging_on_or_before_the_first_dose_is_the_baseline():
    found = derived(scan("2025-12-20", "liver"), scan(FIRST.isoformat(), "liver"))
    assert (found.event, found.end) == (False, FIRST)


def test_no_first_dose_is_not_in_the_analysis_and_says_why():
    found = derive(course(scan("2026-04-05"), first=None), RFS, CUTOFF)
    assert isinstance(found, Exclusion) and "no first dose" in found.reason
    after_cutoff = derive(course(), RFS, FIRST - dt.timedelta(days=1))
    assert isinstance(after_cutoff, Exclusion)


def test_censoring_at_the_last_date_known_alive_is_a_setting():
    by_contact = endpoint_settings(PROTOCOL, no_event="last_known_alive").rfs
    found = derived(scan("2026-04-05"), alive="2026-09-01", endpoint=by_contact)
    assert (found.end, found.description) == (D("2026-09-01"), "Last known alive")
    with pytest.raises(InputError) as error:
        derive(course(alive="2027-07-01"), by_contact, CUTOFF)
    assert error.value.field == "last_alive"


# --- the cut-off ------------------------------------------------------------------------------------------


def test_a_scan_exactly_at_the_cutoff_counts_and_one_the_day_after_does_not():
    scans = (scan("2026-04-05"), scan("2026-07-05"))
    assert derived(*scans, cutoff=D("2026-07-05")).end == D("2026-07-05")
    assert derived(*scans, cutoff=D("2026-07-04")).end == D("2026-04-05")


def test_events_after_the_cutoff_are_ignored():
    scans = (scan("2026-04-05"), scan("2026-07-05"), scan("2026-10-05", "liver"))
    assert derived(*scans, cutoff=D("2026-10-05")).event
    before = derived(*scans, cutoff=D("2026-10-04"))
    assert (before.event, before.end) == (False, D("2026-07-05"))
    death = derived(*scans[:2], death="2026-08-01", alive="2026-07-05", cutoff=D("2026-07-31"), endpoint=OS)
    assert (death.event, death.end) == (False, D("2026-07-05"))


def test_therapy_after_the_cutoff_is_ignored():
    scans = (scan("2026-04-05"), scan("2026-07-05", therapy="2026-07-10"), scan("2026-10-05", "liver"))
    assert not derived(*scans).event
    # At a cut-off before the therapy, the later scans are not there either: nothing to censor.
    assert derived(*scans, cutoff=D("2026-07-09")).description == "Last adequate imaging without recurrence"


def test_an_outcome_explains_itself():
    found = derived(scan("2026-04-05"), scan(M12, "liver"))
    text = found.explain()
    assert "event_after_missed_scans" in text and "IMG-M06" in text
    assert found.to_dict()["missed"] == ["IMG-M06", "IMG-M09"]


# --- the table from plain facts ---------------------------------------------------------------------------


def test_a_table_has_adtte_columns_and_reports_the_excluded():
    courses = [
        ("NET-001", course(scan("2026-04-05"), scan("2026-07-05", "liver"))),
        ("NET-002", course(first=None)),
        ("NET-003", course(scan("2026-04-05"))),
    ]
    frame = time_to_event_frame(courses, RFS, CUTOFF, study_id="NCT07279532")
    assert tuple(frame.columns) == COLUMNS
    assert list(frame["USUBJID"]) == ["NCT07279532-NET-001", "NCT07279532-NET-003"]
    assert list(frame["CNSR"]) == [0, 1] and list(frame["EVENT"]) == [1, 0]
    assert list(frame["EVNTDESC"]) == ["Recurrence: liver", None]
    assert list(frame["CNSDTDSC"]) == [None, "Last adequate imaging without recurrence"]
    assert (frame["AVAL"] == frame["ADY"] / DAYS_PER_MONTH).all()
    assert set(frame["AVALU"]) == {"MONTHS"} and set(frame["PARAMCD"]) == {"RFS"}
    assert frame["PARAM"].iloc[0] == "Recurrence-free survival (months)"
    assert frame.attrs["cutoff"] == CUTOFF.isoformat()
    assert frame.attrs["settings"]["censoring"] == RFS.censoring.model_dump(mode="json")
    assert frame.attrs["excluded"] == [
        {
            "USUBJID": "NCT07279532-NET-002",
            "SUBJID": "NET-002",
            "PARAMCD": "RFS",
            "REASON": "no first dose on or before the cut-off: the origin (first dose) is unknown",
        }
    ]


def test_an_empty_table_keeps_its_columns_and_types():
    frame = time_to_event_frame([], RFS, CUTOFF, study_id="NCT07279532")
    assert tuple(frame.columns) == COLUMNS and len(frame) == 0
    assert str(frame["AVAL"].dtype) == "float64" and str(frame["EVENT"].dtype) == "int64"


def test_scheduled_scans_are_the_imaging_visits_only():
    found = scheduled_scans(PROTOCOL, FIRST)
    assert all(isinstance(s, ScheduledScan) and s.id.startswith("IMG-") for s in found)
    assert [s.earliest for s in found] == sorted(s.earliest for s in found)


# --- the store --------------------------------------------------------------------------------------------

TODAY = dt.datetime.now(dt.UTC).date()


def _study(db, participants: int = 1) -> tuple[int, list[int]]:
    users = factories.seed(db)
    user = users["investigator"]
    return user, [factories.enrolled(db, user, name=f"Patient {i}") for i in range(participants)]


def _record(db, user: int, participant_id: int, *, dose_from: str | None, scans=(), death: str | None = None):
    """Dosing from ``dose_from`` (ongoing), imaging, and a death; the ids of the rows made."""
    made: dict[str, list[int]] = {"dosing": [], "scans": [], "death": []}
    with db.session() as session:
        audit.acting_as(session, user, "investigator")
        participant = session.get(Participant, participant_id)
        if dose_from:
            period = treatment.add_period(
                session, participant=participant, protocol=PROTOCOL, dose_level=0, start_date=D(dose_from)
            )
            made["dosing"].append(period.id)
        for day, sites, therapy in scans:
            found = create_tumour_assessment(
                session,
                participant=participant,
                assessed_on=D(day),
                method="CT",
                result="recurrence" if sites else "no_evidence_of_disease",
                recurrence_sites=sites,
                new_anticancer_therapy_on=D(therapy) if therapy else None,
            )
            made["scans"].append(found.id)
        if death:
            ended = create_disposition(
                session,
                participant=participant,
                phase="study",
                status="death",
                status_date=D(death),
                reason="death",
                cause_of_death="unknown",
            )
            made["death"].append(ended.id)
    return made


def test_the_store_layer_reads_each_rule_from_the_recorded_rows(db):
    user, (recurred, died, _undosed) = _study(db, 3)
    first = _record(
        db,
        user,
        recurred,
        dose_from="2026-03-02",
        scans=[("2026-06-02", [], None), ("2026-09-02", ["liver"], "2026-09-20")],
    )
    # Enrolled today (the store refuses a death dated before enrolment): imaging keeps the gap short.
    second = _record(
        db, user, died, dose_from="2026-03-02", scans=[("2026-09-10", [], None)], death=TODAY.isoformat()
    )
    with db.session(write=False) as session:
        tables = time_to_event_tables(session, PROTOCOL, TODAY)
        dmfs = time_to_event(session, PROTOCOL, TODAY, parameter="DMFS")
    assert dmfs.equals(tables["DMFS"])
    rfs, os_ = tables["RFS"], tables["OS"]
    assert list(rfs["SUBJID"]) == ["NET-001", "NET-002"]
    row = rfs.iloc[0]
    assert (row["ADT"], row["EVENT"], row["EVNTDESC"]) == (D("2026-09-02"), 1, "Recurrence: liver")
    assert (row["STARTDT"], row["SRCDOM"], row["SRCSEQ"]) == (
        D("2026-03-02"),
        "tumour_assessment",
        first["scans"][1],
    )
    row = rfs.iloc[1]
    assert (row["ADT"], row["EVNTDESC"], row["SRCDOM"], row["SRCSEQ"]) == (
        TODAY,
        "Death",
        "disposition",
        second["death"][0],
    )
    assert os_.set_index("SUBJID").loc["NET-001", "CNSDTDSC"] == "Last known alive"
    assert [e["SUBJID"] for e in rfs.attrs["excluded"]] == ["NET-003"]


def test_the_store_is_read_with_one_query_per_table_whatever_the_number_of_participants(db):
    user, ids = _study(db, 2)
    for participant_id in ids:
        _record(db, user, participant_id, dose_from="2026-03-02", scans=[("2026-06-02", [], None)])

    def statements() -> int:
        seen: list[str] = []

        def listener(_connection, _cursor, statement, *_rest) -> None:
            seen.append(statement)

        event.listen(db.reader.kw["bind"], "before_cursor_execute", listener)
        try:
            with db.session(write=False) as session:
                time_to_event_tables(session, PROTOCOL, TODAY)
        finally:
            event.remove(db.reader.kw["bind"], "before_cursor_execute", listener)
        return len(seen)

    two = statements()
    for i in range(3):
        more = factories.enrolled(db, user, name=f"More {i}")
        _record(
            db,
            user,
            more,
            dose_from="2026-04-01",
            scans=[("2026-07-01", [], None), ("2026-10-01", ["nodal"], None)],
        )
    assert statements() == two


def test_an_unknown_parameter_is_refused(db):
    with db.session(write=False) as session, pytest.raises(InputError) as error:
        time_to_event(session, PROTOCOL, TODAY, parameter="PFS")
    assert error.value.field == "parameter"


# --- the demo study ----------------------------------------------------------------------------------------


def _expected_events(session) -> tuple[int, int]:
    """Recurrences after the first dose, and deaths of participants without one, straight from the rows."""
    # Latest start first, so that each participant keeps the earliest: the first dose.
    first = dict(
        session.execute(
            select(DosingPeriod.participant_id, DosingPeriod.start_date).order_by(
                DosingPeriod.start_date.desc()
            )
        ).all()
    )
    recurred = {
        a.participant_id
        for a in session.scalars(select(TumourAssessment).where(TumourAssessment.result == "recurrence"))
        if first[a.participant_id] < a.assessed_on <= DEMO_CUTOFF
    }
    died = {
        d.participant_id
        for d in session.scalars(select(Disposition).where(Disposition.status == "death"))
        if d.status_date <= DEMO_CUTOFF
    }
    return len(recurred), len(died - recurred)


def test_the_demo_study_rfs_table(demo_db):
    with demo_db.session(write=False) as session:
        tables = time_to_event_tables(session, PROTOCOL, DEMO_CUTOFF)
        again = time_to_event_tables(session, PROTOCOL, DEMO_CUTOFF)
        recurrences, other_deaths = _expected_events(session)
    rfs = tables["RFS"]
    assert len(rfs) == 35 and rfs.attrs["excluded"] == []
    assert (recurrences, other_deaths) == (7, 0)  # the demo's published counts (tests/analysis/conftest.py)
    assert rfs["EVENT"].sum() == recurrences + other_deaths
    assert (rfs["AVAL"] > 0).all()
    assert set(rfs["CNSR"]) <= {0, 1} and (rfs["CNSR"] + rfs["EVENT"] == 1).all()
    assert list(rfs["SUBJID"]) == sorted(rfs["SUBJID"])
    assert (rfs["ADT"] <= DEMO_CUTOFF).all() and (rfs["ADT"] >= rfs["STARTDT"]).all()
    for parameter, table in tables.items():
        assert table.equals(again[parameter]), parameter
    assert tables["OS"]["EVENT"].sum() == 1
    assert tables["DMFS"]["EVENT"].sum() <= rfs["EVENT"].sum()
