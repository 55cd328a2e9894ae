"""index on posts.recommendations: the ranking's max(recommendations) was a full scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('posts') as batch:
        batch.create_index('ix_posts_recommendations', ['recommendations'])


def downgrade():
    with op.batch_alter_table('posts') as batch:
        batch.drop_index('ix_posts_recommendations')
