"""Campaigns (issue 13): a page per member's idea, where it gathers backers and the movement's writing.

* ``store``: proposing, the organiser's links and confirmation, reading campaigns back, the
  directory's orders, updates and responses, pinned and removed posts, linked polls, and the
  moderators' decisions (called only through community.moderation, the one door).
* ``backing``: one back per reader (a unique constraint), bursts from one address, and the
  backers who asked for updates by mail (double opt-in, one-click unsubscribe).
* ``text``: what people type, as safe HTML (Markdown or plain text; never raw HTML), and slugs.
* ``letters``: the words of every campaign mail; ``charts``: backers over time as SVG;
  ``writing``: the aggregated posts that match a campaign's query, pinned ones first.
"""
