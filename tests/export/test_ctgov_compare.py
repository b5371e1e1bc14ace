"""A ClinicalTrials.gov registry record compared with the protocol file."""

from __future__ import annotations

import copy
import json

import pytest

from nettrial.export.ctgov_compare import compare
from nettrial.export.ctgov_record import load_record, normalise
from tests.export.conftest import RECORD, record_data, write_record
from tests.factories import PROTOCOL

# What the shipped protocol file has that the registry page does not: its brief title. (The
# comparison once found the criterion texts of I5 and E3 to E7 shortened and re-typed, ">=" for "≥";
# the protocol file now holds the registry's wording, as its model says it does.)
SHIPPED_DIFFERENCES = {"identity.brief_title": "missing_in_record"}


def _with_criteria(protocol, changes: dict[str, str]):
    criteria = [
        c.model_copy(update={"text": changes[c.id]}) if c.id in changes else c
        for c in protocol.eligibility.criteria
    ]
    return protocol.model_copy(
        update={"eligibility": protocol.eligibility.model_copy(update={"criteria": criteria})}
    )


def _with_identity(protocol, **changes):
    return protocol.model_copy(update={"identity": protocol.identity.model_copy(update=changes)})


def _by_path(comparison) -> dict[str, object]:
    return {d.protocol_path: d for d in comparison.differences}


# --- comparison with the protocol file ------------------------------------------------------------


def test_compare_with_the_shipped_protocol_reports_what_actually_differs():
    comparison = compare(load_record(RECORD), PROTOCOL)
    assert not comparison.matches
    assert {d.protocol_path: d.kind for d in comparison.differences} == SHIPPED_DIFFERENCES
    as_json = json.loads(json.dumps(comparison.to_dict(), ensure_ascii=False))
    assert len(as_json["differences"]) == len(SHIPPED_DIFFERENCES) and as_json["matches"] is False
    # The rest was compared and agrees: identity fields, the arm, every criterion.
    for path in ("identity.target_enrolment", "identity.arms.0", "eligibility.criteria.I1.text"):
        assert path in comparison.compared and path not in _by_path(comparison)
    assert sum(p.startswith("eligibility.criteria.") for p in comparison.compared) == 15


def test_a_re_typed_sign_in_a_criterion_is_a_difference_with_its_place():
    e3 = PROTOCOL.criterion("E3").text.replace("≥140", ">= 140")
    comparison = compare(load_record(RECORD), _with_criteria(PROTOCOL, {"E3": e3}))
    found = _by_path(comparison)["eligibility.criteria.E3.text"]
    assert found.record_path == "protocolSection.eligibilityModule.eligibilityCriteria (exclusion 3)"
    assert ">= 140" in found.protocol and "≥140" in found.record


def test_a_changed_enrolment_and_criterion_are_both_reported_with_their_paths():
    protocol = _with_identity(PROTOCOL, target_enrolment=36)
    protocol = _with_criteria(protocol, {"E8": "Pregnancy, lactation or planned pregnancy."})
    found = _by_path(compare(load_record(RECORD), protocol))
    assert set(found) == set(SHIPPED_DIFFERENCES) | {
        "identity.target_enrolment",
        "eligibility.criteria.E8.text",
    }
    enrolment = found["identity.target_enrolment"]
    assert (enrolment.protocol, enrolment.record) == (36, 35)
    assert enrolment.record_path == "protocolSection.designModule.enrollmentInfo.count"
    e8 = found["eligibility.criteria.E8.text"]
    assert (e8.record, e8.kind) == ("Pregnancy or lactation.", "differs")
    assert e8.record_path.endswith("eligibilityCriteria (exclusion 8)")
    text = compare(load_record(RECORD), protocol).explain()
    assert "identity.target_enrolment: protocol 36 vs record 35" in text


def _record_agreeing_with(protocol) -> dict:
    """The test record with the protocol's brief title and criterion texts, laid out as the
    registry lays out text: Markdown escapes, bullets, line breaks inside an item."""
    data = record_data()
    data["protocolSection"]["identificationModule"]["briefTitle"] = protocol.identity.brief_title
    lines = []
    for kind in ("inclusion", "exclusion"):
        lines += [f"{kind.title()} Criteria:", ""]
        for c in protocol.eligibility.criteria:
            if c.kind == kind:
                words = c.text.replace(">", "\\>").split(" ")
                half = len(words) // 2
                lines += [f"* {' '.join(words[:half])}", f"  {'  '.join(words[half:])}"]
        lines.append("")
    data["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = "\n".join(lines)
    return data


def test_a_record_that_agrees_everywhere_matches(tmp_path):
    comparison = compare(load_record(write_record(tmp_path, _record_agreeing_with(PROTOCOL))), PROTOCOL)
    assert comparison.differences == ()
    assert comparison.matches and comparison.to_dict()["matches"] is True
    assert "0 differences" in comparison.explain()


@pytest.mark.parametrize(
    ("registry", "protocol", "same"),
    [
        ("BP \\>= 140  mmHg", "BP >= 140 mmHg", True),  # a Markdown escape and spacing only
        ("BP\n  >= 140 mmHg ", "BP >= 140 mmHg", True),
        ("BP ≥ 140 mmHg", "BP >= 140 mmHg", False),  # a different sign is a different wording
        ("BP >= 140 mmHg.", "BP >= 140 mmHg", False),  # one character is enough
        ("bp >= 140 mmHg", "BP >= 140 mmHg", False),
    ],
)
def test_criterion_texts_are_compared_after_whitespace_and_escapes_only(registry, protocol, same):
    assert (normalise(registry) == normalise(protocol)) is same


def test_criteria_missing_on_either_side_are_reported(tmp_path):
    data = record_data()
    text = data["protocolSection"]["eligibilityModule"]["eligibilityCriteria"]
    text += "\n10. Active hepatitis B."
    text = text.replace("6. Female subjects", "Female subjects")  # I6 folds into I5 as a continuation
    data["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] = text
    found = compare(load_record(write_record(tmp_path, data)), PROTOCOL).differences
    missing = [(d.protocol_path, d.kind) for d in found if d.kind.startswith("missing")]
    assert ("eligibility.criteria.I6.text", "missing_in_record") in missing
    extra = [d for d in found if d.kind == "missing_in_protocol"]
    assert [(d.record, d.record_path) for d in extra] == [
        ("Active hepatitis B.", "protocolSection.eligibilityModule.eligibilityCriteria (exclusion 10)")
    ]


def test_arms_are_matched_by_label(tmp_path):
    data = record_data()
    data["protocolSection"]["armsInterventionsModule"]["armGroups"][0]["interventionNames"] = [
        "Drug: placebo"
    ]
    renamed = copy.deepcopy(data)
    renamed["protocolSection"]["armsInterventionsModule"]["armGroups"][0]["label"] = "Surufatinib"
    changed = _by_path(compare(load_record(write_record(tmp_path, data)), PROTOCOL))
    assert changed["identity.arms.0.interventions"].record == ("placebo",)
    assert changed["identity.arms.0.interventions"].record_path.endswith("armGroups[0].interventionNames")
    other = compare(load_record(write_record(tmp_path, renamed, "renamed.json")), PROTOCOL).differences
    kinds = {(d.kind, d.protocol if d.kind == "missing_in_record" else d.record) for d in other}
    assert {("missing_in_record", "Experimental Group"), ("missing_in_protocol", "Surufatinib")} <= kinds
