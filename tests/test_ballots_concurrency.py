"""Exactly-once ballots under concurrency on both databases, where no unique constraint can
decide alone: in an IP poll, one reader (one cookie) voting from many addresses at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from aggregator.db import ballots
from community.polls import Ballot, ballot_store
from community.polls import store as poll_store


def test_one_reader_from_twenty_addresses_at_once_counts_once(engine):
    record = poll_store.create_poll(engine, question="Which day for the branch meeting?", options=["Monday", "Tuesday"],
                                    created_by="mod@hustings.example", integrity="ip")
    choice = Ballot(record.id, (record.poll.options[0].id,))
    start = threading.Barrier(20)

    def vote(i: int):
        start.wait()  # all twenty in flight together
        return ballot_store.cast_ballot(engine, record.poll, choice, voter=f"address-hash-{i}", reader="one-reader")

    with ThreadPoolExecutor(20) as pool:
        casts = list(pool.map(vote, range(20)))
    assert sum(c.counted for c in casts) == 1
    assert sorted({c.reason for c in casts if not c.counted}) == ["duplicate"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ballots)
                            .where(ballots.c.poll_id == record.id)).scalar() == 1
    assert ballot_store.rejection_counts(engine, record.id) == {"duplicate": 19}
