"""What the staging engine is given: pathology findings, or the T, N and M categories themselves.

Values arrive typed (from Python) or as text (from a CSV cell or the command line); both go through
the same checks, which name the field, the value and what is allowed. Ranges and units come from
``data/inputs.yaml``; vocabularies (extent, metastasis sites, categories) from the site's tables.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from nettrial.exceptions import ImplausibleValueError, InputError
from nettrial.staging.tables import SiteTables, m_category, read_yaml

NONE_WORDS = frozenset({"none", "no", "m0"})


@dataclass(frozen=True, slots=True)
class Findings:
    """Pathology findings for one primary tumour. ``None`` means not recorded (stays unknown).

    ``metastasis`` lists the distant metastasis sites; an empty tuple means none were found.
    """

    size_mm: float | None = None
    extent: str | None = None
    nodes_positive: int | None = None
    nodes_examined: int | None = None
    mesenteric_mass_mm: float | None = None
    metastasis: tuple[str, ...] | None = None
    multiple_tumours: bool = False

    T_FIELDS = ("size_mm", "extent")
    N_FIELDS = ("nodes_positive", "nodes_examined", "mesenteric_mass_mm")

    def given(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if getattr(self, name) is not None]


FINDING_FIELDS = tuple(f.name for f in fields(Findings))


@cache
def input_specs() -> dict[str, dict[str, Any]]:
    return read_yaml("inputs.yaml")


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def number(field: str, value: Any) -> float | int | None:
    """A checked number for ``field`` (range and integer-ness from inputs.yaml); blank is None."""
    if is_blank(value):
        return None
    spec = input_specs()[field]
    try:
        parsed = float(str(value).strip()) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise InputError(field, f"{value!r} is not a number ({spec['unit']})") from None
    if math.isnan(parsed) or math.isinf(parsed):
        raise InputError(field, f"{value!r} is not a number ({spec['unit']})")
    if spec["type"] == "integer":
        if not parsed.is_integer():
            raise InputError(field, f"{value!r} must be a whole number of {spec['unit']}")
        parsed = int(parsed)
    low, high = spec.get("min"), spec.get("max")
    if "min_exclusive" in spec and parsed <= spec["min_exclusive"]:
        raise InputError(field, f"{value} must be greater than {spec['min_exclusive']} {spec['unit']}")
    if low is not None and parsed < low:
        raise InputError(field, f"{value} is below {low} {spec['unit']}")
    if high is not None and parsed > high:
        hint = f"; {spec['hint']}" if "hint" in spec else ""
        raise ImplausibleValueError(
            field, f"{value} {spec['unit']} is above the plausible maximum {high}{hint}"
        )
    return parsed


def metastasis_sites(value: Any) -> tuple[str, ...] | None:
    """Distant metastasis sites from a list or a text like ``liver,lung``; ``none`` is no metastasis."""
    if is_blank(value):
        return None
    items = value if isinstance(value, list | tuple) else re.split(r"[,;+ ]+", str(value).strip())
    names = [str(i).strip().lower() for i in items if str(i).strip()]
    if len(names) == 1 and names[0] in NONE_WORDS:
        return ()
    _, vocabulary = m_category()
    for name in names:
        if name not in vocabulary:
            raise InputError("metastasis", f"unknown metastasis site {name!r}", allowed=["none", *vocabulary])
    return tuple(sorted(set(names)))


def boolean(field: str, value: Any) -> bool:
    if is_blank(value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "y"}:
        return True
    if text in {"0", "false", "no", "n"}:
        return False
    raise InputError(field, f"{value!r} is not yes or no", allowed=["yes", "no"])


def findings_from(values: dict[str, Any]) -> Findings:
    """Checked findings from raw values keyed by field name (unknown keys are ignored)."""
    extent = values.get("extent")
    return Findings(
        size_mm=number("size_mm", values.get("size_mm")),
        extent=None if is_blank(extent) else str(extent).strip().lower().replace(" ", "_"),
        nodes_positive=number("nodes_positive", values.get("nodes_positive")),
        nodes_examined=number("nodes_examined", values.get("nodes_examined")),
        mesenteric_mass_mm=number("mesenteric_mass_mm", values.get("mesenteric_mass_mm")),
        metastasis=metastasis_sites(values.get("metastasis")),
        multiple_tumours=boolean("multiple_tumours", values.get("multiple_tumours")),
    )


def check_for_site(findings: Findings, tables: SiteTables) -> None:
    """Refuse findings the site's chapter does not use or does not know."""
    if findings.extent is not None and findings.extent not in tables.extent:
        raise InputError(
            "extent",
            f"{findings.extent!r} is not an extent for {tables.site}",
            allowed=tables.extent,
        )
    used = tables.fields()
    for name in findings.given(("mesenteric_mass_mm",)):
        if name not in used:
            raise InputError(name, f"is not used by the {tables.site} chapter")
    positive, examined = findings.nodes_positive, findings.nodes_examined
    if positive is not None and examined is not None and positive > examined:
        raise InputError("nodes_positive", f"{positive} positive nodes but only {examined} examined")


# --- explicit categories ---------------------------------------------------------------------

_CATEGORY = re.compile(
    r"^(?P<prefix>yp|yc|rp|rc|c|p|a)?(?P<axis>[TNM])(?P<value>X|\d)(?P<sub>[a-c])?(?P<suffix>\((?:m|\d+)\))?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Category:
    """A T, N or M category as written (``pT3(m)``), its root (``T3``) and, when the data left it
    undetermined, every category still possible (``label`` is then e.g. ``T1/T2`` or ``NX``)."""

    label: str
    root: str
    candidates: frozenset[str]

    @property
    def known(self) -> bool:
        return self.candidates == {self.root}


def category(axis: str, value: Any, tables: SiteTables) -> Category | None:
    """Parse and check an explicit category such as ``T2``, ``pN1`` or ``M1a`` for this site."""
    if is_blank(value):
        return None
    text = str(value).strip()
    match = _CATEGORY.match(text)
    allowed = tables.categories[axis]
    if not match or match["axis"].lower() != axis:
        raise InputError(axis, f"{text!r} is not a {axis.upper()} category", allowed=allowed)
    root = f"{axis.upper()}{match['value'].upper()}{(match['sub'] or '').lower()}"
    if root not in allowed:
        raise InputError(axis, f"{root} is not a category of the {tables.site} chapter", allowed=allowed)
    label = f"{(match['prefix'] or '').lower()}{root}{(match['suffix'] or '').lower()}"
    return Category(label, root, frozenset([root]))
