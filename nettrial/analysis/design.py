"""Study design: power and sample size of the one-sample test of the landmark recurrence-free rate.

The single-arm trial compares the 2-year RFS rate ``S(24)`` with a historical control:
H0: ``S(t0) = p0`` against H1: ``S(t0) = p1 > p0``, one-sided level ``alpha``.

Test statistic (the one the analysis will use, protocol.md section 4: Kaplan-Meier with the log-log
interval): with ``g(s) = log(-log s)`` and Greenwood's variance of the Kaplan-Meier estimate,

    Z = (g(p0) - g(S_hat)) / se,   se = sqrt(Greenwood sum) / |log S_hat|,

reject H0 when ``Z > z_{1-alpha}``; equivalently, when the lower limit of the one-sided ``1 - alpha``
log-log interval (lifelines' default, R ``conf.type="log-log"``) lies above ``p0``.

Sources: the large-sample limit of Greenwood's formula, Andersen, Borgan, Gill & Keiding, Statistical
Models Based on Counting Processes (1993), section IV.3, and Fleming & Harrington, Counting Processes and
Survival Analysis (1991), example 6.3.1; its use with exponential survival and uniform accrual for
single-arm designs on transformed scales, Nagashima K, Noma H, Sato Y, Gosho M, Pharm Stat
2021;20:499-511. The power formula is the large-sample one: at n = 35 it can be several points off the
power of the test as run, which is why every answer comes with a simulation check. Time is in months.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, asdict, dataclass
from typing import Any

import numpy as np
from scipy import integrate, stats

from nettrial.exceptions import InputError

METHOD = "large-sample Wald test of the Kaplan-Meier estimate, log(-log) scale, Greenwood variance under H1"
_MAX_N = 10**7  # sample-size search gives up beyond this (p1 practically equal to p0)
_CELLS_PER_CHUNK = 2_000_000  # simulated patients held in memory at once


def _check_probability(field: str, value: float) -> float:
    if not 0.0 < value < 1.0:  # also rejects NaN
        raise InputError(field, f"{value!r} is not a probability strictly between 0 and 1")
    return float(value)


def _check_n(field: str, n: int, minimum: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < minimum:
        raise InputError(field, f"{n!r} is not a whole number >= {minimum}")
    return int(n)


@dataclass(frozen=True)
class Power:
    """Analytic power of the design with ``n`` patients, and the quantities it came from."""

    n: int
    power: float
    alpha: float
    p0: float
    p1: float
    landmark_months: float
    hazard_h0: float  # per month, exponential survival: -log(p0) / landmark
    hazard_h1: float
    followed_to_landmark: float  # probability that a patient is not censored before the landmark
    variance_per_patient: float  # n * Var(g(S_hat)) under H1, g = log(-log)
    effect: float  # g(p0) - g(p1) on the log(-log) scale
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        return "\n".join(
            [
                f"power {self.power:.3f} with n = {self.n} (one-sided alpha {self.alpha:g})",
                f"  H0: S({self.landmark_months:g}) = {self.p0:g} (hazard {self.hazard_h0:.4f}/month); "
                f"H1: S({self.landmark_months:g}) = {self.p1:g} (hazard {self.hazard_h1:.4f}/month)",
                f"  probability of being followed to month {self.landmark_months:g} uncensored "
                f"(accrual, follow-up, loss): {self.followed_to_landmark:.3f}",
                f"  effect on the log(-log) scale {self.effect:.4f}, "
                f"variance per patient under H1 {self.variance_per_patient:.4f}",
                f"  method: {self.method}",
            ]
        )


@dataclass(frozen=True)
class SampleSize:
    """The smallest ``n`` whose analytic power reaches ``target_power``."""

    target_power: float
    n: int
    power: float  # at n
    power_below: float | None  # at n - 1 (None when n is the smallest allowed, 2)
    method: str = METHOD

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        below = "" if self.power_below is None else f"; n = {self.n - 1} gives {self.power_below:.3f}"
        return f"sample size {self.n} for power >= {self.target_power:g} (power {self.power:.3f}{below})"


@dataclass(frozen=True)
class BinomialDesign:
    """The exact binomial test that would apply if every patient were followed to the landmark."""

    n: int
    critical_value: int  # reject H0 when at least this many of n are recurrence-free at the landmark
    actual_alpha: float
    power: float
    target_power: float
    sample_size: int  # smallest n with exact power >= target_power (power is saw-toothed in n)
    method: str = "exact one-sample binomial test, no censoring (scipy.stats.binom)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        return "\n".join(
            [
                f"binomial comparison (no censoring): reject H0 if >= {self.critical_value} of {self.n} "
                f"are recurrence-free; actual alpha {self.actual_alpha:.4f}, power {self.power:.3f}",
                f"  smallest n with exact power >= {self.target_power:g}: {self.sample_size}",
            ]
        )


@dataclass(frozen=True)
class SimulationCheck:
    """Empirical type I error and power of the same test on simulated trials, against the formula."""

    n: int
    n_sim: int
    seed: int | None
    type_i_error: float
    type_i_error_se: float  # Monte-Carlo standard error, sqrt(p (1 - p) / n_sim)
    power: float
    power_se: float
    alpha: float
    analytic_power: float
    # (simulated - expected) in Monte-Carlo SEs computed at the expected value (alpha, analytic power)
    type_i_error_z: float
    power_z: float

    @property
    def agrees(self) -> bool:
        """Both simulated rates within 3 Monte-Carlo SEs of the nominal alpha and the analytic power."""
        return abs(self.type_i_error_z) <= 3 and abs(self.power_z) <= 3

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agrees": self.agrees}

    def explain(self) -> str:
        lines = [
            f"simulation check ({self.n_sim} trials of n = {self.n} under each hypothesis, "
            f"seed {self.seed}):",
            f"  type I error {self.type_i_error:.3f} (MC SE {self.type_i_error_se:.3f}; "
            f"nominal {self.alpha:g}, {self.type_i_error_z:+.1f} SE)",
            f"  power {self.power:.3f} (MC SE {self.power_se:.3f}; analytic {self.analytic_power:.3f}, "
            f"{self.power_z:+.1f} SE)",
        ]
        if not self.agrees:
            lines.append(
                "  the large-sample formula and the simulation disagree by more than 3 MC SEs at this n: "
                "the simulated rates are those of the test as it will be run"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class DesignSummary:
    """Everything ``nettrial design`` reports: the settings and the four answers."""

    design: OneSampleSurvivalDesign
    power: Power
    sample_size: SampleSize
    binomial: BinomialDesign
    simulation: SimulationCheck

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": asdict(self.design),
            "power": self.power.to_dict(),
            "sample_size": self.sample_size.to_dict(),
            "binomial": self.binomial.to_dict(),
            "simulation": self.simulation.to_dict(),
        }

    def explain(self) -> str:
        d = self.design
        loss = f", loss to follow-up {d.dropout_rate_per_year:g}/year" if d.dropout_rate_per_year else ""
        head = (
            f"one-sample design: accrual {d.accrual_months:g} months, follow-up {d.follow_up_months:g} "
            f"months after the last patient{loss}"
        )
        parts = [self.power, self.sample_size, self.binomial, self.simulation]
        return "\n".join([head, *(p.explain() for p in parts)])


@dataclass(frozen=True)
class OneSampleSurvivalDesign:
    """One-sample comparison of the landmark survival rate with a historical control.

    Parameters
    ----------
    p0, p1 : float
        Survival probability at the landmark under H0 (historical control) and H1; ``0 < p0 < p1 < 1``.
    alpha : float, default 0.05
        One-sided significance level, in (0, 0.5].
    landmark_months : float, default 24
        Time of the rate compared (months after the first dose).
    accrual_months : float
        Length of uniform accrual (0: everyone starts together).
    follow_up_months : float
        Follow-up after the last patient starts; the analysis is at ``accrual + follow_up``.
    dropout_rate_per_year : float, default 0
        Proportion lost to follow-up within a year, in [0, 1); loss is exponential with hazard
        ``-log(1 - rate) / 12`` per month, independent of recurrence.

    Notes
    -----
    Survival is exponential under each hypothesis, hazard ``lambda = -log(p) / landmark``. A patient is
    censored at ``C = min(A, L)``, ``A ~ Uniform(follow_up, accrual + follow_up)`` (administrative) and
    ``L`` exponential (loss). The asymptotic variance of the Kaplan-Meier estimate at ``t0`` is the
    limit of Greenwood's formula, ``n Var(S_hat(t0)) / S(t0)^2 -> sigma2 = int_0^t0 lambda / (S(u) G(u))
    du`` with ``G`` the censoring survival function (scipy.integrate.quad). By the delta method
    ``n Var(g(S_hat)) -> v1 = sigma2 / log(p1)^2`` under H1. The Wald statistic of the module docstring
    divides by the Greenwood estimate, whose limit under H1 is ``v1``, so

        power(n) = Phi( sqrt(n) |g(p1) - g(p0)| / sqrt(v1) - z_{1-alpha} ).

    Without censoring ``sigma2 = (1 - p1) / p1``: the binomial variance of the proportion. (The log-log
    formula of R ``rashnu::oneSurvSampleSize``, after Nagashima et al., uses the variance under H0; this
    module uses H1, the limit of what the test divides by.) The formula ignores that the estimated
    variance moves with ``S_hat`` and that small samples are discrete: with p0 = 0.5, p1 = 0.7, n = 35
    and no censoring before the landmark it gives 0.69 where the test's exact power is 0.77.
    :meth:`simulate` measures the test as run.
    """

    p0: float
    p1: float
    _: KW_ONLY
    alpha: float = 0.05
    landmark_months: float = 24.0
    accrual_months: float
    follow_up_months: float
    dropout_rate_per_year: float = 0.0

    def __post_init__(self) -> None:
        _check_probability("p0", self.p0)
        _check_probability("p1", self.p1)
        if not self.p1 > self.p0:
            raise InputError("p1", f"{self.p1!r} must be greater than p0 ({self.p0!r}): H1 is improvement")
        if not 0.0 < self.alpha <= 0.5:
            raise InputError("alpha", f"{self.alpha!r} is not a one-sided level in (0, 0.5]")
        if not 0.0 < self.landmark_months < math.inf:
            raise InputError("landmark_months", f"{self.landmark_months!r} is not a positive time")
        for field in ("accrual_months", "follow_up_months"):
            if not 0.0 <= getattr(self, field) < math.inf:
                raise InputError(field, f"{getattr(self, field)!r} is not a time >= 0")
        if not 0.0 <= self.dropout_rate_per_year < 1.0:
            raise InputError("dropout_rate_per_year", f"{self.dropout_rate_per_year!r} is not in [0, 1)")
        if self.accrual_months + self.follow_up_months <= self.landmark_months:
            raise InputError(
                "follow_up_months",
                f"accrual + follow-up ({self.accrual_months + self.follow_up_months:g} months) must exceed "
                f"the landmark ({self.landmark_months:g}) or no patient is followed to it",
            )

    # --- the model ----------------------------------------------------------------------------

    def hazard(self, p: float) -> float:
        """Exponential hazard per month with survival ``p`` at the landmark."""
        return -math.log(p) / self.landmark_months

    @property
    def dropout_hazard(self) -> float:
        return -math.log1p(-self.dropout_rate_per_year) / 12.0

    def censoring_survival(self, t: float) -> float:
        """``G(t) = P(C > t)``: not censored (by the analysis date or by loss) before ``t`` months."""
        a, f = self.accrual_months, self.follow_up_months
        administrative = (1.0 if t < f else 0.0) if a == 0 else min(1.0, max(0.0, (a + f - t) / a))
        return administrative * math.exp(-self.dropout_hazard * t)

    def greenwood_limit(self, p: float) -> float:
        """``sigma2 = int_0^t0 lambda / (S(u) G(u)) du``: the limit of ``n Var(S_hat(t0)) / S(t0)^2``."""
        lam, t0, f = self.hazard(p), self.landmark_months, self.follow_up_months
        points = [f] if 0.0 < f < t0 else None  # G has a kink where administrative censoring begins
        value, _ = integrate.quad(
            lambda u: lam * math.exp(lam * u) / self.censoring_survival(u), 0.0, t0, points=points, limit=200
        )
        return value

    # --- analytic answers ---------------------------------------------------------------------

    def _power_parts(self) -> tuple[float, float]:
        effect = math.log(-math.log(self.p0)) - math.log(-math.log(self.p1))
        variance = self.greenwood_limit(self.p1) / math.log(self.p1) ** 2
        return effect, variance

    @staticmethod
    def _power_from(n: int, effect: float, variance: float, alpha: float) -> float:
        return float(stats.norm.cdf(math.sqrt(n) * effect / math.sqrt(variance) - stats.norm.ppf(1 - alpha)))

    def power(self, n: int) -> Power:
        """Analytic power with ``n`` patients (see the class notes for the formula)."""
        n = _check_n("n", n, 2)
        effect, variance = self._power_parts()
        return Power(
            n=n,
            power=self._power_from(n, effect, variance, self.alpha),
            alpha=self.alpha,
            p0=self.p0,
            p1=self.p1,
            landmark_months=self.landmark_months,
            hazard_h0=self.hazard(self.p0),
            hazard_h1=self.hazard(self.p1),
            followed_to_landmark=self.censoring_survival(self.landmark_months),
            variance_per_patient=variance,
            effect=effect,
        )

    def sample_size(self, target_power: float = 0.8) -> SampleSize:
        """The smallest ``n >= 2`` whose analytic power is at least ``target_power`` (bisection on n)."""
        target = _check_probability("target_power", target_power)
        effect, variance = self._power_parts()

        def reaches(n: int) -> bool:
            return self._power_from(n, effect, variance, self.alpha) >= target

        low, high = 1, 2  # invariant: power(low) < target (low = 1 stands for "none"), power(high) >= target
        while not reaches(high):
            low, high = high, high * 2
            if high > _MAX_N:
                raise InputError("target_power", f"{target!r} needs more than {_MAX_N} patients")
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if reaches(mid) else (mid, high)
        below = None if high == 2 else self._power_from(high - 1, effect, variance, self.alpha)
        return SampleSize(target, high, self._power_from(high, effect, variance, self.alpha), below)

    def binomial(self, n: int, target_power: float = 0.8) -> BinomialDesign:
        """Exact one-sample binomial test of the landmark proportion, as if nobody were censored."""
        n = _check_n("n", n, 2)
        target = _check_probability("target_power", target_power)
        critical, actual_alpha, power = _binomial_test(np.array([n]), self.p0, self.p1, self.alpha)
        # Exact power is saw-toothed in n: scan every n up to well past the normal-approximation answer.
        z = stats.norm.ppf(1 - self.alpha) + stats.norm.ppf(target)
        guess = (z / (math.asin(math.sqrt(self.p1)) - math.asin(math.sqrt(self.p0)))) ** 2 / 4
        candidates = np.arange(2, int(4 * guess) + 100)
        reached = np.flatnonzero(_binomial_test(candidates, self.p0, self.p1, self.alpha)[2] >= target)
        if reached.size == 0:
            raise InputError("target_power", f"{target!r} is not reached by the binomial test")
        return BinomialDesign(
            n=n,
            critical_value=int(critical[0]),
            actual_alpha=float(actual_alpha[0]),
            power=float(power[0]),
            target_power=target,
            sample_size=int(candidates[reached[0]]),
        )

    # --- simulation -----------------------------------------------------------------------------

    def simulate_trials(self, n: int, p: float, n_sim: int, rng: np.random.Generator) -> np.ndarray:
        """Whether each of ``n_sim`` simulated trials (true landmark rate ``p``) rejects H0."""
        rejected = []
        rows = max(1, _CELLS_PER_CHUNK // n)
        for start in range(0, n_sim, rows):
            size = (min(rows, n_sim - start), n)
            event_time = rng.exponential(1.0 / self.hazard(p), size)
            entry = rng.uniform(0.0, self.accrual_months, size)
            censor_time = self.accrual_months + self.follow_up_months - entry
            if self.dropout_rate_per_year > 0:
                censor_time = np.minimum(censor_time, rng.exponential(1.0 / self.dropout_hazard, size))
            time = np.minimum(event_time, censor_time)
            survival, greenwood = kaplan_meier_at(time, event_time <= censor_time, self.landmark_months)
            rejected.append(self._rejects(survival, greenwood))
        return np.concatenate(rejected)

    def _rejects(self, survival: np.ndarray, greenwood: np.ndarray) -> np.ndarray:
        # S_hat = 1 (no event before the landmark) is the strongest evidence for H1 and rejects;
        # S_hat = 0 cannot reject. Between, the Wald test on the log(-log) scale.
        inside = (survival > 0) & (survival < 1)
        s = np.where(inside, survival, 0.5)
        log_s = np.log(s)
        z = (math.log(-math.log(self.p0)) - np.log(-log_s)) * -log_s / np.sqrt(np.where(inside, greenwood, 1))
        return np.where(inside, z > stats.norm.ppf(1 - self.alpha), survival >= 1)

    def simulate(self, n: int, n_sim: int = 2000, seed: int | None = 1) -> SimulationCheck:
        """Empirical type I error and power of the test over ``n_sim`` trials under H0 and under H1.

        Each trial draws exponential recurrence times, uniform entry, loss to follow-up, and is
        analysed with the Kaplan-Meier estimate and Greenwood variance at the landmark
        (:func:`kaplan_meier_at`, equal to lifelines' ``KaplanMeierFitter``). Monte-Carlo standard
        errors are ``sqrt(p (1 - p) / n_sim)``.
        """
        n = _check_n("n", n, 2)
        n_sim = _check_n("n_sim", n_sim, 100)
        if seed is not None and (isinstance(seed, bool) or int(seed) != seed or seed < 0):
            raise InputError("seed", f"{seed!r} is not a whole number >= 0")
        rng = np.random.default_rng(seed)
        type_i = float(self.simulate_trials(n, self.p0, n_sim, rng).mean())
        power = float(self.simulate_trials(n, self.p1, n_sim, rng).mean())
        analytic = self.power(n).power
        return SimulationCheck(
            n=n,
            n_sim=n_sim,
            seed=seed,
            type_i_error=type_i,
            type_i_error_se=_mc_se(type_i, n_sim),
            power=power,
            power_se=_mc_se(power, n_sim),
            alpha=self.alpha,
            analytic_power=analytic,
            type_i_error_z=_mc_z(type_i, self.alpha, n_sim),
            power_z=_mc_z(power, analytic, n_sim),
        )

    def summary(
        self, n: int, target_power: float = 0.8, n_sim: int = 2000, seed: int | None = 1
    ) -> DesignSummary:
        """Power at ``n``, the sample size for ``target_power``, the binomial comparison, the simulation."""
        return DesignSummary(
            design=self,
            power=self.power(n),
            sample_size=self.sample_size(target_power),
            binomial=self.binomial(n, target_power),
            simulation=self.simulate(n, n_sim, seed),
        )


def _mc_se(rate: float, n_sim: int) -> float:
    return math.sqrt(rate * (1 - rate) / n_sim)


def _mc_z(observed: float, expected: float, n_sim: int) -> float:
    """``observed - expected`` in Monte-Carlo SEs at the expected rate (a power of 1.0 has none)."""
    se = _mc_se(expected, n_sim)
    if se == 0:
        return 0.0 if observed == expected else math.copysign(math.inf, observed - expected)
    return (observed - expected) / se


def _binomial_test(
    n: np.ndarray, p0: float, p1: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Critical value ``k`` (smallest with ``P(X >= k | p0) <= alpha``), actual alpha and power, per n."""
    critical = stats.binom.ppf(1 - alpha, n, p0) + 1
    # ppf works on floating-point sums: step to the exact boundary where it lands one off.
    critical = np.where(stats.binom.sf(critical - 1, n, p0) > alpha, critical + 1, critical)
    critical = np.where(stats.binom.sf(critical - 2, n, p0) <= alpha, critical - 1, critical)
    return critical.astype(int), stats.binom.sf(critical - 1, n, p0), stats.binom.sf(critical - 1, n, p1)


def kaplan_meier_at(time: np.ndarray, event: np.ndarray, at: float) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate and Greenwood sum at one time, for many samples at once.

    Parameters
    ----------
    time : array of shape (samples, n)
        Follow-up times, one sample per row.
    event : array of bool, same shape
        True for an event, False for censoring.
    at : float
        Time at which the estimate is wanted (the last value is carried forward past the last time).

    Returns
    -------
    survival, greenwood : arrays of shape (samples,)
        ``S_hat(at)`` and ``sum d / (r (r - d))`` over event times ``<= at``, so that Greenwood's
        variance is ``survival**2 * greenwood`` (0 where ``S_hat`` is 0, as in lifelines).

    Notes
    -----
    Vectorised equivalent of lifelines' ``KaplanMeierFitter`` (``survival_function_`` and the
    ``_cumulative_sq_`` behind its log-log interval), tested against it with tied times. Rows are
    sorted with events before censorings at a tie, so those censored at ``t`` are at risk at ``t``;
    taking tied events one at a time gives the same product and the same Greenwood sum.
    """
    time = np.atleast_2d(np.asarray(time, dtype=float))
    event = np.atleast_2d(np.asarray(event, dtype=bool))
    order = np.lexsort((~event, time), axis=-1)
    time, event = np.take_along_axis(time, order, -1), np.take_along_axis(event, order, -1)
    at_risk = np.arange(time.shape[1], 0, -1, dtype=float)
    counts = event & (time <= at)
    last = at_risk == 1  # an event with one at risk takes S to 0
    with np.errstate(divide="ignore"):
        log_factor = np.where(counts, np.log1p(-1.0 / at_risk), 0.0)
    terms = np.where(counts & ~last, 1.0 / (at_risk * np.maximum(at_risk - 1, 1)), 0.0)
    survival = np.exp(log_factor.sum(axis=-1))
    greenwood = np.where(survival > 0, terms.sum(axis=-1), 0.0)
    return survival, greenwood
