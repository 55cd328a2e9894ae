"""The demo's feed server: the sample blogs over HTTP on 127.0.0.1, from a daemon thread.

It serves each blog's home page, post pages, images and feed (see demo_feeds.py), with
ETags, and can serve a feed as it stood at an earlier moment (``as_of``) so that
`prepare_demo` can replay a blog's history.
"""

from __future__ import annotations

import errno
import html
import http.server
import socketserver
import threading
from datetime import datetime, timedelta, timezone
from hashlib import sha256

from aggregator.errors import HustingsError

from .demo_feeds import (
    FEED_FILES,
    FEED_TYPES,
    SampleBlog,
    SamplePost,
    images,
    page,
    render_feed,
    render_home,
    render_post,
)

HOST = "127.0.0.1"  # the feed server binds loopback only, and nothing else is ever fetched
# The sample blogs' pages run no script, whatever a post carries (one carries some on purpose).
PAGE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"


class FeedServer:
    """The sample blogs over HTTP on 127.0.0.1, from a daemon thread."""

    def __init__(self, blogs: tuple[SampleBlog, ...], port: int = 0):
        self.blogs = {b.slug: b for b in blogs}
        self.anchor = datetime.now(timezone.utc).replace(microsecond=0)
        self.as_of: dict[str, datetime] = {}  # slug -> serve its feed as it stood then (replay)
        self.images = images()
        handler = type("Handler", (_Handler,), {"site": self})
        try:
            self.httpd = _Server((HOST, port), handler)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise HustingsError(
                f"port {port} on {HOST}, where this demo's sample blogs were served before, is in use "
                "(another `hustings demo` on this data directory?); stop it, or use a new data directory"
            ) from None
        self.port = self.httpd.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="demo-feeds", daemon=True)
        self._thread.start()

    def feed_url(self, blog: SampleBlog) -> str:
        return self.url + blog.feed_path

    def home_url(self, blog: SampleBlog) -> str:
        return f"{self.url}/blogs/{blog.slug}/"

    def published(self, post: SamplePost) -> datetime:
        return self.anchor - timedelta(hours=post.hours_ago)

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of path."""
        parts = path.split("?", 1)[0].strip("/").split("/")
        blog = self.blogs.get(parts[1]) if len(parts) > 1 and parts[0] == "blogs" else None
        if parts == [""]:
            items = "".join(f'<li><a href="/blogs/{b.slug}/">{html.escape(b.title)}</a></li>'
                            for b in self.blogs.values())
            return 200, "text/html; charset=utf-8", page("Sample blogs", f"<h1>Sample blogs</h1><ul>{items}</ul>")
        if len(parts) == 2 and parts[0] == "static" and parts[1] in self.images:
            return 200, "image/svg+xml", self.images[parts[1]]
        if blog is not None and len(parts) == 2:
            return 200, "text/html; charset=utf-8", render_home(blog, self.anchor)
        if blog is not None and len(parts) == 3 and parts[2] == FEED_FILES[blog.format]:
            body = render_feed(blog, self.url, self.anchor, self.as_of.get(blog.slug))
            return 200, FEED_TYPES[blog.format] + "; charset=utf-8", body
        if blog is not None and len(parts) == 4 and parts[2] == "posts":
            for post in blog.posts:
                if post.slug == parts[3]:
                    return 200, "text/html; charset=utf-8", render_post(blog, post, self.anchor)
        return 404, "text/plain; charset=utf-8", b"not found\n"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self):
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS query that may
        # leave the machine. The demo never asks anything of the network: skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(http.server.BaseHTTPRequestHandler):
    site: FeedServer
    server_version = "HustingsDemoBlogs/1"

    def log_message(self, *args) -> None:  # the demo's console is for progress lines
        pass

    def do_GET(self) -> None:
        status, kind, body = self.site.respond(self.path)
        etag = '"' + sha256(body).hexdigest()[:20] + '"'
        if status == 200 and self.headers.get("If-None-Match") == etag:
            status, body = 304, b""
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Content-Security-Policy", PAGE_CSP)
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except ConnectionError:  # a browser that moved on; nothing to report
                pass

    do_HEAD = do_GET
