"""The CLI's Server-Sent Events reader (wfe/sse.py), fed every way a network may split the bytes."""

from __future__ import annotations

import pytest

from wfe.sse import LineSplitter, SseEvent, SseParser, parse_stream

STREAM = (
    b"retry: 1000\n\n"
    b'id: 1\nevent: WorkflowStarted\ndata: {"seq":1}\n\n'
    b": keep-alive\n\n"
    b'id: 2\r\nevent: NodeExecutionStarted\r\ndata: {"seq":2,\r\ndata: "x":"\xe2\x80\xa8"}\r\n\r\n'
    b'event: end\rdata: {"status":"completed"}\r\r'
)
EXPECTED = [
    SseEvent("WorkflowStarted", '{"seq":1}', "1"),
    SseEvent("NodeExecutionStarted", '{"seq":2,\n"x":"\u2028"}', "2"),
    SseEvent("end", '{"status":"completed"}', "2"),
]


def test_it_reads_events_with_every_line_ending_and_keeps_u2028_inside_data() -> None:
    assert list(parse_stream([STREAM])) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_it_reads_the_same_events_whatever_the_chunk_boundaries(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert list(parse_stream(chunks)) == EXPECTED


def test_a_crlf_split_between_two_chunks_ends_one_line_only() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"data: a\r") == ["data: a"]
    assert splitter.feed(b"\nid: 3\n") == ["id: 3"]


def test_the_retry_field_and_comments_are_read_without_an_event() -> None:
    parser = SseParser()
    assert list(parse_stream([b"retry: 1500\n: hello\n\n"], parser)) == []
    assert parser.retry_ms == 1500


def test_an_id_line_alone_moves_the_last_id_without_an_event() -> None:
    parser = SseParser()
    assert list(parse_stream([b"id: 91240\n\n"], parser)) == []
    assert parser.last_id == "91240"


def test_an_id_with_nul_is_ignored_and_a_missing_space_after_the_colon_is_fine() -> None:
    parser = SseParser()
    events = list(parse_stream([b"id:7\ndata:x\n\nid: a\x00b\ndata: y\n\n"], parser))
    assert events == [SseEvent("message", "x", "7"), SseEvent("message", "y", "7")]


def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    assert list(parse_stream([b'id: 1\ndata: {"seq":1}\n\nid: 2\ndata: {"se'])) == [
        SseEvent("message", '{"seq":1}', "1")
    ]
