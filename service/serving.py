"""gunicorn's worker and logger for this service (gunicorn.conf.py names both).

Rule: a slow client costs a socket, never a worker or a thread. The worker's main loop reads each
request's head (request line and headers) itself, without blocking, up to HEADER_TIMEOUT_SECONDS; only a
complete head is handed to a thread, whose socket reads then wait at most BODY_TIMEOUT_SECONDS. A request
running past REQUEST_TIMEOUT_SECONDS still gets its worker replaced (as with gunicorn's sync worker).
Errors gunicorn answers itself (400, 414, 431...) are OperationOutcomes; nothing gunicorn logs quotes a
request: its messages keep their wording, their text arguments are redacted.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import sys
import threading
import time
import traceback
from collections import deque
from functools import partial
from typing import Any

import orjson
from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from service.config import Config
from service.errors import Issue
from service.fhir.outcome import issue_code_for_status, operation_outcome

# A head larger than this is handed to a thread to finish (gunicorn's limits then answer 414/431).
MAX_BUFFERED_HEAD = 64 * 1024
HEAD_END = b"\r\n\r\n"

# gunicorn's parse errors → (status, reason, a description that quotes nothing from the request).
CLIENT_ERRORS: tuple[tuple[type[Exception], int, str, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long", "The request line is longer than the server accepts"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large",
     "The request headers are larger or more numerous than the server accepts"),
    (http_errors.InvalidRequestMethod, 400, "Bad Request", "The request method is not a valid HTTP method"),
    (http_errors.InvalidRequestLine, 400, "Bad Request", "The request line is not valid HTTP"),
    (http_errors.InvalidHTTPVersion, 400, "Bad Request", "The HTTP version is not supported"),
    (http_errors.InvalidHeaderName, 400, "Bad Request", "A header name is not valid HTTP"),
    (http_errors.InvalidHeader, 400, "Bad Request", "A header is not valid HTTP"),
    (http_errors.ObsoleteFolding, 400, "Bad Request", "A header is folded over lines (obsolete HTTP)"),
    (http_errors.InvalidChunkSize, 400, "Bad Request", "A chunk size of the chunked body is not valid"),
    (http_errors.ChunkMissingTerminator, 400, "Bad Request", "A chunk of the chunked body is not terminated"),
    (http_errors.InvalidChunkExtension, 400, "Bad Request", "A chunk extension of the chunked body is not valid"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented",
     "The Transfer-Encoding is not supported (chunked only)"),
    (http_errors.InvalidSchemeHeaders, 400, "Bad Request", "The forwarded scheme headers contradict each other"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "The Expect header is not supported"),
    (http_errors.InvalidProxyLine, 400, "Bad Request", "The PROXY protocol line is not valid"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "PROXY protocol requests are not accepted from here"),
)  # fmt: skip


def outcome_response(status: int, reason: str, diagnostics: str) -> bytes:
    """A complete HTTP/1.1 answer carrying an OperationOutcome; the connection closes after it."""
    body = orjson.dumps(operation_outcome((Issue(issue_code_for_status(status), diagnostics),)))
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/fhir+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class HeadConnection(TConn):  # type: ignore[misc]  # gunicorn has no type hints
    """A connection whose request head the main loop reads before a thread takes it over."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.head = bytearray()
        self.deadline = 0.0


class RequestReadingWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, but the request head is read in the main loop (no thread waits for a slow client)."""

    def init_process(self) -> None:
        config = Config.from_env()
        self.head_timeout = float(config.header_timeout_seconds)
        self.body_timeout = float(config.body_timeout_seconds)
        self.reading: deque[HeadConnection] = deque()  # ordered by deadline
        self.in_flight: dict[int, float] = {}  # thread id → when its request was handed over (monotonic)
        self.in_flight_lock = threading.Lock()
        super().init_process()  # runs the worker: keep it last

    # --- reading heads in the main loop ----------------------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if self.cfg.is_ssl:  # TLS is terminated in front of the service (README); keep gunicorn's path
            super().accept(listener)
            return
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._read_head(HeadConnection(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: HeadConnection, client: socket.socket) -> None:
        """A kept-alive connection sends its next request: read that head in the main loop too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_head(conn)
        self._on_head_bytes(conn, client)

    def _read_head(self, conn: HeadConnection) -> None:
        conn.sock.setblocking(False)
        conn.head.clear()
        conn.deadline = time.monotonic() + self.head_timeout
        self.reading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_bytes, conn))

    def _on_head_bytes(self, conn: HeadConnection, _client: socket.socket) -> None:
        try:
            data = conn.sock.recv(MAX_BUFFERED_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._stop_reading(conn)
            self._close(conn)
            return
        conn.head += data
        if HEAD_END in conn.head or len(conn.head) >= MAX_BUFFERED_HEAD:
            self._stop_reading(conn)
            conn.data_ready = True
            self.enqueue_req(conn)

    def _stop_reading(self, conn: HeadConnection) -> None:
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)

    def _close(self, conn: HeadConnection) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose head did not arrive in time (408 when part of it did)."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0].deadline <= now:
            conn = self.reading[0]
            self._stop_reading(conn)
            if conn.head:
                diagnostics = f"The request headers did not arrive within {self.head_timeout:g} s"
                with contextlib.suppress(OSError):
                    conn.sock.send(outcome_response(408, "Request Timeout", diagnostics))
            self._close(conn)

    # --- serving a request in a thread -----------------------------------------------------------

    def handle(self, conn: HeadConnection) -> bool:
        """gthread's handle for HTTP/1.1 with the buffered head given back to the parser and a read timeout."""
        if self.cfg.is_ssl:
            return bool(super().handle(conn))
        req = None
        with self.in_flight_lock:
            self.in_flight[threading.get_ident()] = time.monotonic()
        try:
            conn.sock.setblocking(True)
            conn.init()
            if conn.is_http2:  # only when HTTP/2 is configured (gunicorn.conf.py serves HTTP/1.1)
                return bool(self.handle_http2(conn))
            if conn.head:
                conn.parser.unreader.unread(bytes(conn.head))
                conn.head.clear()
            # A client that stops sending (a Content-Length larger than the body) or stops reading costs
            # this thread at most BODY_TIMEOUT_SECONDS per read: the app then answers 400 or the socket closes.
            conn.sock.settimeout(self.body_timeout)
            req = next(conn.parser)
            if not req:
                return False
            return bool(self._keepalive_after(conn, self.handle_request(req, conn)))
        except (http_errors.NoMoreData, StopIteration):
            self.log.debug("Connection closed by the client")
        except TimeoutError:
            self.log.debug("Connection closed: the client sent nothing within the read timeout")
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.warning("Socket error while serving a request: %s", type(exc).__name__)
        except Exception as exc:
            self.handle_error(req, conn.sock, conn.client, exc)
        finally:
            with self.in_flight_lock:
                self.in_flight.pop(threading.get_ident(), None)
        return False

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """An OperationOutcome instead of gunicorn's HTML page; the log names the error's type only."""
        found = next(((s, r, d) for kind, s, r, d in CLIENT_ERRORS if isinstance(exc, kind)), None)
        if found is not None:
            status, reason, diagnostics = found
            self.log.warning("Invalid request (%s): answered %s", type(exc).__name__, status)
        else:
            status, reason, diagnostics = 500, "Internal Server Error", "Internal error while serving the request"
            self.log.error("Error handling a request: %s at %s", type(exc).__name__, code_locations(exc))
        try:
            util.write_nonblock(client, outcome_response(status, reason, diagnostics))
        except Exception:
            self.log.debug("Failed to send the error answer")

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi: Any = _BodyErrorsAsOSError(self.wsgi)

    # --- the request timeout, as the sync worker has it ------------------------------------------

    def notify(self) -> None:
        """Tell the master we are alive as of the start of the oldest request still running: the master
        replaces this worker when that request exceeds REQUEST_TIMEOUT_SECONDS (gunicorn `timeout`)."""
        now = time.monotonic()
        with self.in_flight_lock:
            oldest = min(self.in_flight.values(), default=now)
        os.utime(self.tmp.fileno(), (oldest, oldest))

    def handle_abort(self, sig: int, frame: Any) -> None:
        """Timed out: exit at once (threads still serving would otherwise hold the exit up)."""
        self.alive = False
        self.cfg.worker_abort(self)
        logging.shutdown()
        sys.stderr.flush()
        os._exit(1)


class _BodyErrorsAsOSError:
    """WSGI middleware: a malformed chunked body (gunicorn's ParseException, raised while the app reads
    wsgi.input) reaches the app as an OSError, the error WSGI readers expect from a broken input stream
    (werkzeug answers it as a client error; service.api.body makes it a 400 OperationOutcome)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        environ["wsgi.input"] = _CheckedInput(environ["wsgi.input"])
        return self.app(environ, start_response)


class _CheckedInput:
    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, size: int | None = None) -> bytes:
        data: bytes = self._call(self.stream.read, size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        line: bytes = self._call(self.stream.readline, size)
        return line

    def readlines(self, hint: int | None = None) -> list[bytes]:
        lines: list[bytes] = self._call(self.stream.readlines, hint)
        return lines

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    @staticmethod
    def _call(method: Any, size: Any) -> Any:
        try:
            return method(size)
        except http_errors.ParseException as exc:
            raise OSError(f"malformed request body ({type(exc).__name__})") from None


def code_locations(exc: BaseException) -> list[str]:
    return [f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(exc.__traceback__)]


# gunicorn's own messages whose text arguments are its own (addresses, versions, worker classes, signals).
SAFE_MESSAGES = frozenset({
    "Starting gunicorn %s", "Listening at: %s (%s)", "Listening at: %s", "Using worker: %s",
    "Booting worker with pid: %s", "Worker exiting (pid: %s)", "Handling signal: %s", "Hang up: %s",
    "Shutting down: %s", "Reason: %s", "Ignoring unknown signal: %s", "Unhandled signal: %s",
    "WORKER TIMEOUT (pid:%s)", "Worker (pid:%s) exited with code %s.", "Worker (pid:%s) was sent %s!",
    "Invalid request (%s): answered %s", "Error handling a request: %s at %s",
    "Socket error while serving a request: %s",
})  # fmt: skip


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, minus request content: no access log of its own (the app writes one JSON line
    per request), text arguments of unknown messages replaced by `<redacted>`, and tracebacks reduced to
    the exception type and code locations (an exception message may quote the request)."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().critical(*redacted(msg, args), **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().error(*redacted(msg, args), **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().warning(*redacted(msg, args), **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().info(*redacted(msg, args), **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().debug(*redacted(msg, args), **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        exc = sys.exc_info()[1]
        where = f" [{type(exc).__name__} at {code_locations(exc)}]" if exc is not None else ""
        text, *rest = redacted(msg, args)
        super().error(str(text) + where.replace("%", "%%"), *rest, **kwargs)

    def log(self, lvl: Any, msg: str, *args: Any, **kwargs: Any) -> None:
        super().log(lvl, *redacted(msg, args), **kwargs)


def redacted(msg: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if not isinstance(msg, str):  # gunicorn sometimes logs an exception object as the message
        return ("<redacted %s>", type(msg).__name__)
    if msg in SAFE_MESSAGES:
        return (msg, *args)
    return (msg, *(a if isinstance(a, int | float) else "<redacted>" for a in args))
