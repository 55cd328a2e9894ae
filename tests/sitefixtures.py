"""Serve the test blogs in tests/sites/ from a loopback server (see tests/sites/make_sites.py)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

SITES = Path(__file__).resolve().parent / "sites"
ELSEWHERE = "http://192.0.2.10"  # a documentation address: the guard refuses it without a DNS lookup
TYPES = {".html": "text/html; charset=utf-8", ".xml": "application/rss+xml; charset=utf-8",
         ".txt": "text/plain; charset=utf-8", ".css": "text/css"}


def page(site: str, path: str, base: str) -> str:
    """One file of a site, as served at base."""
    return (SITES / site / path).read_text(encoding="utf-8").replace("{{base}}", base).replace("{{elsewhere}}", ELSEWHERE)


def serve_site(server, site: str) -> str:
    """Route every file of tests/sites/<site> on server; returns the site's home URL.

    ``dir/index.html`` (or ``index.xml``) answers ``/dir/``; ``_routes.txt`` maps URLs with a
    query string to files.
    """
    root = SITES / site
    base = server.url("").rstrip("/")
    for path in sorted(root.rglob("*")):
        if path.is_dir() or path.name.startswith("_"):
            continue
        rel = path.relative_to(root).as_posix()
        body = page(site, rel, base)
        ctype = TYPES.get(path.suffix, "application/octet-stream")
        if path.stem == "index":
            url_path = "/" + rel[: -len(path.name)]
            server.route(url_path, body, content_type=ctype)
        server.route("/" + rel, body, content_type=ctype)
    routes = root / "_routes.txt"
    if routes.exists():
        by_query: dict[str, dict[str, str]] = {}
        for line in routes.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                url, name = line.rsplit(" ", 1)
                parts = urlsplit(url)
                by_query.setdefault(parts.path, {})[unquote(parts.query)] = page(site, name, base)
        for path, answers in by_query.items():
            server.route(path, handler=_by_query(answers))
    return base + "/"


def _by_query(answers: dict[str, str]):
    def handle(request):
        query = unquote(urlsplit(request.path).query)
        body = answers.get(query)
        status = 200 if body is not None else 404
        data = (body or "not found").encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
    return handle
