"""E-mail addresses as we store and send to them: one normal form, and header injection refused.

An address is stored once, normalised: trimmed, lower-cased (in practice no mail system
tells `Jo@` from `jo@`, and two rows for one reader would mean two digests), the domain
in its ASCII (IDNA) form. Only dot-atom local parts are taken (RFC 5322 3.4.1: letters,
digits and ``!#$%&'*+-/=?^_`{|}~``, dots between); quoted local parts and non-ASCII local
parts (which need SMTPUTF8) are refused with a message saying so. Anything with a line
break, a NUL or another control character is refused before it is looked at further: it is
how a header is smuggled into a message (``jo@example.org\\r\\nBcc: everyone@...``).
"""

from __future__ import annotations

import re

from aggregator.errors import HustingsError

MAX_LOCAL = 64  # RFC 5321 4.5.3.1.1
MAX_DOMAIN = 253
MAX_ADDRESS = 254  # RFC 5321's path limit less the angle brackets

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATEXT_LOWER = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_NORMAL = re.compile(rf"{_ATEXT_LOWER}(?:\.{_ATEXT_LOWER})*@(?:(?!-)[a-z0-9-]{{1,63}}(?<!-)\.)+(?!-)(?=[a-z0-9-]*[a-z-])"
                     r"[a-z0-9-]{1,63}(?<!-)")


class BadAddress(HustingsError):
    """Not an address we can send to; the message says why, for the person who typed it."""


def refuse_header_breaks(value: str, what: str) -> str:
    """`value` unchanged, or BadAddress when it holds a line break or another control character."""
    if _CONTROL.search(value or ""):
        raise BadAddress(f"{what} must be one line: line breaks and control characters are refused "
                         "(they could add headers to a message)")
    return value


def normal_address(text: str) -> str:
    """The stored form of an e-mail address, or BadAddress saying what is wrong with it."""
    raw = text or ""
    if len(raw) <= MAX_ADDRESS and _NORMAL.fullmatch(raw) and raw.index("@") <= MAX_LOCAL:
        return raw  # already in its stored form (the mailer checks every address it sends to)
    refuse_header_breaks(raw, "an e-mail address")
    address = raw.strip()
    shown = address[:80]
    if not address:
        raise BadAddress("give an e-mail address")
    if address.count("@") != 1:
        raise BadAddress(f"{shown!r} is not an e-mail address (it needs one @)")
    local, domain = address.rsplit("@", 1)
    if not local or not domain:
        raise BadAddress(f"{shown!r} is not an e-mail address (something is missing around the @)")
    if not local.isascii():
        raise BadAddress(f"{shown!r}: letters outside ASCII before the @ are not supported; use another address")
    if not _LOCAL.fullmatch(local) or len(local) > MAX_LOCAL:
        raise BadAddress(f"{shown!r} is not an e-mail address we can send to (spaces, quotes, brackets, commas "
                         "and two dots in a row are not allowed before the @)")
    domain = domain.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadAddress(f"{shown!r}: the part after the @ is not a domain name") from None
    labels = domain.split(".")
    if (len(labels) < 2 or len(domain) > MAX_DOMAIN or not all(_LABEL.fullmatch(label) for label in labels)
            or labels[-1].isdigit()):
        raise BadAddress(f"{shown!r}: the part after the @ is not a domain name")
    address = f"{local.lower()}@{domain}"
    if len(address) > MAX_ADDRESS:
        raise BadAddress(f"{shown!r} is longer than an e-mail address may be ({MAX_ADDRESS} characters)")
    return address


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1]
