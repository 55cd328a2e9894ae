"""editor's picks and recommendation counts on posts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('posts') as batch:
        batch.add_column(sa.Column('featured_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('featured_by', sa.String(length=320), server_default='', nullable=False))
        batch.add_column(sa.Column('recommendations', sa.Integer(), server_default='0', nullable=False))
        batch.create_index('ix_posts_featured_at', ['featured_at'])


def downgrade():
    with op.batch_alter_table('posts') as batch:
        batch.drop_index('ix_posts_featured_at')
        batch.drop_column('recommendations')
        batch.drop_column('featured_by')
        batch.drop_column('featured_at')
