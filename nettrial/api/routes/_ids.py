"""Row ids in paths and bodies: a positive 32-bit integer, the range of PostgreSQL's ``integer``.

A larger number names no row; refusing it at the edge (422, naming the field) keeps it from
overflowing the database driver, which would otherwise end the request with a 500.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

MAX_ROW_ID = 2**31 - 1

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowIdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
