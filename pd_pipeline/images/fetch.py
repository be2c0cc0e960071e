"""Fetching an image someone else made over HTTP, to adopt it (PD_ADOPT_OUTSIDE=http).

A row's URL is data anyone with write access to the card tables chose, so it is fetched only
under rules: http and https only, only from the hosts PD_ADOPT_HTTP_HOSTS allows (by default
the host of the store's public base URL), redirects followed here and each hop held to the same
rules, at most MAX_BYTES read, no credentials, cookies or proxies, and a few fetches at once
per process. A refusal is `Refused`, whose message names the rule.

The allow-list is the control: host names are not resolved to refuse private addresses. The
operator names the hosts they trust (a store's own host is often on loopback or a private
network, as MinIO is), and checking the resolved address would race the connection's own
lookup (DNS rebinding) unless the connection were pinned to it. We connect to exactly the host
and port that were checked.
"""

import http.client
import ipaddress
import re
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit

from pd_pipeline import __version__

SETTING = "PD_ADOPT_HTTP_HOSTS"
PORTS = {"http": 80, "https": 443}  # the schemes fetched, and the port a bare host name means
PNG = "image/png"
TIMEOUT_S = 15  # each connect and read
DEADLINE_S = 60  # a whole fetch, redirects included: a trickling server holds a slot no longer
MAX_BYTES = 8_000_000  # a card PNG is ~200 KB: anything far larger is not one
MAX_REDIRECTS = 5
AT_ONCE = 8  # fetches in flight in one process, whichever steps ask
REDIRECTS = (301, 302, 303, 307, 308)
HEADERS = {"User-Agent": f"pd_pipeline/{__version__} (adoption check)", "Accept": PNG}

_slots = threading.BoundedSemaphore(AT_ONCE)
_tls = ssl.create_default_context()
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")  # a DNS name or an IPv4 address


class Refused(Exception):
    """A URL not fetched, or its answer not taken; `rule` is a short name of the rule."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Host:
    name: str  # lower case, IPv6 without brackets, no trailing dot
    port: int | None = None  # None: the scheme's own port (80 for http, 443 for https)

    def __str__(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        return name if self.port is None else f"{name}:{self.port}"

    def matches(self, scheme: str, name: str, port: int | None) -> bool:
        return name == self.name and (port or PORTS[scheme]) == (self.port or PORTS[scheme])


@dataclass(frozen=True)
class AllowedHosts:
    """The hosts adoption may fetch from, and how they were chosen (for refusals)."""

    hosts: tuple[Host, ...]
    from_setting: bool

    @classmethod
    def choose(cls, setting: str | None, public_base_url: str) -> "AllowedHosts":
        """The one rule: the hosts PD_ADOPT_HTTP_HOSTS names, else the host of the store's
        public base URL (none when that is a file:// URL)."""
        if setting is not None:
            return cls(parse_hosts(setting), True)
        base = urlsplit(public_base_url)
        if base.scheme not in PORTS or not base.hostname:
            return cls((), False)
        return cls((Host(_bare(base.hostname), base.port),), False)

    def allows(self, scheme: str, name: str, port: int | None) -> bool:
        return any(h.matches(scheme, name, port) for h in self.hosts)

    def describe(self) -> str:
        names = ", ".join(map(str, self.hosts))
        if self.from_setting:
            return f"allowed: {names}"
        if names:
            return f"unset, so only the store's public base host: {names}"
        return "unset, and the store's public base URL is no http(s) URL: no host is allowed"


def parse_hosts(value: str) -> tuple[Host, ...]:
    """PD_ADOPT_HTTP_HOSTS: comma-separated `host` or `host:port` entries (IPv6 in brackets);
    ValueError naming the first entry that is none."""
    hosts = []
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            raise ValueError("an empty entry (a comma too many?)")
        if "://" in entry:
            raise ValueError(f"{entry!r} has a scheme: name the host alone, as host or host:port")
        if any(c in entry for c in "/?#@ \t"):
            raise ValueError(f"{entry!r} is not a host or host:port (no path, query or user)")
        hosts.append(_entry(entry))
    return tuple(hosts)


def _entry(entry: str) -> Host:
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\w*))?", entry)
    if bracketed:
        name, port = bracketed.group(1), bracketed.group(2)
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise ValueError(f"{entry!r}: {name!r} is not an IPv6 address") from None
    elif entry.count(":") > 1:
        raise ValueError(f"{entry!r}: write an IPv6 address in brackets, as [::1]:8080")
    else:
        name, _, port = entry.partition(":") if ":" in entry else (entry, "", None)
        if not _NAME.fullmatch(_bare(name)) or len(name) > 253:
            raise ValueError(f"{entry!r}: {name!r} is not a host name")
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"{entry!r}: the port is not a number from 1 to 65535")
    return Host(_bare(name), None if port is None else int(port))


def _bare(name: str) -> str:
    return name.lower().rstrip(".")


def shown(url: str) -> str:
    """A URL as messages show it: any `user:password@` masked (by text: it may not parse)."""
    return re.sub(r"//[^/?#]*@", "//***@", url, count=1)


def fetch_png(url: str, allowed: AllowedHosts) -> bytes:
    """The body of the 200 answer `url` gives (redirects followed) with Content-Type image/png,
    at most MAX_BYTES; Refused, naming the rule, for anything else."""
    deadline = time.monotonic() + DEADLINE_S
    with _slots:
        came_from = None
        for _ in range(MAX_REDIRECTS + 1):
            parts = _checked(url, allowed, came_from)
            location = _get(url, parts, deadline)
            if isinstance(location, bytes):
                return location
            came_from, url = url, urljoin(url, location)
    raise Refused("redirect", f"{shown(url)}: more than {MAX_REDIRECTS} redirects")


def _checked(url: str, allowed: AllowedHosts, came_from: str | None) -> SplitResult:
    """The URL's parts, if the rules let it be fetched."""
    hop = f"redirect from {shown(came_from)} to {shown(url)}" if came_from else shown(url)
    try:
        parts = urlsplit(url)
    except ValueError as e:  # e.g. an unclosed IPv6 bracket
        raise Refused("url", f"{hop}: not a URL ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in PORTS:
        said = f"{hop}: scheme {scheme or '(none)'} is not fetched (only http and https)"
        raise Refused("redirect" if came_from else "scheme", said)
    if "@" in parts.netloc:
        raise Refused("credentials", f"{hop}: the URL carries credentials, which are never sent")
    try:
        port = parts.port
    except ValueError:
        raise Refused("url", f"{hop}: the URL's port is not a number from 0 to 65535") from None
    name = _bare(parts.hostname or "")
    if not allowed.allows(scheme, name, port):
        host = str(Host(name, port)) or "(none)"
        if came_from:
            raise Refused("redirect", f"{hop} leaves the allowed hosts: {host} is not in "
                          f"{SETTING} ({allowed.describe()})")  # fmt: skip
        raise Refused("host", f"host {host} is not in {SETTING} ({allowed.describe()})")
    return parts


def _get(url: str, parts: SplitResult, deadline: float) -> bytes | str:
    """One GET: the PNG's bytes, or where a redirect points."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise Refused("timeout", f"{shown(url)}: no answer within {DEADLINE_S}s")
    timeout = min(TIMEOUT_S, left)
    if parts.scheme.lower() == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=_tls
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path or "/"
        connection.request("GET", f"{path}?{parts.query}" if parts.query else path,
                           headers=HEADERS)  # fmt: skip
        answer = connection.getresponse()
        if answer.status in REDIRECTS:
            location = answer.getheader("Location")
            if not location:
                raise Refused("status", f"{shown(url)} answers {answer.status} with no Location")
            return location
        if answer.status != 200:
            raise Refused("status", f"{shown(url)} answers HTTP {answer.status} {answer.reason}")
        kind = answer.headers.get_content_type() if answer.getheader("Content-Type") else None
        if kind != PNG:
            said = f"Content-Type {kind!r}" if kind else "no Content-Type"
            raise Refused("content type", f"{shown(url)} answers {said}, not {PNG!r}")
        return _body(url, answer, deadline)
    except (OSError, http.client.HTTPException, ValueError) as e:
        # Unreachable, reset, timed out, a malformed answer: not adoptable, rendered instead.
        raise Refused("unreachable", f"{shown(url)} could not be fetched: "
                      f"{type(e).__name__}: {e}") from None  # fmt: skip
    finally:
        connection.close()


def _body(url: str, answer: http.client.HTTPResponse, deadline: float) -> bytes:
    """The body, read in pieces so that neither a huge nor a trickling one is waited for."""
    too_big = f"{shown(url)} is more than {MAX_BYTES:,} bytes, the most a card PNG may be"
    length = answer.getheader("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BYTES:
        raise Refused("size", too_big)
    chunks, size = [], 0
    while chunk := answer.read1(65536):
        size += len(chunk)
        if size > MAX_BYTES:
            raise Refused("size", too_big)
        if time.monotonic() > deadline:
            raise Refused("timeout", f"{shown(url)}: not read within {DEADLINE_S}s")
        chunks.append(chunk)
    return b"".join(chunks)
