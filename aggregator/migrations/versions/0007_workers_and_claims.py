"""workers and feed claims: several workers on one PostgreSQL (leases, heartbeats, the leader)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('feeds') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=200), server_default='', nullable=False))
        batch.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))
    op.create_table(
        'workers',
        sa.Column('id', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=255), server_default='', nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.Column('leader_since', sa.DateTime(), nullable=True),
        sa.Column('backend_pid', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_workers')),
    )
    op.create_index(op.f('ix_workers_seen_at'), 'workers', ['seen_at'])


def downgrade():
    op.drop_index(op.f('ix_workers_seen_at'), table_name='workers')
    op.drop_table('workers')
    with op.batch_alter_table('feeds') as batch:
        batch.drop_column('claimed_until')
        batch.drop_column('claimed_by')
