"""Shared test fixtures: where the project's shared/ folder (spec, reference data) lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_shared(relative: str) -> Path:
    """A path under ../shared; in CI its absence fails the test, elsewhere it skips with the reason."""
    path = SHARED / relative
    if not path.exists():
        message = f"reference data {path} is absent (it ships beside the repository as ../shared)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
