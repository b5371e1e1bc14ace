"""Figures: what is drawn comes from the data given, and saving is byte for byte repeatable."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from matplotlib.collections import PolyCollection
from matplotlib.patches import Rectangle

from nettrial.analysis import plots
from nettrial.exceptions import InputError

SVG = "{http://www.w3.org/2000/svg}"

# Five participants: durations 1, 2, 3, 5, 8 months; censored at 2 and 8 (and a tie at 3: one event,
# one censored row in the second fitter below).
DURATIONS = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
EVENTS = np.array([1, 0, 1, 1, 0])


def fitter(durations=DURATIONS, events=EVENTS, label="All"):
    return KaplanMeierFitter(label=label).fit(durations, events)


def svg_tree(path):
    return ET.parse(path).getroot()


def group_by_id(root, gid):
    found = [g for g in root.iter(f"{SVG}g") if g.get("id") == gid]
    assert len(found) == 1, f"expected one <g id={gid!r}>"
    return found[0]


def texts(element):
    return ["".join(t.itertext()) for t in element.iter(f"{SVG}text")]


# --- Kaplan-Meier ---------------------------------------------------------------------------------


def test_km_at_risk_numbers_are_text_in_the_svg(tmp_path):
    fig = plots.km_figure(fitter(), landmarks=[3, 6])
    _png, svg = plots.save_figure(fig, tmp_path, "km")
    root = svg_tree(svg)
    # Durations >= t: at 0 all five, at 3 three (3, 5, 8), at 6 one (8) - counted by hand.
    for time, expected in ((0, "5"), (3, "3"), (6, "1")):
        assert texts(group_by_id(root, f"at-risk-all-{time}")) == [expected]


def test_km_at_risk_table_is_drawn_as_given_not_recomputed(tmp_path):
    given = pd.DataFrame({"All": [99, 42]}, index=[0.0, 4.0])
    _png, svg = plots.save_figure(plots.km_figure(fitter(), at_risk=given), tmp_path, "km")
    root = svg_tree(svg)
    assert texts(group_by_id(root, "at-risk-all-0")) == ["99"]
    assert texts(group_by_id(root, "at-risk-all-4")) == ["42"]


def test_km_censor_marks_one_per_censored_row_ties_included(tmp_path):
    # Group B: two rows censored at the same time 4 and one at 6 -> three marks; group A: two marks.
    b = fitter(np.array([1.0, 4.0, 4.0, 4.0, 6.0]), np.array([1, 1, 0, 0, 0]), "B")
    fig = plots.km_figure({"A": fitter(label="A"), "B": b}, landmarks=[2, 4])
    _png, svg = plots.save_figure(fig, tmp_path, "km")
    root = svg_tree(svg)
    assert len(list(group_by_id(root, "censor-a").iter(f"{SVG}use"))) == 2
    assert len(list(group_by_id(root, "censor-b").iter(f"{SVG}use"))) == 3
    assert texts(group_by_id(root, "at-risk-b-4")) == ["4"]


def test_km_curve_and_band_follow_the_fitter():
    f = fitter()
    ax = plots.km_figure(f).axes[0]
    curve = next(line for line in ax.lines if line.get_label() == "All")
    np.testing.assert_allclose(curve.get_ydata(), f.survival_function_["All"].to_numpy())
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    ci = f.confidence_interval_survival_function_
    assert ys.min() == pytest.approx(ci.iloc[:, 0].min())
    assert ys.max() == pytest.approx(ci.iloc[:, 1].max())
    assert ax.get_xlim()[0] == 0


def test_km_takes_a_fitted_analysis_with_its_at_risk_and_landmarks(tmp_path):
    analysis = SimpleNamespace(
        km_=fitter(),
        km_by_group_={},
        at_risk_=pd.DataFrame({"all": [5, 7]}, index=[0, 12]),
        landmarks_=[{"time": 12, "survival": 0.5, "lower": 0.1, "upper": 0.9}],
    )
    fig = plots.km_figure(analysis)
    assert list(fig.axes[0].get_xticks()) == [0, 12]
    _png, svg = plots.save_figure(fig, tmp_path, "km")
    assert texts(group_by_id(svg_tree(svg), "at-risk-all-12")) == ["7"]


def test_km_refuses_what_it_cannot_draw():
    with pytest.raises(InputError, match="source"):
        plots.km_figure(pd.DataFrame())
    with pytest.raises(InputError, match="source"):
        plots.km_figure({})


# --- saving ---------------------------------------------------------------------------------------


def test_saving_twice_gives_identical_bytes_and_no_dates_or_software(tmp_path):
    first = plots.save_figure(plots.km_figure(fitter(), landmarks=[3]), tmp_path / "a", "km")
    second = plots.save_figure(plots.km_figure(fitter(), landmarks=[3]), tmp_path / "b", "km")
    again = plots.save_figure(plots.km_figure(fitter(), landmarks=[3]), tmp_path / "a", "km")
    assert [p.name for p in first] == ["km.png", "km.svg"]
    for one, two, three in zip(first, second, again, strict=True):
        assert one.read_bytes() == two.read_bytes() == three.read_bytes()
    svg_text = first[1].read_text()
    assert "<dc:date>" not in svg_text and "Matplotlib v" not in svg_text
    png = first[0].read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"tIME" not in png


def test_save_figure_refuses_a_path_as_name(tmp_path):
    with pytest.raises(InputError, match="name"):
        plots.save_figure(plots.km_figure(fitter()), tmp_path, "../escape")


# --- swimmer ---------------------------------------------------------------------------------------

START = dt.date(2026, 1, 1)


def swimmer_inputs():
    subjects = pd.DataFrame(
        {
            "SUBJID": ["NET-001", "NET-002", "NET-003", "NET-004"],
            "TRTSDT": [START] * 4,
            # NET-001 treated 30 days (1 Jan to 30 Jan inclusive); NET-003 still on treatment.
            "TRTEDT": [dt.date(2026, 1, 30), dt.date(2026, 6, 1), None, dt.date(2026, 3, 1)],
            "DTHDT": [None, None, None, dt.date(2026, 9, 1)],
        }
    )
    rfs = pd.DataFrame(
        {
            "SUBJID": ["NET-001", "NET-002", "NET-003", "NET-004"],
            "STARTDT": [START] * 4,
            "AVAL": [10.0, 6.0, 3.0, 8.0],
            "EVENT": [0, 1, 0, 1],
            "CNSR": [1, 0, 1, 0],
            "EVNTDESC": [None, "Recurrence: liver", None, "Death"],
        }
    )
    return subjects, rfs


def test_swimmer_bars_sorted_by_duration_with_treatment_then_follow_up():
    subjects, rfs = swimmer_inputs()
    ax = plots.swimmer_figure(subjects, rfs, cutoff=dt.date(2026, 2, 14)).axes[0]
    # Longest RFS time at the top (largest y).
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["NET-003", "NET-002", "NET-004", "NET-001"]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() == pytest.approx(0.6)]
    assert len(bars) == 2 * len(rfs)
    net001 = sorted((b for b in bars if b.get_y() == pytest.approx(3 - 0.3)), key=lambda b: b.get_x())
    assert net001[0].get_width() == pytest.approx(30 / 30.4375)  # treatment: 30 days inclusive
    assert net001[0].get_width() + net001[1].get_width() == pytest.approx(10.0)  # follow-up to AVAL
    # Still on treatment: drawn to the cut-off (45 days inclusive), marked as ongoing.
    net003 = min((b for b in bars if b.get_y() == pytest.approx(-0.3)), key=lambda b: b.get_x())
    assert net003.get_width() == pytest.approx(45 / 30.4375)


def test_swimmer_markers_for_recurrence_death_censoring(tmp_path):
    subjects, rfs = swimmer_inputs()
    _png, svg = plots.save_figure(plots.swimmer_figure(subjects, rfs), tmp_path, "swimmer")
    root = svg_tree(svg)
    kinds = ("recurrence", "death", "censored")
    counts = {k: len(list(group_by_id(root, f"swimmer-{k}").iter(f"{SVG}use"))) for k in kinds}
    assert counts == {"recurrence": 1, "death": 1, "censored": int(rfs["CNSR"].sum())}


def test_swimmer_follow_up_runs_past_a_day_1_censoring_to_the_last_date_known_alive():
    # Censored on day 1 (no imaging yet) but seen alive on 1 April: followed 91 days, marked on day 1.
    subjects = pd.DataFrame(
        {
            "SUBJID": ["NET-001"],
            "TRTSDT": [START],
            "TRTEDT": [dt.date(2026, 1, 31)],
            "DTHDT": [None],
            "LSTALVDT": [dt.date(2026, 4, 1)],
        }
    )
    rfs = pd.DataFrame(
        {"SUBJID": ["NET-001"], "STARTDT": [START], "AVAL": [1 / 30.4375], "EVENT": [0], "EVNTDESC": [None]}
    )
    ax = plots.swimmer_figure(subjects, rfs).axes[0]
    treatment, follow_up = sorted(
        (p for p in ax.patches if isinstance(p, Rectangle)), key=lambda b: b.get_x()
    )
    assert treatment.get_width() == pytest.approx(31 / 30.4375)
    assert treatment.get_width() + follow_up.get_width() == pytest.approx(91 / 30.4375)
    censored = next(line for line in ax.lines if line.get_gid() == "swimmer-censored")
    assert list(censored.get_xdata()) == pytest.approx([1 / 30.4375])


def test_swimmer_names_a_missing_column():
    subjects, rfs = swimmer_inputs()
    with pytest.raises(InputError, match=r"rfs: missing column.*AVAL"):
        plots.swimmer_figure(subjects, rfs.drop(columns="AVAL"))


# --- adverse events ---------------------------------------------------------------------------------


def worst_grades():
    rows = [
        ("P1", "Diarrhea", 1),
        ("P2", "Diarrhea", 3),
        ("P3", "Diarrhea", 3),
        ("P1", "Hypertension", 2),
        ("P2", "Proteinuria", 5),
        ("P3", "Fatigue", 1),
    ]
    return pd.DataFrame(rows, columns=["USUBJID", "AEDECOD", "AETOXGR"])


def segments(ax):
    """(term, grade) -> width of the drawn bar segment."""
    terms = [t.get_text() for t in ax.get_yticklabels()]
    out = {}
    for container in ax.containers:
        grade = int(container.get_label().removeprefix("Grade "))
        for index, bar in enumerate(container.patches):
            out[(terms[index], grade)] = bar.get_width()
    return terms, out


def test_ae_bars_by_worst_grade_top_terms_first():
    ax = plots.ae_grade_figure(worst_grades(), top=3).axes[0]
    terms, widths = segments(ax)
    # Most frequent at the top (last y); ties (1 participant each) alphabetical; Proteinuria dropped.
    assert terms == ["Hypertension", "Fatigue", "Diarrhea"]
    assert widths[("Diarrhea", 1)] == 1 and widths[("Diarrhea", 3)] == 2 and widths[("Diarrhea", 2)] == 0
    assert widths[("Hypertension", 2)] == 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"Grade {g}" for g in range(1, 6)]
    colours = {c.get_label(): c.patches[0].get_facecolor() for c in ax.containers}
    assert len(set(colours.values())) == 5


def test_ae_grade_colours_are_fixed_whatever_the_data():
    one = plots.ae_grade_figure(worst_grades()).axes[0]
    two = plots.ae_grade_figure(worst_grades().iloc[:1]).axes[0]
    for a, b in zip(one.containers, two.containers, strict=True):
        assert a.get_label() == b.get_label()
        assert a.patches[0].get_facecolor() == b.patches[0].get_facecolor()


def test_ae_figure_refuses_raw_events_and_bad_grades():
    duplicated = pd.concat([worst_grades(), worst_grades().iloc[:1]])
    with pytest.raises(InputError, match="one row per participant and term"):
        plots.ae_grade_figure(duplicated)
    bad = worst_grades().assign(AETOXGR=[1, 2, 3, 4, 5, 6])
    with pytest.raises(InputError, match="AETOXGR"):
        plots.ae_grade_figure(bad)
    with pytest.raises(InputError, match="top"):
        plots.ae_grade_figure(worst_grades(), top=0)
