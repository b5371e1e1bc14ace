"""Write ``ties.csv``: a synthetic survival data set with heavy ties, for the R comparison.

200 participants, integer times 1..20 (so most event times are shared by several participants),
a three-level categorical ``site`` (to check dummy coding against the first level in sorted order)
and a numeric ``ki67``. The seed is fixed: running this again writes the same file.
Usage: python tests/analysis/reference/make_ties.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261123
N = 200
SITES = np.array(["small_bowel", "pancreas", "rectum"])  # deliberately not in sorted order
LOG_HAZARD_RATIO = {"pancreas": 0.0, "rectum": -0.4, "small_bowel": 0.6}


def make_ties(seed: int = SEED, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    site = rng.choice(SITES, size=n, p=[0.3, 0.5, 0.2])
    ki67 = np.round(rng.uniform(1.0, 20.0, size=n), 1)
    linear = np.vectorize(LOG_HAZARD_RATIO.get)(site) + 0.05 * ki67
    latent = rng.exponential(16.0 / np.exp(linear))
    censor = rng.uniform(1.0, 26.0, size=n)
    time = np.clip(np.ceil(np.minimum(latent, censor)), 1, 20).astype(int)
    event = ((latent <= censor) & (np.ceil(latent) <= 20)).astype(int)
    return pd.DataFrame({"time": time, "status": event, "site": site, "ki67": ki67})


if __name__ == "__main__":
    make_ties().to_csv(Path(__file__).with_name("ties.csv"), index=False)
