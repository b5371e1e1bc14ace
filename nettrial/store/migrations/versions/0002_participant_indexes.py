"""Indexes on the foreign keys every participant's and patient's page reads by.

PostgreSQL does not index a foreign key by itself: without these, each participant's dosing, labs,
vital signs, adverse events and tumour assessments were read by scanning the whole table, whose size
grows with every visit of the study. (Visits and dispositions already have a unique constraint that
begins with participant_id; screening records one that begins with patient_id.)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXED = {
    "dosing_period": "participant_id",
    "lab_result": "participant_id",
    "vital_signs": "participant_id",
    "adverse_event": "participant_id",
    "tumour_assessment": "participant_id",
    "eligibility_evaluation": "patient_id",
    "consent": "patient_id",
}


def upgrade() -> None:
    for table, column in INDEXED.items():
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in INDEXED.items():
        op.drop_index(f"ix_{table}_{column}", table_name=table)
