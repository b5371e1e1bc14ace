"""CTCAE grading throughput: synthetic laboratory results through ``nettrial.safety.grade``.

Grades N synthetic results (default 50,000; eight lab terms, mixed units, some with baselines) and,
as the baseline from the same run, only validates and converts the same values (``to_canonical``,
the floor every graded value pays). Prints results/s for both and the ratio: the cost of the
grading itself in multiples of unit validation.
Usage: python benchmarks/ctcae_grading.py [--results N]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from nettrial.safety import grade
from nettrial.units import to_canonical

# term, lab test, unit, value range, LLN, ULN
PANEL = [
    ("Neutrophil count decreased", "anc", "10^9/L", (0.3, 6.0), 1.8, None),
    ("Platelet count decreased", "platelets", "/mm3", (20000, 400000), 150000, None),
    ("Anemia", "haemoglobin", "g/L", (60, 160), 120, None),
    ("Alanine aminotransferase increased", "alt", "U/L", (8, 900), None, 40),
    ("Aspartate aminotransferase increased", "ast", "U/L", (8, 900), None, 35),
    ("Blood bilirubin increased", "bilirubin", "umol/L", (4, 250), None, 20.5),
    ("Creatinine increased", "creatinine", "umol/L", (40, 700), None, 97),
    ("Hypertriglyceridemia", "triglycerides", "mmol/L", (0.5, 15), None, None),
]


def synthetic(rng: random.Random, n: int) -> list[tuple]:
    rows = []
    for _ in range(n):
        term, test, unit, (low, high), lln, uln = rng.choice(PANEL)
        value = round(rng.uniform(low, high), 1)
        baseline = round(rng.uniform(low, (low + high) / 4), 1) if uln and rng.random() < 0.5 else None
        rows.append((term, test, value, unit, lln, uln, baseline))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=50_000)
    args = parser.parse_args()
    rows = synthetic(random.Random(20261123), args.results)
    grade(*rows[0][:1], rows[0][2], rows[0][3], lln=rows[0][4], uln=rows[0][5])  # load the tables once

    start = time.perf_counter()
    for _term, test, value, unit, *_ in rows:
        to_canonical(test, value, unit)
    floor = time.perf_counter() - start

    start = time.perf_counter()
    grades = Counter()
    for term, _test, value, unit, lln, uln, baseline in rows:
        grades[grade(term, value, unit, lln=lln, uln=uln, baseline=baseline).grade] += 1
    graded = time.perf_counter() - start

    print(f"results: {args.results:,}; grades: {dict(sorted(grades.items()))}")
    print(f"baseline, unit validation only: {floor:.2f} s ({args.results / floor:,.0f} results/s)")
    print(f"CTCAE grading:                  {graded:.2f} s ({args.results / graded:,.0f} results/s)")
    print(f"ratio grading / validation: {graded / floor:.1f}x")


if __name__ == "__main__":
    main()
