"""The ADAE table: treatment-emergent window at its boundaries, relatedness, cut-off, worst grade."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
from sqlalchemy import func, select

from nettrial.analysis.adverse_events import (
    ADAE_COLUMNS,
    adverse_event_table,
    study_day,
    treatment_emergent,
    treatment_emergent_days,
    worst_grade,
)
from nettrial.exceptions import InputError, RuleDataError
from nettrial.store import treatment
from nettrial.store.adverse_events import RELATEDNESS, create_adverse_event
from nettrial.store.models import AdverseEvent, Participant
from tests import factories
from tests.analysis.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL, writing

D = dt.date.fromisoformat
DAY = dt.timedelta(days=1)
FIRST, LAST = D("2026-03-02"), D("2026-06-09")  # first and last dose of the hand-built participant
TODAY = dt.datetime.now(dt.UTC).date()


# --- the rule, as a pure function ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("onset", "expected"),
    [
        (FIRST - DAY, False),  # the day before the first dose
        (FIRST, True),  # the first dose's own day
        (LAST, True),
        (LAST + 30 * DAY, True),  # the last day of the 30-day window
        (LAST + 31 * DAY, False),  # the day after it
    ],
)
def test_treatment_emergent_from_the_first_dose_to_30_days_after_the_last(onset, expected):
    assert treatment_emergent(onset, FIRST, LAST, 30) is expected


def test_on_treatment_every_event_from_the_first_dose_is_treatment_emergent():
    assert treatment_emergent(FIRST + 400 * DAY, FIRST, None, 30) is True
    assert treatment_emergent(FIRST - DAY, FIRST, None, 30) is False


def test_without_a_first_dose_nothing_is_treatment_emergent():
    assert treatment_emergent(FIRST, None, None, 30) is False


def test_the_window_is_the_protocols_safety_setting():
    assert treatment_emergent_days(PROTOCOL) == 30
    endpoints = dict(PROTOCOL.endpoints)
    endpoints["secondary"] = [
        e | {"treatment_emergent_until_days_after_last_dose": 28} if e["id"] == "SAFETY" else e
        for e in PROTOCOL.endpoints["secondary"]
    ]
    assert treatment_emergent_days(PROTOCOL.model_copy(update={"endpoints": endpoints})) == 28


@pytest.mark.parametrize("broken", [None, -1, "30", True])
def test_a_missing_or_malformed_window_names_the_setting(broken):
    secondary = [e for e in PROTOCOL.endpoints["secondary"] if e["id"] != "SAFETY"]
    if broken is not None:
        secondary.append({"id": "SAFETY", "treatment_emergent_until_days_after_last_dose": broken})
    protocol = PROTOCOL.model_copy(update={"endpoints": {**PROTOCOL.endpoints, "secondary": secondary}})
    with pytest.raises(RuleDataError, match="treatment_emergent_until_days_after_last_dose"):
        treatment_emergent_days(protocol)


def test_study_days_have_no_day_zero():
    assert [study_day(FIRST + n * DAY, FIRST) for n in (-2, -1, 0, 1)] == [-2, -1, 1, 2]
    assert study_day(FIRST, None) is None


# --- worst grade ------------------------------------------------------------------------------------


def _events(*rows: tuple[str, str, int, str]) -> pd.DataFrame:
    """(participant, term, grade, TRTEMFL) rows with the columns worst_grade reads."""
    soc = {"Diarrhea": "Gastrointestinal disorders", "Fatigue": "General disorders"}
    return pd.DataFrame(
        [
            {"USUBJID": f"S-{p}", "SUBJID": p, "AEBODSYS": soc[t], "AEDECOD": t, "AETOXGR": g, "TRTEMFL": te}
            for p, t, g, te in rows
        ]
    )


def test_two_grade_2_and_one_grade_3_of_a_term_give_one_row_at_grade_3():
    adae = _events(("A", "Diarrhea", 2, "Y"), ("A", "Diarrhea", 3, "Y"), ("A", "Diarrhea", 2, "Y"))
    worst = worst_grade(adae)
    assert worst[["SUBJID", "AEDECOD", "AETOXGR", "EVENTS"]].values.tolist() == [["A", "Diarrhea", 3, 3]]


def test_worst_grade_per_participant_overall_and_only_treatment_emergent_by_default():
    adae = _events(
        ("A", "Diarrhea", 2, "Y"),
        ("A", "Fatigue", 1, "Y"),
        ("A", "Fatigue", 4, "N"),  # before the first dose: not counted unless asked
        ("B", "Fatigue", 1, "Y"),
    )
    per_term = worst_grade(adae)
    assert per_term[["SUBJID", "AEDECOD", "AETOXGR"]].values.tolist() == [
        ["A", "Diarrhea", 2],
        ["A", "Fatigue", 1],
        ["B", "Fatigue", 1],
    ]
    overall = worst_grade(adae, per="participant")
    assert overall[["SUBJID", "AETOXGR", "EVENTS"]].values.tolist() == [["A", 2, 2], ["B", 1, 1]]
    everything = worst_grade(adae, per="participant", treatment_emergent_only=False)
    assert everything[["SUBJID", "AETOXGR", "EVENTS"]].values.tolist() == [["A", 4, 3], ["B", 1, 1]]


def test_worst_grade_refuses_an_unknown_level():
    with pytest.raises(InputError, match="per"):
        worst_grade(_events(("A", "Diarrhea", 2, "Y")), per="soc")


# --- the table from a hand-built study -------------------------------------------------------------


def _participant_with_events(db) -> dict[str, int]:
    """A participant dosed FIRST..LAST (discontinued), with events at the window's edges.

    Returns the event ids by name.
    """
    (participant_id,) = factories.enrolled_before_first_dose(db).values()
    onsets = {
        "before_first_dose": FIRST - DAY,
        "first_dose": FIRST,
        "last_plus_30": LAST + 30 * DAY,
        "last_plus_31": LAST + 31 * DAY,
    }
    ids = {}
    with writing(db) as session:
        participant = session.get(Participant, participant_id)
        treatment.add_period(
            session,
            participant=participant,
            protocol=PROTOCOL,
            dose_level=0,
            start_date=FIRST,
            stop_date=LAST,
            stop_reason="discontinued",
            today=TODAY,
        )
        common = {"participant": participant, "protocol": PROTOCOL, "action_taken": "none"}
        for name, onset in onsets.items():
            event, _ = create_adverse_event(
                session,
                **common,
                term="Diarrhea",
                grade=2,
                onset_date=onset,
                serious=False,
                relatedness="possible",
                outcome="recovered",
                resolved_date=onset + 10 * DAY,
            )
            ids[name] = event.id
        for relatedness in RELATEDNESS:
            event, _ = create_adverse_event(
                session,
                **common,
                term="Fatigue",
                grade=1,
                onset_date=FIRST + 20 * DAY,
                serious=False,
                relatedness=relatedness,
                outcome="not_recovered",
            )
            ids[relatedness] = event.id
        event, _ = create_adverse_event(
            session,
            **common,
            term="Hypertension",
            grade=3,
            onset_date=FIRST + 40 * DAY,
            serious=True,
            serious_criteria=["hospitalisation", "important_medical_event"],
            relatedness="probable",
            outcome="recovered",
            resolved_date=FIRST + 50 * DAY,
        )
        ids["serious"] = event.id
    return ids


def _table(db, cutoff: dt.date, **settings) -> pd.DataFrame:
    with db.session(write=False) as session:
        return adverse_event_table(session, PROTOCOL, cutoff, **settings).set_index("AESPID")


def test_treatment_emergent_flags_at_the_boundaries_in_the_table(db):
    ids = _participant_with_events(db)
    adae = _table(db, TODAY)
    flags = {name: adae.loc[ids[name], "TRTEMFL"] for name in ("before_first_dose", "first_dose")}
    flags |= {name: adae.loc[ids[name], "TRTEMFL"] for name in ("last_plus_30", "last_plus_31")}
    assert flags == {"before_first_dose": "N", "first_dose": "Y", "last_plus_30": "Y", "last_plus_31": "N"}
    first = adae.loc[ids["first_dose"]]
    assert (first["TRTSDT"], first["TRTEDT"], first["ASTDY"]) == (FIRST, LAST, 1)
    assert adae.loc[ids["before_first_dose"], "ASTDY"] == -1
    assert adae.index.name == "AESPID"
    assert list(adae.columns) == [c for c in ADAE_COLUMNS if c != "AESPID"]
    assert adae.attrs["days_after_last_dose"] == 30


def test_the_window_is_a_setting_of_the_table(db):
    ids = _participant_with_events(db)
    longer, shorter = _table(db, TODAY, days_after_last_dose=31), _table(db, TODAY, days_after_last_dose=29)
    assert longer.loc[ids["last_plus_31"], "TRTEMFL"] == "Y"
    assert shorter.loc[ids["last_plus_30"], "TRTEMFL"] == "N"
    with pytest.raises(InputError, match="days_after_last_dose"):
        _table(db, TODAY, days_after_last_dose=-1)


def test_relatedness_possible_probable_definite_count_as_related(db):
    ids = _participant_with_events(db)
    adae = _table(db, TODAY)
    related = {r: adae.loc[ids[r], "RELFL"] for r in RELATEDNESS}
    assert related == {"not_related": "N", "unlikely": "N", "possible": "Y", "probable": "Y", "definite": "Y"}
    assert {r: adae.loc[ids[r], "AEREL"] for r in RELATEDNESS} == {r: r for r in RELATEDNESS}
    strict = _table(db, TODAY, related=("probable", "definite"))
    assert strict.loc[ids["possible"], "RELFL"] == "N"
    with pytest.raises(InputError, match="related"):
        _table(db, TODAY, related=("likely",))


def test_serious_events_carry_their_criteria(db):
    ids = _participant_with_events(db)
    adae = _table(db, TODAY)
    serious = adae.loc[ids["serious"]]
    assert (serious["AESER"], serious["AESCRIT"]) == ("Y", "hospitalisation;important_medical_event")
    assert (serious["AEDECOD"], serious["AEBODSYS"], serious["AETOXGR"]) == (
        "Hypertension",
        "Vascular disorders",
        3,
    )
    assert serious["AETOXVER"] == "5.0"
    assert adae.loc[ids["first_dose"], ["AESER", "AESCRIT"]].tolist() == ["N", ""]
    assert sorted(adae["AESEQ"]) == list(range(1, len(adae) + 1))


def test_the_cutoff_drops_later_onsets_and_later_ends_and_keeps_treatment_open(db):
    ids = _participant_with_events(db)
    cutoff = FIRST + 5 * DAY  # dosing went on until LAST: at this cut-off it had not ended
    adae = _table(db, cutoff)
    assert sorted(adae.index) == sorted([ids["before_first_dose"], ids["first_dose"]])
    first = adae.loc[ids["first_dose"]]
    assert first["AENDT"] is None  # resolved on FIRST + 10, after the cut-off
    assert first["TRTEDT"] is None and first["TRTEMFL"] == "Y"
    at_last_plus_30 = _table(db, LAST + 30 * DAY)
    assert ids["last_plus_31"] not in at_last_plus_30.index
    assert at_last_plus_30.loc[ids["last_plus_30"], "TRTEMFL"] == "Y"


# --- the demo study ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_adae(demo_db):
    with demo_db.session(write=False) as session:
        return adverse_event_table(session, PROTOCOL, DEMO_CUTOFF)


def test_the_demo_has_every_event_once_with_its_seriousness(demo_db, demo_adae):
    with demo_db.session(write=False) as session:
        stored = session.scalar(
            select(func.count(AdverseEvent.id)).where(AdverseEvent.onset_date <= DEMO_CUTOFF)
        )
        serious = session.scalar(select(func.count(AdverseEvent.id)).where(AdverseEvent.serious.is_(True)))
    assert len(demo_adae) == stored == 145
    assert demo_adae["AESPID"].is_unique
    assert (demo_adae["AESER"] == "Y").sum() == serious == 4
    assert all(re.fullmatch(r"NCT07279532-NET-\d{3}", u) for u in demo_adae["USUBJID"])
    assert (demo_adae["USUBJID"] == "NCT07279532-" + demo_adae["SUBJID"]).all()
    assert set(demo_adae["AETOXVER"]) == {"5.0"}
    assert demo_adae["AETOXGR"].between(1, 5).all()


def test_demo_sequence_numbers_count_each_participants_events_in_onset_order(demo_adae):
    for _, events in demo_adae.groupby("USUBJID"):
        assert events["AESEQ"].tolist() == list(range(1, len(events) + 1))
        assert events["ASTDT"].is_monotonic_increasing


def test_demo_flags_agree_with_the_dates_they_come_from(demo_adae):
    flagged = demo_adae[demo_adae["TRTEMFL"] == "Y"]
    assert (flagged["ASTDT"] >= flagged["TRTSDT"]).all()
    ended = flagged[flagged["TRTEDT"].notna()]
    assert (ended["ASTDT"] <= ended["TRTEDT"] + 30 * DAY).all()
    others = demo_adae[demo_adae["TRTEMFL"] == "N"]
    assert all(
        row.TRTSDT is None or row.ASTDT < row.TRTSDT or row.ASTDT > row.TRTEDT + 30 * DAY
        for row in others.itertuples()
    )


def test_the_demo_table_is_the_same_when_derived_again(demo_db, demo_adae):
    with demo_db.session(write=False) as session:
        again = adverse_event_table(session, PROTOCOL, DEMO_CUTOFF)
    assert again.equals(demo_adae)
