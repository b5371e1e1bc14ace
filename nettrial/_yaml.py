"""YAML for rule and protocol files: the C parser when PyYAML has it (same safe schema, ~10x faster)."""

from __future__ import annotations

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse ``text`` with the safe schema (no arbitrary objects)."""
    return yaml.load(text, Loader=_Loader)
