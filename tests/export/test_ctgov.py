"""ClinicalTrials.gov: the results section, its numbers the analysis tables' and its fields the registry's."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from sqlalchemy import select

from nettrial.analysis import safety_tables
from nettrial.analysis.adverse_events import adverse_event_table, worst_grade
from nettrial.analysis.consort import consort_flow
from nettrial.analysis.subjects import subject_table
from nettrial.export import ExportResult, exporter
from nettrial.export.ctgov import RESULTS_FILE, export
from nettrial.export.ctgov_outcomes import landmark_measurement
from nettrial.store.models import Participant, Patient
from tests.export.conftest import DEMO_CUTOFF
from tests.factories import PROTOCOL

# The registry's field names and JSON types, for the modules filled. "?key" is optional; a list
# holds elements of the one schema it contains.
_GROUP = {"id": str, "title": str, "description": str}
_ACHIEVEMENT = {"groupId": str, "?comment": str, "numSubjects": str}
_DENOMS = [{"units": str, "counts": [{"groupId": str, "value": str}]}]
_MEASUREMENT = {"groupId": str, "value": str, "?lowerLimit": str, "?upperLimit": str, "?comment": str}
_CLASSES = [{"?title": str, "categories": [{"?title": str, "measurements": [_MEASUREMENT]}]}]
_EVENT = {
    "term": str,
    "organSystem": str,
    "sourceVocabulary": str,
    "assessmentType": str,
    "stats": [{"groupId": str, "numEvents": int, "numAffected": int, "numAtRisk": int}],
}
_NUMBERS = [f"{kind}Num{what}" for kind in ("deaths", "serious", "other") for what in ("Affected", "AtRisk")]
SCHEMA = {
    "resultsSection": {
        "participantFlowModule": {
            "recruitmentDetails": str,
            "preAssignmentDetails": str,
            "groups": [_GROUP],
            "periods": [
                {
                    "title": str,
                    "milestones": [{"type": str, "achievements": [_ACHIEVEMENT]}],
                    "dropWithdraws": [{"type": str, "reasons": [{"groupId": str, "numSubjects": str}]}],
                }
            ],
        },
        "baselineCharacteristicsModule": {
            "populationDescription": str,
            "groups": [_GROUP],
            "denoms": _DENOMS,
            "measures": [
                {
                    "title": str,
                    "?description": str,
                    "paramType": str,
                    "?dispersionType": str,
                    "unitOfMeasure": str,
                    "classes": _CLASSES,
                }
            ],
        },
        "outcomeMeasuresModule": {
            "outcomeMeasures": [
                {
                    "type": str,
                    "title": str,
                    "?description": str,
                    "populationDescription": str,
                    "reportingStatus": str,
                    "paramType": str,
                    "?dispersionType": str,
                    "unitOfMeasure": str,
                    "timeFrame": str,
                    "groups": [_GROUP],
                    "denoms": _DENOMS,
                    "classes": _CLASSES,
                }
            ]
        },
        "adverseEventsModule": {
            "frequencyThreshold": str,
            "timeFrame": str,
            "description": str,
            "eventGroups": [
                {
                    **_GROUP,
                    **dict.fromkeys(_NUMBERS, int),
                }
            ],
            "seriousEvents": [_EVENT],
            "otherEvents": [_EVENT],
        },
    }
}  # fmt: skip
# The registry's enumerations for the fields whose values are codes.
ENUMS = {
    "milestone": {"STARTED", "COMPLETED", "NOT COMPLETED"},
    "paramType": {"MEDIAN", "COUNT_OF_PARTICIPANTS", "NUMBER", "MEAN"},
    "outcome": {"PRIMARY", "SECONDARY", "OTHER_PRE_SPECIFIED", "POST_HOC"},
}


def _problems(value, schema, where="") -> list[str]:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        known = {k.lstrip("?") for k in schema}
        found = [f"{where}.{k}: not a field of the registry's model" for k in value if k not in known]
        for key, inner in schema.items():
            name = key.lstrip("?")
            if name in value:
                found += _problems(value[name], inner, f"{where}.{name}")
            elif not key.startswith("?"):
                found.append(f"{where}.{name}: missing")
        return found
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in _problems(item, schema[0], f"{where}[{i}]")]
    ok = isinstance(value, schema) and not (schema is int and isinstance(value, bool))
    return [] if ok else [f"{where}: expected {schema.__name__}, got {type(value).__name__}"]


def test_the_schema_checker_catches_a_wrong_name_and_a_wrong_type():
    good = {"groupId": "OG000", "value": "1"}
    assert _problems(good, _MEASUREMENT) == []
    assert _problems({"groupId": "OG000", "value": 1}, _MEASUREMENT) == [".value: expected str, got int"]
    assert _problems({"groupId": "OG000", "value": "1", "lower": "0"}, _MEASUREMENT) == [
        ".lower: not a field of the registry's model"
    ]
    assert _problems({"value": "1"}, _MEASUREMENT) == [".groupId: missing"]


@pytest.fixture(scope="module")
def results(demo_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctgov")
    with demo_db.session(write=False) as session:
        result = export(session, PROTOCOL, out, cutoff=DEMO_CUTOFF)
    return result, json.loads((out / RESULTS_FILE).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tables(demo_db):
    with demo_db.session(write=False) as session:
        adae = adverse_event_table(session, PROTOCOL, DEMO_CUTOFF)
        exposure = safety_tables.exposure(session, PROTOCOL, DEMO_CUTOFF)
        return {
            "flow": consort_flow(session, PROTOCOL, DEMO_CUTOFF),
            "adsl": subject_table(session, PROTOCOL, DEMO_CUTOFF),
            "adae": adae[adae["TRTEMFL"] == "Y"],
            "population": safety_tables.safety_population(exposure),
            "exposure": exposure,
        }


def test_the_results_have_the_registry_field_names_and_types(results):
    result, data = results
    assert isinstance(result, ExportResult) and result.format == "ctgov-results"
    assert _problems(data, SCHEMA) == []
    section = data["resultsSection"]
    milestones = [m["type"] for m in section["participantFlowModule"]["periods"][0]["milestones"]]
    assert milestones == ["STARTED", "COMPLETED", "NOT COMPLETED"]
    measures = (
        section["baselineCharacteristicsModule"]["measures"]
        + section["outcomeMeasuresModule"]["outcomeMeasures"]
    )
    assert {m["paramType"] for m in measures} <= ENUMS["paramType"]
    outcomes = section["outcomeMeasuresModule"]["outcomeMeasures"]
    assert [o["type"] for o in outcomes].count("PRIMARY") == 1 and {o["type"] for o in outcomes} <= ENUMS[
        "outcome"
    ]
    for event in (
        section["adverseEventsModule"]["seriousEvents"] + section["adverseEventsModule"]["otherEvents"]
    ):
        assert (event["sourceVocabulary"], event["assessmentType"]) == (
            "CTCAE (5.0)",
            "SYSTEMATIC_ASSESSMENT",
        )


def test_the_participant_flow_counts_are_the_consort_boxes(results, tables):
    flow = tables["flow"]
    period = results[1]["resultsSection"]["participantFlowModule"]["periods"][0]
    n = {m["type"]: int(m["achievements"][0]["numSubjects"]) for m in period["milestones"]}
    # STARTED counts every enrolled participant (treated or not); here all 35 were treated.
    assert n["STARTED"] == flow.box("enrolled").n == 35
    assert n["COMPLETED"] == flow.box("completed_treatment").n == 11
    assert n["NOT COMPLETED"] == n["STARTED"] - n["COMPLETED"]
    reasons = {d["type"]: int(d["reasons"][0]["numSubjects"]) for d in period["dropWithdraws"]}
    assert sum(reasons.values()) == n["NOT COMPLETED"]
    discontinued = {c.key: c.n for c in flow.box("discontinued_treatment").breakdown}
    assert reasons["Adverse Event"] == discontinued["adverse_event"]
    assert reasons[f"On treatment at the data cut-off {DEMO_CUTOFF}"] == flow.box("on_treatment").n
    assert results[0].counts["participants_started"] == n["STARTED"]


def test_the_baseline_counts_are_the_subject_table(results, tables):
    adsl = tables["adsl"]
    module = results[1]["resultsSection"]["baselineCharacteristicsModule"]
    assert module["denoms"][0]["counts"][0]["value"] == str(len(adsl))
    measures = {m["title"]: m for m in module["measures"]}
    age = measures["Age, Continuous"]["classes"][0]["categories"][0]["measurements"][0]
    assert (float(age["value"]), int(age["lowerLimit"]), int(age["upperLimit"])) == (
        adsl["AGE"].median(),
        adsl["AGE"].min(),
        adsl["AGE"].max(),
    )

    def counts(title):
        return {
            c["title"]: int(c["measurements"][0]["value"])
            for c in measures[title]["classes"][0]["categories"]
        }

    assert counts("Sex: Female, Male") == {
        "Female": int((adsl.SEX == "F").sum()),
        "Male": int((adsl.SEX == "M").sum()),
    }
    assert (
        counts("WHO grade (2019)")
        == adsl["GRADE"].value_counts().reindex(["G1", "G2", "G3"], fill_value=0).to_dict()
    )
    stage = counts("AJCC stage group (9th edition)")
    assert stage == adsl["STAGE"].fillna("Not determined").value_counts().to_dict()
    for title in measures:
        if measures[title]["paramType"] == "COUNT_OF_PARTICIPANTS":
            assert sum(counts(title).values()) == len(adsl), title


def test_the_adverse_events_are_the_safety_tables(results, tables):
    module = results[1]["resultsSection"]["adverseEventsModule"]
    adae, population, adsl = tables["adae"], tables["population"], tables["adsl"]
    group = module["eventGroups"][0]
    overview = safety_tables.overview(adae, population).set_index("category")
    assert group["seriousNumAffected"] == overview.loc["serious", "n"] == 4
    assert group["deathsNumAffected"] == int((adsl["DTHFL"] == "Y").sum()) == 1
    at_risk = {group[f"{kind}NumAtRisk"] for kind in ("deaths", "serious", "other")}
    assert at_risk == {len(population)} == {35}
    for key, flag in (("seriousEvents", "Y"), ("otherEvents", "N")):
        table = safety_tables.by_term(adae[adae["AESER"] == flag], population)
        terms = table[table["level"] == "term"]
        expected = [(r.AEBODSYS, r.AEDECOD, r.n_any) for r in terms.itertuples()]
        listed = [(e["organSystem"], e["term"], e["stats"][0]["numAffected"]) for e in module[key]]
        assert listed == expected
    # A term never serious has its any-grade count of the whole table among the other events.
    whole = safety_tables.by_term(adae, population)
    never_serious = set(adae["AEDECOD"]) - set(adae.loc[adae["AESER"] == "Y", "AEDECOD"])
    other = {e["term"]: e["stats"][0]["numAffected"] for e in module["otherEvents"]}
    for row in whole[(whole["level"] == "term") & whole["AEDECOD"].isin(never_serious)].itertuples():
        assert other[row.AEDECOD] == row.n_any
    events = sum(e["stats"][0]["numEvents"] for e in module["seriousEvents"] + module["otherEvents"])
    assert events == overview.loc["any", "events"] == len(adae)


def test_the_secondary_outcomes_are_the_safety_and_exposure_tables(results, tables):
    outcomes = {
        o["title"]: o for o in results[1]["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    }
    adae, population = tables["adae"], tables["population"]
    grades = outcomes["Participants With Treatment-emergent Adverse Events by Worst CTCAE v5.0 Grade"]
    counts = {c["title"]: int(c["measurements"][0]["value"]) for c in grades["classes"][0]["categories"]}
    worst = worst_grade(adae, per="participant")["AETOXGR"]
    assert {g: counts[f"Grade {g}"] for g in range(1, 6)} == {g: int((worst == g).sum()) for g in range(1, 6)}
    overview = safety_tables.overview(adae, population).set_index("category")
    assert counts["Grade 3"] + counts["Grade 4"] + counts["Grade 5"] == overview.loc["grade_3_plus", "n"]
    assert sum(counts.values()) == len(population)
    completed = outcomes["Participants Completing 6 Cycles of Treatment"]["classes"][0]["categories"][0]
    assert int(completed["measurements"][0]["value"]) == tables["flow"].box("completed_treatment").n
    rdi = outcomes["Relative Dose Intensity"]
    ended = tables["exposure"][tables["exposure"]["TRTOUT"].isin(["completed", "discontinued"])]
    assert rdi["denoms"][0]["counts"][0]["value"] == str(len(ended))
    value = rdi["classes"][0]["categories"][0]["measurements"][0]
    assert float(value["value"]) == pytest.approx(100 * ended["RDI"].median(), abs=0.05)


def test_rates_not_estimable_at_the_cutoff_are_na_with_a_comment(results):
    outcomes = results[1]["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    primary = next(o for o in outcomes if o["type"] == "PRIMARY")
    assert primary["title"] == "Recurrence-free Survival Rate at 2 Years"
    assert primary["dispersionType"] == "95% Confidence Interval"
    measurement = primary["classes"][0]["categories"][0]["measurements"][0]
    # The demo's follow-up at the cut-off is under a year: 24 months cannot be estimated.
    assert (measurement["value"], measurement["lowerLimit"], measurement["upperLimit"]) == ("NA", "NA", "NA")
    assert "short of 24 months" in measurement["comment"]
    assert any(note.startswith("RFS at 24 months: not estimable") for note in results[0].notes)


def _adtte(times, events):
    return pd.DataFrame({"AVAL": [float(t) for t in times], "EVENT": events})


def test_a_landmark_rate_is_the_kaplan_meier_estimate_with_its_log_log_interval():
    # Events at 1 and 2 months among 4, two followed to 24: S(24) = 3/4 * 2/3 = 0.5.
    measurement = landmark_measurement(
        _adtte([1, 2, 24, 24], [1, 1, 0, 0]), 24, ci_method="log-log", cutoff=DEMO_CUTOFF
    )
    greenwood = 1 / (4 * 3) + 1 / (3 * 2)
    se = math.sqrt(greenwood) / abs(math.log(0.5))
    lower, upper = (math.exp(-math.exp(math.log(-math.log(0.5)) + sign * 1.959964 * se)) for sign in (1, -1))
    assert measurement["value"] == "50.0"
    assert float(measurement["lowerLimit"]) == pytest.approx(100 * lower, abs=0.05)
    assert float(measurement["upperLimit"]) == pytest.approx(100 * upper, abs=0.05)
    assert "comment" not in measurement


@pytest.mark.parametrize(("longest", "estimable"), [(24.0, True), (23.9, False)])
def test_a_landmark_is_estimable_up_to_the_longest_follow_up(longest, estimable):
    measurement = landmark_measurement(
        _adtte([3, longest], [1, 0]), 24, ci_method="log-log", cutoff=DEMO_CUTOFF
    )
    assert (measurement["value"] != "NA") is estimable
    assert ("comment" in measurement) is not estimable


def test_an_empty_study_exports_a_valid_results_section(db, tmp_path):
    with db.session(write=False) as session:
        result = export(session, PROTOCOL, tmp_path, cutoff=DEMO_CUTOFF)
    data = json.loads((tmp_path / RESULTS_FILE).read_text(encoding="utf-8"))
    assert _problems(data, SCHEMA) == []
    assert result.counts["participants_started"] == 0
    primary = data["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"][0]
    assert primary["classes"][0]["categories"][0]["measurements"][0]["comment"].startswith(
        "Not estimable: no"
    )


def test_the_same_database_gives_the_same_bytes_whoever_receives_them(demo_db, results, tmp_path):
    written = []
    for pseudonymised in (False, True):
        out = tmp_path / str(pseudonymised)
        with demo_db.session(write=False) as session:
            result = exporter("ctgov-results")(
                session, PROTOCOL, out, cutoff=DEMO_CUTOFF, pseudonymised=pseudonymised
            )
        assert result.pseudonymised is pseudonymised and result.files == (out / RESULTS_FILE,)
        written.append((out / RESULTS_FILE).read_bytes())
    assert written[0] == written[1]
    assert json.loads(written[0]) == results[1]


def test_nothing_personal_is_in_the_results(demo_db, results):
    text = json.dumps(results[1], ensure_ascii=False)
    with demo_db.session(write=False) as session:
        patients = session.execute(
            select(
                Patient.full_name,
                Patient.medical_record_number,
                Patient.date_of_birth,
                Patient.screening_number,
            )
        ).all()
        study_ids = session.scalars(select(Participant.study_id)).all()
    assert len(patients) == 60 and len(study_ids) == 35
    for name, mrn, born, screening in patients:
        for personal in (name, mrn, born.isoformat(), screening):
            assert personal not in text
    assert not [s for s in study_ids if s in text]
    assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", text.replace(DEMO_CUTOFF.isoformat(), ""))
