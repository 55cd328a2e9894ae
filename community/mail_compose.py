"""One outbox row becomes one message: headers, plain text and HTML, optional DKIM signature.

Every message goes through compose(): bloggers' notices, confirmations, digests, test mail.
Header values are built by the `email` package's SMTP policy, which refuses a line break in
any of them; addresses are checked by community/addresses.py first. A message to a
subscriber carries RFC 2369 / RFC 8058 list headers, so mail clients show an unsubscribe
button that works with one click:

    List-Unsubscribe: <https://site/unsubscribe?token=...>, <mailto:from?subject=unsubscribe%20...>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

and, when DKIM is configured, the signature covers both (RFC 8058 section 4 asks for it).
The Message-ID is derived from the row, so a message sent twice (a crash between the
server's answer and our record of it) carries the same id and a mail client shows it once.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import secrets
from dataclasses import dataclass
from email import policy
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from aggregator.db import utcnow
from aggregator.errors import HustingsError
from aggregator.settings import Settings

from . import mail_text
from .addresses import domain_of, normal_address, refuse_header_breaks

SMTP_POLICY = policy.SMTP.clone(max_line_length=78)
DKIM_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
                b"list-unsubscribe", b"list-unsubscribe-post", b"list-id")


@dataclass(frozen=True)
class Parts:
    """What a message says: its subject, plain text, optional HTML, and its list links if any."""

    subject: str
    text: str
    html: str = ""
    unsubscribe_url: str = ""  # set for mail to a subscriber: the List-* headers are added
    unsubscribe_token: str = ""
    list_name: str = ""  # "daily" or "weekly", for List-Id
    text_qp: bytes = b""  # the text (and HTML) already encoded, when a template made them (QPTemplate)
    html_qp: bytes = b""


@dataclass(frozen=True)
class Composed:
    to: str
    sender: str  # the envelope sender (MAIL FROM)
    data: bytes  # the whole message, CRLF line ends, ready for DATA


def compose(settings: Settings, row_id: int, to: str, parts: Parts) -> Composed:
    """The message for outbox row `row_id`. Raises BadAddress (the row cannot be sent, ever).

    Written out here rather than built as an EmailMessage: the `email` package's generator
    took 4 ms a message, more than the SMTP exchange itself (docs/performance.md, Mail). The
    headers that can hold other than ASCII (From's name, Subject, List-Id) still go through
    the package's SMTP policy, which folds and encodes them and refuses a line break; every
    other header is ASCII we made: a normalised address, our URLs, numbers."""
    to = normal_address(to)
    _, address = mail_text.sender(settings)
    refuse_header_breaks(parts.subject, "a subject")
    domain = domain_of(address)
    head = [_header("From", mail_text.from_header(settings)), f"To: {to}\r\n".encode(),
            _header("Subject", parts.subject), f"Date: {_date()}\r\n".encode(),
            f"Message-ID: <{row_id}.{_message_key(settings.site_url, row_id)}@{domain}>\r\n".encode()]
    if parts.unsubscribe_url:
        refuse_header_breaks(parts.unsubscribe_url + parts.unsubscribe_token, "an unsubscribe link")
        mailto = f"mailto:{address}?subject={quote('unsubscribe ' + parts.unsubscribe_token)}"
        head.append(f"List-Unsubscribe: <{parts.unsubscribe_url}>,\r\n <{mailto}>\r\n".encode())
        head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        if parts.list_name:
            head.append(_header("List-Id", f"{settings.site_name} {parts.list_name} digest "
                                           f"<{parts.list_name}.{domain}>"))
    else:
        head.append(b"Auto-Submitted: auto-generated\r\n")  # RFC 3834: no vacation replies to a notice, please
    head.append(b"MIME-Version: 1.0\r\n")
    text = _text_part("plain", parts.text_qp or qp(parts.text))
    if parts.html or parts.html_qp:
        boundary = f"=_hustings_{row_id}_{secrets.token_hex(8)}"
        head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode())
        body = b"".join((f"--{boundary}\r\n".encode(), text, f"\r\n--{boundary}\r\n".encode(),
                         _text_part("html", parts.html_qp or qp(parts.html)), f"\r\n--{boundary}--\r\n".encode()))
    else:
        body = text
    data = b"".join(head) + body
    if settings.dkim_key_file:
        data = _dkim_sign(settings.dkim_key_file, settings.dkim_selector, domain, data)
    return Composed(to, address, data)


def _message_key(site_url: str, row_id: int) -> str:
    """The same for the same row of the same site, always: a resent message keeps its Message-ID."""
    return hashlib.blake2b(f"{site_url}|{row_id}".encode(), digest_size=10).hexdigest()


@functools.lru_cache(maxsize=512)
def _header(name: str, value: str) -> bytes:
    """One header, folded and RFC 2047-encoded as needed by the SMTP policy (which refuses line breaks)."""
    return SMTP_POLICY.fold_binary(name, SMTP_POLICY.header_factory(name, value))


_dates: dict[int, str] = {}


def _date() -> str:
    now = utcnow().replace(microsecond=0)
    second = int(now.timestamp())
    if second not in _dates:
        _dates.clear()  # keep one: the current second's
        _dates[second] = format_datetime(now)
    return _dates[second]


def qp(text: str) -> bytes:
    """UTF-8 text as quoted-printable (C speed: binascii), CRLF line ends."""
    return binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


def _text_part(subtype: str, encoded: bytes) -> bytes:
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
            .encode() + encoded)


class QPTemplate:
    """A text encoded once, with `placeholder` filled in per reader.

    Quoted-printable encodes each line on its own (a hard line break ends every soft-wrapped
    run), so the lines without the placeholder are encoded once, joined, and kept; only the
    few lines with a reader's link are encoded per message. Encoding the whole 10 KB issue for
    each reader was the largest cost of composing it."""

    def __init__(self, text: str, placeholder: str):
        self.placeholder = placeholder
        self.pieces: list[bytes | str] = []  # encoded runs of lines, and the raw lines to fill in
        run: list[str] = []
        *lines, last = text.replace("\r\n", "\n").split("\n")  # only \n: the only break b2a_qp knows
        for line in [line + "\n" for line in lines] + ([last] if last else []):
            if placeholder in line:
                if run:
                    self.pieces.append(qp("".join(run)))
                    run = []
                self.pieces.append(line)
            else:
                run.append(line)
        if run:
            self.pieces.append(qp("".join(run)))

    def fill(self, value: str) -> bytes:
        return b"".join(p if isinstance(p, bytes) else qp(p.replace(self.placeholder, value)) for p in self.pieces)


@functools.lru_cache(maxsize=4)
def _dkim_key(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise HustingsError(f"dkim_key_file {path}: {exc.strerror}") from None


def _dkim_sign(key_file: str, selector: str, domain: str, data: bytes) -> bytes:
    try:
        import dkim
    except ImportError:
        raise HustingsError("dkim_key_file is set but dkimpy is not installed: pip install 'hustings[dkim]'") from None
    present = {line.split(b":", 1)[0].strip().lower() for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
               if b":" in line and not line[:1].isspace()}
    signature = dkim.sign(data, selector.encode(), domain.encode(), _dkim_key(key_file),
                          include_headers=[h for h in DKIM_HEADERS if h in present])
    return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + data
