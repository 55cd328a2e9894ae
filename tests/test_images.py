"""aggregator/images.py: a post's first picture for the front page, and safe <img> tags."""

from __future__ import annotations

import pytest

from aggregator.images import Image, first_image, with_safe_images


@pytest.mark.parametrize("html, expected", [
    ('<p>x</p><img src="https://b.example/a.jpg" width="640" height="480" loading="lazy">',
     Image("https://b.example/a.jpg", "", 640, 480)),
    ('<img src="https://b.example/a.jpg" alt="The march &amp; rally">', Image("https://b.example/a.jpg", "The march & rally", None, None)),
    # An icon, a badge or a button is not the story's picture: the next one is.
    ('<img src="https://b.example/icon.png" width="32" height="32"><img src="https://b.example/b.jpg" width="800" '
     'height="400">', Image("https://b.example/b.jpg", "", 800, 400)),
    ('<img src="data:image/gif;base64,R0lGOD">', None),  # not an address a browser fetches from the blog
    ('<img src="/relative.jpg">', None),  # the sanitiser makes addresses absolute; anything else is skipped
    ("<p>No picture at all.</p>", None),
])
def test_first_image(html, expected):
    assert first_image(html) == expected


def test_plain_http_pictures_are_left_out_of_an_https_site():
    html = '<img src="http://b.example/a.jpg"><img src="https://b.example/b.jpg">'
    assert first_image(html).src == "http://b.example/a.jpg"
    assert first_image(html, allow_http=False).src == "https://b.example/b.jpg"


def test_every_image_gets_alt_no_referrer_and_lazy_loading_unless_it_has_them():
    html = ('<p><img src="https://b.example/a.jpg" width="10"></p>'
            '<img src="https://b.example/b.jpg" alt="A crowd" loading="eager" referrerpolicy="no-referrer" />')
    out = with_safe_images(html)
    assert '<img src="https://b.example/a.jpg" width="10" alt="" referrerpolicy="no-referrer" loading="lazy">' in out
    assert '<img src="https://b.example/b.jpg" alt="A crowd" loading="eager" referrerpolicy="no-referrer" />' in out
    assert with_safe_images("<p>words</p>") == "<p>words</p>"
