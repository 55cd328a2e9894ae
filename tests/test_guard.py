"""The address guard: which addresses, spellings, schemes and ports a fetch may reach.

Research notes: ../shared/research/reliability.md, threats A1-A8 and vectors B1/B2.

Network rule for this file: nothing here sends a packet anywhere but loopback.
Private and metadata addresses are judged only by ``verdict``/``parse_ip``/
``resolve`` with IP-literal hosts (``resolve`` does no DNS for literals); the one
made-up hostname ("rebind.test") is only ever given to a stub resolver. The
autouse ``loopback_only`` fixture turns any attempt to look up a name or to
connect beyond loopback into a test failure before the packet is sent.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

from aggregator.errors import BlockedAddress, FetchError
from aggregator.fetch import fetch
from aggregator.guard import AddressGuard, parse_ip
from aggregator.settings import Settings

from .conftest import rss


def _no_dns(host, port):
    raise AssertionError(f"the guard asked the resolver about {host!r}; it must not for this input")


LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.1/32"),)

# --- verdicts -------------------------------------------------------------------

BLOCKED = [
    # IPv4: loopback, "this network", private, CGNAT, link-local/metadata, multicast, reserved
    "127.0.0.1", "127.0.0.2", "0.0.0.0", "0.1.1.1", "10.0.0.5", "172.16.0.1", "172.31.100.31",
    "192.168.1.3", "100.64.0.1", "169.254.169.254", "224.0.0.1", "240.0.0.1", "255.255.255.255",
    # documentation, benchmarking, IETF, 6to4 relay
    "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8", "192.88.99.1",
    # IPv6
    "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "2001:db8::face", "fec0::1", "100::1",
    # IPv4 wrapped in IPv6: mapped, compatible, NAT64 (/96 and RFC 6052 /48), 6to4, Teredo
    "::ffff:127.0.0.1", "::ffff:7f00:2", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "::ffff:0:0",
    "::ffff:172.31.100.31", "::127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b::192.168.2.1",
    "64:ff9b:1:a00:0:100::", "64:ff9b:1:c0a8:1:100::", "2002:c0a8:ffff::",
    "2001:0000:4136:e378:8000:63bf:3f57:fdf2",
]

ALLOWED = [
    "93.184.216.34", "8.8.8.8", "172.217.6.78", "2001:4860:4860::8888", "2001:470:1:3a8::251",
    "::ffff:52.52.167.244", "2606:2800:220:1:248:1893:25c8:1946",
    "64:ff9b:1:808:8:800::",  # RFC 6052 /48 NAT64 around 8.8.8.8
    "64:ff9b::8.8.8.8",  # well-known-prefix NAT64 around 8.8.8.8
]


@pytest.mark.parametrize("address", BLOCKED)
def test_default_guard_refuses_non_public_address(address):
    why = AddressGuard().verdict(ipaddress.ip_address(address))
    assert why, f"{address} must be refused"
    assert isinstance(why, str)


@pytest.mark.parametrize("address", ALLOWED)
def test_default_guard_allows_public_address(address):
    assert AddressGuard().verdict(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address, inner", [
    ("::ffff:169.254.169.254", "169.254.169.254"),
    ("64:ff9b::10.0.0.1", "10.0.0.1"),
    ("64:ff9b:1:a00:0:100::", "10.0.0.1"),
    ("::127.0.0.1", "127.0.0.1"),
])
def test_verdict_for_wrapped_ipv4_names_the_inner_address(address, inner):
    why = AddressGuard().verdict(ipaddress.ip_address(address))
    assert why and inner in why


# --- other spellings of an address ----------------------------------------------


@pytest.mark.parametrize("text", [
    "0x7f.1", "2130706433", "0177.1", "127.1", "0x7f000001", "017700000001", "127.000.000.001",
    "127.0.1", "0x7f.0.0.1", "127.0.0.1",
])
def test_other_spellings_of_loopback_are_read_as_127_0_0_1_and_refused(text):
    ip = parse_ip(text)
    assert ip == ipaddress.IPv4Address("127.0.0.1")
    assert AddressGuard().verdict(ip)


@pytest.mark.parametrize("text, expected", [
    ("0", "0.0.0.0"),
    ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ("[::1]", "::1"),
    ("0xffffffff", "255.255.255.255"),
    ("4294967295", "255.255.255.255"),
    ("0377.0377.0377.0377", "255.255.255.255"),
    ("fe80::1%eth0", "fe80::1"),
])
def test_other_spellings_are_read_and_refused(text, expected):
    ip = parse_ip(text)
    assert ip == ipaddress.ip_address(expected)
    assert AddressGuard().verdict(ip)


@pytest.mark.parametrize("text", ["example.org", "localhost", "rebind.test", "bad.face", "cafe", ""])
def test_names_are_not_addresses(text):
    assert parse_ip(text) is None


# --- allowed networks -------------------------------------------------------------


@pytest.mark.parametrize("address, allowed", [
    ("127.0.0.1", True),
    ("::ffff:127.0.0.1", True),
    ("127.0.0.2", False),
    ("::ffff:127.0.0.2", False),
    ("::1", False),
    ("10.0.0.1", False),
    ("169.254.169.254", False),
    ("93.184.216.34", True),
])
def test_allow_networks_lets_through_only_what_it_names(address, allowed):
    guard = AddressGuard(LOOPBACK_ONLY)
    why = guard.verdict(ipaddress.ip_address(address))
    assert (why is None) is allowed, why


def test_settings_allow_networks_reach_the_guard():
    nets = Settings(allow_networks=("127.0.0.1/32",)).allowed_networks
    guard = AddressGuard(nets)
    assert guard.verdict(ipaddress.ip_address("127.0.0.1")) is None
    assert guard.verdict(ipaddress.ip_address("127.0.0.2"))
    assert AddressGuard(Settings().allowed_networks).verdict(ipaddress.ip_address("127.0.0.1"))


# --- resolve() ------------------------------------------------------------------


def _stub(answers, calls=None):
    def resolver(host, port):
        if calls is not None:
            calls.append((host, port))
        return list(answers)
    return resolver


@pytest.mark.parametrize("answers, kept", [
    (["10.0.0.1", "93.184.216.34"], ["93.184.216.34"]),
    (["0.0.0.0", "2001:4860:4860::8844"], ["2001:4860:4860::8844"]),
    (["169.254.169.254", "8.8.8.8", "::1", "8.8.4.4"], ["8.8.8.8", "8.8.4.4"]),
])
def test_resolve_keeps_only_public_addresses_in_resolver_order(answers, kept):
    calls = []
    guard = AddressGuard(resolver=_stub(answers, calls))
    got = guard.resolve("http://mixed.test/feed", "mixed.test", 80)
    assert got == [ipaddress.ip_address(a) for a in kept]
    assert calls == [("mixed.test", 80)]


@pytest.mark.parametrize("answers", [
    ["0.0.0.0", "2001:db8::face"],
    ["169.254.169.254"],
    ["fd00:ec2::254", "10.1.2.3", "::ffff:127.0.0.1"],
])
def test_resolve_refuses_a_host_whose_addresses_are_all_private(answers):
    guard = AddressGuard(resolver=_stub(answers))
    with pytest.raises(BlockedAddress) as info:
        guard.resolve("http://internal.test/feed", "internal.test", 80)
    message = str(info.value)
    assert "internal.test" in message
    assert str(ipaddress.ip_address(answers[0])) in message


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.5", "127.0.0.1", "0x7f.1", "2130706433", "::1",
                                  "[::ffff:169.254.169.254]", "0"])
def test_resolve_judges_ip_literals_without_asking_the_resolver(host):
    guard = AddressGuard(resolver=_no_dns)
    with pytest.raises(BlockedAddress) as info:
        guard.resolve(f"http://{host}/", host, 80)
    assert str(parse_ip(host)) in str(info.value)


def test_resolve_reports_a_name_that_does_not_resolve():
    def failing(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(FetchError) as info:
        AddressGuard(resolver=failing).resolve("http://nowhere.test/", "nowhere.test", 80)
    assert not isinstance(info.value, BlockedAddress)
    assert "nowhere.test" in str(info.value)
    with pytest.raises(FetchError):
        AddressGuard(resolver=_stub([])).resolve("http://empty.test/", "empty.test", 80)


# --- ports ----------------------------------------------------------------------


@pytest.mark.parametrize("port", [21, 22, 25, 110, 1])
def test_non_web_low_ports_are_refused(port):
    with pytest.raises(BlockedAddress):
        AddressGuard().check_port(f"http://example.org:{port}/", port)


@pytest.mark.parametrize("port", [0, 65536])
def test_out_of_range_ports_are_refused(port):
    with pytest.raises(FetchError):
        AddressGuard().check_port(f"http://example.org:{port}/", port)


@pytest.mark.parametrize("port", [80, 443, 8080, 8443, 65535])
def test_web_ports_are_fine(port):
    assert AddressGuard().check_port(f"http://example.org:{port}/", port) is None


def test_fetch_refuses_a_low_port_before_connecting(server, settings):
    # Loopback and allowed, so only the port rule can refuse it.
    with pytest.raises(BlockedAddress):
        fetch("http://127.0.0.1:25/feed.xml", settings, guard=AddressGuard(LOOPBACK_ONLY, resolver=_no_dns))


# --- fetch() applies the guard --------------------------------------------------


def test_fetch_with_default_settings_refuses_an_odd_spelling_of_loopback(server, settings):
    server.route("/", rss([]))
    with pytest.raises(BlockedAddress):
        fetch(f"http://0x7f.1:{server.port}/", Settings(allow_networks=()))
    assert server.hits() == 0


def test_fetch_reaches_an_allowed_loopback_server(server, settings):
    # The control for the refusals above: the same server is reachable when allowed.
    server.route("/", rss([]))
    result = fetch(f"http://0x7f.1:{server.port}/", settings)
    assert result.status == 200
    assert server.hits("/") == 1


def test_dns_rebinding_one_lookup_and_the_connection_goes_to_the_vetted_address(server, trap, settings):
    server.route("/feed.xml", rss([{"title": "real", "guid": "1"}]))
    trap.route("/feed.xml", rss([{"title": "trap", "guid": "1"}]))
    calls = []

    def rebinding(host, port):
        calls.append((host, port))
        return ["127.0.0.1"] if len(calls) == 1 else ["127.0.0.2"]

    guard = AddressGuard(LOOPBACK_ONLY, resolver=rebinding)
    url = f"http://rebind.test:{server.port}/feed.xml"
    result = fetch(url, settings, guard=guard)
    assert result.status == 200
    assert b"real" in result.body
    assert calls == [("rebind.test", server.port)]
    assert server.hits("/feed.xml") == 1
    assert trap.hits() == 0
    # The request still names the host it was asked for.
    assert server.requests[-1].headers.get("host") == f"rebind.test:{server.port}"


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "file://127.0.0.1:{port}/feed.xml",
    "ftp://127.0.0.1:{port}/feed.xml",
    "FTP://127.0.0.1:{port}/feed.xml",
    "gopher://127.0.0.1:{port}/_GET%20/feed.xml",
    "gopher://",
    "ws://127.0.0.1:{port}/feed.xml",
    "javascript:alert(1)",
    "javascript://127.0.0.1:{port}/%0aalert(1)",
    "data:text/html,x",
    "/relative/feed.xml",
    "127.0.0.1:{port}/feed.xml",
])
def test_non_http_schemes_are_refused_without_a_request(url, server, settings):
    # Where the URL names the live server, only the scheme rule stands between it and a request.
    server.route("/feed.xml", rss([]))
    with pytest.raises(BlockedAddress) as info:
        fetch(url.format(port=server.port), settings, guard=AddressGuard(LOOPBACK_ONLY, resolver=_no_dns))
    assert "http" in str(info.value)
    assert server.hits() == 0


def test_http_and_https_schemes_are_case_insensitive(server, settings):
    server.route("/feed.xml", rss([]))
    assert fetch(f"HTTP://127.0.0.1:{server.port}/feed.xml", settings).status == 200


@pytest.mark.parametrize("netloc", [
    "user:pw@127.0.0.1:{port}",
    "user@127.0.0.1:{port}",
    ":pw@127.0.0.1:{port}",
    "127.0.0.1:{port}@127.0.0.2:{trap}",
])
def test_urls_with_userinfo_are_refused(netloc, server, trap, settings):
    server.route("/feed.xml", rss([]))
    trap.route("/feed.xml", rss([]))
    url = "http://" + netloc.format(port=server.port, trap=trap.port) + "/feed.xml"
    with pytest.raises(FetchError):
        fetch(url, settings, guard=AddressGuard(LOOPBACK_ONLY, resolver=_no_dns))
    assert server.hits() == 0 and trap.hits() == 0


@pytest.mark.parametrize("suffix", [
    "/feed.xml HTTP/1.1",
    "/a b",
    "/feed.xml\r\nX-Injected: 1",
    "/feed.xml\nHost: 127.0.0.2",
    "/feed.xml\tx",
    "/feed.xml\x00",
])
def test_urls_with_spaces_or_control_characters_are_refused(suffix, server, settings):
    server.route("/feed.xml", rss([]))
    with pytest.raises(FetchError):
        fetch(f"http://127.0.0.1:{server.port}{suffix}", settings, guard=AddressGuard(LOOPBACK_ONLY, resolver=_no_dns))
    assert server.hits() == 0


def test_nul_in_the_host_is_refused(server, settings):
    with pytest.raises(FetchError):
        fetch(f"http://127.0.0.1\x00.example.org:{server.port}/", settings,
              guard=AddressGuard(LOOPBACK_ONLY, resolver=_no_dns))
    assert server.hits() == 0


@pytest.mark.parametrize("host", ["1.1.1.1.1", "8.8.8.8.8", "999.1.1.1", "256.256.256.256", "example.0x10", "1.2.3.4.5.6"])
def test_numeric_hosts_that_are_not_addresses_are_refused_without_dns(host):
    # The autouse loopback_only fixture fails the test if the guard asks DNS.
    guard = AddressGuard((), resolver=_no_dns)
    with pytest.raises(FetchError, match="neither an IP address nor a host name"):
        guard.resolve(f"http://{host}/", host, 80)
