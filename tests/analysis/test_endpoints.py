"""Endpoint settings: the protocol file's endpoints, validated, each rule a setting with its source."""

from __future__ import annotations

import copy

import pytest

from nettrial.analysis.endpoints import CENSORING_RULES, EndpointSettings, endpoint_settings
from nettrial.exceptions import InputError, RuleDataError
from tests.factories import PROTOCOL

FILE = PROTOCOL.endpoints  # the section as written in nct07279532.yaml
FILE_RFS = FILE["primary"][0]


def _with_endpoints(change) -> object:
    """The protocol with its endpoints section changed by ``change(section)``."""
    section = copy.deepcopy(FILE)
    change(section)
    return PROTOCOL.model_copy(update={"endpoints": section})


def test_rfs_is_read_from_the_protocol_file():
    rfs = endpoint_settings(PROTOCOL).rfs
    assert rfs.origin == FILE_RFS["origin"] == "first_dose"
    assert list(rfs.events) == FILE_RFS["events"]
    assert list(rfs.landmarks_months) == FILE_RFS["landmarks_months"] == [12, 24, 36]
    assert rfs.primary_landmark_months == FILE_RFS["primary_landmark_months"] == 24
    assert rfs.ci_method == FILE_RFS["ci_method"] == "log-log"
    censoring = FILE_RFS["censoring"]
    assert rfs.censoring.no_event == censoring["no_event"]
    assert rfs.censoring.new_anticancer_therapy == censoring["new_anticancer_therapy"]
    missed = censoring["event_after_missed_scans"]
    assert (
        rfs.censoring.event_after_missed_scans.missed_scheduled_scans_at_least
        == missed["missed_scheduled_scans_at_least"]
    )
    assert rfs.censoring.no_post_baseline_imaging == censoring["no_post_baseline_imaging"] == "day_1"


def test_dmfs_takes_rfs_rules_with_distant_events_and_os_counts_death_censored_at_last_contact():
    settings = endpoint_settings(PROTOCOL)
    assert settings.dmfs.events == ("distant_recurrence", "death")
    assert settings.dmfs.censoring == settings.rfs.censoring
    assert settings.dmfs.name == "distant metastasis-free survival"
    assert settings.os.events == ("death",)
    assert settings.os.censoring.no_event == "last_known_alive"
    assert settings.os.censoring.new_anticancer_therapy is None
    assert settings.os.censoring.event_after_missed_scans is None
    assert settings.safety.treatment_emergent_until_days_after_last_dose == 30


def test_every_rule_cites_its_source():
    settings = endpoint_settings(PROTOCOL)
    for parameter in ("RFS", "DMFS", "OS"):
        endpoint = settings.endpoint(parameter)
        for rule in (*CENSORING_RULES, "events", "origin"):
            assert "protocol.md 4" in endpoint.sources[rule], (parameter, rule)
    assert settings.rfs.sources["no_event"] == "assumption (protocol.md 4)"
    assert settings.dmfs.sources["events"].startswith("default")
    assert "protocol.md 4" in settings.safety.source


@pytest.mark.parametrize(
    ("override", "read"),
    [
        ({"no_event": "last_known_alive"}, lambda e: e.censoring.no_event == "last_known_alive"),
        ({"new_anticancer_therapy": None}, lambda e: e.censoring.new_anticancer_therapy is None),
        ({"event_after_missed_scans": None}, lambda e: e.censoring.event_after_missed_scans is None),
        (
            {"event_after_missed_scans": 3},
            lambda e: e.censoring.event_after_missed_scans.missed_scheduled_scans_at_least == 3,
        ),
        (
            {"no_post_baseline_imaging": "exclude"},
            lambda e: e.censoring.no_post_baseline_imaging == "exclude",
        ),
    ],
)
def test_each_censoring_rule_can_be_changed_by_the_caller_and_dmfs_follows(override, read):
    settings = endpoint_settings(PROTOCOL, **override)
    (name,) = override
    assert read(settings.rfs) and read(settings.dmfs)
    assert settings.rfs.sources[name].startswith("set by the caller")
    assert not read(endpoint_settings(PROTOCOL).rfs)  # the file is unchanged
    assert settings.os.censoring == endpoint_settings(PROTOCOL).os.censoring


def test_a_prefixed_override_changes_one_endpoint_alone():
    settings = endpoint_settings(
        PROTOCOL, DMFS__new_anticancer_therapy=None, OS__landmarks_months=[12, 24, 60]
    )
    assert settings.dmfs.censoring.new_anticancer_therapy is None
    assert settings.rfs.censoring.new_anticancer_therapy == "last_adequate_imaging_before_therapy"
    assert (settings.os.landmarks_months, settings.rfs.landmarks_months, settings.dmfs.landmarks_months) == (
        (12, 24, 60),
        (12, 24, 36),
        (12, 24, 36),
    )
    rfs_only = endpoint_settings(PROTOCOL, RFS__event_after_missed_scans=None)
    assert rfs_only.rfs.censoring.event_after_missed_scans is None
    assert rfs_only.dmfs.censoring.event_after_missed_scans is not None


def test_landmarks_and_interval_reach_every_endpoint():
    settings = endpoint_settings(PROTOCOL, landmarks_months=[6, 12], primary_landmark_months=12)
    for endpoint in (settings.rfs, settings.dmfs, settings.os):
        assert (endpoint.landmarks_months, endpoint.primary_landmark_months, endpoint.ci_method) == (
            (6, 12),
            12,
            "log-log",
        )


def test_an_interval_the_analysis_cannot_compute_is_refused_by_name():
    # lifelines gives the log-log interval only (analysis/survival.py); "plain" must not pass here and
    # fail later in the report.
    with pytest.raises(InputError) as error:
        endpoint_settings(PROTOCOL, ci_method="plain")
    assert error.value.field == "ci_method"


def test_the_safety_window_is_a_setting():
    assert endpoint_settings(
        PROTOCOL, treatment_emergent_until_days_after_last_dose=28
    ).safety.model_dump() == {
        "treatment_emergent_until_days_after_last_dose": 28,
        "source": "set by the caller (protocol file: 30)",
    }


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"censor_everything": True}, "censor_everything"),
        ({"no_event": "last_visit"}, "no_event"),
        ({"event_after_missed_scans": 0}, "event_after_missed_scans"),
        ({"DMFS__events": ["lung_recurrence"]}, "DMFS__events"),
        ({"PFS__events": ["death"]}, "PFS__events"),
        ({"landmarks_months": [24, 12]}, "landmarks_months"),
        ({"primary_landmark_months": 18}, "primary_landmark_months"),
        ({"ci_method": "arcsin"}, "ci_method"),
        ({"events": ["death", "death"]}, "events"),
        (
            {"OS__treatment_emergent_until_days_after_last_dose": 10},
            "OS__treatment_emergent_until_days_after_last_dose",
        ),
        (
            {"treatment_emergent_until_days_after_last_dose": -1},
            "treatment_emergent_until_days_after_last_dose",
        ),
    ],
)
def test_a_bad_override_names_its_key(override, field):
    with pytest.raises(InputError) as error:
        endpoint_settings(PROTOCOL, **override)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda s: s["primary"][0]["censoring"].update(no_event="last_visit"),
            "endpoints.primary.0.censoring.no_event",
        ),
        (lambda s: s["primary"][0].update(ci_method="arcsin"), "endpoints.primary.0.ci_method"),
        (lambda s: s["primary"][0].update(landmarks_months=[36, 12]), "endpoints.primary.0.landmarks_months"),
        (lambda s: s["primary"][0].update(surprise=1), "endpoints.primary.0.surprise"),
        (lambda s: s["primary"][0].pop("origin"), "endpoints.primary.0.origin"),
        (lambda s: s["secondary"][0].update(events=["lung"]), "endpoints.secondary.0.events.0"),
        (
            lambda s: s["secondary"][2].pop("treatment_emergent_until_days_after_last_dose"),
            "endpoints.secondary.2.treatment_emergent_until_days_after_last_dose",
        ),
        (lambda s: s["primary"].clear(), "endpoints.primary"),
        (lambda s: s["secondary"].append({"id": "OS"}), "endpoints.secondary.4.id"),
        (lambda s: s.update(tertiary=[]), "endpoints.tertiary"),
    ],
)
def test_a_malformed_endpoints_section_names_the_key(change, where):
    with pytest.raises(RuleDataError) as error:
        endpoint_settings(_with_endpoints(change))
    assert f"{where}:" in str(error.value)


def test_a_file_error_is_the_files_even_when_the_caller_overrides_the_key():
    broken = _with_endpoints(lambda s: s["primary"][0].update(ci_method="arcsin"))
    with pytest.raises(RuleDataError):
        endpoint_settings(broken, ci_method="log-log")


def test_the_file_can_define_dmfs_itself():
    def own_dmfs(section):
        section["secondary"][0].update(
            events=["distant_recurrence"], censoring={"new_anticancer_therapy": None}
        )

    settings = endpoint_settings(_with_endpoints(own_dmfs))
    assert settings.dmfs.events == ("distant_recurrence",)
    assert settings.dmfs.censoring.new_anticancer_therapy is None
    assert settings.dmfs.censoring.no_event == settings.rfs.censoring.no_event  # the rest still from RFS


def test_settings_explain_themselves_and_serialise():
    settings = endpoint_settings(PROTOCOL, new_anticancer_therapy=None)
    text = settings.explain()
    assert "new_anticancer_therapy: off [set by the caller" in text
    assert (
        "event_after_missed_scans: last_adequate_imaging_before_gap after >= 2 missed scheduled scans" in text
    )
    data = settings.to_dict()
    assert data["rfs"]["censoring"]["new_anticancer_therapy"] is None
    assert EndpointSettings.model_validate(data) == settings


def test_an_unknown_endpoint_is_refused():
    with pytest.raises(InputError) as error:
        endpoint_settings(PROTOCOL).endpoint("PFS")
    assert error.value.field == "parameter"
