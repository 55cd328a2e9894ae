"""feed_events: what the aggregator tells the community package (a feed gone or failing, a date clamped)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'feed_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('feed_id', sa.Integer, nullable=False),
        sa.Column('post_id', sa.Integer, nullable=True),
        sa.Column('label', sa.String(500), nullable=False, server_default=''),
        sa.Column('detail', sa.Text, nullable=False, server_default=''),
        sa.Column('failures', sa.Integer, nullable=False, server_default='0'),
        sa.Column('handled_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_events')),
    )
    op.create_index(op.f('ix_feed_events_handled_at'), 'feed_events', ['handled_at'])


def downgrade():
    op.drop_index(op.f('ix_feed_events_handled_at'), table_name='feed_events')
    op.drop_table('feed_events')
