"""Each table of a post in a box that scrolls sideways (aggregator/tables.py)."""

from aggregator.sanitize import sanitizer
from aggregator.settings import Settings
from aggregator.tables import BOX, in_boxes


def test_every_table_gets_its_box_nested_ones_too():
    html = sanitizer(Settings())(
        "<p>Before</p><table><tr><td>a<table><tr><td>inner</td></tr></table></td></tr></table><TABLE><tr><td>b"
        "</td></tr></TABLE><p>After</p>", "https://blog.example.org/")
    boxed = in_boxes(html)
    assert boxed.count(BOX) == 3 and boxed.count("</table></div>") == 3
    assert boxed.startswith("<p>Before</p>" + BOX) and boxed.endswith("</div><p>After</p>")
    assert boxed.replace(BOX, "").replace("</table></div>", "</table>") == html  # nothing else changed


def test_html_without_tables_or_with_unbalanced_ones_is_left_as_it_is():
    assert in_boxes("<p>No tables here</p>") == "<p>No tables here</p>"
    assert in_boxes("<table><tr><td>never closed") == "<table><tr><td>never closed"
