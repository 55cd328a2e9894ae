"""OPML import/export: nested outlines are categories; malformed files import what they can."""

import pytest

from aggregator.errors import OPMLError
from aggregator.opml import read_opml, write_opml

NESTED = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>t</title></head><body>
  <outline text="News">
    <outline text="Magazines">
      <outline type="rss" text="Tribune" xmlUrl="https://tribunemag.co.uk/feed"/>
    </outline>
    <outline type="rss" text="LabourList" xmlUrl="https://labourlist.org/feed/"/>
  </outline>
  <outline type="rss" text="Top level" xmlUrl="https://top.example/feed"/>
  <outline text="Site only" htmlUrl="https://nofeed.example/"/>
  <outline type="rss" text="Bad scheme" xmlUrl="javascript:alert(1)"/>
  <outline type="rss" text="Again" xmlUrl="https://top.example/feed"/>
</body></opml>"""


def test_nested_outlines_become_categories_and_bad_ones_are_reported():
    feeds, skipped = read_opml(NESTED)
    cats = {f.url: f.category for f in feeds}
    assert cats == {
        "https://tribunemag.co.uk/feed": "News / Magazines",
        "https://labourlist.org/feed/": "News",
        "https://top.example/feed": "",
    }
    assert any("javascript" in s for s in skipped)
    assert [f.url for f in feeds].count("https://top.example/feed") == 1


def test_round_trip_keeps_categories():
    feeds, _ = read_opml(NESTED)
    data = write_opml([{"url": f.url, "title": f.title, "category": f.category, "site_url": ""} for f in feeds])
    again, skipped = read_opml(data)
    assert {(f.url, f.title, f.category) for f in again} == {(f.url, f.title, f.category) for f in feeds}
    assert not skipped


def test_malformed_file_imports_what_it_can():
    broken = NESTED.replace(b"</outline>\n  <outline type=\"rss\" text=\"Top", b"\n  <outline type=\"rss\" text=\"Top")
    broken = broken.replace(b'text="LabourList"', b'text="Labour &nbsp; List & co"')
    feeds, skipped = read_opml(broken)
    assert "https://tribunemag.co.uk/feed" in {f.url for f in feeds}


@pytest.mark.parametrize("junk", [b"", b"just some words", b"<html><body><p>not opml</p></body></html>"])
def test_not_opml_is_a_clear_error(junk):
    with pytest.raises(OPMLError, match="not an OPML"):
        read_opml(junk, source="junk.opml")


def test_entity_bomb_is_harmless():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
            b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>'
            b'<opml version="2.0"><body><outline type="rss" text="&e;" xmlUrl="https://x.example/feed"/></body></opml>')
    feeds, _ = read_opml(bomb)
    assert [f.url for f in feeds] == ["https://x.example/feed"]
    assert len(feeds[0].title) < 10_000
