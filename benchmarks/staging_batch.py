"""Staging throughput: the batch path against the one-row-at-a-time path, measured in one run.

Stages N synthetic registry rows (default 1,000,000) with ``stage_file`` and a sample of them with
``stage_row``; prints rows/s for both, their ratio, and checks the sample's results are identical.
Usage: python benchmarks/staging_batch.py [--rows N] [--sample N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from nettrial.staging.batch import OUTPUT_COLUMNS, stage_file, stage_row
from nettrial.staging.tables import site_tables, sites


def synthetic(rows: int, seed: int = 2026) -> pa.Table:
    """Registry-like rows: pathology findings for most, explicit categories for some, a few errors."""
    rng = np.random.default_rng(seed)
    site_names = np.array(sorted(sites()))
    site = site_names[rng.integers(0, len(site_names), rows)]
    edition = rng.choice(np.array(["8", "9"]), rows, p=[0.3, 0.7])
    extent = np.empty(rows, dtype=object)
    for name in site_names:
        vocab = np.array(sorted(site_tables(name, "9").extent))
        mask = site == name
        extent[mask] = vocab[rng.integers(0, len(vocab), mask.sum())]
    size = np.round(rng.gamma(2.0, 10.0, rows), 1).astype(str)
    examined = rng.integers(0, 30, rows)
    positive = np.minimum(rng.poisson(1.5, rows), examined)
    metastasis = rng.choice(
        np.array(["none", "liver", "lung", "liver,bone", ""]), rows, p=[0.8, 0.08, 0.03, 0.02, 0.07]
    )
    mass = np.where(site == "jejunum_ileum", rng.choice(np.array(["0", "15", "25"]), rows), "")
    size[rng.random(rows) < 0.001] = "-3"  # a few bad rows
    empty = np.full(rows, "", dtype=object)
    categories = rng.random(rows) < 0.2
    t = np.where(categories, rng.choice(np.array(["T1", "T2", "T3", "T4", "TX"]), rows), empty)
    n = np.where(categories, rng.choice(np.array(["N0", "N1", "NX"]), rows), empty)
    m = np.where(categories, rng.choice(np.array(["M0", "M1a"]), rows), empty)
    pathology = ~categories
    columns = {
        "edition": edition,
        "site": site,
        "t": t,
        "n": n,
        "m": m,
        "size_mm": np.where(pathology, size, empty),
        "extent": np.where(pathology, extent, empty),
        "nodes_positive": np.where(pathology, positive.astype(str), empty),
        "nodes_examined": np.where(pathology, examined.astype(str), empty),
        "mesenteric_mass_mm": np.where(pathology, mass, empty),
        "metastasis": np.where(pathology, metastasis, empty),
    }
    return pa.table({k: pa.array(v.astype(str)) for k, v in columns.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.csv", Path(folder) / "out.csv"
        table = synthetic(args.rows)
        pacsv.write_csv(table, source)

        start = time.perf_counter()
        counts = stage_file(source, target)
        batch_seconds = time.perf_counter() - start

        sample = table.slice(0, args.sample).to_pylist()
        start = time.perf_counter()
        row_results = [stage_row(r) for r in sample]
        row_seconds = time.perf_counter() - start

        staged = pacsv.read_csv(
            target,
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in OUTPUT_COLUMNS}, strings_can_be_null=False
            ),
        ).slice(0, args.sample)
        batch_results = staged.select(list(OUTPUT_COLUMNS)).to_pylist()

    identical = batch_results == row_results
    batch_rate = args.rows / batch_seconds
    row_rate = args.sample / row_seconds
    print(f"rows: {args.rows:,}  statuses: {counts}")
    print(f"batch path: {batch_seconds:6.2f} s for {args.rows:,} rows  = {batch_rate:12,.0f} rows/s")
    print(f"row path:   {row_seconds:6.2f} s for {args.sample:,} rows  = {row_rate:12,.0f} rows/s")
    print(f"ratio batch/row: {batch_rate / row_rate:.1f}x   sample results identical: {identical}")
    if not identical:
        raise SystemExit("batch and row paths disagree")


if __name__ == "__main__":
    main()
