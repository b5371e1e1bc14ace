"""A ClinicalTrials.gov registry record: read, type-checked, and its eligibility text split into criteria."""

from __future__ import annotations

import re

import pytest

from nettrial.exceptions import InputError
from nettrial.export.ctgov_record import load_record, split_criteria
from tests.conftest import require_shared
from tests.export.conftest import RECORD, record_data, write_record

# --- the test record ------------------------------------------------------------------------------


def test_the_test_record_loads_with_what_the_registry_page_states():
    record = load_record(RECORD)
    assert record.nct_id == "NCT07279532"
    assert record.values["org_study_id"] == "2025-1173"
    assert record.values["target_enrolment"] == 35
    assert record.values["phase"] == "PHASE2"
    assert (record.values["minimum_age"], record.values["maximum_age"]) == ("18 Years", "80 Years")
    assert record.values["healthy_volunteers"] is False
    assert record.values["brief_title"] is None  # the page states one title only
    assert record.has_results is False
    assert [a.label for a in record.arms] == ["Experimental Group"]
    assert record.arms[0].interventions == ("surufatinib",)  # "Drug: surufatinib" without its type
    kinds = [c.kind for c in record.criteria()]
    assert (kinds.count("inclusion"), kinds.count("exclusion")) == (6, 9)


def test_the_test_record_transcribes_the_registry_page():
    page = require_shared("seed/NCT07279532.txt").read_text(encoding="utf-8")
    criteria = page[page.index("Inclusion Criteria\n") : page.index("Minimum Eligible Age")]
    assert [c.text for c in split_criteria(criteria)] == [c.text for c in load_record(RECORD).criteria()]
    stated = {"NCT ID": "NCT07279532", "Total Enrollment": "35 participants", "Clinical Phase": "PHASE2"}
    for label, value in stated.items():
        assert re.search(rf"{label}:?\s+{value}", page)
    record = load_record(RECORD)
    assert record.values["start_date"] in page and record.values["completion_date"] in page
    assert record.values["official_title"] == page.splitlines()[0]


def test_split_criteria_reads_bullets_bold_headers_and_continuations():
    text = (
        "Preamble\n**Inclusion Criteria:**\n\n* First\n  still first\n- Second\n\n"
        "Exclusion criteria\n1) Third"
    )
    found = split_criteria(text)
    assert [(c.kind, c.number, c.text) for c in found] == [
        ("inclusion", 1, "First still first"),
        ("inclusion", 2, "Second"),
        ("exclusion", 1, "Third"),
    ]


# --- malformed records ----------------------------------------------------------------------------


def _set(data: dict, path: str, value) -> dict:
    """``data`` with the value at dotted ``path`` (a number steps into a list) replaced or deleted."""
    node = data
    *parents, last = path.split(".")
    for step in parents:
        node = node[int(step)] if isinstance(node, list) else node[step]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


_DESIGN, _ELIG = "protocolSection.designModule", "protocolSection.eligibilityModule"
_ID, _ARM = "protocolSection.identificationModule", "protocolSection.armsInterventionsModule.armGroups.0"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("protocolSection", KeyError, None),
        ("protocolSection", [], None),
        (f"{_DESIGN}.enrollmentInfo.count", "35", None),
        (f"{_DESIGN}.enrollmentInfo.count", True, None),  # true is no count
        (_DESIGN, ["INTERVENTIONAL"], None),
        (f"{_DESIGN}.phases", [2], f"{_DESIGN}.phases[0]"),
        (f"{_ELIG}.minimumAge", "eighteen", None),
        (f"{_ELIG}.healthyVolunteers", "No", None),
        (f"{_ELIG}.eligibilityCriteria", ["1. x"], None),
        ("protocolSection.statusModule.startDateStruct.date", "01/01/2026", None),
        (f"{_ID}.nctId", KeyError, None),
        (f"{_ID}.nctId", "NCT123", None),
        (f"{_ARM}.label", KeyError, None),
        (f"{_ARM}.type", 1, None),
        ("hasResults", "false", None),
    ],
)
def test_a_malformed_record_is_refused_naming_the_json_path(tmp_path, path, value, field):
    written = write_record(tmp_path, _set(record_data(), path, value))
    with pytest.raises(InputError) as refused:
        load_record(written)
    assert refused.value.field == (field or path.replace(".0.", "[0]."))


@pytest.mark.parametrize(
    ("text", "why"), [("{not json", "is not JSON"), ("[1, 2]", "expected a study record")]
)
def test_a_file_that_is_not_a_record_is_refused_naming_the_file(tmp_path, text, why):
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=why) as refused:
        load_record(path)
    assert refused.value.field == "broken.json"
