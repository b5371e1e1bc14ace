"""Survival throughput: Kaplan-Meier and Cox on synthetic registry rows, nettrial against lifelines.

Builds N synthetic registry rows (default 1,000,000: time in days, event, a 3-level text ``site``,
``grade`` 1-3, ``age``) as the DataFrame ``nettrial survival`` has after reading its CSV, then times
- nettrial: what the command calls, ``SurvivalAnalysis(...).fit(...)`` with the covariates and
  ``to_dict()`` (checks, Kaplan-Meier, reverse Kaplan-Meier follow-up, medians by R's rule,
  landmarks, at-risk table, dummy coding, Cox);
- lifelines directly, on a design matrix built beforehand (untimed): ``KaplanMeierFitter`` on the
  events and on the censorings (the follow-up) and ``CoxPHFitter`` with the same stopping rule
  (``COX_FIT_OPTIONS``: lifelines' default stops about one Newton step earlier, ~1e-6 from R).
Prints CPU seconds (the ratio's basis: wall time swings with other work on a shared machine) and
wall seconds for each, and the ratio nettrial/lifelines (target < 1.20).
Usage: python benchmarks/survival.py [--rows N] [--cox-rows N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter

from nettrial.analysis.survival import COX_FIT_OPTIONS, SurvivalAnalysis

SITES = np.array(["pancreas", "rectum", "small_bowel"])
COVARIATES = ["site", "grade", "age"]
LANDMARKS = (365, 730, 1095)


def registry(rows: int, seed: int = 20261123) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    site = rng.choice(SITES, size=rows, p=[0.5, 0.3, 0.2])
    grade = rng.integers(1, 4, size=rows)
    age = np.round(rng.normal(60, 12, size=rows), 0)
    linear = 0.3 * (site == "rectum") - 0.2 * (site == "small_bowel") + 0.5 * (grade - 1) + 0.02 * (age - 60)
    latent = rng.exponential(1500 / np.exp(linear))
    censor = rng.uniform(30, 3650, size=rows)
    return pd.DataFrame(
        {
            "time": np.ceil(np.minimum(latent, censor)).astype(int),
            "event": (latent <= censor).astype(int),
            "site": site,
            "grade": grade,
            "age": age,
        }
    )


def through_nettrial(km_frame: pd.DataFrame, cox_frame: pd.DataFrame) -> None:
    if cox_frame is km_frame:
        SurvivalAnalysis(landmarks=LANDMARKS).fit(km_frame, "time", "event", covariates=COVARIATES).to_dict()
        return
    SurvivalAnalysis(landmarks=LANDMARKS).fit(km_frame, "time", "event").to_dict()
    SurvivalAnalysis(landmarks=LANDMARKS).fit(cox_frame, "time", "event", covariates=COVARIATES).to_dict()


def through_lifelines(km_frame: pd.DataFrame, cox_frame: pd.DataFrame, design: pd.DataFrame) -> None:
    for frame in (km_frame,) if cox_frame is km_frame else (km_frame, cox_frame):
        KaplanMeierFitter().fit(frame["time"], frame["event"])
        KaplanMeierFitter().fit(frame["time"], 1 - frame["event"])
    CoxPHFitter().fit(design, "time", "event", fit_options=COX_FIT_OPTIONS)


def timed(function, *args) -> tuple[float, float]:
    """CPU and wall seconds of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    function(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cox-rows", type=int, help="rows for the Cox model (default: all)")
    args = parser.parse_args()
    km_frame = registry(args.rows)
    cox_rows = min(args.cox_rows or args.rows, args.rows)
    cox_frame = km_frame if cox_rows == args.rows else km_frame.iloc[:cox_rows]
    design = cox_frame[["time", "event", "grade", "age"]].assign(
        **{f"site[{s}]": (cox_frame["site"] == s).astype(float) for s in SITES[1:]}
    )
    through_nettrial(km_frame.iloc[:1000], km_frame.iloc[:1000])  # imports and first-call costs

    direct = timed(through_lifelines, km_frame, cox_frame, design)
    wrapped = timed(through_nettrial, km_frame, cox_frame)

    print(f"Kaplan-Meier on {args.rows:,} rows, Cox ({len(COVARIATES) + 1} terms) on {cox_rows:,} rows")
    if cox_rows < args.rows:
        print(f"  (Cox on fewer rows than Kaplan-Meier, as asked with --cox-rows {cox_rows})")
    print(f"lifelines directly:  {direct[0]:7.2f} s CPU {direct[1]:7.2f} s wall")
    print(f"nettrial survival:   {wrapped[0]:7.2f} s CPU {wrapped[1]:7.2f} s wall")
    print(f"ratio nettrial/lifelines: {wrapped[0] / direct[0]:.3f} CPU (target < 1.20)")


if __name__ == "__main__":
    main()
