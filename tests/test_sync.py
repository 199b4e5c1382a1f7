"""The sync API: same text as async, safe inside a running loop's thread, sessions closed cleanly.

The raw server runs on its own loop in a thread here: a sync call blocks the caller's thread, so a
server on the test's own loop could never answer it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

from solarstream import Upstage
from solarstream.errors import AuthenticationError
from solarstream.providers.base import default_of
from tests.conftest import MESSAGES, kw
from tests.helpers import ThreadServer
from tests.rawserver import RawServer, Reply, chunk, json_reply, sse, sse_reply, text_stream

PIECES = ["Sync ", "и ", "async ", "同じ"]


@pytest.fixture
def tserver_thread() -> Iterator[ThreadServer]:
    running = ThreadServer()
    with running:
        yield running


@pytest.fixture
def tserver(tserver_thread: ThreadServer) -> RawServer:
    return tserver_thread.server


def test_sync_iterator_gives_the_same_text_as_async(tserver: RawServer) -> None:
    tserver.enqueue(sse_reply(text_stream(PIECES)), sse_reply(text_stream(PIECES)))
    sync_pieces = list(Upstage.create_completion("solar-pro4", MESSAGES, **kw(tserver)))

    async def async_pieces() -> list[str]:
        return [p async for p in Upstage.create_async_generator("solar-pro4", MESSAGES, **kw(tserver))]

    assert sync_pieces == PIECES
    assert asyncio.run(async_pieces()) == PIECES


def test_sync_non_streamed_gives_one_string(tserver: RawServer) -> None:
    tserver.enqueue(sse_reply(text_stream(PIECES)))
    assert list(Upstage.create_completion("solar-pro4", MESSAGES, stream=False, **kw(tserver))) == ["".join(PIECES)]


async def test_sync_call_from_inside_a_running_loop(tserver: RawServer) -> None:
    # as in Jupyter: the caller's thread runs a loop; no deadlock, no nest_asyncio
    asyncio.get_running_loop()
    tserver.enqueue(sse_reply(text_stream(PIECES)), sse_reply(text_stream(PIECES)))
    assert "".join(Upstage.create_completion("solar-pro4", MESSAGES, **kw(tserver))) == "".join(PIECES)
    assert list(Upstage.create_completion("solar-pro4", MESSAGES, stream=False, **kw(tserver))) == ["".join(PIECES)]


def test_sync_errors_are_the_typed_errors(tserver: RawServer) -> None:
    tserver.enqueue(json_reply(401, {"error": {"message": "bad key", "code": "invalid_api_key"}}))
    with pytest.raises(AuthenticationError):
        list(Upstage.create_completion("solar-pro4", MESSAGES, **kw(tserver)))


def test_closing_the_sync_iterator_closes_the_connection(tserver_thread: ThreadServer, tserver: RawServer) -> None:
    tserver.enqueue(Reply(pieces=[sse(chunk("first"))], end="hang"))
    it = Upstage.create_completion("solar-pro4", MESSAGES, **kw(tserver))
    assert next(it) == "first"
    it.close()  # type: ignore[attr-defined]
    tserver_thread.call(tserver.wait_client_disconnects(1))


def test_shared_session_is_closed_at_loop_shutdown(tserver: RawServer) -> None:
    tserver.enqueue(sse_reply(text_stream(["a"])), sse_reply(text_stream(["b"])))
    sessions = []

    async def main() -> str:
        first = await Upstage.create_async("solar-pro4", MESSAGES, **kw(tserver))
        sessions.append(await default_of(Upstage).http._session(None))
        return first + await Upstage.create_async("solar-pro4", MESSAGES, **kw(tserver))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(main()) == "ab"
        import gc

        gc.collect()
    assert sessions[0].closed
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert tserver.connections == 1


def test_sync_in_a_fresh_process_exits_cleanly(tserver: RawServer) -> None:
    """The background loop's session is closed at interpreter exit: no 'Unclosed' warnings."""
    tserver.enqueue(sse_reply(text_stream(PIECES)))
    code = (
        "from solarstream import Upstage\n"
        f"print(''.join(Upstage.create_completion('solar-pro4', [{{'role': 'user', 'content': 'hi'}}],"
        f" base_url={tserver.base_url!r}, api_key='up_test')), end='')\n"
    )
    result = subprocess.run([sys.executable, "-X", "dev", "-W", "error", "-c", code],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(PIECES)
    assert result.stderr == ""
