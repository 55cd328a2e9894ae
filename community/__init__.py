"""What people do: readers, bloggers and moderators (see docs/design.md, "Packages").

polls/            reader polls: the poll, ballots, counting, methodology, charts, CSV, SQL
recommendations   a reader's recommendation of a post, once per reader
jobs              the community's scheduled jobs, handed to the worker (leader only)
submissions       bloggers' submissions and proving a blog is theirs
feedcheck         the submission's feed check and preview (what is decided about a URL)
moderation        every moderator action, one door for the web and the command
blog_health       what the moderators' pages read
moderation_log    the public moderation log
notices           the aggregator's feed events turned into log lines and messages
outbox            messages to people, written in the transaction of their event
accounts          moderators' passwords and sessions
identity          the site's secret and the keyed hashes of readers and addresses
ratelimits        shared rate limits

May import aggregator and index; never web or hustings.
"""
