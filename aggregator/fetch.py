"""One guarded HTTP GET: total deadline, size caps, redirects by hand, conditional GET.

Why not requests/httpx: their timeouts apply to each socket read, so a server
that drips one byte every half second keeps a fetch alive for ever, and we
must choose the address connected to on every hop ourselves (the address
guard). The stdlib ``http.client`` does the HTTP/1.1 framing; this module owns
the socket: every read is bounded by what is left of one total deadline, and
the body is counted before and after decompression.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import re
import socket
import ssl
import time
import zlib
from datetime import datetime, timezone
from urllib.parse import urljoin, urlsplit

from .errors import BlockedAddress, FetchError
from .guard import AddressGuard
from .models import FetchResult
from .settings import Settings

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/feed+json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "text/html;q=0.5, */*;q=0.1"
)
CHUNK = 65536
REDIRECTS = {301, 302, 303, 307, 308}
PERMANENT = {301, 308}
MAX_RETRY_AFTER_S = 7 * 86400  # a server asking for more than a week is ignored past that

_SSL_CONTEXT: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


class _Deadline:
    def __init__(self, seconds: float, url: str):
        self.seconds = seconds
        self.url = url
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise FetchError(self.url, f"took longer than the {self.seconds:g}s deadline")
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket reader where every recv waits at most for what is left of the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline):
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._sock.settimeout(self._deadline.remaining())
        try:
            return self._sock.recv_into(buffer)
        except (socket.timeout, TimeoutError):
            raise FetchError(self._deadline.url, f"took longer than the {self._deadline.seconds:g}s deadline") from None


class _DeadlineSocket:
    """What http.client sees as its socket: sends and reads bounded by the deadline."""

    def __init__(self, sock: socket.socket, deadline: _Deadline):
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.remaining())
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline), CHUNK)

    def close(self) -> None:
        # http.client closes its socket as soon as it has read the headers of a
        # Connection: close response, while the body is still to be read; fetch()
        # closes the real socket itself when it is done.
        pass


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), MAX_RETRY_AFTER_S))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, min((when - datetime.now(timezone.utc)).total_seconds(), MAX_RETRY_AFTER_S))


def _parse_max_age(headers: dict[str, str]) -> int | None:
    cc = headers.get("cache-control", "")
    match = re.search(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", cc, re.I)
    if match:
        return int(match.group(1))
    expires = headers.get("expires")
    if expires:
        try:
            when = email.utils.parsedate_to_datetime(expires)
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            return max(0, int((when - datetime.now(timezone.utc)).total_seconds()))
        except (TypeError, ValueError):
            return None
    return None


def _status_reason(status: int, headers: dict[str, str]) -> str:
    if status == 403 and headers.get("cf-mitigated", "").lower() == "challenge":
        return "HTTP 403: blocked by the site's bot protection (Cloudflare challenge)"
    reasons = {
        401: "HTTP 401: the feed needs a login",
        403: "HTTP 403: the server refused us",
        404: "HTTP 404: no feed at this address (moved or deleted?)",
        410: "HTTP 410: the feed is gone for good",
        429: "HTTP 429: too many requests; the server asked us to slow down",
        500: "HTTP 500: the server failed",
        502: "HTTP 502: bad gateway at the site",
        503: "HTTP 503: the site is unavailable",
        504: "HTTP 504: the site's gateway timed out",
    }
    return reasons.get(status, f"HTTP {status}")


def _check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, request target) for url, or raise FetchError."""
    if any(ord(c) < 33 or c == "\x7f" for c in url):
        raise FetchError(url, "the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(url, f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedAddress(url, f"only http and https URLs are fetched, not {scheme or 'a relative URL'!r}")
    if parts.username is not None or parts.password is not None:
        raise FetchError(url, "URLs with a user name or password are not fetched")
    host = parts.hostname or ""
    if not host:
        raise FetchError(url, "the URL has no host")
    try:
        host_ascii = host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError(url, f"the host {host!r} is not a valid name") from None
    if len(host_ascii) > 253:
        raise FetchError(url, "the host name is too long")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return scheme, host_ascii, port or (443 if scheme == "https" else 80), target


def _read_body(resp: http.client.HTTPResponse, url: str, max_bytes: int) -> tuple[bytes, int]:
    """The decoded body and the bytes read off the wire; both capped at max_bytes."""
    length = resp.getheader("content-length")
    if length and length.strip().isdigit() and int(length) > max_bytes:
        raise FetchError(url, f"the body is {int(length)} bytes, over the {max_bytes}-byte limit",
                         status=resp.status)
    encoding = (resp.getheader("content-encoding") or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        decoder = zlib.decompressobj()  # zlib-wrapped; raw deflate retried below
    elif encoding in ("identity", ""):
        decoder = None
    else:
        raise FetchError(url, f"unsupported content encoding {encoding!r}", status=resp.status)

    out = bytearray()
    wire = 0
    first = True

    def bomb() -> FetchError:
        return FetchError(url, f"the body decompresses to more than {max_bytes} bytes (compression bomb?)",
                          status=resp.status, bytes_read=wire)

    while True:
        try:
            chunk = resp.read(CHUNK)
        except http.client.IncompleteRead as exc:
            raise FetchError(url, f"the connection closed early ({len(exc.partial)} bytes of a chunk)",
                             status=resp.status, bytes_read=wire) from None
        if not chunk:
            break
        wire += len(chunk)
        if wire > max_bytes:
            raise FetchError(url, f"the body is over the {max_bytes}-byte limit", status=resp.status,
                             bytes_read=wire)
        if decoder is None:
            out += chunk
            continue
        data = chunk
        while data:
            try:
                piece = decoder.decompress(data, max_bytes - len(out) + 1)
            except zlib.error:
                if first and encoding == "deflate":  # some servers send raw deflate
                    decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                    first = False
                    continue
                raise FetchError(url, f"the {encoding} body is corrupt", status=resp.status,
                                 bytes_read=wire) from None
            first = False
            out += piece
            if len(out) > max_bytes:
                raise bomb()
            data = decoder.unconsumed_tail
            if decoder.eof:
                break
    if decoder is not None and not decoder.eof and encoding != "deflate":
        # A gzip stream cut short: keep what decoded, feedparser can often still use it.
        pass
    return bytes(out), wire


def fetch(
    url: str,
    settings: Settings,
    *,
    etag: str = "",
    last_modified: str = "",
    guard: AddressGuard | None = None,
    accept: str = ACCEPT,
) -> FetchResult:
    """GET url under the address guard, the deadline and the size caps.

    Returns a FetchResult for 2xx and 304 responses.

    Raises:
        BlockedAddress: a hop went to a refused address, scheme or port.
        FetchError: network failure, deadline, size cap, redirect limit, or an HTTP
            error status (``status``, ``retry_after_s`` and ``gone`` say which).
    """
    guard = guard or AddressGuard(settings.allowed_networks)
    started = time.monotonic()
    deadline = _Deadline(settings.fetch_deadline_s, url)
    current = url
    redirects: list[str] = []
    permanent = True
    wire_total = 0
    seen = {url}

    while True:
        scheme, host, port, target = _check_url(current)
        deadline.url = current
        sock = guard.connect(current, host, port, min(settings.fetch_connect_timeout_s, deadline.remaining()))
        try:
            if scheme == "https":
                sock.settimeout(deadline.remaining())
                try:
                    sock = _ssl_context().wrap_socket(sock, server_hostname=host)
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    raise FetchError(current, f"TLS failed: {exc}") from None
            conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = conn_cls(host, port)
            conn.sock = _DeadlineSocket(sock, deadline)
            headers = {
                "User-Agent": settings.http_user_agent,
                "Accept": accept,
                "Accept-Encoding": "gzip, deflate",
                "Connection": "close",
            }
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
            except FetchError:
                raise
            except (http.client.HTTPException, OSError) as exc:
                if isinstance(exc, (socket.timeout, TimeoutError)):
                    raise FetchError(current, f"took longer than the {settings.fetch_deadline_s:g}s deadline") from None
                raise FetchError(current, f"bad HTTP exchange: {type(exc).__name__}: {exc}") from None

            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}

            if status in REDIRECTS:
                location = resp_headers.get("location", "").strip()
                if not location:
                    raise FetchError(current, f"HTTP {status} redirect without a Location", status=status)
                nxt = urljoin(current, location)
                if len(redirects) >= settings.fetch_max_redirects:
                    raise FetchError(url, f"more than {settings.fetch_max_redirects} redirects (last to {nxt})",
                                     status=status)
                if nxt in seen:
                    raise FetchError(url, f"redirect loop back to {nxt}", status=status)
                seen.add(nxt)
                redirects.append(nxt)
                permanent = permanent and status in PERMANENT
                current = nxt
                continue

            if status == 304:
                return FetchResult(
                    url=url, final_url=current, status=304, headers=resp_headers,
                    etag=resp_headers.get("etag", etag), last_modified=resp_headers.get("last-modified", last_modified),
                    permanent_redirect=bool(redirects) and permanent, redirects=tuple(redirects),
                    bytes_read=wire_total, duration_s=time.monotonic() - started,
                    max_age_s=_parse_max_age(resp_headers),
                )
            if 200 <= status < 300:
                try:
                    body, wire = _read_body(resp, current, settings.fetch_max_bytes)
                except FetchError:
                    raise
                except (http.client.HTTPException, OSError) as exc:
                    raise FetchError(current, f"reading the body failed: {type(exc).__name__}: {exc}",
                                     status=status) from None
                wire_total += wire
                return FetchResult(
                    url=url, final_url=current, status=status, body=body, headers=resp_headers,
                    etag=resp_headers.get("etag", ""), last_modified=resp_headers.get("last-modified", ""),
                    permanent_redirect=bool(redirects) and permanent, redirects=tuple(redirects),
                    bytes_read=wire_total, duration_s=time.monotonic() - started,
                    max_age_s=_parse_max_age(resp_headers),
                )
            retry_after = None
            if status in (429, 503):
                retry_after = _parse_retry_after(resp_headers.get("retry-after"))
            raise FetchError(current, _status_reason(status, resp_headers), status=status,
                             retry_after_s=retry_after, gone=status == 410)
        finally:
            try:
                sock.close()
            except OSError:
                pass
