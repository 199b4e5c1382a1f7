"""The chat page's files: vendored libraries exactly as recorded (versions, hashes, licences), every file the page
loads served by the gateway itself with the strict Content-Security-Policy, and the favicon."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from solarstream.server.testing import RunningGateway, running_gateway

STATIC = Path(__file__).resolve().parent.parent / "src" / "solarstream" / "server" / "static"
VENDOR = STATIC / "vendor"
#: the banner each built file starts with, naming its version
BANNERS = {"marked.umd.js": "marked v{}", "purify.min.js": "DOMPurify {}", "highlight.min.js": "Highlight.js v{}"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def notice_rows() -> list[list[str]]:
    """The table in vendor/README.md: file, package and version, path, licence, sha256."""
    rows = []
    for line in (VENDOR / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            rows.append([c.strip("`") for c in cells])
    return rows


def test_every_vendored_file_is_recorded_with_its_hash_version_and_licence() -> None:
    rows = notice_rows()
    recorded = {row[0] for row in rows}
    shipped = {p.name for p in VENDOR.iterdir() if p.suffix in (".js", ".css")}
    assert recorded == shipped
    for name, package, _path, licence, sha256 in rows:
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, f"{name} differs from the recorded build"
        version = re.search(r"\d+\.\d+\.\d+", package)
        assert version is not None
        if name in BANNERS:
            assert BANNERS[name].format(version.group()) in data[:400].decode(), name
        for licence_file in re.findall(r"LICENSE[\w.-]*\.txt", licence):
            assert (VENDOR / licence_file).stat().st_size > 1000, licence_file
    assert {"marked.umd.js", "purify.min.js", "highlight.min.js"} <= recorded


class _Assets(HTMLParser):
    """The URLs index.html loads, and anything inline that the CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and not found.get("src"):
            self.inline.append("inline <script>")
        if tag == "style" or "style" in found or any(k.startswith("on") for k in found):
            self.inline.append(f"inline style or handler on <{tag}>")
        for key in ("src", "href"):
            if found.get(key) and tag in ("script", "link", "img"):
                self.urls.append(str(found[key]))


def test_the_page_has_nothing_inline_and_loads_only_from_the_gateway() -> None:
    assets = _Assets()
    assets.feed((STATIC / "index.html").read_text())
    assert assets.inline == []
    assert assets.urls, "index.html loads nothing?"
    assert all(url.startswith("/") and not url.startswith("//") for url in assets.urls), assets.urls
    for script in STATIC.glob("*.js"):  # the page's own modules import only each other
        for target in re.findall(r"""from\s+["']([^"']+)["']""", script.read_text()):
            assert target.startswith("./"), (script.name, target)


@pytest.fixture
async def gw() -> AsyncIterator[RunningGateway]:
    async with running_gateway(emulator=False) as running:
        yield running


async def test_the_gateway_serves_every_file_the_page_loads(gw: RunningGateway,
                                                            session: aiohttp.ClientSession) -> None:
    assets = _Assets()
    assets.feed((STATIC / "index.html").read_text())
    modules = [f"/static/{p.name}" for p in STATIC.glob("*.js")]
    types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
    for url in {*assets.urls, *modules}:
        async with session.get(gw.url + url) as resp:
            assert resp.status == 200, url
            assert resp.headers["Content-Type"].startswith(types[Path(url).suffix]), url
            assert resp.headers["Content-Security-Policy"] == CSP, url
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            body = await resp.read()
        local = STATIC / url.removeprefix("/static/") if url.startswith("/static/") else STATIC / "favicon.ico"
        assert body == local.read_bytes(), url
    async with session.get(gw.url + "/") as resp:
        assert resp.headers["Content-Security-Policy"] == CSP


async def test_favicon(gw: RunningGateway, session: aiohttp.ClientSession) -> None:
    async with session.get(gw.url + "/favicon.ico") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/x-icon"
        body = await resp.read()
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert int.from_bytes(body[4:6], "little") == 3  # 16, 32 and 48 pixels
    async with session.get(gw.url + "/static/favicon.svg") as resp:
        assert resp.status == 200
        assert (await resp.text()).startswith("<svg")


@pytest.mark.parametrize("path", ["/static/vendor/nothing.js", "/static/vendor/README.md",
                                  "/static/vendor/LICENSE.marked.txt", "/static/"])
async def test_only_the_page_files_are_served(gw: RunningGateway, session: aiohttp.ClientSession, path: str) -> None:
    async with session.get(gw.url + path) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
