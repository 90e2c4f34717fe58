"""Real loopback servers that misbehave the way model endpoints do, for the guard's fault battery.

Each `FaultServer` is a raw asyncio TCP server on 127.0.0.1:0, run on its own thread and event loop so
that synchronous tests (an httpx client against a `guard serve` subprocess) can use it. It speaks just
enough HTTP/1.1 to read a request (Content-Length or chunked body, keep-alive) and then does what its
`Behaviour` says: answer an OpenAI-shaped chat completion, answer slowly, never answer, reset the
connection mid-stream, answer 5xx, stream garbage SSE, send oversized headers, or replay a scripted byte
stream in given chunks. It records every request it read (method, target, headers, body), so tests can
count what reached the upstream.

`TcpRelay` forwards to a real service (a database) until `cut()`, which makes it unreachable.
`closed_port()` gives a loopback port with nothing listening (connection refused).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from types import TracebackType

_MAX_HEAD = 256 * 1024


class Mode(str, Enum):
    OK = "ok"  # chat completion echoing the last message (JSON, or SSE if the request asks to stream)
    SLOW = "slow"  # like OK, after `delay_s`
    BLACKHOLE = "blackhole"  # read the request, never answer
    RESET = "reset"  # 200 and part of the answer (SSE events, or half a JSON body) carrying `marker`, then RST
    STATUS = "status"  # answer `status` with a JSON body that carries `marker` and an internal detail
    GARBAGE_SSE = "garbage_sse"  # 200 text/event-stream whose events are not valid JSON (with `marker`)
    HUGE_HEADERS = "huge_headers"  # a response head of `header_bytes` bytes
    SCRIPTED = "scripted"  # 200 with `content_type`, then `chunks` written one by one, then close
    ENDLESS_SSE = "endless_sse"  # a chat stream of `total_bytes` (events of ~4 KiB of benign text), as fast as read


@dataclass(frozen=True, slots=True)
class Behaviour:
    mode: Mode
    delay_s: float = 0.0
    status: int = 500
    marker: str = "UPSTREAM-INTERNAL-7f3a"
    header_bytes: int = 128 * 1024
    chunks: tuple[bytes, ...] = ()
    content_type: str = "text/event-stream"
    chunk_pause_s: float = 0.005
    total_bytes: int = 0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def json(self) -> object:
        return json.loads(self.body)


def closed_port() -> int:
    """A loopback port nothing listens on: bind, read the port, close."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def chat_completion(content: str, model: str = "fake") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def sse_event(content: str | None, finish: str | None = None) -> bytes:
    delta: dict[str, str] = {} if content is None else {"content": content}
    payload = {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def sse_stream(pieces: Sequence[str]) -> bytes:
    """A complete OpenAI-shaped chat stream: role preamble, one event per piece, finish, [DONE]."""
    role = sse_event(None).replace(b'"delta": {}', b'"delta": {"role": "assistant"}')
    return role + b"".join(sse_event(p) for p in pieces) + sse_event(None, "stop") + b"data: [DONE]\n\n"


def _last_message(body: bytes) -> tuple[str, bool]:
    try:
        data = json.loads(body)
        messages = data.get("messages") or [{"content": data.get("prompt", "")}]
        content = messages[-1].get("content", "")
        return (content if isinstance(content, str) else json.dumps(content)), bool(data.get("stream"))
    except (ValueError, AttributeError, IndexError, TypeError):
        return "", False


class FaultServer:
    """One misbehaving upstream on 127.0.0.1:<port>; use as a context manager."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"fault-{behaviour.mode.value}", daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def recorded(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault server did not start")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=_MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                keep_open = await self._answer(request, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return
        except asyncio.CancelledError:
            return  # the server is stopping: asyncio.run cancels handlers still waiting on a client
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _answer(self, request: RecordedRequest, writer: asyncio.StreamWriter) -> bool:
        b = self.behaviour
        content, stream = _last_message(request.body)
        if b.mode is Mode.BLACKHOLE:
            assert self._stop is not None
            await self._stop.wait()
            return False
        if b.mode in (Mode.OK, Mode.SLOW):
            if b.mode is Mode.SLOW:
                await asyncio.sleep(b.delay_s)
            if stream:
                words = [w + " " for w in content.split(" ")] if content else ["ok"]
                await _send(writer, 200, "text/event-stream", sse_stream(words), close=True)
                return False
            await _send(writer, 200, "application/json", chat_completion(content))
            return True
        if b.mode is Mode.STATUS:
            body = json.dumps(
                {"error": {"message": f"model crashed near {b.marker}", "trace": "Traceback: KeyError"}}
            ).encode()
            await _send(writer, b.status, "application/json", body)
            return True
        if b.mode is Mode.RESET and not stream:
            # A plain answer cut short: the head promises more body than ever arrives.
            partial = chat_completion(f"Hello {b.marker} and more")
            writer.write(_head(200, "application/json", len(partial)) + partial[: len(partial) // 2])
            await writer.drain()
            await asyncio.sleep(b.delay_s or 0.05)
            _reset(writer)
            return False
        if b.mode is Mode.RESET:
            # Chunked, as model servers stream: a reset before the last chunk is a detectable truncation.
            head = _head(200, "text/event-stream", None).replace(
                b"connection: close", b"transfer-encoding: chunked"
            )
            events = sse_event("Hello ") + sse_event(f"{b.marker} ") + sse_event("and more")
            writer.write(head + f"{len(events):x}\r\n".encode() + events + b"\r\n")
            await writer.drain()
            await asyncio.sleep(b.delay_s or 0.05)
            _reset(writer)
            return False
        if b.mode is Mode.GARBAGE_SSE:
            writer.write(_head(200, "text/event-stream", None))
            garbage = [
                b"data: {not json " + b.marker.encode() + b"\n\n",
                b"data: \xff\xfe\xfd " + b.marker.encode() + b"\n\n",
                b'data: {"choices": "' + b.marker.encode() + b'"}\n\n',
                b"event: \x00\x01\x02\n" + b"data: " + b.marker.encode() + b"\n\n",
            ]
            for piece in garbage:
                writer.write(piece)
                await writer.drain()
            writer.close()
            return False
        if b.mode is Mode.HUGE_HEADERS:
            filler = b"x" * b.header_bytes
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-filler: " + filler + b"\r\n"
                + b"content-length: 2\r\n\r\n{}"
            )
            await writer.drain()
            return True
        if b.mode is Mode.SCRIPTED:
            writer.write(_head(200, b.content_type, None))
            await writer.drain()
            for chunk in b.chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(b.chunk_pause_s)
            writer.close()
            return False
        if b.mode is Mode.ENDLESS_SSE:
            # Generated as it is sent: a 400 MB answer never sits in this process's memory.
            writer.write(_head(200, "text/event-stream", None))
            writer.write(sse_event(None).replace(b'"delta": {}', b'"delta": {"role": "assistant"}'))
            event = sse_event("The quarterly figures are summarised below in plain words. " * 68)
            sent = 0
            while sent < b.total_bytes:
                writer.write(event)
                sent += len(event)
                await writer.drain()
            writer.write(sse_event(None, "stop") + b"data: [DONE]\n\n")
            await writer.drain()
            writer.close()
            return False
        raise ValueError(f"unknown mode {b.mode}")


def _head(status: int, content_type: str, length: int | None, close: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-type: {content_type}"]
    if length is not None:
        lines.append(f"content-length: {length}")
    if close or length is None:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send(writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes, close: bool = False) -> None:
    writer.write(_head(status, content_type, len(body), close=close) + body)
    await writer.drain()
    if close:
        writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with RST rather than FIN: linger on, timeout 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers.append((key.strip().lower(), value.strip()))
    fields = dict(headers)
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        data = bytes(body)
    else:
        data = await reader.readexactly(int(fields.get("content-length", "0")))
    return RecordedRequest(method, target, tuple(headers), data)



class TcpRelay:
    """A loopback TCP relay to `target` (host, port) that a test can cut: `cut()` resets every relayed
    connection and stops listening, so the service behind it becomes unreachable (connection refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._cut: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="tcp-relay", daemon=True)
        self.port = 0

    def __enter__(self) -> TcpRelay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("relay did not start")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def cut(self) -> None:
        done = threading.Event()
        cut_event = self._cut
        if self._loop is None or cut_event is None:
            raise RuntimeError("relay not started")

        def cut_now() -> None:
            cut_event.set()
            done.set()

        self._loop.call_soon_threadsafe(cut_now)
        done.wait(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._cut = asyncio.Event(), asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        stop_task = asyncio.ensure_future(self._stop.wait())
        cut_task = asyncio.ensure_future(self._cut.wait())
        await asyncio.wait({stop_task, cut_task}, return_when=asyncio.FIRST_COMPLETED)
        server.close()
        for writer in list(self._writers):
            _reset(writer)
        await server.wait_closed()
        await self._stop.wait()
        cut_task.cancel()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writer)
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if not dst.transport.is_closing():
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))
