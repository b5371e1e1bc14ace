"""The report as a document: sections of text, tables and figures, rendered to HTML and to PDF.

The content (``Section`` of ``Text``, ``Table``, ``FigureBlock``) is independent of the output format;
:func:`render_html` writes one self-contained file (CSS inline, figures as SVG ``data:`` URIs: the file
can be e-mailed or archived without its folder, and each figure keeps its own SVG document so the ids
matplotlib writes cannot clash), :func:`render_pdf` a PDF with reportlab's ``invariant=1`` (the same
content gives the same bytes). One formatting rule (:func:`number`, :func:`percent`) serves both.
"""

from __future__ import annotations

import base64
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

# A4 pages with 2 cm margins: 17 cm of text width; figures a little narrower, at most 22 cm high.
MARGIN_CM, TEXT_WIDTH_CM = 2.0, 17.0
FIGURE_WIDTH_CM, FIGURE_HEIGHT_CM = 16.0, 22.0


# --- the report's content, independent of the output format ----------------------------------------


@dataclass(frozen=True)
class Text:
    text: str
    kind: str = "text"


@dataclass(frozen=True)
class Table:
    id: str
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()
    note: str = ""
    kind: str = "table"


@dataclass(frozen=True)
class FigureBlock:
    name: str
    caption: str
    kind: str = "figure"


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Text | Table | FigureBlock, ...]


# --- formatting (one rule for every table, HTML and PDF alike) --------------------------------------


def number(value: Any, digits: int = 1) -> str:
    """A number for a table: integers as they are, floats to ``digits`` places, missing as "-"."""
    if missing(value):
        return "-"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if math.isinf(value):
        return "not reached"
    return str(int(value)) if digits == 0 and value.is_integer() else f"{value:.{digits}f}"


def percent(p: float | None) -> str:
    """A probability as a percentage to one decimal place (``0.8571`` -> ``85.7``)."""
    return number(None if p is None else 100 * float(p), 1)


def missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


# --- HTML ---------------------------------------------------------------------------------------


def render_html(
    title: str,
    identity: Sequence[tuple[str, str]],
    sections: Sequence[Section],
    figures_dir: Path,
    footer: str,
) -> str:
    """The report as one HTML document (CSS inline, figures as SVG data URIs)."""
    templates = resources.files("nettrial.analysis") / "templates"
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string((templates / "report.html").read_text(encoding="utf-8"))
    names = [b.name for s in sections for b in s.blocks if b.kind == "figure"]
    figures = {
        name: "data:image/svg+xml;base64,"
        + base64.b64encode((figures_dir / f"{name}.svg").read_bytes()).decode()
        for name in names
    }
    return template.render(
        title=title,
        identity=identity,
        sections=sections,
        figures=figures,
        css=(templates / "report.css").read_text(encoding="utf-8"),
        footer=footer,
    )


# --- PDF ----------------------------------------------------------------------------------------


def render_pdf(
    path: Path,
    title: str,
    identity: Sequence[tuple[str, str]],
    sections: Sequence[Section],
    figures_dir: Path,
    footer: str,
) -> None:
    """The report as a PDF (A4; the same bytes on every run: reportlab's ``invariant=1``)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer
    from reportlab.platypus import Table as PdfTable

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    story: list[Any] = [Paragraph(_pdf_text(title), styles["Title"])]
    story.append(PdfTable([[_pdf_text(k), _pdf_text(v)] for k, v in identity], hAlign="LEFT"))
    for section in sections:
        story.append(Paragraph(_pdf_text(section.title), styles["Heading2"]))
        for block in section.blocks:
            if block.kind == "text":
                story.append(Paragraph(_pdf_text(block.text), styles["BodyText"]))
            elif block.kind == "table":
                story.append(Paragraph(_pdf_text(block.caption), styles["Heading4"]))
                cells = [[Paragraph(f"<b>{_pdf_text(h)}</b>", small) for h in block.header]]
                cells += [[Paragraph(_pdf_text(c), small) for c in row] for row in block.rows]
                table = PdfTable(
                    cells, colWidths=_column_widths(block, TEXT_WIDTH_CM * cm), repeatRows=1, hAlign="LEFT"
                )
                grid = [("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
                table.setStyle([*grid, ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))])
                story.append(table)
                if block.note:
                    story.append(Paragraph(_pdf_text(block.note), small))
                story.append(Spacer(1, 0.3 * cm))
            else:
                image = Image(str(figures_dir / f"{block.name}.png"))
                scale = min(FIGURE_WIDTH_CM * cm / image.drawWidth, FIGURE_HEIGHT_CM * cm / image.drawHeight)
                image.drawWidth, image.drawHeight = image.drawWidth * scale, image.drawHeight * scale
                story += [image, Paragraph(_pdf_text(block.caption), small), Spacer(1, 0.3 * cm)]

    def page_footer(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(MARGIN_CM * cm, 1.2 * cm, f"{footer} - page {doc.page}")
        canvas.restoreState()

    margins = dict.fromkeys(("leftMargin", "rightMargin", "topMargin", "bottomMargin"), MARGIN_CM * cm)
    # invariant=1: no creation date, a document id from the content: the same bytes on every run.
    document = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title=title,
        author="nettrial",
        creator="nettrial",
        producer="nettrial",
        subject=footer,
        invariant=1,
        **margins,
    )
    document.build(story, onFirstPage=page_footer, onLaterPages=page_footer)


def _column_widths(table: Table, total: float) -> list[float]:
    """Widths in proportion to each column's longest text (within bounds), filling ``total``."""
    longest = [
        min(60, max(4, len(table.header[i]), *(len(row[i]) for row in table.rows)))
        for i in range(len(table.header))
    ]
    return [total * n / sum(longest) for n in longest]


# The PDF's standard fonts (Helvetica) have Latin-1 glyphs only; spell the few others out.
# The PDF's standard fonts cover Latin-1 only: other signs the registry's wording uses are spelled out.
_PDF_SPELLING = str.maketrans(
    {"≥": ">=", "≤": "<=", "μ": "u", "→": "->", "−": "-"} | {s: f"^{d}" for d, s in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")}
)


def _pdf_text(text: str) -> str:
    """Plain text as reportlab paragraph markup (its mini-HTML needs &, < and > escaped)."""
    text = str(text).translate(_PDF_SPELLING)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
