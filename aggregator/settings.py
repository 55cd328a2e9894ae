"""One frozen Settings object: defaults < TOML file < HUSTINGS_* environment < flags.

Every other module takes ``settings`` as an argument; nothing else reads the
environment or a global. Each field is declared once, with its default and the
reason for it, and the README's settings table is checked against this list.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import SettingsError

ENV_PREFIX = "HUSTINGS_"
TEST_PREFIX = "HUSTINGS_TEST_"  # the test suite's own switches (HUSTINGS_TEST_POSTGRES=0), never settings


@dataclass(frozen=True)
class Settings:
    # --- where things live -------------------------------------------------
    data_dir: Path = Path("data")  # SQLite file and Whoosh index live here
    database_url: str = ""  # empty: SQLite file in data_dir; else any SQLAlchemy URL
    # --- fetching ----------------------------------------------------------
    allow_networks: tuple[str, ...] = ()  # CIDRs the address guard lets through (tests: 127.0.0.0/8)
    fetch_deadline_s: float = 30.0  # total wall-clock time for one fetch, redirects and body included
    fetch_connect_timeout_s: float = 10.0  # a host that will not accept a connection is down
    fetch_max_bytes: int = 10_000_000  # cap on compressed and on decompressed body size
    fetch_max_redirects: int = 5  # more hops than this is a loop or a trap
    fetch_workers: int = 8  # threads fetching at once; fetching waits on the network, not the CPU
    fetch_per_host: int = 2  # at most this many requests to one host at a time (politeness)
    parse_processes: int = 0  # processes parsing and sanitising big batches; 0: one per core, 1: none
    fetch_min_interval_s: int = 900  # never poll a feed more often than every 15 minutes
    fetch_max_interval_s: int = 21_600  # even a silent blog is checked every 6 hours
    fetch_max_backoff_s: int = 86_400  # failing feeds are retried at least daily
    fetch_disable_after_days: int = 30  # no success for this long: the feed is marked gone
    fetch_max_entries: int = 200  # entries taken from one fetch; floods are cut here
    site_url: str = "http://localhost:8080"  # the public address of this site; named in our User-Agent
    user_agent: str = ""  # empty: "Hustings/<version> (+<site_url>; blog aggregator)"
    # --- content -----------------------------------------------------------
    sanitizer: str = "nh3"  # nh3 (maintained, fast) or bleach (the first spec's engine)
    iframe_hosts: tuple[str, ...] = (  # embeds allowed from these hosts only, sandboxed
        "www.youtube.com",
        "www.youtube-nocookie.com",
        "youtube.com",
        "player.vimeo.com",
        "www.dailymotion.com",
        "w.soundcloud.com",
        "open.spotify.com",
    )
    summary_chars: int = 300  # listing pages show this much plain text per post
    # --- the web -----------------------------------------------------------
    site_name: str = "Hustings"  # shown in every page's header and title
    web_host: str = "127.0.0.1"  # address `hustings serve` / `run` listen on (0.0.0.0: every interface)
    web_port: int = 8080
    web_workers: int = 0  # worker processes for `serve`; 0: one per core
    web_max_connections: int = 1000  # open connections per web process; more wait in the kernel's queue
    web_request_timeout_s: float = 10.0  # a whole request must arrive this soon after its first byte (slow clients)
    rank_window_h: float = 24.0  # a post this much older needs ten times the recommendations to stand level
    page_cache_s: int = 60  # logged-out pages are re-rendered at least this often (0: no cache)
    # --- spiders (blogs without a usable feed; full text of summary-only feeds) ----
    crawl_max_pages: int = 200  # requests one crawl may send to one site (robots.txt and redirects count)
    crawl_deadline_s: float = 600.0  # wall-clock limit of one crawl process; the worker kills it after that
    crawl_delay_s: float = 1.0  # least wait between two requests to one site; AutoThrottle only slows down
    crawl_every_s: int = 21_600  # how often a feedless blog is crawled (a crawl costs many requests)
    crawl_workers: int = 2  # crawl processes the worker runs at once (each holds about 100 MB)
    # --- the community: readers, moderators, limits ---------------------------
    secret_key: str = ""  # signs CSRF tokens and keys stored hashes; empty: made once in data_dir/secret.key
    trusted_proxies: tuple[str, ...] = ()  # CIDRs of reverse proxies whose X-Forwarded-For is believed
    rate_limits: bool = True  # false (HUSTINGS_RATE_LIMITS=0) turns every limit off, for load tests
    login_limit: str = "10/15m"  # sign-in attempts per client address, or per browser that has signed in before
    login_account_limit: str = "20/15m"  # attempts on one moderator's address from browsers it never signed in on
    recommend_limit: str = "60/1m"  # recommendations per address
    vote_limit: str = "30/1m"  # ballots per address
    submit_limit: str = "10/1h"  # blog submissions (each fetches the blog) per address
    campaign_limit: str = "10/1h"  # campaigns proposed per address (each sends a confirmation mail)
    back_limit: str = "200/1h"  # new backs per address: a hall of members shares one; bursts are flagged instead
    # The house rules for campaigns, shown on the proposal form (Markdown). Moderators refuse only for these.
    campaign_rules: str = (
        "Campaigns are published whether or not they match party policy: members may argue for any change. "
        "A moderator refuses a campaign only when it:\n\n"
        "1. is not a campaign (an advert, spam, or a test);\n"
        "2. attacks or harasses a person, or stirs up hatred against a group;\n"
        "3. breaks the law (defamation, contempt of court, someone's private details);\n"
        "4. repeats a campaign already on the site (back that one instead).\n\n"
        "The reason for every refusal is given in the public moderation log."
    )
    # --- mail: confirmations, the digest and bloggers' messages (docs/mail.md) --------
    smtp_host: str = ""  # the SMTP server that relays our mail; empty: nothing is sent, it waits in the outbox
    smtp_port: int = 587  # 587 submission (starttls), 465 (tls), 25 (a local relay, none)
    smtp_security: str = "starttls"  # none | starttls | tls; never send a password over none
    smtp_user: str = ""  # empty: no AUTH
    smtp_password: str = ""
    smtp_timeout_s: float = 30.0  # a server silent this long is down: the batch waits for the next run
    mail_from: str = ""  # "Name <address>"; empty: "<site_name> <digest@host of site_url>"
    mail_rate_per_s: float = 10.0  # messages a second at most, so a relay's limits are kept (0: no limit)
    dkim_key_file: str = ""  # a PEM RSA private key: set it (and dkim_selector) to sign every message
    dkim_selector: str = ""  # the DNS selector its public key is published under (<selector>._domainkey)
    digest_send_time: str = "07:00"  # when the daily digest goes out (the weekly one on Mondays), local time
    digest_timezone: str = "Europe/London"  # the zone digest_send_time and the issues' dates are in
    subscribe_limit: str = "10/1h"  # subscription forms per address (each may send a confirmation)
    # --- scheduling --------------------------------------------------------
    dispatch_every_s: int = 60  # how often the worker looks for due feeds
    claim_lease_s: int = 300  # a worker's claim on a due feed lapses after this (it died): another fetches it
    log_level: str = "INFO"  # logging threshold for the command and the worker

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'hustings.sqlite3'}"

    @property
    def http_user_agent(self) -> str:
        return self.user_agent or f"Hustings/0.1 (+{self.site_url}; blog aggregator)"

    @property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies)

    @property
    def allowed_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in self.allow_networks)


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or raise SettingsError."""
    default = FIELDS[name].default
    kind = type(default)
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if isinstance(default, tuple):
            if isinstance(value, str):
                items = [v.strip() for v in value.split(",") if v.strip()]
            elif isinstance(value, (list, tuple)):
                items = [str(v).strip() for v in value]
            else:
                raise ValueError("expected a list or a comma-separated string")
            return tuple(items)
        if isinstance(default, Path):
            if not isinstance(value, (str, Path)) or not str(value):
                raise ValueError("expected a path")
            return Path(value).expanduser()
        if kind is int:
            if isinstance(value, bool):
                raise ValueError("expected a whole number")
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("expected a whole number")
            return int(str(value).replace("_", "")) if isinstance(value, str) else int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if kind is str:
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name!r}: bad value {value!r}: {exc}") from None
    raise SettingsError(f"setting {name!r}: unsupported type")  # pragma: no cover


def _validate(s: Settings) -> None:
    def bad(name: str, why: str) -> None:
        raise SettingsError(f"setting {name!r}: bad value {getattr(s, name)!r}: {why}")

    for net in s.allow_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise SettingsError(f"setting 'allow_networks': {net!r} is not a network in CIDR form") from None
    for net in s.trusted_proxies:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise SettingsError(f"setting 'trusted_proxies': {net!r} is not a network in CIDR form") from None
    for name in ("login_limit", "login_account_limit", "recommend_limit", "vote_limit", "submit_limit", "subscribe_limit",
                 "campaign_limit", "back_limit"):
        try:
            parse_limit(getattr(s, name))
        except ValueError as exc:
            bad(name, str(exc))
    if s.secret_key and len(s.secret_key) < 32:
        bad("secret_key", "use at least 32 random characters (or leave it empty to have one made)")
    if s.sanitizer not in ("nh3", "bleach"):
        bad("sanitizer", "choose nh3 or bleach")
    positive = (
        "fetch_deadline_s", "fetch_connect_timeout_s", "fetch_max_bytes", "fetch_workers",
        "fetch_per_host", "fetch_min_interval_s", "fetch_max_interval_s", "fetch_max_backoff_s",
        "fetch_disable_after_days", "fetch_max_entries", "summary_chars", "dispatch_every_s", "claim_lease_s",
        "crawl_max_pages", "crawl_deadline_s", "crawl_every_s", "crawl_workers",
        "web_max_connections", "web_request_timeout_s",
    )
    for name in positive:
        if getattr(s, name) <= 0:
            bad(name, "must be greater than zero")
    if s.rank_window_h <= 0:
        bad("rank_window_h", "must be greater than zero")
    if not 0 < s.web_port < 65536:
        bad("web_port", "must be a port number, 1 to 65535")
    if s.web_workers < 0 or s.page_cache_s < 0:
        bad("web_workers" if s.web_workers < 0 else "page_cache_s", "must not be negative")
    if not s.site_name.strip() or any(c in s.site_name for c in "\r\n"):
        bad("site_name", "must be one line of text")
    if s.crawl_delay_s < 0:
        bad("crawl_delay_s", "must not be negative")
    if s.parse_processes < 0:
        bad("parse_processes", "must not be negative")
    if s.fetch_max_redirects < 0:
        bad("fetch_max_redirects", "must not be negative")
    if s.fetch_max_interval_s < s.fetch_min_interval_s:
        bad("fetch_max_interval_s", "must not be below fetch_min_interval_s")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        bad("log_level", "choose DEBUG, INFO, WARNING or ERROR")
    if any(c in s.user_agent for c in "\r\n"):
        bad("user_agent", "must be one line")
    if not s.site_url.startswith(("http://", "https://")) or any(c.isspace() for c in s.site_url):
        bad("site_url", "must be an http or https URL")
    _validate_mail(s, bad)


def _validate_mail(s: Settings, bad) -> None:
    from email.headerregistry import Address
    from email.utils import parseaddr
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if s.smtp_security not in ("none", "starttls", "tls"):
        bad("smtp_security", "choose none, starttls or tls")
    if not 0 < s.smtp_port < 65536:
        bad("smtp_port", "must be a port number, 1 to 65535")
    if s.smtp_timeout_s <= 0:
        bad("smtp_timeout_s", "must be greater than zero")
    if s.mail_rate_per_s < 0:
        bad("mail_rate_per_s", "must not be negative (0: no limit)")
    for name in ("smtp_host", "smtp_user", "smtp_password", "mail_from", "dkim_selector"):
        if any(c in getattr(s, name) for c in "\r\n\0"):
            bad(name, "must be one line")
    if s.mail_from:
        _, address = parseaddr(s.mail_from)
        if "@" not in address:
            bad("mail_from", 'give an address, e.g. "Hustings <digest@hustings.example>"')
        try:
            Address(addr_spec=address)
        except (ValueError, IndexError) as exc:
            bad("mail_from", str(exc))
    if bool(s.dkim_key_file) != bool(s.dkim_selector):
        bad("dkim_selector" if s.dkim_key_file else "dkim_key_file", "DKIM needs both dkim_key_file and dkim_selector")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", s.digest_send_time):
        bad("digest_send_time", "give a time of day as HH:MM, e.g. 07:00")
    try:
        ZoneInfo(s.digest_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        bad("digest_timezone", "give an IANA time zone, e.g. Europe/London")
    if not s.campaign_rules.strip():
        bad("campaign_rules", "the proposal form must say what a campaign may be refused for")


_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_limit(text: str) -> tuple[int, int]:
    """"10/15m" -> (10 requests, 900 seconds). Raises ValueError saying what is wrong."""
    m = _LIMIT.match(text or "")
    if not m:
        raise ValueError(f"{text!r} is not a rate limit like 10/15m (requests per period in s, m, h or d)")
    count, n, unit = int(m.group(1)), int(m.group(2) or 1), m.group(3)
    if count < 1 or n < 1:
        raise ValueError(f"{text!r}: both numbers must be at least 1")
    return count, n * _UNITS[unit]


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    # Allow an optional [hustings] table so the file can share space with others.
    if set(data) == {"hustings"} and isinstance(data["hustings"], dict):
        data = data["hustings"]
    return data


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults < TOML file < HUSTINGS_* env < overrides (flags).

    Raises:
        SettingsError: naming the unknown key or the bad value.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}

    config_path = config_file or environ.get(ENV_PREFIX + "CONFIG") or None
    if config_path:
        for key, value in read_config_file(Path(config_path)).items():
            if key not in FIELDS:
                raise SettingsError(f"config file {config_path}: unknown setting {key!r}")
            values[key] = _coerce(key, value)

    for env_key, value in environ.items():
        if not env_key.startswith(ENV_PREFIX) or env_key == ENV_PREFIX + "CONFIG" or env_key.startswith(TEST_PREFIX):
            continue
        name = env_key[len(ENV_PREFIX):].lower()
        if name not in FIELDS:
            raise SettingsError(f"environment variable {env_key}: unknown setting {name!r}")
        values[name] = _coerce(name, value)

    for key, value in overrides.items():
        if value is None:
            continue
        if key not in FIELDS:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = _coerce(key, value)

    settings = Settings(**values)
    _validate(settings)
    return settings


def describe_settings() -> list[tuple[str, str, str]]:
    """(name, default, environment variable) for every setting, for docs and --help."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default if f.default is not dataclasses.MISSING else field()
        if isinstance(default, tuple):
            shown = ",".join(default)
        else:
            shown = str(default)
        rows.append((f.name, shown, ENV_PREFIX + f.name.upper()))
    return rows


def as_environ(settings: Settings) -> dict[str, str]:
    """Every setting as a HUSTINGS_* variable, so a child process runs with exactly these
    settings, on the very database they resolve to (however it was chosen)."""
    env = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        env[ENV_PREFIX + f.name.upper()] = ",".join(value) if isinstance(value, tuple) else str(value)
    env[ENV_PREFIX + "DATABASE_URL"] = settings.resolved_database_url
    return env
