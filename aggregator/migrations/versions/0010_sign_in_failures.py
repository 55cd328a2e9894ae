"""sign-in failures shown to moderators; rate-limit windows keyed by hashes and purged by the hour (issue 16)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sign_in_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('client', sa.String(16), nullable=False, server_default=''),
        sa.Column('known_device', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_failures')),
    )
    op.create_index(op.f('ix_sign_in_failures_at'), 'sign_in_failures', ['at'])
    op.create_index('ix_sign_in_failures_account_at', 'sign_in_failures', ['account', 'at'])
    # Windows counted before this revision are keyed by raw addresses and typed e-mail
    # addresses: they are only counters, so they go, and counting starts again hashed.
    op.execute(sa.text('DELETE FROM rate_hits'))
    op.create_index('ix_rate_hits_window_start', 'rate_hits', ['window_start'])


def downgrade():
    op.drop_index('ix_rate_hits_window_start', table_name='rate_hits')
    op.drop_index('ix_sign_in_failures_account_at', table_name='sign_in_failures')
    op.drop_index(op.f('ix_sign_in_failures_at'), table_name='sign_in_failures')
    op.drop_table('sign_in_failures')
