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

import functools
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

from aggregator.db import utcnow
from aggregator.errors import HustingsError
from aggregator.settings import Settings

from . import identity, mail_text
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


@dataclass(frozen=True)
class Composed:
    to: str
    sender: str  # the envelope sender (MAIL FROM)
    data: bytes  # the whole message, CRLF line ends, ready for DATA


def compose(settings: Settings, row_id: int, to: str, parts: Parts) -> Composed:
    """The message for outbox row `row_id`. Raises BadAddress (the row cannot be sent, ever)."""
    to = normal_address(to)
    _, address = mail_text.sender(settings)
    refuse_header_breaks(parts.subject, "a subject")
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = mail_text.from_header(settings)
    msg["To"] = to
    msg["Subject"] = parts.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = f"<{row_id}.{identity.keyed(settings, 'message-id', str(row_id))[:20]}@{domain_of(address)}>"
    if parts.unsubscribe_url:
        mailto = f"mailto:{address}?subject={quote('unsubscribe ' + parts.unsubscribe_token)}"
        msg["List-Unsubscribe"] = f"<{parts.unsubscribe_url}>, <{mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if parts.list_name:
            msg["List-Id"] = f"{settings.site_name} {parts.list_name} digest <{parts.list_name}.{domain_of(address)}>"
    else:
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a notice, please
    msg.set_content(parts.text)
    if parts.html:
        msg.add_alternative(parts.html, subtype="html")
    data = msg.as_bytes()
    if settings.dkim_key_file:
        data = _dkim_sign(settings.dkim_key_file, settings.dkim_selector, domain_of(address), data)
    return Composed(to, address, data)


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
