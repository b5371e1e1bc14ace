"""Dose modification and dose intensity (protocol.md §2).

Every expected answer here was derived from protocol.md §2 and the protocol file's ladder, not from the
code under test. NCT07279532: surufatinib 200 mg once daily, 6 cycles of 28 days (168 days) from the
first dose. Ladder: level 0 = 200 mg QD continuous; level -1 = 200 mg QD 3 weeks on / 1 week off (cycle
days 1-21 of every 28, counted from the first dose); below that, permanent discontinuation.
Interrupt first; restart one level lower only if the event recovers to grade <= 1 within 28 days,
otherwise discontinue permanently.
  Discontinue: death (grade 5); haemorrhage grade >= 3; any GI perforation; nephrotic syndrome;
    hypertension grade 4; arterial thromboembolism (any grade); ALT or AST > 3 x ULN with total
    bilirubin > 2 x ULN.
  Interrupt, then one level lower: haemorrhage grade 2; creatinine > 2 and <= 3 x ULN; proteinuria
    >= 2 g/24 h or UPCR >= 2 (until < 1 g/24 h); hypertension grade 3; any other grade 3 or 4 event.
A relevant value that is not known is never assumed away: the recommendation is flagged for review.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from nettrial.exceptions import InputError
from nettrial.protocol import load_protocol
from nettrial.safety.dosing import DosingPeriod, Interruption, dose_intensity, recommend

P = load_protocol("nct07279532")
FIRST_DOSE = date(2026, 3, 2)  # day 1; day 168 = 2026-08-16; C2D1 03-30, C3D1 04-27, C6D1 07-20

HAEMORRHAGE = [
    "Gastric hemorrhage",
    "Upper gastrointestinal hemorrhage",
    "Lower gastrointestinal hemorrhage",
    "Epistaxis",
    "Hematuria",
]
GI_PERFORATION = ["Gastric perforation", "Small intestinal perforation", "Colonic perforation"]
LEVEL_0 = "200 mg once daily, continuous"
LEVEL_MINUS_1 = "200 mg once daily, 3 weeks on / 1 week off"
G24 = "urine_protein_g_24h"
Rows = list[tuple[str, str, int, int]]  # dosing periods: start, end, level, missed doses


def d(text: str) -> date:
    return date.fromisoformat(text)


def test_the_ladder_and_term_groups_are_the_ones_these_tests_assume() -> None:
    assert [(lv.level, lv.dose_mg, lv.days_on, lv.days_off) for lv in P.dose_levels.levels] == [
        (0, 200, 28, 0),
        (-1, 200, 21, 7),
    ]
    assert P.dose_modification.term_groups["haemorrhage"] == HAEMORRHAGE
    assert P.dose_modification.term_groups["gi_perforation"] == GI_PERFORATION
    assert (P.dose_modification.recovery_to_grade_at_most, P.dose_modification.recovery_window_days) == (
        1,
        28,
    )
    assert (P.treatment.dose_mg, P.treatment.cycle_days, P.treatment.cycles) == (200, 28, 6)


# --- which rule fires, at level 0 -----------------------------------------------------------------

# term, grade, measures, action, rule
RULES_FIRING = [
    # permanent discontinuation
    ("Diarrhea", 5, {}, "discontinue", "fatal-event"),
    ("Hypertension", 5, {}, "discontinue", "fatal-event"),
    ("Gastric hemorrhage", 5, {}, "discontinue", "fatal-event"),
    *[(term, 3, {}, "discontinue", "haemorrhage-grade-3-plus") for term in HAEMORRHAGE],
    *[(term, 4, {}, "discontinue", "haemorrhage-grade-3-plus") for term in HAEMORRHAGE],
    *[(term, 2, {}, "discontinue", "gi-perforation") for term in GI_PERFORATION],
    *[(term, 3, {}, "discontinue", "gi-perforation") for term in GI_PERFORATION],
    ("Colonic perforation", 4, {}, "discontinue", "gi-perforation"),
    ("Nephrotic syndrome", 3, {}, "discontinue", "nephrotic-syndrome"),
    ("Nephrotic syndrome", 4, {}, "discontinue", "nephrotic-syndrome"),
    ("Hypertension", 4, {}, "discontinue", "hypertensive-crisis"),
    ("Arterial thromboembolism", 3, {}, "discontinue", "arterial-thromboembolism"),
    ("Arterial thromboembolism", 4, {}, "discontinue", "arterial-thromboembolism"),
    (
        "Alanine aminotransferase increased",
        2,
        {"alt_or_ast_x_uln": 3.01, "bilirubin_x_uln": 2.01},
        "discontinue",
        "liver-injury",
    ),
    (
        "Aspartate aminotransferase increased",
        2,
        {"alt_or_ast_x_uln": 4.0, "bilirubin_x_uln": 2.5},
        "discontinue",
        "liver-injury",
    ),
    ("ALT increased", 3, {"alt_or_ast_x_uln": 6.0, "bilirubin_x_uln": 3.0}, "discontinue", "liver-injury"),
    (
        "Blood bilirubin increased",
        3,
        {"alt_or_ast_x_uln": 3.5, "bilirubin_x_uln": 3.5},
        "discontinue",
        "liver-injury",
    ),
    # interrupt, then one level lower
    *[(term, 2, {}, "interrupt", "haemorrhage-grade-2") for term in HAEMORRHAGE],
    ("Creatinine increased", 2, {"x_uln": 2.01}, "interrupt", "creatinine-2-to-3-uln"),
    ("Creatinine increased", 2, {"x_uln": 2.5}, "interrupt", "creatinine-2-to-3-uln"),
    ("Creatinine increased", 2, {"x_uln": 3.0}, "interrupt", "creatinine-2-to-3-uln"),
    ("Proteinuria", 2, {"urine_protein_g_24h": 2.0}, "interrupt", "proteinuria-2g"),
    ("Proteinuria", 3, {"urine_protein_g_24h": 3.6}, "interrupt", "proteinuria-2g"),
    ("Hypertension", 3, {}, "interrupt", "hypertension-grade-3"),
    ("Diarrhea", 3, {}, "interrupt", "other-grade-3-4"),
    ("Diarrhea", 4, {}, "interrupt", "other-grade-3-4"),
    ("Neutrophil count decreased", 3, {}, "interrupt", "other-grade-3-4"),
    ("Neutrophil count decreased", 4, {}, "interrupt", "other-grade-3-4"),
    ("Creatinine increased", 3, {"x_uln": 4.0}, "interrupt", "other-grade-3-4"),
    (
        "Alanine aminotransferase increased",
        3,
        {"alt_or_ast_x_uln": 6.0, "bilirubin_x_uln": 1.0},
        "interrupt",
        "other-grade-3-4",
    ),
]


@pytest.mark.parametrize(("term", "grade", "measures", "action", "rule"), RULES_FIRING)
def test_each_rule_fires_for_an_event_that_meets_it(
    term: str, grade: int, measures: dict[str, float], action: str, rule: str
) -> None:
    got = recommend(P, level=0, term=term, grade=grade, measures=measures)
    assert (got.action, got.rule) == (action, rule)
    assert got.dose_level is None
    assert got.dose == ("permanently discontinued" if action == "discontinue" else "interrupted")


def test_every_rule_of_the_protocol_file_is_exercised() -> None:
    assert {rule for *_, rule in RULES_FIRING} == {r.id for r in P.dose_modification.rules}


def test_each_rule_keeps_its_action_and_source_from_the_protocol_file() -> None:
    expected = {
        "fatal-event": "discontinue",
        "haemorrhage-grade-3-plus": "discontinue",
        "gi-perforation": "discontinue",
        "nephrotic-syndrome": "discontinue",
        "hypertensive-crisis": "discontinue",
        "arterial-thromboembolism": "discontinue",
        "liver-injury": "discontinue",
        "haemorrhage-grade-2": "interrupt_then_reduce",
        "creatinine-2-to-3-uln": "interrupt_then_reduce",
        "proteinuria-2g": "interrupt_then_reduce",
        "hypertension-grade-3": "interrupt_then_reduce",
        "other-grade-3-4": "interrupt_then_reduce",
    }
    assert {r.id: r.action for r in P.dose_modification.rules} == expected
    got = recommend(P, level=0, term="Gastric perforation", grade=3)
    assert got.source == "label table 1"


# term, grade, measures: no rule holds, nothing is unknown -> continue at the current level.
NO_RULE = [
    ("Diarrhea", 1, {}),
    ("Diarrhea", 2, {}),
    ("Hypertension", 1, {}),
    ("Hypertension", 2, {}),
    *[(term, 1, {}) for term in HAEMORRHAGE],
    ("Creatinine increased", 1, {"x_uln": 1.4}),
    ("Creatinine increased", 2, {"x_uln": 2.0}),  # "> 2": 2.0 is not above
    ("Proteinuria", 2, {"urine_protein_g_24h": 1.99}),
    ("Alanine aminotransferase increased", 2, {"alt_or_ast_x_uln": 3.0, "bilirubin_x_uln": 5.0}),
    ("Alanine aminotransferase increased", 2, {"alt_or_ast_x_uln": 4.0, "bilirubin_x_uln": 2.0}),
    # one measure that already rules the liver rule out settles it, the other may stay unknown
    ("Alanine aminotransferase increased", 1, {"alt_or_ast_x_uln": 2.0}),
    ("Neutrophil count decreased", 2, {}),
]


@pytest.mark.parametrize(("term", "grade", "measures"), NO_RULE)
@pytest.mark.parametrize(("level", "dose"), [(0, LEVEL_0), (-1, LEVEL_MINUS_1)])
def test_an_event_no_rule_covers_continues_at_the_current_level(
    term: str, grade: int, measures: dict[str, float], level: int, dose: str
) -> None:
    got = recommend(P, level=level, term=term, grade=grade, measures=measures)
    assert (got.action, got.dose_level, got.dose, got.rule) == ("continue", level, dose, "none")
    assert (got.needs_review, got.unresolved) == (False, ())


# --- precedence -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "grade", "action", "rule"),
    [
        # a grade 3 haemorrhage is a permanent stop, not the generic grade 3 interruption
        ("Gastric hemorrhage", 3, "discontinue", "haemorrhage-grade-3-plus"),
        ("Epistaxis", 4, "discontinue", "haemorrhage-grade-3-plus"),
        ("Gastric hemorrhage", 2, "interrupt", "haemorrhage-grade-2"),
        ("Gastric hemorrhage", 1, "continue", "none"),
        # hypertension: crisis stops, grade 3 interrupts, grade 2 goes on
        ("Hypertension", 4, "discontinue", "hypertensive-crisis"),
        ("Hypertension", 3, "interrupt", "hypertension-grade-3"),
        ("Hypertension", 2, "continue", "none"),
        # a GI perforation stops at a grade that would otherwise interrupt
        ("Small intestinal perforation", 3, "discontinue", "gi-perforation"),
        ("Nephrotic syndrome", 3, "discontinue", "nephrotic-syndrome"),
        ("Arterial thromboembolism", 3, "discontinue", "arterial-thromboembolism"),
    ],
)
def test_the_first_rule_that_holds_decides(term: str, grade: int, action: str, rule: str) -> None:
    got = recommend(P, level=0, term=term, grade=grade)
    assert (got.action, got.rule) == (action, rule)


def test_a_liver_injury_pattern_stops_even_at_a_grade_that_would_only_interrupt() -> None:
    measures = {"alt_or_ast_x_uln": 8.0, "bilirubin_x_uln": 2.5}
    got = recommend(P, level=0, term="Aspartate aminotransferase increased", grade=3, measures=measures)
    assert (got.action, got.rule) == ("discontinue", "liver-injury")


# --- interrupting at the bottom of the ladder -------------------------------------------------------

INTERRUPTING_EVENTS = [
    ("Diarrhea", 3, {}, "other-grade-3-4"),
    ("Neutrophil count decreased", 4, {}, "other-grade-3-4"),
    ("Upper gastrointestinal hemorrhage", 2, {}, "haemorrhage-grade-2"),
    ("Hypertension", 3, {}, "hypertension-grade-3"),
    ("Creatinine increased", 2, {"x_uln": 2.5}, "creatinine-2-to-3-uln"),
    ("Proteinuria", 2, {"urine_protein_g_24h": 2.5}, "proteinuria-2g"),
]


@pytest.mark.parametrize(("term", "grade", "measures", "rule"), INTERRUPTING_EVENTS)
def test_an_interruption_at_level_0_names_the_next_level_down(
    term: str, grade: int, measures: dict[str, float], rule: str
) -> None:
    got = recommend(P, level=0, term=term, grade=grade, measures=measures)
    assert (got.action, got.dose_level, got.rule) == ("interrupt", None, rule)
    assert "level -1" in got.reason
    assert "28 days" in got.reason


@pytest.mark.parametrize(("term", "grade", "measures", "rule"), INTERRUPTING_EVENTS)
def test_the_same_event_at_the_lowest_level_discontinues(
    term: str, grade: int, measures: dict[str, float], rule: str
) -> None:
    got = recommend(P, level=-1, term=term, grade=grade, measures=measures)
    assert (got.action, got.dose_level, got.dose) == ("discontinue", None, "permanently discontinued")
    assert got.rule.startswith(rule)
    assert "lowest" in got.reason


@pytest.mark.parametrize(
    ("term", "grade", "rule"),
    [
        ("Gastric hemorrhage", 3, "haemorrhage-grade-3-plus"),
        ("Hypertension", 4, "hypertensive-crisis"),
        ("Diarrhea", 5, "fatal-event"),
    ],
)
def test_a_permanent_stop_at_the_lowest_level_is_the_same_stop(term: str, grade: int, rule: str) -> None:
    got = recommend(P, level=-1, term=term, grade=grade)
    assert (got.action, got.rule) == ("discontinue", rule)


# --- an interruption under way ----------------------------------------------------------------------

# level, term, grade, measures, days since the interruption began, grade now, measures now,
# action, dose level
UNDER_WAY = [
    # recovered to grade <= 1 within 28 days: resume one level lower
    (0, "Diarrhea", 3, {}, 0, 1, {}, "resume", -1),
    (0, "Diarrhea", 3, {}, 14, 0, {}, "resume", -1),
    (0, "Diarrhea", 3, {}, 28, 1, {}, "resume", -1),
    # recovered too late
    (0, "Diarrhea", 3, {}, 29, 1, {}, "discontinue", None),
    (0, "Diarrhea", 3, {}, 29, 0, {}, "discontinue", None),
    # not recovered: keep interrupting while the window is open, then stop
    (0, "Diarrhea", 3, {}, 27, 2, {}, "interrupt", None),
    (0, "Diarrhea", 3, {}, 28, 2, {}, "interrupt", None),
    (0, "Diarrhea", 3, {}, 29, 2, {}, "discontinue", None),
    (0, "Diarrhea", 3, {}, 40, 3, {}, "discontinue", None),
    (0, "Neutrophil count decreased", 4, {}, 7, 3, {}, "interrupt", None),
    (0, "Neutrophil count decreased", 4, {}, 10, 1, {}, "resume", -1),
    (0, "Gastric hemorrhage", 2, {}, 5, 0, {}, "resume", -1),
    (0, "Gastric hemorrhage", 2, {}, 5, 2, {}, "interrupt", None),
    (0, "Hypertension", 3, {}, 14, 1, {}, "resume", -1),
    (0, "Hypertension", 3, {}, 14, 2, {}, "interrupt", None),
    (0, "Creatinine increased", 2, {"x_uln": 2.5}, 10, 1, {}, "resume", -1),
    # recovered at the lowest level: a reduction below it is discontinuation
    (-1, "Diarrhea", 3, {}, 10, 1, {}, "discontinue", None),
    (-1, "Hypertension", 3, {}, 10, 0, {}, "discontinue", None),
    # proteinuria >= 2 g/24 h resumes on the measure (< 1 g/24 h), within the same 28 days
    (0, "Proteinuria", 2, {G24: 2.5}, 14, 1, {G24: 0.99}, "resume", -1),
    (0, "Proteinuria", 2, {G24: 2.5}, 14, 1, {G24: 1.0}, "interrupt", None),
    (0, "Proteinuria", 3, {G24: 4.0}, 28, 0, {G24: 0.2}, "resume", -1),
    (0, "Proteinuria", 2, {G24: 2.5}, 29, 1, {G24: 0.5}, "discontinue", None),
    (0, "Proteinuria", 2, {G24: 2.5}, 29, 2, {G24: 1.5}, "discontinue", None),
]


@pytest.mark.parametrize(
    ("level", "term", "grade", "measures", "days", "grade_now", "measures_now", "action", "dose_level"),
    UNDER_WAY,
)
def test_an_interruption_under_way(
    level: int,
    term: str,
    grade: int,
    measures: dict[str, float],
    days: int,
    grade_now: int,
    measures_now: dict[str, float],
    action: str,
    dose_level: int | None,
) -> None:
    interruption = Interruption(days_since_start=days, current_grade=grade_now, current_measures=measures_now)
    got = recommend(P, level=level, term=term, grade=grade, measures=measures, interruption=interruption)
    assert (got.action, got.dose_level) == (action, dose_level)
    expected_dose = {
        "resume": LEVEL_MINUS_1,
        "interrupt": "interrupted",
        "discontinue": "permanently discontinued",
    }
    assert got.dose == expected_dose[action]


def test_a_resumption_says_why_and_which_rule_it_follows() -> None:
    got = recommend(P, level=0, term="Diarrhea", grade=3, interruption=Interruption(28, 1))
    assert (got.action, got.dose_level, got.rule) == ("resume", -1, "other-grade-3-4")
    assert "day 28" in got.reason


def test_not_recovering_in_time_names_the_rule_and_the_window() -> None:
    got = recommend(P, level=0, term="Diarrhea", grade=3, interruption=Interruption(29, 2))
    assert got.action == "discontinue"
    assert got.rule.startswith("other-grade-3-4")
    assert "28 days" in got.reason


def test_recovered_at_the_lowest_level_says_it_is_below_the_ladder() -> None:
    got = recommend(P, level=-1, term="Diarrhea", grade=3, interruption=Interruption(10, 1))
    assert got.action == "discontinue"
    assert got.rule.startswith("other-grade-3-4")
    assert "lowest" in got.reason


def test_proteinuria_without_the_current_measure_is_flagged_and_not_resumed() -> None:
    interruption = Interruption(days_since_start=14, current_grade=1)
    measures = {"urine_protein_g_24h": 2.5}
    got = recommend(P, level=0, term="Proteinuria", grade=2, measures=measures, interruption=interruption)
    assert got.action == "interrupt"
    assert got.needs_review is True
    assert got.unresolved
    assert any("urine_protein_g_24h" in u for u in got.unresolved)


def test_a_upcr_stands_for_the_24_hour_protein_when_there_is_no_collection() -> None:
    """protocol.md 2: ">= 2 g/24 h (or UPCR >= 2)"; the protocol file takes the UPCR (g/g) as the measure."""
    assert "protein/creatinine ratio" in P.dose_modification.measures["urine_protein_g_24h"]


# --- unknown but relevant data is flagged, never assumed away ---------------------------------------


@pytest.mark.parametrize(
    ("term", "grade", "measures", "action", "unresolved_rule"),
    [
        # a liver event without the measures that would make it a permanent stop
        ("Alanine aminotransferase increased", 2, {}, "continue", "liver-injury"),
        ("Aspartate aminotransferase increased", 2, {}, "continue", "liver-injury"),
        ("Blood bilirubin increased", 2, {}, "continue", "liver-injury"),
        ("Alanine aminotransferase increased", 2, {"alt_or_ast_x_uln": 4.0}, "continue", "liver-injury"),
        ("Alanine aminotransferase increased", 2, {"bilirubin_x_uln": 2.5}, "continue", "liver-injury"),
        # grade 3 interrupts anyway, but a permanent stop is still possible
        ("Alanine aminotransferase increased", 3, {}, "interrupt", "liver-injury"),
        ("Alanine aminotransferase increased", 3, {"alt_or_ast_x_uln": 6.0}, "interrupt", "liver-injury"),
        # creatinine grade 2 (> 1.5 - 3.0 x ULN) may or may not be above 2 x ULN
        ("Creatinine increased", 2, {}, "continue", "creatinine-2-to-3-uln"),
        # proteinuria grade 2 (1.0 - < 3.5 g/24 h) may or may not be >= 2 g/24 h
        ("Proteinuria", 2, {}, "continue", "proteinuria-2g"),
    ],
)
def test_a_rule_that_cannot_be_decided_flags_the_recommendation(
    term: str, grade: int, measures: dict[str, float], action: str, unresolved_rule: str
) -> None:
    got = recommend(P, level=0, term=term, grade=grade, measures=measures)
    assert got.action == action
    assert got.needs_review is True
    assert any(unresolved_rule in u for u in got.unresolved)


def test_a_missing_measure_is_the_same_as_an_unknown_one() -> None:
    got = recommend(P, level=0, term="Creatinine increased", grade=2, measures={"x_uln": None})
    assert (got.action, got.needs_review) == ("continue", True)
    assert any("creatinine-2-to-3-uln" in u for u in got.unresolved)


def test_an_event_outside_the_liver_group_does_not_wait_for_liver_measures() -> None:
    got = recommend(P, level=0, term="Diarrhea", grade=2)
    assert (got.action, got.needs_review, got.unresolved) == ("continue", False, ())


def test_the_review_flag_is_explained() -> None:
    got = recommend(P, level=0, term="Alanine aminotransferase increased", grade=2)
    assert "unresolved: liver-injury" in got.explain()


# --- input errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"level": 1}, "level"),
        ({"level": -2}, "level"),
        ({"term": "Haemorrhage"}, "term"),
        ({"term": "Bleeding"}, "term"),
        ({"grade": 6}, "grade"),
        ({"grade": -1}, "grade"),
        ({"grade": 2.5}, "grade"),
        ({"measures": {"alt_x_uln": 4.0}}, "measures.alt_x_uln"),
        ({"measures": {"x_uln": -1.0}}, "measures.x_uln"),
        ({"measures": {"x_uln": "high"}}, "measures.x_uln"),
        ({"interruption": Interruption(days_since_start=-1, current_grade=1)}, "days_since_start"),
        ({"interruption": Interruption(days_since_start=1.5, current_grade=1)}, "days_since_start"),
        ({"interruption": Interruption(days_since_start=3, current_grade=6)}, "current_grade"),
        (
            {
                "term": "Proteinuria",
                "grade": 2,
                "measures": {G24: 2.5},
                "interruption": Interruption(3, 1, {"protein": 0.5}),
            },
            "measures.protein",
        ),
        # a misspelt current measure is refused even where no rule reads current measures
        ({"interruption": Interruption(3, 1, {"protein": 0.5})}, "measures.protein"),
    ],
)
def test_bad_input_is_refused_with_its_field(kwargs: dict[str, Any], field: str) -> None:
    call: dict[str, Any] = {"level": 0, "term": "Diarrhea", "grade": 3} | kwargs
    with pytest.raises(InputError) as caught:
        recommend(P, **call)
    assert caught.value.field == field


def test_an_unknown_measure_error_lists_the_measures_of_the_rules() -> None:
    with pytest.raises(InputError) as caught:
        recommend(P, level=0, term="Diarrhea", grade=3, measures={"alt": 4.0})
    assert caught.value.field.startswith("measures.")
    assert set(caught.value.allowed or ()) == set(P.dose_modification.measures)


def test_an_unknown_level_error_lists_the_levels() -> None:
    with pytest.raises(InputError) as caught:
        recommend(P, level=1, term="Diarrhea", grade=3)
    assert caught.value.allowed == ("0", "-1")


@pytest.mark.parametrize(
    ("term", "grade"),
    [
        ("Diarrhea", 1),  # no rule: continue
        ("Gastric perforation", 3),  # permanent stop
        ("Diarrhea", 3),  # interrupt
    ],
)
def test_an_impossible_interruption_is_refused_whatever_the_event(term: str, grade: int) -> None:
    with pytest.raises(InputError) as caught:
        recommend(P, level=0, term=term, grade=grade, interruption=Interruption(-3, 1))
    assert caught.value.field == "days_since_start"


# --- dose intensity ---------------------------------------------------------------------------------

# periods (start, end, level, missed), cumulative mg, dosing days, missed doses, RDI; counted by hand.
INTENSITY = [
    # full adherence: 168 days x 200 mg
    ([("2026-03-02", "2026-08-16", 0, 0)], 33600, 168, 0, 1.0),
    # 8 doses missed: 160 x 200 = 32000; 32000 / 33600
    ([("2026-03-02", "2026-08-16", 0, 8)], 32000, 160, 8, 0.952381),
    # stopped after cycle 1
    ([("2026-03-02", "2026-03-29", 0, 0)], 5600, 28, 0, 0.166667),
    # cycle 1 at level 0 (28), cycle 2 at level -1 aligned with the first dose (days 1-21: 21)
    ([("2026-03-02", "2026-03-29", 0, 0), ("2026-03-30", "2026-04-26", -1, 0)], 9800, 49, 0, 0.291667),
    # cycles 1-2 at level 0 (56), cycles 3-6 at level -1 (4 x 21 = 84): 140 x 200
    ([("2026-03-02", "2026-04-26", 0, 0), ("2026-04-27", "2026-08-16", -1, 0)], 28000, 140, 0, 0.833333),
    # 7 days at level 0, interrupted 03-09..03-15, level -1 from cycle 1 day 15 (03-16) to 04-26:
    # 03-16..03-22 on (7), 03-23..03-29 off, 03-30..04-19 on (21), 04-20..04-26 off -> 7 + 28 = 35
    ([("2026-03-02", "2026-03-08", 0, 0), ("2026-03-16", "2026-04-26", -1, 0)], 7000, 35, 0, 0.208333),
    # level -1 restarted in cycle 1's off week (03-23..03-29: 0 doses), then 03-30..04-12 (14): 14 + 14
    ([("2026-03-02", "2026-03-15", 0, 0), ("2026-03-23", "2026-04-12", -1, 0)], 5600, 28, 0, 0.166667),
    # level -1 ending inside its off week: cycle 3 days 1-25 (04-27..05-21) doses on days 1-21 only
    ([("2026-03-02", "2026-04-26", 0, 0), ("2026-04-27", "2026-05-21", -1, 0)], 15400, 77, 0, 0.458333),
    # every one of level -1's 21 dosing days missed in cycle 2
    ([("2026-03-02", "2026-03-29", 0, 0), ("2026-03-30", "2026-04-26", -1, 21)], 5600, 28, 21, 0.166667),
    # nothing logged
    ([], 0, 0, 0, 0.0),
]


def periods(rows: Rows) -> list[DosingPeriod]:
    return [DosingPeriod(d(start), d(end), level, missed) for start, end, level, missed in rows]


@pytest.mark.parametrize(("rows", "mg", "days", "missed", "rdi"), INTENSITY)
def test_dose_intensity(rows: Rows, mg: int, days: int, missed: int, rdi: float) -> None:
    got = dose_intensity(P, FIRST_DOSE, periods(rows))
    assert (got.cumulative_mg, got.planned_mg, got.dosing_days, got.missed_doses) == (mg, 33600, days, missed)
    assert got.relative_dose_intensity == pytest.approx(rdi, abs=1e-6)


def test_the_order_of_the_dosing_log_does_not_matter() -> None:
    rows = [("2026-03-30", "2026-04-26", -1, 2), ("2026-03-02", "2026-03-29", 0, 1)]
    got = dose_intensity(P, FIRST_DOSE, periods(rows))
    assert (got.cumulative_mg, got.dosing_days, got.missed_doses) == (200 * 46, 46, 3)


def test_the_explanation_shows_the_sum() -> None:
    got = dose_intensity(P, FIRST_DOSE, periods([("2026-03-02", "2026-08-16", 0, 8)]))
    assert "32000 mg" in got.explanation
    assert "33600 mg" in got.explanation
    assert "200 mg x 168 days" in got.explanation


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        # overlapping: the second period starts on the last day of the first
        ([("2026-03-02", "2026-03-29", 0, 0), ("2026-03-29", "2026-04-26", -1, 0)], "periods[1].start"),
        # one period inside another
        ([("2026-03-02", "2026-04-26", 0, 0), ("2026-03-10", "2026-03-20", -1, 0)], "periods[1].start"),
        # ends before it starts
        ([("2026-03-10", "2026-03-09", 0, 0)], "periods[0].end"),
        # starts before the first dose
        ([("2026-03-01", "2026-03-29", 0, 0)], "periods[0].start"),
        # more missed doses than dosing days: 7 days at level 0
        ([("2026-03-02", "2026-03-08", 0, 8)], "periods[0].missed_doses"),
        # level -1 for a whole cycle has 21 dosing days, not 28
        (
            [("2026-03-02", "2026-03-29", 0, 0), ("2026-03-30", "2026-04-26", -1, 22)],
            "periods[1].missed_doses",
        ),
        # level -1 only in an off week: no dose to miss
        (
            [("2026-03-02", "2026-03-15", 0, 0), ("2026-03-23", "2026-03-29", -1, 1)],
            "periods[1].missed_doses",
        ),
        ([("2026-03-02", "2026-03-08", 0, -1)], "periods[0].missed_doses"),
        ([("2026-03-02", "2026-03-08", 1, 0)], "level"),
    ],
)
def test_a_dosing_log_that_cannot_be_right_is_refused(rows: Rows, field: str) -> None:
    with pytest.raises(InputError) as caught:
        dose_intensity(P, FIRST_DOSE, periods(rows))
    assert caught.value.field == field


def test_adjacent_periods_do_not_overlap() -> None:
    rows = [("2026-03-02", "2026-03-29", 0, 0), ("2026-03-30", "2026-04-26", 0, 0)]
    assert dose_intensity(P, FIRST_DOSE, periods(rows)).dosing_days == 56


def test_an_error_names_the_period_as_it_was_given() -> None:
    # The bad period is the first one given; the log is not in date order.
    rows = [("2026-04-10", "2026-04-01", -1, 0), ("2026-03-02", "2026-03-29", 0, 0)]
    with pytest.raises(InputError) as caught:
        dose_intensity(P, FIRST_DOSE, periods(rows))
    assert caught.value.field == "periods[0].end"


@pytest.mark.parametrize(
    ("term", "grade"),
    [
        ("Arterial thromboembolism", 0),  # grade 0 is no event
        ("Gastric perforation", 1),  # CTCAE defines perforation grades 2-5 only
        ("Neutrophil count decreased", 5),  # no grade 5 for a count
        ("Arterial thromboembolism", 2),  # CTCAE starts arterial thromboembolism at grade 3
    ],
)
def test_a_grade_ctcae_does_not_define_for_the_term_is_refused(term: str, grade: int) -> None:
    with pytest.raises(InputError) as error:
        recommend(P, level=0, term=term, grade=grade)
    assert error.value.field == "grade"
