"""Survival statistics against R ``survival`` (committed reference values) and at their boundaries.

The reference values in ``reference/survival_reference.json`` were written by
``reference/survival_reference.R`` (R 4.2, survival 3.5; log-log intervals and Efron ties set
explicitly). Tolerances: 1e-6 on estimates (survival, medians, coefficients, standard errors,
hazard ratios, chi-square), 1e-4 on interval limits and p-values.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.datasets import load_lung
from scipy.stats import norm

from nettrial.analysis.survival import SurvivalAnalysis, design_matrix
from nettrial.exceptions import InputError

REFERENCE = Path(__file__).parent / "reference"
R_OUTPUT = json.loads((REFERENCE / "survival_reference.json").read_text())
ESTIMATE = {"rel": 1e-6, "abs": 1e-9}
INTERVAL = {"rel": 1e-4, "abs": 1e-6}
P_VALUE = {"rel": 1e-4, "abs": 1e-12}


def approx(expected, tolerance):
    """pytest.approx that lets R's NA (None) match only None."""
    if isinstance(expected, list):
        return [approx(value, tolerance) for value in expected]
    return None if expected is None else pytest.approx(expected, **tolerance)


def data_set(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE / f"{name}.csv")


# --- the committed inputs are what they claim to be ---------------------------------------------


def test_lung_csv_is_lifelines_lung_with_status_0_1():
    lung, shipped = data_set("lung"), load_lung()
    assert set(lung["status"]) == {0, 1} and int(lung["status"].sum()) == 165  # R: 165 with status 2
    pd.testing.assert_frame_equal(lung, shipped[lung.columns.tolist()], check_dtype=False)


def test_ties_csv_is_what_make_ties_writes_and_is_heavily_tied():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_ties", REFERENCE / "make_ties.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ties = data_set("ties")
    pd.testing.assert_frame_equal(ties, module.make_ties(), check_dtype=False)
    assert ties["time"].between(1, 20).all() and ties["time"].nunique() <= 20 < len(ties) / 5


# --- agreement with R ----------------------------------------------------------------------------

FITS = {
    "lung": {"group": "sex", "covariates": ["age", "sex", "ph.ecog"]},
    "ties": {"group": "site", "covariates": ["site", "ki67"]},
}


@pytest.fixture(scope="module", params=sorted(FITS))
def fitted(request):
    """(reference, KM/log-rank fit on every row, Cox fit on the rows R's coxph used)."""
    name, setting = request.param, FITS[request.param]
    frame, reference = data_set(name), R_OUTPUT[name]
    km = SurvivalAnalysis(landmarks=reference["km"]["times"]).fit(
        frame, time="time", event="status", group=setting["group"]
    )
    complete = frame.dropna(subset=setting["covariates"])  # lung: one row without ph.ecog, as in R
    assert len(complete) == reference["cox"]["n"]
    cox = SurvivalAnalysis().fit(complete, time="time", event="status", covariates=setting["covariates"])
    return reference, km, cox


def test_counts_match_r(fitted):
    reference, km, cox = fitted
    assert (km.n_, km.events_) == (reference["n"], reference["events"])
    assert (cox.n_, cox.events_) == (reference["cox"]["n"], reference["cox"]["events"])


def test_kaplan_meier_at_times_matches_r(fitted):
    reference, km, _ = fitted
    r_km = reference["km"]
    assert r_km["conf_type"] == "log-log" == km.ci_method
    assert [p["time"] for p in km.landmarks_] == r_km["times"]
    assert [p["survival"] for p in km.landmarks_] == approx(r_km["survival"], ESTIMATE)
    assert [p["lower"] for p in km.landmarks_] == approx(r_km["lower"], INTERVAL)
    assert [p["upper"] for p in km.landmarks_] == approx(r_km["upper"], INTERVAL)
    assert km.at_risk_.loc[r_km["times"], "all"].tolist() == r_km["n_risk"]


@pytest.mark.parametrize("which", ["median", "follow_up"])
def test_median_and_reverse_km_follow_up_match_r(fitted, which):
    reference, km, _ = fitted
    ours = km.median_ if which == "median" else km.follow_up_
    assert ours["estimate"] == approx(reference[which]["estimate"], ESTIMATE)
    assert [ours["lower"], ours["upper"]] == approx(
        [reference[which]["lower"], reference[which]["upper"]], INTERVAL
    )


def test_logrank_matches_r_survdiff(fitted):
    reference, km, _ = fitted
    r_test = reference["logrank"]
    assert km.group_column_ == r_test["group"]
    assert km.logrank_["statistic"] == approx(r_test["statistic"], ESTIMATE)
    assert km.logrank_["df"] == r_test["df"]
    assert km.logrank_["p"] == approx(r_test["p"], P_VALUE)


def test_cox_efron_matches_r_coxph(fitted):
    reference, _, cox = fitted
    r_cox = reference["cox"]
    assert r_cox["ties"] == "efron"
    assert [t["term"] for t in cox.cox_] == r_cox["terms"]  # also the dummy coding of site
    for key in ("coef", "se", "hr"):
        assert [t[key] for t in cox.cox_] == approx(r_cox[key], ESTIMATE), key
    for key in ("hr_lower", "hr_upper"):
        assert [t[key] for t in cox.cox_] == approx(r_cox[key], INTERVAL), key
    assert [t["p"] for t in cox.cox_] == approx(r_cox["p"], P_VALUE)


@pytest.mark.parametrize("case", sorted(R_OUTPUT["edge_cases"]))
def test_median_edge_cases_follow_r_quantile_rule(case):
    reference = R_OUTPUT["edge_cases"][case]
    frame = pd.DataFrame({"t": reference["time"], "e": reference["status"]})
    median = SurvivalAnalysis(landmarks=()).fit(frame, "t", "e").median_
    expected = [reference[k] for k in ("estimate", "lower", "upper")]
    assert [median[k] for k in ("estimate", "lower", "upper")] == approx(expected, ESTIMATE), reference["why"]


def test_lifelines_own_median_differs_where_r_takes_a_midpoint():
    """Why the median is not lifelines' ``median_survival_time_``: on a plateau at 0.5 it differs."""
    for case in ("plateau", "last_point"):
        reference = R_OUTPUT["edge_cases"][case]
        own = KaplanMeierFitter().fit(reference["time"], reference["status"]).median_survival_time_
        assert own != reference["estimate"]


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed (R is optional)")
def test_r_script_reproduces_the_committed_reference(tmp_path):
    out = tmp_path / "reference.json"
    script = REFERENCE / "survival_reference.R"
    run = subprocess.run(["Rscript", str(script), str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    produced = json.loads(out.read_text())
    if produced["software"] != R_OUTPUT["software"]:
        pytest.fail(f"R or survival differ from the committed run: {produced['software']}")
    assert produced == R_OUTPUT


# --- the Kaplan-Meier read-outs at their boundaries ----------------------------------------------

SMALL = pd.DataFrame({"t": [2.0, 4.0, 4.0, 6.0, 8.0, 10.0], "e": [1, 1, 0, 1, 0, 0]})


def test_landmark_at_an_event_time_counts_the_event_and_just_before_does_not():
    fit = SurvivalAnalysis(landmarks=(3.999, 4, 10)).fit(SMALL, "t", "e")
    before, at, last = fit.landmarks_
    assert before["survival"] == pytest.approx(5 / 6)
    assert at["survival"] == pytest.approx(5 / 6 * 4 / 5)  # 5 at risk at 4, one event (one censored)
    assert last["survival"] == pytest.approx(5 / 6 * 4 / 5 * 2 / 3)
    assert before["lower"] < before["survival"] < before["upper"]
    assert fit.at_risk_.loc[[0, 3.999, 4, 10], "all"].tolist() == [6, 5, 5, 1]  # time >= t


def test_beyond_the_last_time_survival_is_not_estimable():
    fit = SurvivalAnalysis(landmarks=(10, 10.001)).fit(SMALL, "t", "e")
    assert fit.landmarks_[0]["survival"] is not None
    assert fit.landmarks_[1] == {"time": 10.001, "survival": None, "lower": None, "upper": None}
    assert fit.at_risk_.loc[10.001, "all"] == 0


def test_no_interval_where_survival_is_zero_as_r():
    frame = pd.DataFrame({"t": [1, 2, 2, 3, 4], "e": [1, 1, 0, 1, 1]})
    fit = SurvivalAnalysis(landmarks=(3, 4)).fit(frame, "t", "e")
    assert fit.landmarks_[0]["lower"] is not None
    assert fit.landmarks_[1] == {"time": 4, "survival": 0.0, "lower": None, "upper": None}
    assert np.allclose(fit.km_.confidence_interval_.iloc[-1], 0)  # lifelines itself says [0, 0]


def test_median_not_reached():
    frame = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 0, 0, 0]})
    fit = SurvivalAnalysis().fit(frame, "t", "e")
    # the lower confidence curve does cross 0.5 (at 1), as in R's quantile(survfit(...)): NA, 1, NA
    assert fit.median_ == {"estimate": None, "lower": 1.0, "upper": None}
    assert "median not reached" in fit.explain()


def test_time_zero_and_boolean_events_are_accepted():
    frame = pd.DataFrame({"t": [0.0, 1.0, 2.0, 3.0], "e": [True, False, True, False]})
    as_bool = SurvivalAnalysis(landmarks=(0,)).fit(frame, "t", "e")
    as_int = SurvivalAnalysis(landmarks=(0,)).fit(frame.assign(e=frame["e"].astype(int)), "t", "e")
    assert as_bool.to_dict() == as_int.to_dict()
    assert as_bool.landmarks_[0]["survival"] == pytest.approx(3 / 4)  # the event at 0 counts at 0
    assert as_bool.at_risk_.loc[0, "all"] == 4


def test_alpha_sets_every_interval():
    frame = data_set("ties")
    wide, narrow = (
        SurvivalAnalysis(landmarks=(3, 8, 12), alpha=alpha).fit(frame, "time", "status", covariates=["ki67"])
        for alpha in (0.05, 0.10)
    )
    for w, n in zip(wide.landmarks_, narrow.landmarks_, strict=True):
        assert w["lower"] < n["lower"] < n["survival"] < n["upper"] < w["upper"]
    term = narrow.cox_[0]
    assert term["hr_lower"] == pytest.approx(math.exp(term["coef"] - norm.ppf(0.95) * term["se"]))


def test_at_risk_table_has_one_column_per_group():
    fit = SurvivalAnalysis(landmarks=(5, 12)).fit(data_set("ties"), "time", "status", group="site")
    table = fit.at_risk_
    assert table.columns.tolist() == ["all", "pancreas", "rectum", "small_bowel"]
    assert table.index.tolist() == [0, 5, 12]
    assert (table[["pancreas", "rectum", "small_bowel"]].sum(axis=1) == table["all"]).all()
    assert list(fit.km_by_group_) == ["pancreas", "rectum", "small_bowel"]


# --- output shape --------------------------------------------------------------------------------


def test_to_dict_has_the_issue_keys_and_only_asked_for_sections():
    frame = data_set("ties")
    plain = SurvivalAnalysis().fit(frame, "time", "status").to_dict()
    assert set(plain) == {"n", "events", "median", "landmarks", "follow_up", "at_risk"}
    assert set(plain["median"]) == {"estimate", "lower", "upper"}
    assert [set(p) for p in plain["landmarks"]] == [{"time", "survival", "lower", "upper"}] * 3
    full = SurvivalAnalysis().fit(frame, "time", "status", group="site", covariates=["site", "ki67"])
    full = full.to_dict()
    assert set(full) == set(plain) | {"logrank", "cox"}
    assert set(full["logrank"]) == {"statistic", "df", "p"}
    assert set(full["cox"][0]) == {"term", "coef", "se", "hr", "hr_lower", "hr_upper", "p"}
    json.dumps(full, allow_nan=False)  # plain JSON: no NaN, no numpy types


def test_explain_names_method_and_results():
    fit = SurvivalAnalysis().fit(data_set("ties"), "time", "status", group="site", covariates=["ki67"])
    text = fit.explain()
    for expected in ("log-log", "n = 200, events = 145", "median 6 (95% CI 5 to 7)", "log-rank", "Efron"):
        assert expected in text


# --- dummy coding --------------------------------------------------------------------------------


def test_text_covariates_are_dummy_coded_against_the_first_sorted_level():
    frame = pd.DataFrame(
        {"site": ["small_bowel", "pancreas", "rectum", "pancreas"], "ki67": [3, 5, 20, 1], "x": [1, 2, 3, 4]}
    )
    design = design_matrix(frame, ["site", "ki67"])
    assert design.columns.tolist() == ["site[rectum]", "site[small_bowel]", "ki67"]
    assert design["site[rectum]"].tolist() == [0, 0, 1, 0]
    assert design["site[small_bowel]"].tolist() == [1, 0, 0, 0]
    assert design["ki67"].tolist() == [3, 5, 20, 1]


def test_numeric_codes_stay_numeric_and_text_codes_become_terms():
    frame = pd.DataFrame({"grade": [1, 2, 3, 2], "stage": ["II", "I", "III", "I"]})
    assert design_matrix(frame, ["grade", "stage"]).columns.tolist() == ["grade", "stage[II]", "stage[III]"]


# --- bad input: an InputError naming the field, nothing dropped -----------------------------------


def bad(frame=SMALL, **fit):
    arguments = {"time": "t", "event": "e"} | fit
    with pytest.raises(InputError) as raised:
        SurvivalAnalysis().fit(frame, **arguments)
    return raised.value


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"time": "days"}, "time"),
        ({"event": "status"}, "event"),
        ({"group": "arm"}, "group"),
        ({"covariates": ["age"]}, "covariates"),
    ],
)
def test_missing_column_names_its_field(arguments, field):
    error = bad(**arguments)
    assert error.field == field and "no column" in str(error)


def test_missing_values_are_counted_not_dropped():
    frame = SMALL.assign(t=[2.0, np.nan, 4.0, np.nan, 8.0, 10.0])
    error = bad(frame)
    assert error.field == "time" and "2 of 6 rows" in str(error)
    assert bad(SMALL.assign(g=["a", None, "b", "a", "b", "a"]), group="g").field == "group"


@pytest.mark.parametrize(
    ("times", "words"),
    [
        ([2.0, -0.001, 4.0, 6.0, 8.0, 10.0], "negative in 1 rows"),
        ([2.0, np.inf, 4.0, 6.0, 8.0, 10.0], "not finite"),
        (["2", "four", "4", "6", "8", "10"], "not numeric"),
        ([True, False, True, True, False, True], "true/false"),
    ],
)
def test_time_must_be_a_number_at_least_zero(times, words):
    error = bad(SMALL.assign(t=times))
    assert error.field == "time" and words in str(error)


@pytest.mark.parametrize("events", [[1, 2, 0, 1, 0, 0], [1, 0.5, 0, 1, 0, 0], ["1", "0", "0", "1", "0", "0"]])
def test_event_must_be_zero_or_one(events):
    error = bad(SMALL.assign(e=events))
    assert error.field == "event" and "1 (event) or 0 (censored)" in str(error)


def test_no_rows():
    assert bad(SMALL.iloc[:0]).field == "data"


def test_a_group_needs_two_levels():
    error = bad(SMALL.assign(g="pancreas"), group="g")
    assert error.field == "group" and "one level" in str(error)


@pytest.mark.parametrize("column", [[60] * 6, ["pancreas"] * 6])
def test_a_constant_covariate_is_refused(column):
    error = bad(SMALL.assign(c=column), covariates=["c"])
    assert error.field == "covariates" and ("constant" in str(error) or "one level" in str(error))


def test_collinear_covariates_are_bad_input():
    frame = data_set("ties").assign(double=lambda d: 2 * d["ki67"])
    error = bad(frame, time="time", event="status", covariates=["ki67", "double"])
    assert error.field == "covariates" and "does not converge" in str(error)


@pytest.mark.parametrize("covariates", [["t"], ["x", "x"]])
def test_a_covariate_cannot_repeat_or_be_the_time(covariates):
    assert bad(SMALL.assign(x=range(6)), covariates=covariates).field == "covariates"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"ci_method": "plain"}, "ci_method"),
        ({"ci_method": "log"}, "ci_method"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"landmarks": (12, -1)}, "landmarks"),
        ({"landmarks": ("12",)}, "landmarks"),
    ],
)
def test_settings_are_checked(settings, field):
    with pytest.raises(InputError) as raised:
        SurvivalAnalysis(**settings)
    assert raised.value.field == field
