"""The drop-in tests' loopback guard refuses what it must, at once, and lets loopback through."""

from __future__ import annotations

import socket

import pytest

from solarstream.emulator import Emulator
from tests.dropin import loopback_only


def test_names_and_addresses_beyond_loopback_are_refused_and_listed() -> None:
    with loopback_only() as attempts:
        with pytest.raises(ConnectionRefusedError, match="loopback only"):
            socket.getaddrinfo("openaipublic.blob.core.windows.net", 443)
        with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect(("192.0.2.1", 443))  # TEST-NET-1: refused before any packet is sent
    assert attempts == ["socket.getaddrinfo openaipublic.blob.core.windows.net", "socket.connect 192.0.2.1"]
    assert socket.getaddrinfo("127.0.0.1", 80)  # disarmed again: the hook stays idle


async def test_loopback_passes() -> None:
    async with Emulator() as emu:
        port = int(emu.url.rsplit(":", 1)[1])
        with loopback_only() as attempts:
            assert socket.getaddrinfo("localhost", port)
            with socket.create_connection(("127.0.0.1", port), timeout=10):
                pass  # the kernel completes the handshake; the emulator need not accept it
    assert attempts == []
