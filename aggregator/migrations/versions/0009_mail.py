"""mail: subscribers, digest issues and editor's notes; the outbox delivered over SMTP (issue 12)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'subscribers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('frequency', sa.String(length=8), server_default='daily', nullable=False),
        sa.Column('categories', sa.Text(), server_default='[]', nullable=False),
        sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
        sa.Column('nonce', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=32), server_default='web', nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('confirm_sent_at', sa.DateTime(), nullable=True),
        sa.Column('confirmed_at', sa.DateTime(), nullable=True),
        sa.Column('left_at', sa.DateTime(), nullable=True),
        sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
        sa.Column('last_failure', sa.Text(), server_default='', nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribers')),
        sa.UniqueConstraint('email', name=op.f('uq_subscribers_email')),
    )
    op.create_index('ix_subscribers_status_frequency', 'subscribers', ['status', 'frequency'])
    op.create_table(
        'digest_issues',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('key', sa.String(length=10), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('ends_at', sa.DateTime(), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('queued_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_digest_issues')),
        sa.UniqueConstraint('period', 'key', name=op.f('uq_digest_issues_period_key')),
    )
    op.create_index(op.f('ix_digest_issues_created_at'), 'digest_issues', ['created_at'])
    op.create_table(
        'digest_notes',
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('key', sa.String(length=10), nullable=False),
        sa.Column('body', sa.Text(), server_default='', nullable=False),
        sa.Column('updated_by', sa.String(length=320), server_default='', nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('period', 'key', name=op.f('pk_digest_notes')),
    )
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('html_body', sa.Text(), server_default='', nullable=False))
        batch.add_column(sa.Column('status', sa.String(length=16), server_default='queued', nullable=False))
        batch.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('last_error', sa.Text(), server_default='', nullable=False))
        batch.add_column(sa.Column('claimed_by', sa.String(length=200), server_default='', nullable=False))
        batch.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('subscriber_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('issue_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_outbox_subscriber_id_subscribers'), 'subscribers', ['subscriber_id'], ['id'],
                                 ondelete='CASCADE')
        batch.create_foreign_key(op.f('fk_outbox_issue_id_digest_issues'), 'digest_issues', ['issue_id'], ['id'],
                                 ondelete='CASCADE')
        batch.create_unique_constraint(op.f('uq_outbox_issue_id_subscriber_id'), ['issue_id', 'subscriber_id'])
        batch.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'])
    # Messages written before there was a mailer: the ones marked sent stay sent; the rest
    # are delivered by the first run of the mailer.
    op.execute("UPDATE outbox SET status = 'sent' WHERE sent_at IS NOT NULL")


def downgrade():
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_status_next_attempt_at')
        batch.drop_constraint(op.f('uq_outbox_issue_id_subscriber_id'), type_='unique')
        batch.drop_constraint(op.f('fk_outbox_issue_id_digest_issues'), type_='foreignkey')
        batch.drop_constraint(op.f('fk_outbox_subscriber_id_subscribers'), type_='foreignkey')
        for column in ('issue_id', 'subscriber_id', 'claimed_until', 'claimed_by', 'last_error', 'next_attempt_at',
                       'attempts', 'status', 'html_body'):
            batch.drop_column(column)
    op.drop_table('digest_notes')
    op.drop_index(op.f('ix_digest_issues_created_at'), table_name='digest_issues')
    op.drop_table('digest_issues')
    op.drop_index('ix_subscribers_status_frequency', table_name='subscribers')
    op.drop_table('subscribers')
