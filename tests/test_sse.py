"""The SSE decoder against the WHATWG rules, at every split point of every stream."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solarstream._sse import ServerSentEvent, SSEDecoder
from solarstream.errors import StreamError
from tests.helpers import reference_parse

E = ServerSentEvent

#: (name, stream, the events it must give)
CORPUS: list[tuple[str, bytes, list[ServerSentEvent]]] = [
    ("lf", b"data: a\n\ndata: b\n\n", [E("a"), E("b")]),
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [E("a"), E("b")]),
    ("cr", b"data: a\r\rdata: b\r\r", [E("a"), E("b")]),
    ("mixed", b"data: a\r\n\ndata: b\r\rdata: c\n\r\n", [E("a"), E("b"), E("c")]),
    ("bom", b"\xef\xbb\xbfdata: a\n\n", [E("a")]),
    ("only-one-bom", b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [E("b")]),
    ("bom-crlf", b"\xef\xbb\xbfdata: x\r\n\r\n", [E("x")]),
    ("comments", b": ping\n\n: ping\ndata: a\n: mid\n\n:\n\n", [E("a")]),
    ("field-without-colon", b"data\n\ndata\ndata\n\n", [E(""), E("\n")]),
    ("no-space", b"data:a\n\n", [E("a")]),
    ("two-spaces", b"data:  a\n\n", [E(" a")]),
    ("trailing-space-kept", b"data: a \n\n", [E("a ")]),
    ("multi-line", b"data: a\ndata: b\ndata:\ndata: c\n\n", [E("a\nb\n\nc")]),
    ("event-type", b"event: error\ndata: x\n\ndata: y\n\n", [E("x", "error"), E("y")]),
    ("event-reset-by-blank", b"event: e\n\ndata: y\n\n", [E("y")]),
    ("id-persists", b"id: 7\ndata: a\n\ndata: b\n\n", [E("a", id="7"), E("b", id="7")]),
    ("id-with-nul-ignored", b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", [E("a", id="1"), E("b", id="1")]),
    ("id-empty-resets", b"id: 1\ndata: a\n\nid\ndata: b\n\n", [E("a", id="1"), E("b", id="")]),
    ("retry", b"retry: 1500\ndata: a\n\n", [E("a", retry=1500)]),
    ("retry-non-digits", b"retry: 15x0\ndata: a\n\nretry: -1\ndata: b\n\nretry: \xd9\xa3\ndata: c\n\n",
     [E("a"), E("b"), E("c")]),
    ("retry-empty", b"retry\ndata: a\n\n", [E("a")]),
    ("blank-without-data", b"\n\n\n\r\n\revent: x\n\n", []),
    ("unknown-field", b"foo: bar\ndata: a\n\n", [E("a")]),
    ("unterminated-at-eof", b"data: a\n\ndata: b\n", [E("a")]),
    ("unterminated-line-at-eof", b"data: a\n\ndata: b", [E("a")]),
    ("done", b"data: {\"x\":1}\n\ndata: [DONE]\n\n", [E('{"x":1}'), E("[DONE]")]),
    ("utf8", "data: Привет, 세계, こんにちは 👋\n\n".encode(), [E("Привет, 세계, こんにちは 👋")]),
    ("utf8-event-name", "event: ошибка\ndata: x\n\n".encode(), [E("x", "ошибка")]),
    ("colon-in-value", b"data: a: b\n\n", [E("a: b")]),
    ("cr-then-lf-as-two-ends", b"data: a\r\n\r\n\n", [E("a")]),
    ("lf-cr", b"data: a\n\rdata: b\n\n", [E("a"), E("b")]),
]


def decode_whole(stream: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = decoder.feed(stream)
    decoder.close()
    return events


def decode_pieces(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    decoder.close()
    return events


@pytest.mark.parametrize(("stream", "expected"), [(s, e) for _, s, e in CORPUS], ids=[n for n, _, _ in CORPUS])
def test_corpus_whole(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode_whole(stream) == expected


@pytest.mark.parametrize(("stream", "expected"), [(s, e) for _, s, e in CORPUS], ids=[n for n, _, _ in CORPUS])
def test_corpus_every_split_point_and_single_bytes(stream: bytes, expected: list[ServerSentEvent]) -> None:
    for i in range(len(stream) + 1):
        assert decode_pieces([stream[:i], stream[i:]]) == expected, f"split at {i}"
        # an empty read between the halves changes nothing
        assert decode_pieces([stream[:i], b"", stream[i:]]) == expected, f"split at {i} with empty read"
    assert decode_pieces([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_cr_at_end_of_one_read_and_lf_at_start_of_next_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # if CR and LF were two line ends, this LF would be a blank line and dispatch "a" now
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\n\r") == [E("a\nb")]
    # a CR split from its LF across an empty read is still one line end
    assert decoder.feed(b"data: c\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [E("c")]


def test_utf8_character_split_across_reads() -> None:
    stream = "data: ж한🙂\n\n".encode()
    for i in range(len(stream) + 1):
        assert decode_pieces([stream[:i], stream[i:]]) == [E("ж한🙂")]


def test_close_reports_a_discarded_unterminated_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: whole\n\ndata: part") == [E("whole")]
    assert decoder.close() is True
    clean = SSEDecoder()
    assert clean.feed(b"data: whole\n\n") == [E("whole")]
    assert clean.close() is False


def test_comments_are_counted_as_keepalives() -> None:
    decoder = SSEDecoder()
    decoder.feed(b": ping\n\n: ping\r\n")
    assert decoder.comments == 2


def test_large_event_has_no_line_limit() -> None:
    big = "x" * (3 * 1024 * 1024) + "é"
    stream = f"data: {big}\n\n".encode()
    assert decode_whole(stream) == [E(big)]
    # in network-sized reads, too
    step = 64 * 1024
    assert decode_pieces([stream[i : i + step] for i in range(0, len(stream), step)]) == [E(big)]


def test_large_multiline_event() -> None:
    line = "y" * 300_000
    stream = ("".join(f"data: {line}\n" for _ in range(5)) + "\n").encode()
    assert decode_whole(stream) == [E("\n".join([line] * 5))]


def test_max_event_size_caps_one_event() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    assert decoder.feed(b"data: " + b"a" * 900 + b"\n\n") == [E("a" * 900)]
    with pytest.raises(StreamError, match="max_event_size"):
        decoder.feed(b"data: " + b"b" * 1200 + b"\n\n")


def test_max_event_size_counts_across_lines_and_reads() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    line = b"data: " + b"c" * 99 + b"\n"
    for _ in range(9):
        decoder.feed(line)
    with pytest.raises(StreamError, match="exceeded 1000 bytes"):
        decoder.feed(line * 2)


def test_max_event_size_catches_an_endless_line() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    for _ in range(9):
        decoder.feed(b"d" * 100)  # never a line end: must not grow without bound
    with pytest.raises(StreamError):
        decoder.feed(b"d" * 200)


# --- property-based: random events, random line endings, random splits --------------------------

_line_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=20
)
_field = st.one_of(
    st.tuples(st.just("data"), _line_text),
    st.tuples(st.just("event"), _line_text),
    st.tuples(st.just("id"), _line_text),
    st.tuples(st.just("retry"), st.one_of(st.integers(0, 10**6).map(str), _line_text)),
    st.tuples(st.just(""), _line_text),  # a comment
    st.tuples(st.sampled_from(["foo", "dat", "data ", "Data"]), _line_text),
)
_event = st.lists(_field, max_size=5)
_eol = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    out = []
    if draw(st.booleans()):
        out.append("\ufeff")
    for fields in draw(st.lists(_event, max_size=6)):
        for name, value in fields:
            sep = draw(st.sampled_from([":", ": ", ":  "]))
            if name in ("data", "id", "retry", "event") and not value and draw(st.booleans()):
                out.append(name + draw(_eol))  # a field without a colon
            else:
                out.append(f"{name}{sep}{value}{draw(_eol)}")
        out.append(draw(_eol))
    if draw(st.booleans()):
        out.append(draw(_line_text))  # an unterminated tail
    return "".join(out).encode()


@settings(max_examples=300, deadline=None)
@given(stream=streams(), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_random_streams_match_reference_at_random_splits(stream: bytes, cuts: list[int]) -> None:
    expected = reference_parse(stream)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert decode_pieces(pieces) == expected
    assert decode_whole(stream) == expected


@settings(max_examples=100, deadline=None)
@given(stream=streams())
def test_random_streams_byte_by_byte(stream: bytes) -> None:
    assert decode_pieces([stream[i : i + 1] for i in range(len(stream))]) == reference_parse(stream)


def test_a_huge_event_in_many_small_reads_decodes_whole() -> None:
    payload = "x" * (4 * 1024 * 1024)
    stream = f"data: {payload}\n\n".encode()
    decoder = SSEDecoder(max_event_size=8 * 1024 * 1024)
    events = []
    for i in range(0, len(stream), 16384):
        events += decoder.feed(stream[i : i + 16384])
    assert [len(e.data) for e in events] == [len(payload)]
    assert events[0].data == payload


def test_events_before_an_oversized_one_are_handed_out_first() -> None:
    decoder = SSEDecoder(max_event_size=100)
    events = decoder.feed(b"data: a\n\ndata: b\n\ndata: " + b"y" * 200 + b"\n\n")
    assert [e.data for e in events] == ["a", "b"]
    with pytest.raises(StreamError, match="exceeded 100 bytes"):
        decoder.feed(b"data: c\n\n")


def test_events_hands_out_each_event_before_decoding_the_rest_of_the_read() -> None:
    decoder = SSEDecoder(max_event_size=100)
    events = decoder.events(b"data: a\n\n: ping\n\nevent: e\ndata: b\n\ndata: " + b"y" * 200 + b"\n\n")
    assert next(events) == E("a")
    assert decoder.comments == 0  # the rest of the read is not decoded yet
    assert next(events) == ServerSentEvent("b", "e")
    with pytest.raises(StreamError, match="exceeded 100 bytes"):  # the oversized one, after both
        next(events)
    with pytest.raises(StreamError, match="exceeded 100 bytes"):
        list(decoder.events(b"data: c\n\n"))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.lists(st.text(alphabet="ab é:", max_size=12), min_size=1, max_size=3), max_size=4),
       cuts=st.lists(st.integers(0, 10_000), max_size=6), eol=_eol)
def test_events_and_feed_agree_however_the_stream_is_split(values: list[list[str]], cuts: list[int],
                                                           eol: str) -> None:
    stream = "".join("".join(f"data: {v}{eol}" for v in lines) + eol for lines in values).encode()
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    lazy, eager = SSEDecoder(), SSEDecoder()
    assert [e for piece in pieces for e in lazy.events(piece)] == [e for piece in pieces for e in eager.feed(piece)]
    assert lazy.close() == eager.close()


def test_an_oversized_event_split_over_reads_raises_before_it_ends() -> None:
    decoder = SSEDecoder(max_event_size=100)
    decoder.feed(b"data: " + b"z" * 60)
    with pytest.raises(StreamError):
        decoder.feed(b"z" * 60)


# --- the size cap at exactly the limit, however the event is split --------------------------------


def verdict(pieces: list[bytes], limit: int) -> tuple[list[ServerSentEvent], bool]:
    """The events handed out, and whether the cap was hit (at a feed or at close)."""
    decoder = SSEDecoder(max_event_size=limit)
    events: list[ServerSentEvent] = []
    try:
        for piece in pieces:
            events += decoder.feed(piece)
        decoder.close()
    except StreamError:
        return events, True
    return events, False


def every_split(stream: bytes) -> list[list[bytes]]:
    return [[stream]] + [[stream[:i], stream[i:]] for i in range(1, len(stream))] + [
        [stream[i : i + 1] for i in range(len(stream))]]


@pytest.mark.parametrize(("name", "event", "size"), [
    # the size is the data's bytes plus one per data line (the "\n" that joins them)
    ("data-space", b"data: " + b"a" * 19 + b"\n\n", 20),
    ("data-no-space", b"data:" + b"a" * 19 + b"\n\n", 20),
    ("two-lines", b"data: " + b"a" * 9 + b"\ndata:" + b"b" * 8 + b"\n\n", 19),
    ("empty-data-lines", b"data\ndata:\ndata: \n\n", 3),
    ("crlf", b"data: " + b"c" * 19 + b"\r\n\r\n", 20),
    ("with-other-fields", b"event: e\nid: 1\ndata: " + b"d" * 19 + b"\n\n", 20),
])
def test_an_event_of_exactly_the_limit_passes_and_one_byte_more_does_not(name: str, event: bytes, size: int) -> None:
    for pieces in every_split(event):
        events, failed = verdict(pieces, size)
        assert not failed, (name, pieces)
        assert len(events) == 1
        events, failed = verdict(pieces, size - 1)
        assert failed, (name, pieces)
        assert events == []


def test_the_limit_applies_to_each_event_afresh() -> None:
    stream = b"data: " + b"a" * 9 + b"\n\n" + b"data: " + b"b" * 9 + b"\n\n" + b"data: " + b"c" * 9 + b"\n\n"
    for pieces in every_split(stream):
        assert verdict(pieces, 10) == ([E("a" * 9), E("b" * 9), E("c" * 9)], False), pieces


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.lists(st.text(alphabet="ab é", max_size=12), min_size=1, max_size=3), max_size=4),
       limit=st.integers(1, 30), cuts=st.lists(st.integers(0, 10_000), max_size=6), eol=_eol)
def test_the_cap_gives_the_same_verdict_however_the_stream_is_split(
    values: list[list[str]], limit: int, cuts: list[int], eol: str
) -> None:
    stream = "".join("".join(f"data: {v}{eol}" for v in lines) + eol for lines in values).encode()
    points = sorted({c % (len(stream) + 1) for c in cuts})
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert verdict(pieces, limit) == verdict([stream], limit)


def test_an_oversized_event_after_good_ones_in_the_same_read() -> None:
    for oversized in (b"data: " + b"y" * 200 + b"\n\n", b"data:" + b"y" * 200 + b"\n\n",
                      b"data: " + b"y" * 200):  # a whole line, one without the space, an unterminated one
        decoder = SSEDecoder(max_event_size=100)
        events = decoder.feed(b"data: a\n\ndata: b\n\n" + oversized)
        assert events == [E("a"), E("b")]
        with pytest.raises(StreamError) as info:
            decoder.close()
        assert str(info.value) == ("a server-sent event exceeded 100 bytes; the stream is malformed or the limit "
                                   "(max_event_size) is too low for it")


def test_an_oversized_event_alone_raises_at_once() -> None:
    for oversized in (b"data: " + b"y" * 200 + b"\n\n", b"data:" + b"y" * 200 + b"\n", b"data: " + b"y" * 200):
        with pytest.raises(StreamError, match="exceeded 100 bytes"):
            SSEDecoder(max_event_size=100).feed(oversized)


# --- what else the decoder promises ---------------------------------------------------------------


def test_events_compare_by_every_field() -> None:
    assert E("a", "message", "1", 5) == E("a", "message", "1", 5)
    for other in (E("b", "message", "1", 5), E("a", "other", "1", 5), E("a", "message", "2", 5),
                  E("a", "message", "1", None)):
        assert E("a", "message", "1", 5) != other
    assert E("a") != "a"
    assert repr(E("a", id="7")) == "ServerSentEvent(data='a', event='message', id='7', retry=None)"
    with pytest.raises(TypeError):
        hash(E("a"))


def test_bytes_that_are_not_utf8_become_replacement_characters() -> None:
    stream = b"event: \xff\nid: \xfe1\ndata: caf\xe9\n\n"
    assert decode_whole(stream) == [E("caf\ufffd", "\ufffd", "\ufffd1")]


def test_after_close_the_decoder_starts_clean() -> None:
    decoder = SSEDecoder(max_event_size=10)
    decoder.feed(b"event: x\ndata: 123456")
    assert decoder.pending
    assert decoder.close() is True
    assert not decoder.pending
    assert decoder.feed(b"data: " + b"z" * 9 + b"\n\n") == [E("z" * 9)]  # nothing of the discarded event counts
    assert decoder.close() is False


def test_pending_is_true_inside_an_event() -> None:
    decoder = SSEDecoder()
    assert not decoder.pending
    decoder.feed(b"event: x\n")
    assert decoder.pending
    decoder.feed(b"data: y\n")
    assert decoder.pending
    assert decoder.feed(b"\n") == [E("y", "x")]
    assert not decoder.pending


def test_a_decoder_that_handed_out_events_before_the_cap_keeps_failing() -> None:
    decoder = SSEDecoder(max_event_size=5)
    assert decoder.feed(b"data: ok\n\n" + b"data: " + b"x" * 10 + b"\n\n") == [E("ok")]
    for _ in range(2):
        with pytest.raises(StreamError):
            decoder.feed(b"data: fine\n\n")
    with pytest.raises(StreamError):
        decoder.close()


def test_a_cap_error_is_final() -> None:
    """After an oversized event the rest of the stream is not read from the middle of it."""
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(StreamError):
        decoder.feed(b"data: " + b"y" * 200)
    with pytest.raises(StreamError, match="exceeded 100 bytes"):
        decoder.feed(b"yyy\n\ndata: ok\n\n")  # not "ok": that would be parsing the oversized line's tail
    with pytest.raises(StreamError):
        decoder.close()


def test_lines_so_far_and_an_unterminated_one_count_together() -> None:
    # 61 bytes of data in a finished line, then a line that is not finished yet: the cap holds for both
    for pieces in ([b"data: " + b"a" * 60 + b"\n", b"data: " + b"b" * 50],
                   [b"data: " + b"a" * 60 + b"\ndata: ", b"b" * 25, b"b" * 25]):
        assert verdict(pieces, 100) == ([], True)
    decoder = SSEDecoder(max_event_size=100)  # at the cap: 61 + 39 (38 bytes and their line end) = 100
    for piece in (b"data: " + b"a" * 60 + b"\ndata: ", b"b" * 20, b"b" * 18):
        assert decoder.feed(piece) == []
    assert decoder.feed(b"\n\n") == [E("a" * 60 + "\n" + "b" * 38)]


def test_an_lf_at_the_start_of_a_read_after_a_cr_is_skipped_even_with_more_after_it() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # the LF ends nothing (CR LF is one line end), so "b" belongs to the same event
    assert decoder.feed(b"\ndata: b\n\n") == [E("a\nb")]


def test_a_bom_after_the_first_byte_is_not_stripped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\n") == []
    # not at the start of the stream: part of the field name, so an unknown field, so no event
    assert decoder.feed(b"\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [E("y")]
