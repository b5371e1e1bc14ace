"""Survival statistics: Kaplan-Meier, log-rank and Cox, wrapped from lifelines and checked against R.

``SurvivalAnalysis`` follows the lifelines estimator contract: settings in ``__init__``, data in
``fit()`` (which returns ``self``), fitted values end in ``_``. It adds nothing to lifelines'
statistics except where R ``survival`` (the reference statisticians hand to a sponsor) reports
something else, each place stated here and tested against R's own output
(``tests/analysis/reference/survival_reference.R``):

- Confidence intervals of S(t): lifelines computes only the "exponential Greenwood" interval,
  exp(-exp(log(-log S) -/+ z se)), which is R's ``conf.type="log-log"``; so that is the one method
  offered. Where S(t) = 0 R reports no interval (NA) while lifelines reports [0, 0]; we follow R.
- Median (and the median follow-up): R's ``quantile.survfit`` rule, not lifelines'
  ``median_survival_time_``. The estimate is the first time the curve drops to <= 0.5; when the
  curve sits at exactly 0.5 over an interval R takes the midpoint of that interval (and, when it
  ends at 0.5, the midpoint of the last drop and the last time), where lifelines takes its start.
  The interval's limits are the same rule applied to lifelines' lower and upper confidence curves.
- Cox: lifelines' ``CoxPHFitter`` uses Efron's method for ties (as R's ``coxph`` by default). Its
  default stopping rule (Newton decrement < 1e-7) leaves errors of about 1e-6 in the coefficients
  (2e-6 on ``sex`` in R's lung data), so we stop at 1e-12, as converged as R's fit; this costs about
  one more Newton step.
- Survival at a landmark time t is the value of the Kaplan-Meier step function at t (an event at t
  counts), as R's ``summary(fit, times=)``; beyond the last observed time it is not estimable
  (``None``), as R (``extend=FALSE``) leaves it out.

Median follow-up is the reverse Kaplan-Meier median (Schemper and Smith, Control Clin Trials 1996):
the same estimator with censoring as the event.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from nettrial.exceptions import InputError

CI_METHODS = {"log-log": "log(-log S(t)) (exponential Greenwood), R conf.type='log-log'"}
COX_FIT_OPTIONS = {"precision": 1e-12}  # see the module docstring: agreement with R to 1e-6
_TOLERANCE = math.sqrt(np.finfo(float).eps)  # R's quantile.survfit default tolerance


class SurvivalAnalysis:
    """Kaplan-Meier, log-rank test and Cox model of one time-to-event table.

    Parameters
    ----------
    landmarks : sequence of float, default (12, 24, 36)
        Times at which survival and the number at risk are reported (in the unit of the time
        column; months for the study's RFS).
    alpha : float, default 0.05
        1 - confidence level of every interval.
    ci_method : {"log-log"}
        Transformation of the Kaplan-Meier interval; only R's ``conf.type="log-log"`` is offered
        because it is the only interval lifelines computes.

    Attributes
    ----------
    n_, events_ : int
        Rows analysed and events among them.
    km_ : lifelines.KaplanMeierFitter
        Fitted on all rows.
    km_by_group_ : dict
        One fitted ``KaplanMeierFitter`` per group level (empty without a group).
    median_, follow_up_ : dict
        ``{"estimate", "lower", "upper"}``; ``None`` where not reached.
    landmarks_ : list of dict
        ``{"time", "survival", "lower", "upper"}`` for each landmark time.
    at_risk_ : pandas.DataFrame
        Number at risk at time 0 and at each landmark (rows) for all rows and each group (columns).
    logrank_ : dict or None
        ``{"statistic", "df", "p"}`` of the log-rank test between groups.
    cox_ : list of dict or None
        ``{"term", "coef", "se", "hr", "hr_lower", "hr_upper", "p"}`` for each model term.
    coxph_ : lifelines.CoxPHFitter or None
        The fitted Cox model.

    Examples
    --------
    >>> analysis = SurvivalAnalysis(landmarks=(12, 24)).fit(frame, time="AVAL", event="EVENT")
    >>> analysis.median_["estimate"]
    """

    def __init__(
        self, landmarks: Sequence[float] = (12, 24, 36), alpha: float = 0.05, ci_method: str = "log-log"
    ):
        if ci_method not in CI_METHODS:
            raise InputError(
                "ci_method",
                f"{ci_method!r} is not offered: lifelines computes only the log-log interval",
                allowed=CI_METHODS,
            )
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
            raise InputError("alpha", f"{alpha!r} is not a number between 0 and 1")
        for value in landmarks:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
                raise InputError("landmarks", f"{value!r} is not a time >= 0")
        self.landmarks = tuple(sorted(set(landmarks)))
        self.alpha = alpha
        self.ci_method = ci_method

    def fit(
        self,
        frame: pd.DataFrame,
        time: str = "AVAL",
        event: str = "EVENT",
        group: str | None = None,
        covariates: Iterable[str] = (),
    ) -> SurvivalAnalysis:
        """Estimate survival, compare groups and fit the Cox model; every row is used.

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per participant (or registry case).
        time : str
            Column of follow-up times (numbers >= 0).
        event : str
            Column of event flags: 1/0 or true/false (1 = event, 0 = censored; an ADaM ``CNSR``
            column is the opposite and must be converted first).
        group : str, optional
            Column whose levels get one Kaplan-Meier curve each and a log-rank test.
        covariates : iterable of str
            Columns of the Cox model. Numeric columns enter as they are; other columns are
            dummy-coded against their first level in sorted order, terms named ``site[rectum]``.

        Returns
        -------
        SurvivalAnalysis
            ``self``, with the fitted attributes.

        Raises
        ------
        InputError
            Naming the field: a missing column, missing values (with how many rows), a time that is
            not a number >= 0, an event that is not 0/1, no rows, a group with one level, a constant
            covariate. Nothing is dropped silently.
        """
        from lifelines import KaplanMeierFitter

        covariates = list(covariates)
        durations, observed = _checked_input(frame, time, event, group, covariates)
        self.time_column_, self.event_column_, self.group_column_ = time, event, group
        self.n_, self.events_ = len(durations), int(observed.sum())

        self.km_ = KaplanMeierFitter(alpha=self.alpha, label="all").fit(durations, observed)
        self.median_ = _median(self.km_)
        self.landmarks_ = [_survival_at(self.km_, t) for t in self.landmarks]
        reverse = KaplanMeierFitter(alpha=self.alpha, label="follow-up").fit(durations, ~observed)
        self.follow_up_ = _median(reverse)

        self.km_by_group_, self.logrank_ = {}, None
        if group is not None:
            self.km_by_group_, self.logrank_ = self._compare_groups(frame[group], durations, observed)
        times = sorted({0, *self.landmarks})
        self.at_risk_ = pd.DataFrame(
            {label: _at_risk(km, times) for label, km in self._curves().items()},
            index=pd.Index(times, name="time", dtype=float),
        )

        self.coxph_, self.cox_ = None, None
        if covariates:
            self.coxph_, self.cox_ = _cox(frame, durations, observed, covariates, self.alpha)
        return self

    def _compare_groups(self, column: pd.Series, durations: np.ndarray, observed: np.ndarray):
        from lifelines import KaplanMeierFitter
        from lifelines.statistics import multivariate_logrank_test

        codes, levels = _sorted_codes(column, "group")
        curves = {}
        for code, level in enumerate(levels):
            rows = codes == code
            curves[level] = KaplanMeierFitter(alpha=self.alpha, label=str(level)).fit(
                durations[rows], observed[rows]
            )
        test = multivariate_logrank_test(durations, codes, observed)
        logrank = {"statistic": float(test.test_statistic), "df": int(test.degrees_of_freedom)}
        logrank["p"] = float(test.p_value)
        return curves, logrank

    def _curves(self) -> dict[str, Any]:
        return {"all": self.km_} | {str(level): km for level, km in self.km_by_group_.items()}

    @property
    def summary(self) -> pd.DataFrame:
        """One row per curve (all, then each group): n, events, median with interval, landmarks."""
        rows = {}
        for label, km in self._curves().items():
            row = {"n": len(km.durations), "events": int(km.event_observed.sum())}
            median = _median(km)
            row |= {"median": median["estimate"], "median_lower": median["lower"]}
            row["median_upper"] = median["upper"]
            for point in (_survival_at(km, t) for t in self.landmarks):
                row[f"S({_number(point['time'])})"] = point["survival"]
            rows[label] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``nettrial survival --json`` (``logrank``/``cox`` only when asked for)."""
        result: dict[str, Any] = {
            "n": self.n_,
            "events": self.events_,
            "median": dict(self.median_),
            "landmarks": [dict(point) for point in self.landmarks_],
            "follow_up": dict(self.follow_up_),
            "at_risk": [
                {"time": _number(time), **{label: int(n) for label, n in row.items()}}
                for time, row in self.at_risk_.iterrows()
            ],
        }
        if self.logrank_ is not None:
            result["logrank"] = dict(self.logrank_)
        if self.cox_ is not None:
            result["cox"] = [dict(term) for term in self.cox_]
        return result

    def explain(self) -> str:
        """A readable account: method, curves, landmarks with numbers at risk, test and model."""
        level = f"{1 - self.alpha:.0%}"
        lines = [
            f"Kaplan-Meier of {self.time_column_!r} (event {self.event_column_!r}), "
            f"{level} intervals {self.ci_method} ({CI_METHODS[self.ci_method]})",
            f"n = {self.n_}, events = {self.events_}",
            f"median {_interval(self.median_, level)}",
            f"median follow-up (reverse Kaplan-Meier) {_interval(self.follow_up_, level)}",
            "",
            f"{'time':>8}  {'survival':>8}  {level + ' CI':<17}  at risk",
        ]
        for point in self.landmarks_:
            at_risk = self.at_risk_.loc[point["time"], "all"]
            if point["survival"] is None:
                lines.append(f"{_number(point['time']):>8}  {'n/a':>8}  {'':<17}  {at_risk}")
                continue
            ci = f"{_fmt(point['lower'])} to {_fmt(point['upper'])}"
            lines.append(f"{_number(point['time']):>8}  {point['survival']:>8.3f}  {ci:<17}  {at_risk}")
        if self.logrank_ is not None:
            lines += [
                "",
                f"by {self.group_column_!r}:",
                self.summary.to_string(float_format="{:.3f}".format, na_rep="n/a"),
            ]
            test = self.logrank_
            lines.append(
                f"log-rank test: chi-square {test['statistic']:.3f} on {test['df']} df, p = {test['p']:.4g}"
            )
        if self.cox_ is not None:
            lines += ["", "Cox proportional hazards (Efron ties):"]
            lines.append(f"{'term':<24} {'coef':>8} {'se':>7} {'HR':>7}  {level + ' CI':<17} {'p':>8}")
            for t in self.cox_:
                ci = f"{t['hr_lower']:.3f} to {t['hr_upper']:.3f}"
                numbers = f"{t['coef']:>8.4f} {t['se']:>7.4f} {t['hr']:>7.3f}"
                lines.append(f"{t['term']:<24} {numbers}  {ci:<17} {t['p']:>8.4g}")
        return "\n".join(lines)


# --- input -------------------------------------------------------------------------------------


def _checked_input(frame, time, event, group, covariates) -> tuple[np.ndarray, np.ndarray]:
    """Durations (float) and event flags (bool), after every check; nothing is dropped."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError("data", f"expected a pandas DataFrame, got {type(frame).__name__}")
    fields = [("time", time), ("event", event)] + ([("group", group)] if group is not None else [])
    fields += [("covariates", name) for name in covariates]
    for field, column in fields:
        if column not in frame.columns:
            shown = ", ".join(map(str, frame.columns[:20])) + (", ..." if frame.shape[1] > 20 else "")
            raise InputError(field, f"no column {column!r} in the data (columns: {shown})")
    for name in covariates:
        if name in (time, event) or covariates.count(name) > 1:
            raise InputError("covariates", f"{name!r} is given twice or is the time or event column")
    if len(frame) < 1:
        raise InputError("data", "no rows to analyse")
    for field, column in fields:
        missing = frame[column].isna().to_numpy()
        if missing.any():
            first = frame.index[np.argmax(missing)]
            raise InputError(
                field,
                f"column {column!r} is missing in {int(missing.sum())} of {len(frame)} rows (first at "
                f"index {first}); nothing is dropped silently, so remove or impute them first",
            )
    return _durations(frame[time]), _events(frame[event])


def _durations(column: pd.Series) -> np.ndarray:
    name = column.name
    if pd.api.types.is_bool_dtype(column):
        raise InputError("time", f"column {name!r} holds true/false, not times")
    if not pd.api.types.is_numeric_dtype(column):
        text = pd.to_numeric(column, errors="coerce").isna().to_numpy()
        shown = f"{int(text.sum())} rows hold text (first {column.iloc[np.argmax(text)]!r})"
        raise InputError(
            "time", f"column {name!r} is not numeric: {shown if text.any() else 'numbers stored as text'}"
        )
    values = column.to_numpy(dtype=float)
    for problem, bad in (("not finite", ~np.isfinite(values)), ("negative", values < 0)):
        if bad.any():
            raise InputError(
                "time",
                f"column {name!r} is {problem} in {int(bad.sum())} rows (first {values[np.argmax(bad)]!r} "
                f"at index {column.index[np.argmax(bad)]}); times must be >= 0",
            )
    return values


def _events(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy()
        bad = (values != 0) & (values != 1)
        if not bad.any():
            return values == 1
    else:
        bad = np.ones(len(column), dtype=bool)
    first = column.iloc[np.argmax(bad)]
    raise InputError(
        "event",
        f"column {column.name!r} must be 1 (event) or 0 (censored), or true/false: {int(bad.sum())} "
        f"rows are not (first {first!r} at index {column.index[np.argmax(bad)]})",
    )


def _sorted_codes(column: pd.Series, field: str) -> tuple[np.ndarray, list]:
    """Integer codes of a column's levels in sorted order (numbers by value, text as text)."""
    codes, uniques = pd.factorize(column, sort=False)
    uniques = uniques.tolist()  # Python scalars: JSON-ready level names
    if not pd.api.types.is_numeric_dtype(column):
        uniques = [str(level) for level in uniques]
    order = sorted(range(len(uniques)), key=uniques.__getitem__)
    remap = np.empty(len(order), dtype=np.int64)
    remap[order] = np.arange(len(order))
    levels = [uniques[i] for i in order]
    if len(levels) < 2:
        raise InputError(
            field, f"column {column.name!r} has one level only ({levels[0]!r}); nothing to compare"
        )
    return remap[codes], levels


# --- Kaplan-Meier read-outs --------------------------------------------------------------------


def _ci_frame(km) -> np.ndarray:
    """lifelines' (lower, upper) curves, with no interval where S(t) = 0 (R reports NA there)."""
    ci = km.confidence_interval_survival_function_.to_numpy(dtype=float).copy()
    ci[km.survival_function_.to_numpy()[:, 0] == 0] = np.nan
    return ci


def _survival_at(km, time: float) -> dict[str, Any]:
    """The step function and its interval at ``time``; ``None`` beyond the last observed time."""
    timeline = km.timeline
    if time > timeline[-1]:
        return {"time": _number(time), "survival": None, "lower": None, "upper": None}
    i = int(np.searchsorted(timeline, time, side="right")) - 1
    lower, upper = _ci_frame(km)[i]
    survival = float(km.survival_function_.iloc[i, 0])
    return {"time": _number(time), "survival": survival, "lower": _float(lower), "upper": _float(upper)}


def _median(km) -> dict[str, float | None]:
    """Median and interval by R's ``quantile.survfit`` rule (see the module docstring)."""
    ci = _ci_frame(km)
    curves = (km.survival_function_.to_numpy()[:, 0], ci[:, 0], ci[:, 1])
    estimate, lower, upper = (_r_quantile(km.timeline, curve, 0.5) for curve in curves)
    return {"estimate": estimate, "lower": lower, "upper": upper}


def _r_quantile(timeline: np.ndarray, survival: np.ndarray, p: float) -> float | None:
    """The time at which 1 - ``survival`` reaches ``p``, as R's ``survival:::findq`` finds it."""
    times = np.concatenate(([0.0], timeline))
    failure = np.concatenate(([0.0], 1.0 - survival))
    known = ~np.isnan(failure)
    if not known.any() or failure[known].max() < p:
        return None
    times, failure = times[known], failure[known]
    first = int(np.argmax(failure >= p - _TOLERANCE))
    past = failure >= p + _TOLERANCE
    if past.any():
        return float((times[first] + times[int(np.argmax(past))]) / 2)
    if known.all() and abs(p - failure[-1]) < _TOLERANCE:  # the curve ends at exactly p
        return float((times[first] + timeline[-1]) / 2)
    return None


def _at_risk(km, times: Sequence[float]) -> list[int]:
    """Participants still at risk (time >= t) at each of ``times``, from lifelines' event table."""
    table = km.event_table
    counts = np.append(table["at_risk"].to_numpy(), 0)
    return [int(n) for n in counts[np.searchsorted(table.index.to_numpy(), times, side="left")]]


# --- Cox ---------------------------------------------------------------------------------------


def design_matrix(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Model terms of ``covariates``: numeric columns as they are, other columns dummy-coded.

    Parameters
    ----------
    frame : pandas.DataFrame
        The data; no missing values in ``covariates``.
    covariates : sequence of str
        Column names, in model order.

    Returns
    -------
    pandas.DataFrame
        Float columns; a non-numeric column ``site`` with levels pancreas, rectum, small_bowel
        becomes ``site[rectum]`` and ``site[small_bowel]`` (the first level in sorted order is
        the reference), as R's treatment contrasts of a factor with sorted levels.

    Raises
    ------
    InputError
        ``covariates``: a column with one value only.
    """
    terms = {}
    for name in covariates:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype=float)
            if values.size and (values == values[0]).all():
                raise InputError(
                    "covariates", f"column {name!r} is constant ({values[0]:g}); no effect to fit"
                )
            terms[name] = values
            continue
        codes, levels = _sorted_codes(column, "covariates")
        for code, level in enumerate(levels[1:], start=1):
            terms[f"{name}[{level}]"] = (codes == code).astype(float)
    return pd.DataFrame(terms, index=frame.index)


def _cox(frame, durations, observed, covariates, alpha):
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    design = design_matrix(frame, covariates)
    duration_col, event_col = "__duration", "__event"  # cannot clash with a term (none starts "__")
    data = design.assign(**{duration_col: durations, event_col: observed.astype(float)})
    try:
        model = CoxPHFitter(alpha=alpha).fit(
            data, duration_col=duration_col, event_col=event_col, fit_options=COX_FIT_OPTIONS
        )
    except ConvergenceError as error:  # collinear terms, complete separation
        reason = str(error).strip().splitlines()[0].split(" Please see")[0]  # drop lifelines' links
        raise InputError("covariates", f"the Cox model does not converge: {reason}") from None
    table = model.summary
    level = "%g%%" % (100 * (1 - alpha))  # lifelines' own column names
    rows = []
    for term, row in table.iterrows():
        rows.append(
            {
                "term": str(term),
                "coef": float(row["coef"]),
                "se": float(row["se(coef)"]),
                "hr": float(row["exp(coef)"]),
                "hr_lower": float(row[f"exp(coef) lower {level}"]),
                "hr_upper": float(row[f"exp(coef) upper {level}"]),
                "p": float(row["p"]),
            }
        )
    return model, rows


# --- formatting --------------------------------------------------------------------------------


def _float(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _number(value) -> int | float:
    """A time as written: 12 rather than 12.0."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _interval(estimate: dict, level: str) -> str:
    if estimate["estimate"] is None:
        return "not reached"
    bounds = [("n/a" if b is None else f"{_number(b)}") for b in (estimate["lower"], estimate["upper"])]
    return f"{_number(estimate['estimate'])} ({level} CI {bounds[0]} to {bounds[1]})"
