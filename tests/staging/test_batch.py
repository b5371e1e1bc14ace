"""The batch path: one output row per input row, bad rows reported, results equal to the row path."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from click.testing import CliRunner

from nettrial.cli import main
from nettrial.staging.batch import stage_file, stage_row
from nettrial.staging.tables import site_tables, sites

ROWS = [
    {"edition": "9", "site": "pancreas", "t": "T2", "n": "N1", "m": "M0"},
    {"edition": "8", "site": "stomach", "t": "T1", "n": "N2", "m": "M0"},
    {
        "edition": "9",
        "site": "pancreas",
        "size_mm": "25",
        "extent": "limited",
        "nodes_positive": "2",
        "nodes_examined": "14",
        "metastasis": "none",
    },
    {
        "edition": "9",
        "site": "pancreas",
        "size_mm": "-3",
        "extent": "limited",
        "nodes_positive": "2",
        "nodes_examined": "14",
        "metastasis": "none",
    },
    {
        "edition": "9",
        "site": "pancreas",
        "size_mm": "25",
        "extent": "limited",
        "nodes_positive": "5",
        "nodes_examined": "3",
        "metastasis": "none",
    },
    {
        "edition": "",
        "site": "C18.7",
        "size_mm": "10",
        "extent": "submucosa",
        "nodes_positive": "0",
        "nodes_examined": "12",
        "metastasis": "liver",
    },
    {"edition": "9", "site": "mars", "t": "T1", "n": "N0", "m": "M0"},
    {"edition": "9", "site": "jejunum_ileum", "t": "T2", "n": "N2", "m": "M0"},
]
COLUMNS = [
    "edition",
    "site",
    "t",
    "n",
    "m",
    "size_mm",
    "extent",
    "nodes_positive",
    "nodes_examined",
    "mesenteric_mass_mm",
    "metastasis",
]


def write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in COLUMNS})


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_row_comes_back_and_bad_rows_name_the_field(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    write(source, ROWS)
    counts = stage_file(source, target)
    out = read(target)
    assert len(out) == len(ROWS)
    assert [r["stage_group"] for r in out] == [
        "III",
        "unknown",
        "III",
        "unknown",
        "unknown",
        "IV",
        "unknown",
        "III",
    ]
    assert [r["status"] for r in out] == [
        "staged",
        "error",
        "staged",
        "error",
        "error",
        "staged",
        "error",
        "staged",
    ]
    assert out[1]["message"].startswith("n: N2 is not a category")
    assert out[3]["message"].startswith("size_mm:")
    assert out[4]["message"].startswith("nodes_positive:")
    assert out[6]["message"].startswith("site:")
    assert (out[5]["t"], out[5]["n"], out[5]["m"]) == ("T1b", "N0", "M1a")
    assert counts == {"staged": 4, "error": 4}
    # input columns are kept as they were
    assert out[2]["size_mm"] == "25" and out[2]["extent"] == "limited"


def random_rows(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        site = rng.choice(sorted(sites()))
        edition = rng.choice(["8", "9", ""])
        tables = site_tables(site, edition or "9")
        examined = rng.randint(0, 30)
        row = {
            "edition": edition,
            "site": site,
            "size_mm": rng.choice(
                [
                    "",
                    "-3",
                    "0",
                    "abc",
                    "9.9",
                    "10",
                    "10.1",
                    "20",
                    "20.5",
                    "40",
                    "41",
                    str(rng.randint(1, 90)),
                ]
            ),
            "extent": rng.choice(["", "bogus", *sorted(tables.extent)]),
            "nodes_positive": rng.choice(["", str(rng.randint(0, examined)), str(examined + 1), "2.5"]),
            "nodes_examined": rng.choice(["", str(examined)]),
            "mesenteric_mass_mm": rng.choice(["", "", "20", "21"]) if site == "jejunum_ileum" else "",
            "metastasis": rng.choice(["", "none", "liver", "lung", "liver,bone", "moon"]),
        }
        if rng.random() < 0.3:
            row = {
                "edition": edition,
                "site": site,
                "t": rng.choice(["T1", "T2", "T4", "TX", "T9", ""]),
                "n": rng.choice(["N0", "N1", "N2", "NX"]),
                "m": rng.choice(["M0", "M1a", ""]),
            }
        rows.append(row)
    return rows


def test_batch_equals_row_path_on_random_rows(tmp_path: Path) -> None:
    rows = random_rows(3000, seed=7)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    write(source, rows)
    stage_file(source, target, block_rows=700)  # several blocks
    out = read(target)
    assert len(out) == len(rows)
    expected = [stage_row({c: row.get(c, "") for c in COLUMNS}) for row in rows]
    got = [{k: r[k] for k in ("t", "n", "m", "stage_group", "status", "message")} for r in out]
    mismatches = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
    assert not mismatches, mismatches[:5]
    assert {r["status"] for r in out} >= {"staged", "unknown", "error"}


def test_cli_batch(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    write(source, ROWS)
    result = CliRunner().invoke(main, ["stage", "--batch", str(source), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert "8 rows staged" in result.output
    assert len(read(target)) == len(ROWS)
