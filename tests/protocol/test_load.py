"""Loading protocol files: the built-in NCT07279532, and malformed files refused with file and path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from nettrial.exceptions import RuleDataError
from nettrial.protocol.load import load_protocol

BUILT_IN_TEXT = (resources.files("nettrial.protocol") / "protocols" / "nct07279532.yaml").read_text(
    encoding="utf-8"
)
BUILT_IN_DATA = yaml.safe_load(BUILT_IN_TEXT)


def test_built_in_protocol_has_6_inclusion_and_9_exclusion_criteria() -> None:
    protocol = load_protocol()
    assert protocol.identity.nct_id == "NCT07279532"
    kinds = {
        kind: [c.id for c in protocol.eligibility.criteria if c.kind == kind]
        for kind in ("inclusion", "exclusion")
    }
    assert kinds == {
        "inclusion": ["I1", "I2", "I3", "I4", "I5", "I6"],
        "exclusion": [f"E{i}" for i in range(1, 10)],
    }
    assert protocol.eligibility.inclusion_logic[2].any == ["I3", "I4"]  # protocol.md 5 I3: OR-group with 4


def test_every_criterion_has_text_source_and_needs() -> None:
    for criterion in load_protocol().eligibility.criteria:
        assert criterion.text.strip(), criterion.id
        assert criterion.source.strip(), criterion.id
        assert criterion.needs and all(n.strip() for n in criterion.needs), criterion.id
        assert "registry" in criterion.source, criterion.id  # every criterion is in the registry record


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cycle_days", 28),  # protocol.md 2: 6 cycles of 28 days (assumption)
        ("cycles", 6),
        ("lab_max_age_days", 14),  # protocol.md 5 I5 (assumption)
        ("untreated_hypertension_excludes", True),  # protocol.md 5 E3 (assumption)
    ],
)
def test_assumptions_of_protocol_md_are_settings(name: str, value: Any) -> None:
    setting = load_protocol().settings[name]
    assert (setting.value, setting.source) == (value, "assumption")


def test_settings_are_what_the_rules_use() -> None:
    protocol = load_protocol()
    assert (protocol.treatment.cycle_days, protocol.treatment.cycles) == (28, 6)
    i5_labs = [n for n in protocol.criterion("I5").rule.all if getattr(n, "check", None) == "lab"]
    assert i5_labs and {n.max_age_days for n in i5_labs} == {14}
    assert protocol.criterion("E3").rule.untreated_counts is True


def test_the_lab_max_age_setting_changes_the_rule(tmp_path: Path) -> None:
    data = copy.deepcopy(BUILT_IN_DATA)
    data["settings"]["lab_max_age_days"]["value"] = 10
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    i5 = load_protocol(path).criterion("I5")
    assert {n.max_age_days for n in i5.rule.all if getattr(n, "check", None) == "lab"} == {10}


# --- malformed files -----------------------------------------------------------------------------


def _criterion(data: dict, criterion_id: str) -> dict:
    return next(c for c in data["eligibility"]["criteria"] if c["id"] == criterion_id)


def _unknown_check(d: dict) -> None:
    _criterion(d, "I1")["rule"]["all"][0]["check"] = "telepathy"


def _bad_operator(d: dict) -> None:
    _criterion(d, "I5")["rule"]["all"][1]["op"] = "=>"


def _unknown_setting(d: dict) -> None:
    _criterion(d, "I5")["rule"]["all"][1]["max_age_days"] = "$lab_max_age"


def _inclusion_missing_from_logic(d: dict) -> None:
    d["eligibility"]["inclusion_logic"].remove("I5")


def _duplicate_id(d: dict) -> None:
    _criterion(d, "I2")["id"] = "I1"


def _missing_needs(d: dict) -> None:
    del _criterion(d, "E2")["needs"]


def _bad_window(d: dict) -> None:
    _criterion(d, "E1")["rule"]["within"] = {"weeks": 4}


def _setting_without_value(d: dict) -> None:
    d["settings"]["cycles"] = {"source": "assumption"}


@pytest.mark.parametrize(
    ("mutate", "path_part", "message_part"),
    [
        (_unknown_check, "eligibility.criteria.0.rule", "telepathy"),
        (_bad_operator, "eligibility.criteria.4.rule", ".op: Input should be '<'"),
        (
            _unknown_setting,
            "eligibility.criteria.4.rule.all.1.max_age_days",
            "unknown setting '$lab_max_age'",
        ),
        (_inclusion_missing_from_logic, "eligibility", "inclusion_logic must name every inclusion criterion"),
        (_duplicate_id, "eligibility", "criterion ids must be unique"),
        (_missing_needs, "eligibility.criteria.7.needs", "Field required"),
        (_bad_window, "eligibility.criteria.6.rule", "weeks"),
        (_setting_without_value, "settings", "needs a value"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_malformed_file_names_the_file_and_the_field(
    tmp_path: Path, mutate: Callable[[dict], None], path_part: str, message_part: str
) -> None:
    data = copy.deepcopy(BUILT_IN_DATA)
    mutate(data)
    path = tmp_path / "broken_study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(RuleDataError) as caught:
        load_protocol(path)
    assert caught.value.path == "broken_study.yaml"
    message = str(caught.value)
    assert message.startswith(f"broken_study.yaml: {path_part}"), message
    assert message_part in message, message


def test_error_path_is_the_path_in_the_file(tmp_path: Path) -> None:
    data = copy.deepcopy(BUILT_IN_DATA)
    _bad_operator(data)
    path = tmp_path / "broken_study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    documented = r"^broken_study\.yaml: eligibility\.criteria\.4\.rule\.all\.1\.op:"
    with pytest.raises(RuleDataError, match=documented):
        load_protocol(path)


def test_invalid_yaml_and_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "garbled.yaml"
    path.write_text("eligibility: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleDataError, match=r"^garbled\.yaml: is not valid YAML"):
        load_protocol(path)
    with pytest.raises(RuleDataError, match="cannot be read"):
        load_protocol(tmp_path / "absent.yaml")
