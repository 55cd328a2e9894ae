"""initial schema: feeds, fetches, posts, counters

Revision ID: 0001
Revises: 
Create Date: 2026-11-21
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('counters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_counters'))
    )
    op.create_table('feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('previous_url', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('site_url', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('title', sa.String(length=500), server_default='', nullable=False),
    sa.Column('category', sa.String(length=500), server_default='', nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='feed', nullable=False),
    sa.Column('status', sa.String(length=16), server_default='active', nullable=False),
    sa.Column('etag', sa.String(length=500), server_default='', nullable=False),
    sa.Column('last_modified', sa.String(length=100), server_default='', nullable=False),
    sa.Column('body_hash', sa.String(length=64), server_default='', nullable=False),
    sa.Column('interval_s', sa.Integer(), server_default='3600', nullable=False),
    sa.Column('next_check_at', sa.DateTime(), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(), nullable=True),
    sa.Column('last_success_at', sa.DateTime(), nullable=True),
    sa.Column('error_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), server_default='', nullable=False),
    sa.Column('last_error_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feeds')),
    sa.UniqueConstraint('url', name=op.f('uq_feeds_url'))
    )
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feeds_next_check_at'), ['next_check_at'], unique=False)

    op.create_table('fetches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), server_default='fetch', nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('bytes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('not_modified', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('new_posts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_posts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('final_url', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], name=op.f('fk_fetches_feed_id_feeds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fetches'))
    )
    with op.batch_alter_table('fetches', schema=None) as batch_op:
        batch_op.create_index('ix_fetches_feed_started', ['feed_id', 'started_at'], unique=False)

    op.create_table('posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('feed_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('guid', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('url', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('url_norm', sa.String(length=2048), server_default='', nullable=False),
    sa.Column('title', sa.String(length=1000), server_default='', nullable=False),
    sa.Column('author', sa.String(length=500), server_default='', nullable=False),
    sa.Column('published', sa.DateTime(), nullable=False),
    sa.Column('published_claimed', sa.DateTime(), nullable=True),
    sa.Column('first_seen', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('content_html', sa.Text(), server_default='', nullable=False),
    sa.Column('summary', sa.Text(), server_default='', nullable=False),
    sa.Column('tags', sa.Text(), server_default='[]', nullable=False),
    sa.Column('summary_only', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), server_default='', nullable=False),
    sa.Column('change_seq', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('duplicate_of', sa.Integer(), nullable=True),
    sa.Column('hidden', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('hidden_reason', sa.Text(), server_default='', nullable=False),
    sa.Column('hidden_at', sa.DateTime(), nullable=True),
    sa.Column('deleted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['duplicate_of'], ['posts.id'], name=op.f('fk_posts_duplicate_of_posts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['feed_id'], ['feeds.id'], name=op.f('fk_posts_feed_id_feeds'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts')),
    sa.UniqueConstraint('feed_id', 'key', name=op.f('uq_posts_feed_id_key'))
    )
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_posts_change_seq'), ['change_seq'], unique=False)
        batch_op.create_index('ix_posts_feed_first_seen', ['feed_id', 'first_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_posts_first_seen'), ['first_seen'], unique=False)
        batch_op.create_index(batch_op.f('ix_posts_url_norm'), ['url_norm'], unique=False)



def downgrade():
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_posts_url_norm'))
        batch_op.drop_index(batch_op.f('ix_posts_first_seen'))
        batch_op.drop_index('ix_posts_feed_first_seen')
        batch_op.drop_index(batch_op.f('ix_posts_change_seq'))

    op.drop_table('posts')
    with op.batch_alter_table('fetches', schema=None) as batch_op:
        batch_op.drop_index('ix_fetches_feed_started')

    op.drop_table('fetches')
    with op.batch_alter_table('feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feeds_next_check_at'))

    op.drop_table('feeds')
    op.drop_table('counters')
