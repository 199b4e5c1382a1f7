"""Host names and web origins: parsing, normalising and matching, with no I/O.

A browser page can reach a gateway on loopback in two ways the gateway must refuse: by sending
requests to it from another site (the ``Origin`` tells), and by DNS rebinding, where the page's own
name is made to resolve to 127.0.0.1 (the ``Host`` tells: it carries the attacker's name). Both are
decided here from the names the gateway was started for; ``webguard`` applies the decisions.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

__all__ = [
    "ANY_HOST",
    "LOOPBACK_NAMES",
    "HostPolicy",
    "normalize_allowed_host",
    "normalize_origin",
    "parse_origin",
    "split_host",
]

#: the names every gateway answers for (with its own port)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: ``--allowed-host '*'``: no Host check (behind a proxy that rewrites Host, for example)
ANY_HOST = "*"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\.?")


def split_host(value: str) -> tuple[str, int | None]:
    """``"Name:8000"`` -> ``("name", 8000)``; ``"[::1]"`` -> ``("[::1]", None)``. ValueError if malformed."""
    text = value.lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {value!r}")
        name, rest = text[: end + 1], text[end + 1 :]
        ipaddress.IPv6Address(name[1:-1])  # ValueError if it is not an IPv6 address
        name = f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
    else:
        name, colon, port_text = text.partition(":")
        rest = colon + port_text
        if not _NAME.fullmatch(name):
            raise ValueError(f"{value!r} is not a host name")
    if not rest:
        return name, None
    digits = rest[1:]
    if not (rest.startswith(":") and digits.isascii() and digits.isdigit() and 0 < int(digits) < 65536):
        raise ValueError(f"{value!r} has no valid port after the name")
    return name, int(digits)


def _join(name: str, port: int | None) -> str:
    return name if port is None else f"{name}:{port}"


def normalize_allowed_host(entry: str) -> str:
    """An ``--allowed-host`` value in canonical form (``name`` or ``name:port``), or ValueError saying why."""
    text = entry.strip()
    if text == ANY_HOST:
        return ANY_HOST
    if "/" in text or "@" in text:
        raise ValueError(f"--allowed-host takes a host name such as gw.example.com or gw.example.com:8443, "
                         f"not a URL: {entry!r}")
    if text.count(":") > 1 and not text.startswith("["):  # a bare IPv6 address
        text = f"[{text}]"
    try:
        return _join(*split_host(text))
    except ValueError as exc:
        raise ValueError(f"--allowed-host {entry!r}: {exc}") from None


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """An ``Origin`` header -> (scheme, host, port), or None if it is ``null`` or not an http(s) origin."""
    try:
        parts = urlsplit(value)
        if parts.scheme not in _DEFAULT_PORTS or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
            return None
        name, port = split_host(parts.netloc)
    except ValueError:
        return None
    return parts.scheme, name, port if port is not None else _DEFAULT_PORTS[parts.scheme]


def _origin_text(scheme: str, name: str, port: int) -> str:
    return f"{scheme}://{_join(name, None if port == _DEFAULT_PORTS[scheme] else port)}"


def normalize_origin(entry: str) -> str:
    """A ``--cors-origin`` value as browsers serialise origins (``https://app.example``), or ValueError."""
    text = entry.strip()
    if text == "*" or text == "null":
        raise ValueError(f"--cors-origin {text!r} is not allowed: name each site, such as https://app.example")
    if not text.isascii():
        raise ValueError(f"--cors-origin {entry!r}: give the name in its ASCII (punycode) form, as browsers send it")
    parsed = parse_origin(text.rstrip("/").lower())
    if parsed is None:
        raise ValueError(f"--cors-origin {entry!r} is not an origin: give scheme and host (and a port if not the "
                         "default), such as https://app.example or http://localhost:5173, with no path")
    return _origin_text(*parsed)


def canonical_origin(value: str) -> str | None:
    """A request's ``Origin`` in the form ``normalize_origin`` gives, to compare with ``--cors-origin``s."""
    parsed = parse_origin(value.lower())
    return None if parsed is None else _origin_text(*parsed)


def _local_names(address: str) -> set[str]:
    """The names a local address is written as in Host: ``192.0.2.1``, ``[2001:db8::1]``.

    Servers put the socket's IP address in ASGI's ``scope["server"]``; in-process test clients put a
    name there (Starlette's ``testserver``), which is then the name they send.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return {address.lower()}
    if isinstance(ip, ipaddress.IPv6Address):
        names = {f"[{ip.compressed}]"}
        if ip.ipv4_mapped is not None:  # an IPv4 client on a dual-stack "::" socket
            names.add(str(ip.ipv4_mapped))
        return names
    return {str(ip)}


class HostPolicy:
    """Which ``Host`` values a gateway answers.

    Always: the loopback names and the address the connection arrived on (so a wildcard bind such as
    0.0.0.0 answers ``http://192.0.2.1:8000`` on whichever local address a client used), each with the
    gateway's own port. Besides: every ``--allowed-host`` (``name`` for any port, ``name:port``).
    A name that is not listed, such as a DNS-rebinding attacker's, is refused.
    """

    def __init__(self, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.any = ANY_HOST in allowed_hosts
        self.extra = tuple(h for h in allowed_hosts if h != ANY_HOST)
        self._any_port: set[str] = set()
        self._exact: set[tuple[str, int]] = set()
        for entry in self.extra:
            name, port = split_host(entry)
            if port is None:
                self._any_port.add(name)
            else:
                self._exact.add((name, port))

    def allows(self, name: str, port: int, server: tuple[str, int | None] | None) -> bool:
        """``name``/``port`` from a Host (or Origin); ``server``: the local address (ASGI ``scope["server"]``)."""
        if self.any or name in self._any_port or (name, port) in self._exact:
            return True
        if server is None or server[1] is None:  # a Unix socket: no port to match
            return name in LOOPBACK_NAMES
        if port != server[1]:
            return False
        return name in LOOPBACK_NAMES or name in _local_names(server[0])

    def allows_host_header(self, value: str, scheme: str, server: tuple[str, int | None] | None) -> bool:
        try:
            name, port = split_host(value)
        except ValueError:
            return False
        return self.allows(name, port if port is not None else _DEFAULT_PORTS.get(scheme, 80), server)

    def describe(self, server: tuple[str, int | None] | None) -> str:
        """The names answered, for an error message: ``127.0.0.1:8000, localhost:8000, [::1]:8000``."""
        if self.any:
            return "any name"
        port = server[1] if server else None
        names = list(LOOPBACK_NAMES)
        if server:
            names += sorted(_local_names(server[0]) - set(names))
        return ", ".join([_join(n, port) for n in names] + list(self.extra))
