"""The CONSORT diagram: every box of the flow drawn with its counts, levels laid out without overlap."""

from __future__ import annotations

import datetime as dt
import itertools
import xml.etree.ElementTree as ET

import pytest
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from nettrial.analysis.consort_diagram import consort_figure, consort_rows
from nettrial.analysis.plots import save_figure
from nettrial.exceptions import InputError

FLOW = [
    {"id": "screened", "label": "Screened", "n": 60},
    {
        "id": "not_eligible",
        "label": "Not eligible",
        "n": 22,
        "parents": ["screened"],
        "breakdown": {"I3 stage": 12, "E1 prior therapy": 10},
        "side": True,
    },
    {"id": "enrolled", "label": "Enrolled", "n": 38, "parents": ["screened"]},
    {"id": "not_treated", "label": "Not treated", "n": 3, "parents": ["enrolled"], "side": True},
    {"id": "completed", "label": "Completed", "n": 30, "parents": ["enrolled"]},
    {
        "id": "discontinued",
        "label": "Discontinued",
        "n": 5,
        "parents": ["enrolled"],
        "breakdown": {"adverse event": 3, "withdrew": 2},
    },
    {"id": "analysed", "label": "Analysed", "n": 35, "parents": ["completed", "discontinued"]},
]


def consort_boxes(fig):
    """Box id -> (left, top, width, height) in the diagram's inches (y downwards)."""
    ax = fig.axes[0]
    found = {}
    for patch in ax.patches:
        if isinstance(patch, FancyBboxPatch):
            found[patch.get_gid().removeprefix("consort-")] = (
                patch.get_x(),
                patch.get_y(),
                patch.get_width(),
                patch.get_height(),
            )
    return found


def test_consort_boxes_arrows_and_breakdowns(tmp_path):
    fig = consort_figure(FLOW)
    ax = fig.axes[0]
    boxes = consort_boxes(fig)
    assert set(boxes) == {row["id"].replace("_", "-") for row in FLOW}
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == len(FLOW) - 1  # one arrow into every box but the first
    shown = "\n".join(t.get_text() for t in ax.texts)
    for row in FLOW:
        assert f"{row['label']} (n = {row['n']})" in shown
    assert "I3 stage: 12" in shown and "withdrew: 2" in shown
    _png, svg = save_figure(fig, tmp_path, "consort")
    assert "Screened (n = 60)" in "".join(ET.parse(svg).getroot().itertext())


def test_consort_layout_siblings_side_by_side_sides_apart():
    boxes = consort_boxes(consort_figure(FLOW))
    completed, discontinued, analysed = boxes["completed"], boxes["discontinued"], boxes["analysed"]
    assert completed[1] == discontinued[1]  # siblings share a level
    assert completed[0] + completed[2] < discontinued[0]  # side by side, not overlapping
    centre = analysed[0] + analysed[2] / 2  # a child of two parents sits between them
    assert completed[0] + completed[2] / 2 < centre < discontinued[0] + discontinued[2] / 2
    main_right = max(left + width for key, (left, _t, width, _h) in boxes.items() if "not" not in key)
    for side in ("not-eligible", "not-treated"):
        assert boxes[side][0] > main_right  # exclusions to the right of the main column
    # Each level lies below its parents: no box overlaps the next one down.
    order = ["screened", "enrolled", "completed", "analysed"]
    for upper, lower in itertools.pairwise(order):
        assert boxes[upper][1] + boxes[upper][3] < boxes[lower][1]
    assert boxes["not-eligible"][1] + boxes["not-eligible"][3] < boxes["enrolled"][1]


def test_consort_reads_a_consort_flow_with_criterion_ids_before_their_text():
    from nettrial.analysis.consort import ConsortBox, ConsortFlow, Count

    long_text = "Confirmed as Stage III NET G1/G2 or any-stage NET G3 after surgical treatment."
    flow = ConsortFlow(
        dt.date(2026, 11, 23),
        "1.0",
        (
            ConsortBox("screened", "Screened", 3, (), ("S-1", "S-2", "S-3")),
            ConsortBox(
                "not_eligible",
                "Not eligible",
                1,
                ("screened",),
                ("S-3",),
                (Count("I3", long_text, 1),),
                side=True,
            ),
            ConsortBox(
                "enrolled",
                "Enrolled",
                2,
                ("screened",),
                ("NET-001", "NET-002"),
                (Count("withdrawn", "withdrawn", 0),),
            ),
        ),
    )
    rows = consort_rows(flow)
    assert [r["id"] for r in rows] == ["screened", "not_eligible", "enrolled"]
    assert rows[1]["side"] and rows[1]["parents"] == ("screened",)
    (line,) = rows[1]["breakdown"]
    assert line.startswith("I3 Confirmed as Stage III") and line.endswith("...") and len(line) <= 44
    assert rows[2]["breakdown"] == {"withdrawn": 0}
    assert len(consort_boxes(consort_figure(flow))) == 3


def test_consort_refuses_boxes_before_their_parents():
    with pytest.raises(InputError, match="flow"):
        consort_figure(FLOW[1:])
    with pytest.raises(InputError, match="flow"):
        consort_figure([FLOW[0], {**FLOW[-1], "parents": ["nowhere"]}])
