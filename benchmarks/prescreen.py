"""Prescreening throughput: synthetic screening records through ``prescreen_file``.

Writes N synthetic records (default 100,000) as a flat CSV and prescreens it (read, check, evaluate,
write); as the baseline from the same run, evaluates a sample record by record with the row path.
Prints records/s for both, their ratio, and whether the sample's results are identical.
Usage: python benchmarks/prescreen.py [--records N] [--sample N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

import pandas as pd

from nettrial.eligibility.io import flatten, record_from_row
from nettrial.eligibility.prescreen import _row_path, prescreen_file
from nettrial.protocol.load import load_protocol


def synthetic_record(rng: random.Random, number: int) -> dict:
    """A registry-like screening record; about a third complete, the rest with gaps or failures."""
    screening = dt.date(2026, 3, 1) + dt.timedelta(days=rng.randint(0, 300))
    first_dose = screening + dt.timedelta(days=rng.randint(3, 20))
    lab_day = (first_dose - dt.timedelta(days=rng.randint(0, 20))).isoformat()
    sex = rng.choice(["female", "male"])
    labs = [
        {"test": "anc", "value": round(rng.uniform(0.8, 6), 1), "unit": "10^9/L", "date": lab_day},
        {"test": "platelets", "value": rng.randint(60, 400), "unit": "10^9/L", "date": lab_day},
        {"test": "haemoglobin", "value": rng.randint(70, 160), "unit": "g/L", "date": lab_day},
        {
            "test": "bilirubin",
            "value": rng.randint(4, 40),
            "unit": "umol/L",
            "uln": 21,
            "date": lab_day,
        },
        {"test": "alt", "value": rng.randint(8, 150), "unit": "U/L", "uln": 40, "date": lab_day},
        {"test": "ast", "value": rng.randint(8, 150), "unit": "U/L", "uln": 40, "date": lab_day},
        {
            "test": "creatinine",
            "value": rng.randint(40, 160),
            "unit": "umol/L",
            "uln": 97,
            "date": lab_day,
        },
    ]
    record = {
        "identity": {
            "patient_id": f"P{number:06d}",
            "date_of_birth": (screening - dt.timedelta(days=rng.randint(15 * 365, 85 * 365))).isoformat(),
            "sex": sex,
            "weight": {"value": rng.randint(45, 110), "unit": "kg"},
        },
        "screening_date": screening.isoformat(),
        "planned_first_dose": first_dose.isoformat() if rng.random() < 0.8 else None,
        "consent": {
            "signed": True,
            "date": (screening - dt.timedelta(days=rng.randint(0, 5))).isoformat(),
        },
        "surgery": {
            "date": (first_dose - dt.timedelta(days=rng.randint(20, 80))).isoformat(),
            "margin": rng.choice(["R0", "R1"]),
        },
        "pathology": {
            "site": "pancreas",
            "size_mm": rng.randint(5, 80),
            "extent": rng.choice(["limited", "limited", "duodenum", "adjacent_organs"]),
            "nodes_positive": rng.randint(0, 4),
            "nodes_examined": rng.randint(4, 20),
            "metastasis": rng.choice([[], [], [], ["liver"]]),
            "ki67_percent": rng.choice([1, 2.5, 4, 8, 15, 25, 40]),
            "differentiation": rng.choice(["well", "well", "well", "poor", None]),
        },
        "liver_metastases": rng.choice([False, False, True, None]),
        "labs": labs if rng.random() < 0.9 else labs[:3],
        "supportive_care": {"reviewed": rng.random() < 0.9, "items": []},
        "blood_pressure": [
            {
                "date": screening.isoformat(),
                "systolic": rng.randint(105, 165),
                "diastolic": rng.randint(60, 100),
                "on_treatment": rng.random() < 0.3,
            }
        ],
        "history": {
            "reviewed": rng.random() < 0.85,
            "events": rng.choice(
                [
                    [],
                    [],
                    [
                        {
                            "kind": "myocardial_infarction",
                            "date": (screening - dt.timedelta(days=rng.randint(30, 900))).isoformat(),
                        }
                    ],
                ]
            ),
        },
        "reproductive": {"childbearing_potential": False, "pregnant": False, "lactating": False}
        if sex == "female"
        else {"partner_childbearing_potential": False},
        "attestations": {
            "E9": {"answer": "no", "by": "investigator", "at": f"{screening.isoformat()}T10:00:00"}
        },
    }
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(2026)
    protocol = load_protocol()
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "records.csv", Path(folder) / "results.csv"
        rows = [flatten(synthetic_record(rng, number)) for number in range(args.records)]
        frame = pd.DataFrame(rows).fillna("")
        frame.to_csv(source, index=False)

        start = time.perf_counter()
        attrition = prescreen_file(source, target, protocol)
        seconds = time.perf_counter() - start
        columnar = pd.read_csv(target, dtype=str, keep_default_na=False).head(args.sample)

        sample = frame.head(args.sample).astype(str).to_dict("records")
        start = time.perf_counter()
        by_row = [_row_path(lambda r=r: record_from_row(r), protocol, None) for r in sample]
        row_seconds = time.perf_counter() - start

    identical = all(
        str(expected.get(k, "")) == str(got[k]) or (k == "provisional" and str(expected[k]) == got[k])
        for expected, got in zip(by_row, columnar.to_dict("records"), strict=True)
        for k in (
            "decision",
            "failed",
            "missing",
            "earliest_first_dose",
            "error",
            *(c.id for c in protocol.eligibility.criteria),
        )
    )
    rate, row_rate = args.records / seconds, args.sample / row_seconds
    print(attrition.to_string(index=False))
    print(f"columnar prescreen: {seconds:6.2f} s for {args.records:,} records = {rate:10,.0f} records/s")
    print(
        f"row path:           {row_seconds:6.2f} s for {args.sample:,} records = {row_rate:10,.0f} records/s"
    )
    print(
        f"ratio columnar/row: {rate / row_rate:.1f}x   sample identical: {identical}   "
        f"target 20,000 records/s: {'met' if rate >= 20_000 else 'NOT met'}"
    )
    if not identical:
        raise SystemExit("columnar and row paths disagree")


if __name__ == "__main__":
    main()
