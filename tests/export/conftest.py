"""The demo study for export tests (the analysis tests' read-only session fixture), and the test
registry record."""

import json
from pathlib import Path

from tests.analysis.conftest import DEMO_CUTOFF, demo_db  # noqa: F401

# NCT07279532 as the registry holds it (API v2 JSON).
RECORD = Path(__file__).parent / "data" / "NCT07279532.json"


def record_data() -> dict:
    return json.loads(RECORD.read_text(encoding="utf-8"))


def write_record(tmp_path: Path, data: object, name: str = "record.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path
