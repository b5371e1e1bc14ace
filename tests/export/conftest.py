"""The demo study for export tests: the analysis tests' session fixture (read-only)."""

from tests.analysis.conftest import DEMO_CUTOFF, demo_db  # noqa: F401
