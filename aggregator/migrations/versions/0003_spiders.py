"""spiders: per-feed content selector and full-text mode, crawl progress, per-post full-text state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_selector', sa.String(length=500), server_default='', nullable=False))
        batch_op.add_column(sa.Column('fulltext', sa.String(length=8), server_default='auto', nullable=False))
        batch_op.add_column(sa.Column('crawled_all_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fulltext_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('fulltext_error', sa.Text(), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('fulltext_error')
        batch_op.drop_column('fulltext_at')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_column('crawled_all_at')
        batch_op.drop_column('fulltext')
        batch_op.drop_column('content_selector')
