"""The CONSORT diagram of the study report, drawn from the CONSORT flow with matplotlib's object API.

:func:`consort_figure` lays boxes out level by level in inches (y downwards) and returns a
:class:`matplotlib.figure.Figure`; :func:`nettrial.analysis.plots.save_figure` writes it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from nettrial.analysis.plots import DPI, _slug  # the report's figures share a resolution and SVG ids
from nettrial.exceptions import InputError

_PAD, _GAP = 0.07, 0.45  # inches: box padding, space between levels
_WIDTH, _MAIN_W, _SIDE_W = 6.0, 3.2, 3.4  # the main column's width, a main box's, a side box's
_INK = "#333333"  # lines, arrows and box edges


def consort_figure(flow: Any) -> Figure:
    """The CONSORT diagram: boxes level by level, splits joined by arrows, exclusions at the side.

    Parameters
    ----------
    flow : ConsortFlow or sequence of dict
        A ``ConsortFlow`` (read by :func:`consort_rows`) or rows ``{"id", "label", "n", "parents",
        "breakdown", "side"}`` in diagram order. Consecutive main boxes with the same parents
        share a level (e.g. completed / discontinued / still on treatment); a side box is drawn
        to the right, in the gap below its parent.

    Returns
    -------
    matplotlib.figure.Figure
        Every box shows its label, n and breakdown; one arrow enters every box but the first.
    """
    rows = [_consort_row(r) for r in flow] if isinstance(flow, Sequence) else consort_rows(flow)
    levels, sides = _consort_levels(rows)
    geometry: dict[str, tuple[float, float, float, float]] = {}  # id -> x centre, top, width, height
    y = 0.15
    placed_sides = []
    for index, level in enumerate(levels):
        centres = _level_centres(level, geometry)
        spacing = min(np.diff(centres), default=2 * _MAIN_W)
        width = min(_MAIN_W, spacing - 0.15)
        for row, x in zip(level, centres, strict=True):
            geometry[row["id"]] = (x, y, width, _box_height(row, width))
        bottom = y + max(geometry[r["id"]][3] for r in level)
        below = bottom + _GAP / 2
        for row in sides.get(index, []):
            height = _box_height(row, _SIDE_W)
            geometry[row["id"]] = (_WIDTH + 0.3 + _SIDE_W / 2, below, _SIDE_W, height)
            placed_sides.append(row)
            below += height + 0.12
        y = max(bottom + _GAP, below + _GAP / 2)
    fig = Figure(figsize=(_WIDTH + 0.5 + _SIDE_W, y), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, fig.get_figwidth())
    ax.set_ylim(y, 0)  # inches, downwards
    ax.axis("off")
    for row in rows:
        x, top, width, height = geometry[row["id"]]
        _box(ax, row, x - width / 2, top, width, height)
    for level in levels[1:]:
        _join(ax, [geometry[p] for p in level[0]["parents"]], [geometry[r["id"]] for r in level])
    for row in placed_sides:
        px, ptop, _w, pheight = geometry[row["parents"][-1]]
        x, top, width, height = geometry[row["id"]]
        ax.plot([px, px], [ptop + pheight, top + height / 2], color=_INK, linewidth=1)
        _arrow(ax, (px, top + height / 2), (x - width / 2, top + height / 2))
    return fig


def consort_rows(flow: Any) -> list[dict[str, Any]]:
    """The boxes of a ``ConsortFlow`` (or of its ``to_dict()``) as rows for :func:`consort_figure`."""
    data = flow.to_dict() if hasattr(flow, "to_dict") else flow
    return [_consort_row(box) for box in data["boxes"]]


def _consort_row(box: Mapping[str, Any]) -> dict[str, Any]:
    breakdown = box.get("breakdown") or {}
    if not isinstance(breakdown, Mapping):  # ConsortFlow's Count items: key, label, n
        breakdown = {_short(item["key"], item["label"]): item["n"] for item in breakdown}
    return {
        "id": str(box.get("id", box["label"])),
        "label": box["label"],
        "n": box["n"],
        "parents": tuple(box.get("parents") or ()),
        "breakdown": dict(breakdown),
        "side": bool(box.get("side")),
    }


def _short(key: str, label: str, width: int = 40) -> str:
    """A breakdown line for a box: a criterion's text shortened, after its id (I5)."""
    if not re.fullmatch(r"[A-Z]+\d+", key):  # a reason or status: its label says it all
        return label
    return f"{key} " + textwrap.shorten(label, width, placeholder="...")


def _consort_levels(rows: Sequence[dict[str, Any]]):
    """Main boxes grouped into levels; side boxes keyed by the level of their (last) parent."""
    levels: list[list[dict[str, Any]]] = []
    sides: dict[int, list[dict[str, Any]]] = {}
    level_of: dict[str, int] = {}
    for row in rows:
        unknown = [p for p in row["parents"] if p not in level_of]
        if unknown or (not row["parents"] and (levels or row["side"])):
            raise InputError("flow", f"box {row['id']!r} must come after its parents (unknown: {unknown})")
        if row["side"]:
            sides.setdefault(level_of[row["parents"][-1]], []).append(row)
            continue
        if levels and levels[-1][0]["parents"] == row["parents"]:
            levels[-1].append(row)
        else:
            levels.append([row])
        level_of[row["id"]] = len(levels) - 1
    if not levels:
        raise InputError("flow", "no boxes to draw")
    return levels, sides


def _level_centres(level, geometry) -> list[float]:
    """Sibling boxes share the main column's width; children of several parents sit under them."""
    k = len(level)
    parents = [geometry[p][0] for p in level[0]["parents"]]
    if len(parents) > 1:
        return (
            list(np.linspace(min(parents), max(parents), k)) if k > 1 else [(min(parents) + max(parents)) / 2]
        )
    return [_WIDTH * (2 * i + 1) / (2 * k) for i in range(k)]


def _join(ax, parents, children) -> None:
    """Lines down from each parent to a bus just above the children, an arrow down into each child."""
    bus = min(top for _x, top, _w, _h in children) - _GAP / 3
    xs = [x for x, *_ in parents] + [x for x, *_ in children]
    for x, top, _w, height in parents:
        ax.plot([x, x], [top + height, bus], color=_INK, linewidth=1)
    if max(xs) > min(xs):
        ax.plot([min(xs), max(xs)], [bus, bus], color=_INK, linewidth=1)
    for x, top, _w, _h in children:
        _arrow(ax, (x, bus), (x, top))


def _font_size(row: Mapping[str, Any], width: float) -> int:
    return 7 if row["side"] or width < 2.5 else 8


def _box_height(row: Mapping[str, Any], width: float) -> float:
    return len(_box_lines(row, width)) * _font_size(row, width) * 1.25 / 72 + 2 * _PAD


def _box_lines(row: Mapping[str, Any], width: float) -> list[str]:
    # DejaVu Sans averages about 0.52 em a character; 0.16 in of the width is padding.
    chars = max(12, int((width - 0.16) * 72 / (_font_size(row, width) * 0.55)))
    lines = textwrap.wrap(f"{row['label']} (n = {row['n']})", chars)
    for name, n in row["breakdown"].items():
        lines += textwrap.wrap(f"{name}: {n}", chars, initial_indent="  ", subsequent_indent="    ")
    return lines


def _box(ax, row, left: float, top: float, width: float, height: float) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (left, top),
            width,
            height,
            boxstyle="round,pad=0,rounding_size=0.05",
            facecolor="white",
            edgecolor=_INK,
            gid=f"consort-{_slug(row['id'])}",
        )
    )
    text = "\n".join(_box_lines(row, width))
    size = _font_size(row, width)
    ax.text(left + 0.08, top + height / 2, text, ha="left", va="center", fontsize=size, linespacing=1.2)


def _arrow(ax, start, end) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=_INK, shrinkA=0, shrinkB=0)
    )
