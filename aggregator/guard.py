"""The address guard: no fetch ever connects to a private, loopback or metadata address.

The guard resolves a host once, judges every address, and connects to an
address it judged, so DNS rebinding cannot swap in another address between the
check and the connection. It is applied on every redirect hop, and after the
connection it checks the peer address the kernel actually connected to.

Python's ``ipaddress.is_global`` is not enough on its own (it calls
``64:ff9b::10.0.0.1`` global, and its ranges change between releases), so the
blocked ranges are listed here, IPv4 hidden inside IPv6 is unwrapped and judged
as IPv4, and ``is_global`` is consulted only as a further reason to refuse.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable, Iterable, Sequence

from .errors import BlockedAddress, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, including the cloud metadata address 169.254.169.254
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255 broadcast
    )
)

BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "100::/64",  # discard-only
        "2001::/32",  # Teredo: hides an IPv4 address; refused outright
        "2001:db8::/32",  # documentation
        "2001:10::/28",  # ORCHID
        "2001:20::/28",  # ORCHIDv2
        "2002::/16",  # 6to4: hides an IPv4 address; refused outright
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")

# Ports below 1024 other than HTTP's own are other protocols (SMTP, SSH, ...): a feed
# URL pointing there is an attempt to talk to something that is not a web server.
ALLOWED_LOW_PORTS = (80, 443)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    packed = ip.packed
    if ip in NAT64_WELL_KNOWN or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(packed[12:16])
    if ip in NAT64_LOCAL:
        # RFC 6052 /48 encoding: IPv4 bits 0-15 in bytes 6-7, bits 16-31 in bytes 9-10
        # (byte 8 is the reserved "u" octet).
        return ipaddress.IPv4Address(packed[6:8] + packed[9:11])
    return None


def looks_numeric(host: str) -> bool:
    """True for hosts a browser reads as IPv4 (the last label is a number), valid or not."""
    last = host.strip("[]").rstrip(".").rsplit(".", 1)[-1].lower()
    return bool(last) and (last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])))


def parse_ip(text: str) -> IPAddress | None:
    """Read an address in any form a resolver would accept: 127.1, 0x7f.1, 2130706433, ::1.

    Returns None for names. Does no network I/O: inet_aton is the C library's own
    reading of the legacy forms, so we judge exactly what the connection would use.
    """
    host = text.strip().strip("[]")
    if "%" in host:  # zone index: fe80::1%eth0
        host = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class AddressGuard:
    """Judges addresses and opens connections only to addresses it judged safe."""

    def __init__(self, allowed: Iterable[Network] = (), resolver: Resolver | None = None):
        self.allowed = tuple(allowed)
        self._resolver = resolver or system_resolver

    def is_allowed_network(self, ip: IPAddress) -> bool:
        candidates = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None:
                candidates.append(inner)
        return any(c.version == n.version and c in n for c in candidates for n in self.allowed)

    def verdict(self, ip: IPAddress) -> str | None:
        """Why this address is refused, or None if it may be connected to."""
        if self.is_allowed_network(ip):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None:
                why = self.verdict(inner)
                return f"{ip} carries {inner}, which is {why}" if why else None
            for net in BLOCKED_V6:
                if ip in net:
                    return f"in blocked network {net}"
            if not ip.is_global:
                return "not a global address"
            return None
        for net in BLOCKED_V4:
            if ip in net:
                return f"in blocked network {net}"
        if not ip.is_global:
            return "not a global address"
        return None

    def check_port(self, url: str, port: int) -> None:
        if port < 1 or port > 65535:
            raise FetchError(url, f"port {port} is out of range")
        if port < 1024 and port not in ALLOWED_LOW_PORTS:
            raise BlockedAddress(url, f"port {port} is not a web port")

    def resolve(self, url: str, host: str, port: int) -> list[IPAddress]:
        """Every address for host that the guard allows, in resolver order.

        Raises:
            BlockedAddress: when no address is allowed (naming one that was refused).
            FetchError: when the name does not resolve.
        """
        literal = parse_ip(host)
        if literal is not None:
            found: list[IPAddress] = [literal]
        elif looks_numeric(host) or ":" in host:
            # "1.1.1.1.1" or "999.1.1.1": not an address, and no DNS name ends in a number.
            # Refuse here rather than let the system resolver send the question out.
            raise FetchError(url, f"host {host!r} is neither an IP address nor a host name")
        else:
            try:
                found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self._resolver(host, port)]
            except (OSError, UnicodeError, ValueError) as exc:
                raise FetchError(url, f"cannot resolve host {host!r}: {exc}") from None
            if not found:
                raise FetchError(url, f"host {host!r} has no addresses")
        allowed, refused = [], []
        for ip in found:
            why = self.verdict(ip)
            (refused if why else allowed).append((ip, why))
        if not allowed:
            ip, why = refused[0]
            raise BlockedAddress(url, f"refusing to connect to {host} ({ip}): {why}")
        return [ip for ip, _ in allowed]

    def connect(self, url: str, host: str, port: int, timeout: float) -> socket.socket:
        """Open a TCP connection to a vetted address of host.

        Raises:
            BlockedAddress, FetchError.
        """
        self.check_port(url, port)
        addresses = self.resolve(url, host, port)
        last_error: Exception | None = None
        for ip in addresses:
            family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect((str(ip), port))
                peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
                why = self.verdict(peer)
                if why:  # the kernel connected somewhere we did not vet
                    raise BlockedAddress(url, f"connected to {peer}, which is {why}")
                return sock
            except BlockedAddress:
                sock.close()
                raise
            except OSError as exc:
                sock.close()
                last_error = exc
        reason = "timed out" if isinstance(last_error, TimeoutError) else str(last_error)
        raise FetchError(url, f"cannot connect to {host}:{port}: {reason}")


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen
