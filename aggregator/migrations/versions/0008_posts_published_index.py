"""indexes on posts.published: the front page, /new and blog pages age and order posts by their own date

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('posts') as batch:
        batch.create_index('ix_posts_published', ['published'])
        batch.create_index('ix_posts_feed_published', ['feed_id', 'published'])


def downgrade():
    with op.batch_alter_table('posts') as batch:
        batch.drop_index('ix_posts_feed_published')
        batch.drop_index('ix_posts_published')
