"""Eligibility scenarios for NCT07279532, written as data (``scenarios/*.yaml``).

Each scenario patches a base record (``scenarios/_bases.yaml``), evaluates it with the built-in
protocol and checks the verdicts it is about. Expected values come from the protocol text
(shared/spec/protocol.md section 5), never from the engine's output; a scenario the engine gets
wrong keeps its correct expectation and carries ``xfail_reason`` (strict: a fix makes it fail, so
the marker is removed with the fix).

Patch rules: mappings merge deeply; ``labs: {<test>: {...}}`` updates that test's result in the
base (``null`` removes it, a list replaces every result of that test); ``history_events: [...]``
appends to ``history.events``; ``attestations: {<id>: null}`` removes that answer; any other
list replaces the base's list; any other ``null`` makes the field "not recorded". A scenario with
``expect.error`` is a record that must be refused on load (``record_from_json``).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from nettrial.eligibility.evaluate import evaluate
from nettrial.eligibility.io import parse_first_dose, record_from_json
from nettrial.eligibility.record import ScreeningRecord
from nettrial.exceptions import InputError
from nettrial.protocol.load import load_protocol

HERE = Path(__file__).parent / "scenarios"
BASES: dict[str, dict[str, Any]] = yaml.safe_load((HERE / "_bases.yaml").read_text(encoding="utf-8"))
CRITERIA = [*(f"I{i}" for i in range(1, 7)), *(f"E{i}" for i in range(1, 10))]
TRUTHS = {"MET", "NOT_MET", "UNKNOWN"}


def _load_scenarios() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(HERE.glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for scenario in data["scenarios"]:
            scenario.setdefault("base", data.get("base", "eligible_base"))
            found.append((f"{path.stem}::{scenario['id']}", scenario))
    return found


SCENARIOS = _load_scenarios()


# --- building the record -----------------------------------------------------------------------


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _patch_labs(labs: list[dict[str, Any]], patch: dict[str, Any]) -> list[dict[str, Any]]:
    for test, change in patch.items():
        current = [lab for lab in labs if lab["test"] == test]
        others = [lab for lab in labs if lab["test"] != test]
        if change is None:
            labs = others
        elif isinstance(change, list):
            labs = others + [{"test": test, **item} for item in change]
        elif current:
            for lab in current:
                _merge(lab, change)
        else:
            labs = [*labs, {"test": test, **change}]
    return labs


def build_document(scenario: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(BASES[scenario["base"]])
    patch = copy.deepcopy(scenario.get("patch") or {})
    labs = patch.pop("labs", None)
    events = patch.pop("history_events", None)
    _merge(document, patch)
    if isinstance(labs, dict):
        document["labs"] = _patch_labs(document.get("labs", []), labs)
    elif labs is not None:
        document["labs"] = labs
    if events:
        document.setdefault("history", {}).setdefault("events", []).extend(events)
    answers = document.get("attestations") or {}
    document["attestations"] = {k: v for k, v in answers.items() if v is not None}
    return document


def _first_dose(value: Any) -> dt.date | dt.datetime | None:
    if value is None or isinstance(value, dt.date):
        return value
    return parse_first_dose(str(value))


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


# --- the scenarios -------------------------------------------------------------------------------


def _params():
    for name, scenario in SCENARIOS:
        marks = []
        if scenario.get("xfail_reason"):
            marks.append(pytest.mark.xfail(reason=scenario["xfail_reason"], strict=True))
        yield pytest.param(scenario, id=name, marks=marks)


@pytest.mark.parametrize("scenario", list(_params()))
def test_scenario(scenario: dict[str, Any]) -> None:
    expect = scenario["expect"]
    document = build_document(scenario)
    if "error" in expect:
        with pytest.raises(InputError) as caught:
            record_from_json(json.dumps(document, default=str))
        assert expect["error"]["field"] in caught.value.field, str(caught.value)
        for text in expect["error"].get("message_contains", []):
            assert text in str(caught.value), str(caught.value)
        return

    record = ScreeningRecord.model_validate(document)
    result = evaluate(record, load_protocol(), _first_dose(scenario.get("first_dose")))
    got = {v.criterion: v.truth.value for v in result.verdicts}
    shown = "\n".join(f"{v.criterion} {v.truth}: " + "; ".join(map(str, v.evidence)) for v in result.verdicts)

    for criterion, truth in expect.get("verdicts", {}).items():
        assert got[criterion] == truth, f"{criterion}: expected {truth}, got {got[criterion]}\n{shown}"
    if "decision" in expect:
        assert result.decision.value == expect["decision"], f"{result.decision}\n{result.missing}\n{shown}"
    if "earliest_first_dose" in expect:
        assert result.earliest_first_dose == _as_date(expect["earliest_first_dose"]), result
    if "index_date" in expect:
        assert result.index_date == _as_date(expect["index_date"])
    if "provisional" in expect:
        assert result.provisional is expect["provisional"]
    for criterion in expect.get("provisional_verdicts", []):
        assert result.verdict(criterion).provisional, criterion
    for criterion in expect.get("final_verdicts", []):
        assert not result.verdict(criterion).provisional, criterion
    for text in expect.get("missing_contains", []):
        assert any(text in m for m in result.missing), f"{text!r} not in {result.missing}"
    for text in expect.get("missing_not_contains", []):
        assert not any(text in m for m in result.missing), f"{text!r} in {result.missing}"
    for criterion, texts in expect.get("evidence_contains", {}).items():
        evidence = " | ".join(map(str, result.verdict(criterion).evidence))
        for text in texts:
            assert text in evidence, f"{criterion}: {text!r} not in {evidence}"


# --- the scenarios' coverage -------------------------------------------------------------------


def test_scenario_files_are_well_formed() -> None:
    ids = [name for name, _ in SCENARIOS]
    assert len(ids) == len(set(ids)), "scenario ids must be unique within their file"
    allowed = {"id", "why", "base", "patch", "first_dose", "expect", "xfail_reason"}
    for name, scenario in SCENARIOS:
        assert set(scenario) <= allowed, (name, set(scenario) - allowed)
        assert scenario.get("why"), f"{name}: say why (cite protocol.md)"
        assert scenario["base"] in BASES, name
        for criterion, truth in scenario["expect"].get("verdicts", {}).items():
            assert criterion in CRITERIA and truth in TRUTHS, (name, criterion, truth)
    assert len(SCENARIOS) >= 60


def test_every_criterion_is_seen_met_not_met_and_unknown() -> None:
    seen: dict[str, set[str]] = {c: set() for c in CRITERIA}
    i6_branches: set[tuple[str, str]] = set()
    answers: dict[str, set[str | None]] = {"I4": set(), "E9": set()}
    for _, scenario in SCENARIOS:
        verdicts = scenario["expect"].get("verdicts", {})
        if not verdicts:
            continue
        document = build_document(scenario)
        for criterion, truth in verdicts.items():
            seen[criterion].add(truth)
        if "I6" in verdicts:
            i6_branches.add((document["identity"].get("sex"), verdicts["I6"]))
        for criterion in answers:
            if criterion in verdicts:
                answer = (document.get("attestations") or {}).get(criterion)
                answers[criterion].add(answer["answer"] if answer else None)

    assert {c: TRUTHS - s for c, s in seen.items() if s != TRUTHS} == {}
    for sex in ("female", "male"):
        for truth in ("MET", "NOT_MET", "UNKNOWN"):
            assert (sex, truth) in i6_branches, f"I6 {truth} for a {sex} patient is not covered"
    assert answers == {"I4": {"yes", "no", None}, "E9": {"yes", "no", None}}
