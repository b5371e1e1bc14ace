"""One-sample design of the landmark RFS rate: the formula, its limits, the simulation, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from scipy import stats
from scipy.special import exp1

from nettrial.analysis.design import OneSampleSurvivalDesign, SimulationCheck, kaplan_meier_at
from nettrial.exceptions import InputError

Z95 = stats.norm.ppf(0.95)


def g(p: float) -> float:
    return math.log(-math.log(p))


def design(p0=0.5, p1=0.7, **settings) -> OneSampleSurvivalDesign:
    settings = {"accrual_months": 24, "follow_up_months": 12, **settings}
    return OneSampleSurvivalDesign(p0, p1, **settings)


def uncensored(p0=0.5, p1=0.7, **settings) -> OneSampleSurvivalDesign:
    """Everyone followed past the landmark: censoring times are uniform on [36, 48] months."""
    return OneSampleSurvivalDesign(p0, p1, accrual_months=12, follow_up_months=36, **settings)


def wald_exact(p0: float, p: float, n: int, alpha: float = 0.05) -> float:
    """P(reject) when n patients are all followed to the landmark and each is free with probability p.

    Then the Kaplan-Meier estimate is x / n and Greenwood's sum is (1 - x/n) / x, so the test of the
    module is a test of a binomial proportion: sum the binomial probabilities of the x that reject.
    """
    rejecting = [n]  # no event before the landmark: S_hat = 1 rejects
    for x in range(1, n):
        s = x / n
        z = (g(p0) - g(s)) * -math.log(s) / math.sqrt((1 - s) / x)
        if z > stats.norm.ppf(1 - alpha):
            rejecting.append(x)
    return float(stats.binom.pmf(rejecting, n, p).sum())


# --- (a) the analytic formula against closed forms derived by hand ---------------------------------


@pytest.mark.parametrize(
    ("p0", "p1", "n"), [(0.5, 0.7, 35), (0.3, 0.45, 80), (0.8, 0.9, 150), (0.1, 0.2, 12)]
)
def test_without_censoring_the_power_is_that_of_a_proportion_on_the_log_log_scale(p0, p1, n) -> None:
    # Var(p_hat) = p (1 - p) / n; delta method with g'(p) = 1 / (p log p):
    # Var(g(p_hat)) = (1 - p) / (n p log(p)^2).
    variance = (1 - p1) / (n * p1 * math.log(p1) ** 2)
    by_hand = stats.norm.cdf((g(p0) - g(p1)) / math.sqrt(variance) - Z95)
    result = uncensored(p0, p1).power(n)
    assert result.power == pytest.approx(by_hand, abs=1e-10)
    assert result.followed_to_landmark == 1.0
    assert result.variance_per_patient == pytest.approx(n * variance, rel=1e-10)


def test_greenwood_limit_under_uniform_accrual_is_the_exponential_integral() -> None:
    # G(u) = 1 before f, (a + f - u) / a after: sigma2 = e^(lf) - 1 + l a e^(lb) (E1(l (b - t0)) - E1(l a)).
    a, f, t0 = 24.0, 12.0, 24.0
    d = design(accrual_months=a, follow_up_months=f)
    for p in (0.5, 0.7, 0.9):
        lam, b = -math.log(p) / t0, a + f
        closed = math.expm1(lam * f) + lam * a * math.exp(lam * b) * (exp1(lam * (b - t0)) - exp1(lam * a))
        assert d.greenwood_limit(p) == pytest.approx(closed, rel=1e-9)


def test_greenwood_limit_with_loss_to_follow_up_only() -> None:
    # Everyone starts together, followed 36 months; loss hazard eta:
    # sigma2 = l / (l + eta) (e^((l + eta) t0) - 1).
    d = OneSampleSurvivalDesign(0.5, 0.7, accrual_months=0, follow_up_months=36, dropout_rate_per_year=0.2)
    lam, eta = -math.log(0.7) / 24, -math.log(0.8) / 12
    closed = lam / (lam + eta) * math.expm1((lam + eta) * 24)
    assert d.greenwood_limit(0.7) == pytest.approx(closed, rel=1e-9)
    assert d.censoring_survival(24) == pytest.approx(0.8**2)


def test_censoring_survival_at_the_ends_of_accrual() -> None:
    d = design(accrual_months=24, follow_up_months=12)
    assert d.censoring_survival(12) == 1.0  # no one is censored before the follow-up after the last entry
    assert d.censoring_survival(24) == pytest.approx(0.5)
    assert d.censoring_survival(36) == 0.0


# --- (b) shape of the power curve -------------------------------------------------------------------


def test_power_increases_with_n_and_with_the_difference() -> None:
    by_n = [design().power(n).power for n in (10, 20, 35, 60, 100)]
    assert by_n == sorted(by_n) and len(set(by_n)) == len(by_n)
    by_p1 = [design(p1=p1).power(35).power for p1 in (0.55, 0.6, 0.65, 0.7, 0.8)]
    assert by_p1 == sorted(by_p1) and len(set(by_p1)) == len(by_p1)


@pytest.mark.parametrize("alpha", [0.025, 0.05, 0.1])
def test_power_tends_to_alpha_as_p1_approaches_p0(alpha) -> None:
    assert design(p1=0.5 + 1e-9, alpha=alpha).power(35).power == pytest.approx(alpha, abs=1e-6)


def test_censoring_costs_power() -> None:
    followed = [design(follow_up_months=f).power(35).power for f in (1, 6, 12, 24)]
    assert followed == sorted(followed) and followed[0] < followed[-1]
    assert design(dropout_rate_per_year=0.1).power(35).power < design().power(35).power


def test_analytic_power_approaches_the_exact_power_as_n_grows() -> None:
    # Large-sample formula: several points off at n = 35, within half a point at n = 2000.
    small = uncensored(p1=0.7)
    large = uncensored(p1=0.53)
    assert abs(small.power(35).power - wald_exact(0.5, 0.7, 35)) > 0.05
    assert abs(large.power(2000).power - wald_exact(0.5, 0.53, 2000)) < 0.005


# --- (c) the simulation -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [35, 60])
def test_simulation_agrees_with_the_exact_power_of_the_test_without_censoring(n) -> None:
    check = uncensored().simulate(n, n_sim=2000, seed=2)
    for simulated, p in ((check.type_i_error, 0.5), (check.power, 0.7)):
        exact = wald_exact(0.5, p, n)
        assert abs(simulated - exact) <= 3 * math.sqrt(exact * (1 - exact) / 2000)


@pytest.mark.parametrize(
    ("settings", "n"),
    [
        (
            {
                "p0": 0.3,
                "p1": 0.37,
                "accrual_months": 18,
                "follow_up_months": 12,
                "dropout_rate_per_year": 0.05,
            },
            800,
        ),
        (
            {
                "p0": 0.3,
                "p1": 0.4,
                "accrual_months": 18,
                "follow_up_months": 12,
                "dropout_rate_per_year": 0.05,
            },
            300,
        ),
    ],
)
def test_simulation_agrees_with_the_analytic_power_where_n_is_large(settings, n) -> None:
    # Settings where 50,000 simulated trials put the formula within 0.3 MC SEs (of 2,000 trials).
    check = design(**settings).simulate(n, n_sim=2000, seed=3)
    assert abs(check.type_i_error - 0.05) <= 3 * math.sqrt(0.05 * 0.95 / 2000)
    assert abs(check.power - check.analytic_power) <= 3 * math.sqrt(check.power * (1 - check.power) / 2000)
    assert check.agrees


def test_simulation_is_repeatable_with_a_seed() -> None:
    d = design()
    assert d.simulate(35, 500, seed=7) == d.simulate(35, 500, seed=7)
    assert d.simulate(35, 500, seed=7) != d.simulate(35, 500, seed=8)


def test_simulation_flags_a_formula_it_does_not_confirm() -> None:
    check = SimulationCheck(35, 2000, 1, 0.05, 0.005, 0.78, 0.009, 0.05, 0.69, 0.0, 8.7)
    assert not check.agrees
    assert "disagree" in check.explain()
    assert check.to_dict()["agrees"] is False


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kaplan_meier_at_equals_lifelines_with_ties(seed) -> None:
    rng = np.random.default_rng(seed)
    time = np.round(rng.exponential(20, (5, 30)))  # whole months: many ties, events with censorings
    event = rng.random((5, 30)) < 0.7
    time[0, :] = np.where(np.arange(30) < 29, 1.0, 5.0)  # the last patient has an event: S = 0
    event[0, :] = True
    for at in (0.5, 6.0, 24.0, 500.0):
        survival, greenwood = kaplan_meier_at(time, event, at)
        for row in range(5):
            kmf = KaplanMeierFitter().fit(time[row], event[row])
            expected = kmf.survival_function_at_times(at).iloc[0]
            assert survival[row] == pytest.approx(expected, abs=1e-12)
            if 0 < expected < 1:  # lifelines' log-log interval, rebuilt from the Greenwood sum
                ci = kmf.confidence_interval_.loc[:at].iloc[-1]
                half = 1.959963984540054 * math.sqrt(greenwood[row]) / -math.log(expected)
                assert math.exp(-math.exp(g(expected) + half)) == pytest.approx(ci.iloc[0], abs=1e-10)
                assert math.exp(-math.exp(g(expected) - half)) == pytest.approx(ci.iloc[1], abs=1e-10)


# --- (d) sample size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "target"),
    [({}, 0.8), ({}, 0.9), ({"p1": 0.6, "dropout_rate_per_year": 0.05}, 0.8), ({"alpha": 0.025}, 0.85)],
)
def test_sample_size_is_the_smallest_n_reaching_the_target(settings, target) -> None:
    d = design(**settings)
    result = d.sample_size(target)
    assert d.power(result.n).power >= target > d.power(result.n - 1).power
    assert (result.power, result.power_below) == (d.power(result.n).power, d.power(result.n - 1).power)


def test_sample_size_is_two_when_two_patients_suffice() -> None:
    d = design(p0=0.05, p1=0.95, follow_up_months=36)
    result = d.sample_size(d.power(2).power)
    assert result.n == 2 and result.power_below is None
    assert d.sample_size(d.power(2).power + 1e-9).n == 3


def test_binomial_comparison_is_the_exact_test() -> None:
    d = design(p0=0.5, p1=0.7)
    result = d.binomial(35, 0.8)

    def tail(k: int, n: int, p: float) -> float:
        return sum(math.comb(n, x) * p**x * (1 - p) ** (n - x) for x in range(k, n + 1))

    k = result.critical_value
    assert tail(k, 35, 0.5) <= 0.05 < tail(k - 1, 35, 0.5)
    assert result.actual_alpha == pytest.approx(tail(k, 35, 0.5), abs=1e-12)
    assert result.power == pytest.approx(tail(k, 35, 0.7), abs=1e-12)

    def exact_power(n: int) -> float:
        critical = next(c for c in range(n + 2) if tail(c, n, 0.5) <= 0.05)
        return tail(critical, n, 0.7)

    reached = [n for n in range(2, result.sample_size + 1) if exact_power(n) >= 0.8]
    assert reached == [result.sample_size]


# --- results explain themselves -------------------------------------------------------------------------


def test_summary_is_json_and_explains_itself() -> None:
    summary = design().summary(35, 0.8, n_sim=200, seed=1)
    data = json.loads(json.dumps(summary.to_dict()))
    assert set(data) == {"design", "power", "sample_size", "binomial", "simulation"}
    assert data["design"]["p0"] == 0.5 and data["power"]["n"] == 35
    text = summary.explain()
    assert f"{summary.power.power:.3f}" in text
    assert f"sample size {summary.sample_size.n}" in text
    assert "simulation check (200 trials" in text


# --- (e) bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"p0": 0.0}, "p0"),
        ({"p0": 1.0, "p1": 1.0}, "p0"),
        ({"p0": float("nan")}, "p0"),
        ({"p1": 1.0}, "p1"),
        ({"p1": 0.5}, "p1"),
        ({"p1": 0.4}, "p1"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 0.51}, "alpha"),
        ({"landmark_months": 0}, "landmark_months"),
        ({"landmark_months": -24}, "landmark_months"),
        ({"accrual_months": -1}, "accrual_months"),
        ({"follow_up_months": -1}, "follow_up_months"),
        ({"accrual_months": 12, "follow_up_months": 12}, "follow_up_months"),  # nobody reaches month 24
        ({"dropout_rate_per_year": 1.0}, "dropout_rate_per_year"),
        ({"dropout_rate_per_year": -0.1}, "dropout_rate_per_year"),
    ],
)
def test_bad_design_settings_name_the_field(settings, field) -> None:
    with pytest.raises(InputError) as caught:
        design(**settings)
    assert caught.value.field == field


def test_alpha_of_one_half_is_allowed() -> None:
    assert design(alpha=0.5).power(35).power > 0.5


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda d: d.power(1), "n"),
        (lambda d: d.power(2.5), "n"),
        (lambda d: d.sample_size(1.0), "target_power"),
        (lambda d: d.sample_size(0.0), "target_power"),
        (lambda d: d.binomial(35, 1.2), "target_power"),
        (lambda d: d.simulate(35, n_sim=99), "n_sim"),
        (lambda d: d.simulate(1), "n"),
        (lambda d: d.simulate(35, seed=-1), "seed"),
    ],
)
def test_bad_arguments_name_the_field(call, field) -> None:
    with pytest.raises(InputError) as caught:
        call(design())
    assert caught.value.field == field
