"""Search: the Whoosh schema, the index sync job (its only writer) and the reader.

Built on the aggregator's change sequence (posts.change_seq); see docs/ for the plan.
"""
