"""campaigns: members' ideas, their backers and followers, updates and responses, pinned posts, linked polls (issue 13)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'campaigns',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=80), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('idea', sa.Text(), nullable=False),
        sa.Column('ask', sa.Text(), nullable=False),
        sa.Column('ask_of', sa.String(length=300), server_default='', nullable=False),
        sa.Column('organiser', sa.String(length=120), nullable=False),
        sa.Column('contact', sa.String(length=320), nullable=False),
        sa.Column('contact_confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('query', sa.String(length=500), server_default='', nullable=False),
        sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
        sa.Column('outcome', sa.String(length=16), server_default='', nullable=False),
        sa.Column('backers', sa.Integer(), server_default='0', nullable=False),
        sa.Column('reason', sa.Text(), server_default='', nullable=False),
        sa.Column('decided_by', sa.String(length=320), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('opened_at', sa.DateTime(), nullable=True),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
        sa.UniqueConstraint('slug', name=op.f('uq_campaigns_slug')),
    )
    op.create_index('ix_campaigns_status_opened_at', 'campaigns', ['status', 'opened_at'])
    op.create_table(
        'campaign_backings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('reader', sa.String(length=64), nullable=False),
        sa.Column('ip_hash', sa.String(length=64), server_default='', nullable=False),
        sa.Column('listed_name', sa.String(length=120), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_backings_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_backings')),
        sa.UniqueConstraint('campaign_id', 'reader', name=op.f('uq_campaign_backings_campaign_id_reader')),
    )
    op.create_index('ix_campaign_backings_campaign_created', 'campaign_backings', ['campaign_id', 'created_at'])
    op.create_index('ix_campaign_backings_created_at', 'campaign_backings', ['created_at'])
    op.create_table(
        'campaign_followers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('confirm_sent_at', sa.DateTime(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('left_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                                name=op.f('fk_campaign_followers_campaign_id_campaigns'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_followers')),
        sa.UniqueConstraint('campaign_id', 'email', name=op.f('uq_campaign_followers_campaign_id_email')),
    )
    op.create_table(
        'campaign_updates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('responder', sa.String(length=200), server_default='', nullable=False),
        sa.Column('role', sa.String(length=200), server_default='', nullable=False),
        sa.Column('recorded_by', sa.String(length=320), server_default='', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_updates_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_updates')),
    )
    op.create_index('ix_campaign_updates_campaign_created', 'campaign_updates', ['campaign_id', 'created_at'])
    op.create_table(
        'campaign_posts',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('post_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('by', sa.String(length=320), server_default='', nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_posts_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['post_id'], ['posts.id'], name=op.f('fk_campaign_posts_post_id_posts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'post_id', name=op.f('pk_campaign_posts')),
    )
    op.create_table(
        'campaign_polls',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('poll_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_campaign_polls_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['poll_id'], ['polls.id'], name=op.f('fk_campaign_polls_poll_id_polls'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'poll_id', name=op.f('pk_campaign_polls')),
    )
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('list_unsubscribe', sa.String(length=2048), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('list_unsubscribe')
    op.drop_table('campaign_polls')
    op.drop_table('campaign_posts')
    op.drop_index('ix_campaign_updates_campaign_created', table_name='campaign_updates')
    op.drop_table('campaign_updates')
    op.drop_table('campaign_followers')
    op.drop_index('ix_campaign_backings_created_at', table_name='campaign_backings')
    op.drop_index('ix_campaign_backings_campaign_created', table_name='campaign_backings')
    op.drop_table('campaign_backings')
    op.drop_index('ix_campaigns_status_opened_at', table_name='campaigns')
    op.drop_table('campaigns')
