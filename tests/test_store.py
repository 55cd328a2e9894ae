"""Dedup and storage: stable keys, updates in place, broken GUIDs, cross-posts, tombstones, dates.

Every case runs the real path: a loopback server serves the feed, refresh_feed
fetches, parses, sanitises and stores it in a real SQLite file.
"""

import threading
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from aggregator import db, feed_store, fetch_history, pipeline, post_store
from aggregator.db import posts
from community import moderation

from .conftest import rss


def refresh(engine, settings, url):
    feed = feed_store.get_feed(engine, url)
    out = pipeline.refresh_feed(engine, feed, settings)
    assert out.result in ("ok", "not_modified"), out.error
    return out


def all_rows(engine):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(posts).order_by(posts.c.id))]


def test_updated_entry_is_updated_in_place(server, settings, engine):
    item = {"title": "Original", "link": server.url("/p/1"), "guid": "g1", "description": "first words"}
    url = server.route("/f", rss([item]))
    feed_store.add_feed(engine, url)
    refresh(engine, settings, url)
    [before] = all_rows(engine)
    server.route("/f", rss([dict(item, title="Corrected", description="better words")]))
    out = refresh(engine, settings, url)
    assert (out.new, out.updated) == (0, 1)
    [after] = all_rows(engine)
    assert after["id"] == before["id"]
    assert after["title"] == "Corrected" and "better words" in after["content_html"]
    assert after["first_seen"] == before["first_seen"]  # ranking time does not move
    assert after["published"] == before["published"]
    assert after["change_seq"] > before["change_seq"]
    # Same bytes again: nothing parsed, nothing changed.
    out = refresh(engine, settings, url)
    assert out.result == "not_modified"
    assert all_rows(engine)[0]["change_seq"] == after["change_seq"]


def test_every_entry_sharing_one_guid_is_kept_apart(server, settings, engine):
    items = [{"title": f"Post {i}", "link": server.url(f"/p/{i}"), "guid": "same-guid"} for i in range(5)]
    url = server.route("/f", rss(items))
    feed_store.add_feed(engine, url)
    assert refresh(engine, settings, url).new == 5
    # A new post arrives with the same broken GUID: one new row, nothing overwritten.
    items.insert(0, {"title": "Post new", "link": server.url("/p/new"), "guid": "same-guid"})
    server.route("/f", rss(items))
    out = refresh(engine, settings, url)
    assert (out.new, out.updated) == (1, 0)
    assert sorted(r["title"] for r in all_rows(engine)) == sorted(i["title"] for i in items)


def test_guid_that_becomes_repeated_does_not_duplicate(server, settings, engine):
    first = {"title": "A", "link": server.url("/a"), "guid": "x"}
    url = server.route("/f", rss([first]))
    feed_store.add_feed(engine, url)
    refresh(engine, settings, url)
    server.route("/f", rss([{"title": "B", "link": server.url("/b"), "guid": "x"}, first]))
    out = refresh(engine, settings, url)
    assert out.new == 1
    assert sorted(r["title"] for r in all_rows(engine)) == ["A", "B"]


def test_missing_guids_fall_back_to_the_link(server, settings, engine):
    items = [{"title": f"T{i}", "link": server.url(f"/p/{i}")} for i in range(3)]
    url = server.route("/f", rss(items))
    feed_store.add_feed(engine, url)
    assert refresh(engine, settings, url).new == 3
    items[0]["title"] = "T0 edited"
    server.route("/f", rss(items))
    out = refresh(engine, settings, url)
    assert (out.new, out.updated) == (0, 1)
    # No guid and no link: the title and content tell entries apart, and exact repeats collapse.
    server.route("/g", rss([{"title": "Only text", "description": "x"}, {"title": "Only text", "description": "x"},
                            {"title": "Other", "description": "y"}]))
    feed_store.add_feed(engine, server.url("/g"))
    assert refresh(engine, settings, server.url("/g")).new == 2


def test_cross_posted_article_is_linked_not_listed_twice(server, settings, engine):
    article = "https://www.labour-blog.example.org/2026/11/why-we-canvass/"
    url_a = server.route("/a", rss([{"title": "Why we canvass", "link": article, "guid": "a-1"}]))
    url_b = server.route("/b", rss([{"title": "Why we canvass", "link": "https://labour-blog.example.org/2026/11/why-we-canvass?utm_source=feed",
                                     "guid": "b-1"}]))
    feed_store.add_feed(engine, url_a)
    feed_store.add_feed(engine, url_b)
    refresh(engine, settings, url_a)
    refresh(engine, settings, url_b)
    rows = all_rows(engine)
    assert len(rows) == 2
    original, copy = rows
    assert original["duplicate_of"] is None and copy["duplicate_of"] == original["id"]
    assert [p["id"] for p in post_store.list_posts(engine)] == [original["id"]]
    # Each blog's own page still lists its copy.
    assert len(post_store.list_posts(engine, feed_id=copy["feed_id"])) == 1


def test_hidden_and_deleted_posts_do_not_come_back(server, settings, engine):
    items = [{"title": f"T{i}", "link": server.url(f"/p/{i}"), "guid": f"g{i}"} for i in range(3)]
    url = server.route("/f", rss(items))
    feed_store.add_feed(engine, url)
    refresh(engine, settings, url)
    ids = {r["title"]: r["id"] for r in all_rows(engine)}
    moderation.hide_post(engine, ids["T0"], actor="test", reason="libellous")
    post_store.delete_post(engine, ids["T1"])
    items[0]["title"] = "T0"  # same content: still hidden
    items[1]["description"] = "changed after deletion"
    server.route("/f", rss(items + [{"title": "T3", "link": server.url("/p/3"), "guid": "g3"}]))
    out = refresh(engine, settings, url)
    assert out.new == 1
    titles = [p["title"] for p in post_store.list_posts(engine)]
    assert "T0" not in titles and "T1" not in titles and {"T2", "T3"} <= set(titles)
    rows = {r["id"]: r for r in all_rows(engine)}
    assert rows[ids["T0"]]["hidden"] and rows[ids["T0"]]["hidden_reason"] == "libellous"
    assert rows[ids["T1"]]["deleted"] and rows[ids["T1"]]["content_html"] == ""
    assert len(rows) == 4
    moderation.unhide_post(engine, ids["T0"], actor="test")
    assert "T0" in [p["title"] for p in post_store.list_posts(engine)]


def test_future_and_missing_dates_never_outrank_today(server, settings, engine):
    past = "Mon, 02 Nov 2026 10:00:00 GMT"
    url = server.route("/f", rss([
        {"title": "Future", "link": server.url("/1"), "guid": "1", "date": "Fri, 01 Jan 2100 00:00:00 GMT"},
        {"title": "Undated", "link": server.url("/2"), "guid": "2"},
        {"title": "Past", "link": server.url("/3"), "guid": "3", "date": past},
        {"title": "Garbage date", "link": server.url("/4"), "guid": "4", "date": "the day after tomorrow"},
    ]))
    feed_store.add_feed(engine, url)
    before = datetime.now(timezone.utc)
    refresh(engine, settings, url)
    rows = {r["title"]: r for r in all_rows(engine)}
    for title in ("Future", "Undated", "Garbage date"):
        assert rows[title]["published"] == rows[title]["first_seen"]
        assert rows[title]["published"].tzinfo is not None
        assert rows[title]["first_seen"] >= before - timedelta(seconds=1)
    assert rows["Future"]["published_claimed"].year == 2100  # what the feed said is kept, not used
    assert rows["Past"]["published"] == datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


def test_malformed_feed_yields_what_it_can_and_the_problem_is_recorded(server, settings, engine):
    broken = rss([{"title": "Good one", "link": server.url("/1"), "guid": "1"}]).replace(
        "<title>Good one</title>", "<title>Good one &nbsp; &amp broken</title>"
    )
    url = server.route("/f", broken)
    feed_store.add_feed(engine, url)
    out = refresh(engine, settings, url)
    assert out.new == 1 and out.warning
    [feed] = feed_store.list_feeds(engine)
    assert feed["status"] == "active" and feed["error_count"] == 0
    assert "malformed" in feed["last_error"]


def test_html_page_at_the_feed_url_is_a_clear_failure(server, settings, engine):
    url = server.route("/f", "<!DOCTYPE html><html><head><title>Blog</title></head><body>hi</body></html>",
                       content_type="text/html")
    feed, _ = feed_store.add_feed(engine, url)
    out = pipeline.refresh_feed(engine, feed, settings)
    assert out.result == "failed" and "HTML page" in out.error and url in out.error
    [row] = feed_store.list_feeds(engine)
    assert row["status"] == "erroring" and row["error_count"] == 1 and "HTML page" in row["last_error"]
    [attempt] = fetch_history.fetch_history(engine, feed.id)
    assert attempt["http_status"] == 200 and "HTML page" in attempt["error"]


def test_encoding_mistakes_are_survived(server, settings, engine):
    # windows-1252 bytes (smart quotes, pound sign) declared as UTF-8 in the prolog.
    body = rss([{"title": "Caf\u00e9 \u201cnews\u201d \u00a35", "link": server.url("/1"), "guid": "1"}])
    server.route("/cp1252", body.encode("cp1252"), content_type="application/rss+xml")
    # ISO-8859-1 declared only in the HTTP header, no prolog encoding.
    latin = rss([{"title": "Gr\u00fc\u00dfe aus K\u00f6ln", "link": server.url("/2"), "guid": "2"}]).replace(
        ' encoding="utf-8"', "")
    server.route("/latin1", latin.encode("latin-1"), content_type="text/xml; charset=iso-8859-1")
    for path in ("/cp1252", "/latin1"):
        feed_store.add_feed(engine, server.url(path))
        out = pipeline.refresh_feed(engine, feed_store.get_feed(engine, server.url(path)), settings)
        assert out.result == "ok", out.error
    titles = {r["title"] for r in all_rows(engine)}
    assert "Gr\u00fc\u00dfe aus K\u00f6ln" in titles
    assert any("Caf" in t and "news" in t for t in titles)


def test_flood_is_capped(server, settings, engine):
    import dataclasses

    small = dataclasses.replace(settings, fetch_max_entries=50)
    url = server.route("/f", rss([{"title": f"T{i}", "link": server.url(f"/{i}"), "guid": str(i)} for i in range(400)]))
    feed, _ = feed_store.add_feed(engine, url)
    out = pipeline.refresh_feed(engine, feed, small)
    assert out.new == 50 and "only the first 50" in out.warning


def test_change_sequence_increases_and_concurrent_saves_do_not_duplicate(server, settings, engine):
    url = server.route("/f", rss([{"title": f"T{i}", "link": server.url(f"/{i}"), "guid": str(i)} for i in range(30)]))
    feed, _ = feed_store.add_feed(engine, url)
    from aggregator import fetch, parse, sanitize

    result = fetch.fetch(url, settings)
    clean = [sanitize.sanitize_post(p, settings) for p in parse.parse_feed(result.body, feed).posts]
    errors = []

    def save():
        try:
            post_store.save_posts(engine, feed, clean)
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = all_rows(engine)
    assert len(rows) == 30
    seqs = [r["change_seq"] for r in rows]
    assert len(set(seqs)) == 30 and min(seqs) >= 1
    with engine.connect() as conn:
        counter = conn.execute(sa.select(db.counters.c.value).where(db.counters.c.name == db.CHANGE_COUNTER)).scalar()
    assert counter == max(seqs)


def _serve_feeds(server, engine, n):
    urls = []
    for i in range(n):
        items = [{"title": f"Post {i}.{j}", "link": server.url(f"/{i}/{j}"), "guid": f"{i}-{j}"} for j in range(3)]
        urls.append(server.route(f"/f{i}", rss(items)))
        feed_store.add_feed(engine, urls[-1])
    return urls


def test_one_feed_failing_in_a_shared_transaction_leaves_the_others_stored(server, settings, engine):
    """store() saves several feeds in one transaction; when that fails, each is stored alone,
    so only the feed at fault fails. Here a feed's row is deleted between its fetch and its
    store (its fetch record can no longer be written)."""
    urls = _serve_feeds(server, engine, 3)
    gathered = [pipeline.gather(engine, feed_store.get_feed(engine, url), settings) for url in urls]
    assert all(isinstance(g, pipeline.Gathered) for g in gathered)
    with engine.begin() as conn:
        conn.execute(sa.delete(db.feeds).where(db.feeds.c.id == gathered[1].feed.id))
    outcomes = pipeline.store(engine, settings, gathered)
    assert [o.result for o in outcomes] == ["ok", "failed", "ok"]
    assert "internal error" in outcomes[1].error
    assert [o.new for o in outcomes] == [3, 0, 3]
    titles = sorted(r["title"] for r in all_rows(engine))
    assert titles == ["Post 0.0", "Post 0.1", "Post 0.2", "Post 2.0", "Post 2.1", "Post 2.2"]
    for url in (urls[0], urls[2]):  # and each stored feed has its fetch on record
        assert feed_store.get_feed(engine, url).last_success_at is not None


def test_a_batch_is_stored_several_feeds_a_transaction(server, settings, engine):
    urls = _serve_feeds(server, engine, 24)
    commits = []

    def count(conn):
        commits.append(1)

    sa.event.listen(engine, "commit", count)
    try:
        outcomes = pipeline.refresh_feeds(engine, [feed_store.get_feed(engine, u) for u in urls], settings)
    finally:
        sa.event.remove(engine, "commit", count)
    assert sorted(o.result for o in outcomes) == ["ok"] * 24 and sum(o.new for o in outcomes) == 72
    assert len(all_rows(engine)) == 72
    assert len(commits) < 24, f"{len(commits)} commits for 24 feeds: each feed was stored alone"
