"""The sandbox's Python REPL; this file runs *inside* the container, with only the stdlib.

The executor starts ``python3 -u -c <this source> SOCKET`` as an attached exec. That process
is a bridge: it connects to the session's REPL server on the unix socket SOCKET (in the
sandbox's tmpfs), forking the server first when none runs, and relays its stdin and stdout
to it. The server holds the variables, so they outlive the bridge and the agent kernel that
started it; one client is served at a time.

Frames in both directions: a 4-byte big-endian length, then UTF-8 JSON. The server greets
each client with ``{"ready": true, "pid": ..., "python": ...}``; a request is
``{"code", "timeout", "max_output"}``; the reply is ``{"status": "ok"|"error"|"timeout",
"output", "truncated", "result", "error_name", "error_value", "traceback"}``. Like a notebook
cell, the value of a final expression is returned as its ``repr``. The timeout is enforced
with SIGALRM; SIGINT interrupts the running code only (it is blocked between requests).
"""

from __future__ import annotations

import ast
import fcntl
import io
import json
import linecache
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from typing import Any

_LEN = struct.Struct(">I")
_MAX_REQUEST = 64 * 1024 * 1024
_MARK = b"\x00\x01openfoal-end-%d\x01\x00"


class _Timeout(BaseException):
    """Raised by SIGALRM in the running code; a BaseException so ``except Exception`` misses it."""


def _send(sock: socket.socket, obj: dict[str, Any]) -> None:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    sock.sendall(_LEN.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv(sock: socket.socket) -> dict[str, Any] | None:
    head = _recv_exact(sock, _LEN.size)
    if head is None:
        return None
    (size,) = _LEN.unpack(head)
    if size > _MAX_REQUEST:
        return None
    body = _recv_exact(sock, size)
    return None if body is None else json.loads(body.decode("utf-8"))


class _Capture:
    """Reads fds 1 and 2 (a pipe) in a thread, keeping the first ``cap`` bytes of each cell."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.cond = threading.Condition()
        self.buf = bytearray()
        self.cap = 0
        self.dropped = 0
        self.tail = b""
        self.mark = b""
        self.marked = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            data = os.read(self.fd, 65536)
            if not data:
                return
            with self.cond:
                room = self.cap + len(_MARK) + 24 - len(self.buf)
                self.buf += data[: max(room, 0)]
                self.dropped += max(len(data) - max(room, 0), 0)
                window = self.tail + data
                if self.mark and self.mark in window:
                    self.marked = True
                    self.cond.notify_all()
                self.tail = window[-64:]

    def begin(self, cap: int, n: int) -> None:
        with self.cond:
            self.buf = bytearray()
            self.dropped = 0
            self.cap = cap
            self.mark = _MARK % n
            self.marked = False

    def end(self) -> tuple[str, bool]:
        """Wait until everything the cell wrote was read; return (text, truncated)."""
        os.write(1, self.mark)
        with self.cond:
            self.cond.wait_for(lambda: self.marked, timeout=5.0)
            data = bytes(self.buf).split(self.mark, 1)[0]
            truncated = len(data) > self.cap or self.dropped > 0
            self.mark = b""
        return data[: self.cap].decode("utf-8", "replace"), truncated


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _run_cell(code: str, ns: dict[str, Any], n: int) -> str | None:
    """Execute ``code`` like a notebook cell; return the repr of a final expression."""
    name = f"<cell-{n}>"
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    tree = ast.parse(code, name, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body[-1].value)
        tree.body.pop()
    exec(compile(tree, name, "exec"), ns)
    if last is None:
        return None
    value = eval(compile(last, name, "eval"), ns)
    if value is None:
        return None
    ns["_"] = value
    return repr(value)


def _format(exc: BaseException) -> str:
    """The traceback from the cell's first frame on (the server's own frames left out)."""
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _execute(req: dict[str, Any], ns: dict[str, Any], cap: _Capture, n: int) -> dict[str, Any]:
    timeout = float(req.get("timeout") or 60.0)
    max_output = int(req.get("max_output") or 65536)
    reply: dict[str, Any] = {
        "status": "ok",
        "result": None,
        "error_name": None,
        "error_value": None,
        "traceback": "",
    }
    cap.begin(max_output, n)
    # A stale interrupt (sent after the previous cell ended) must not hit this one.
    while signal.sigtimedwait({signal.SIGINT}, 0) is not None:
        pass
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        try:
            result = _run_cell(str(req.get("code", "")), ns, n)
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            signal.setitimer(signal.ITIMER_REAL, 0)
        if result is not None:
            reply["result"] = result[:max_output]
    except _Timeout:
        reply.update(
            status="timeout",
            error_name="TimeoutError",
            error_value=f"execution exceeded {timeout:g} s",
        )
    except BaseException as exc:  # the cell's error, SystemExit and KeyboardInterrupt included
        reply.update(
            status="error",
            error_name=type(exc).__name__,
            error_value=str(exc),
            traceback=_format(exc),
        )
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a cell may have replaced or closed them
            pass
    sys.stdout, sys.stderr = _stdout, _stderr
    reply["output"], reply["truncated"] = cap.end()
    return reply


def _serve(path: str) -> None:
    """The REPL server: owns the variables; answers one client at a time."""
    global _stdout, _stderr
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    r, w = os.pipe()
    os.dup2(w, 1)
    os.dup2(w, 2)
    os.close(w)
    os.environ.pop("OPENFOAL_RUN", None)
    # SIGINT is blocked outside cells, in every thread (the capture thread inherits the mask).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGALRM, _on_alarm)
    cap = _Capture(r)
    _stdout = sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), line_buffering=True, errors="backslashreplace"
    )
    _stderr = sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), line_buffering=True, errors="backslashreplace"
    )
    sys.argv = [""]
    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv.bind(path)
    os.chmod(path, 0o600)
    srv.listen(4)
    n = 0
    while True:
        conn, _ = srv.accept()
        try:
            _send(conn, {"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]})
            while True:
                req = _recv(conn)
                if req is None:
                    break
                n += 1
                try:
                    reply = _execute(req, ns, cap, n)
                except _Timeout:  # the alarm fired in our own code, after the cell
                    reply = {
                        "status": "timeout",
                        "output": "",
                        "truncated": False,
                        "error_name": "TimeoutError",
                        "error_value": "timed out",
                    }
                _send(conn, reply)
        except (OSError, ValueError):
            pass  # the client went away or sent garbage: wait for the next one
        finally:
            conn.close()


_stdout: Any = sys.stdout
_stderr: Any = sys.stderr


def _connect(path: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return s
    except OSError:
        s.close()
        return None


def _start_server(path: str) -> None:
    """Fork the server as a daemon (new session, no inherited stdio) and return."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                # Nothing of the bridge's: not its lock (a held flock would stall every later
                # bridge), not the exec's pipes (they would keep the exec stream open).
                os.closerange(3, 65536)
                _serve(path)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _bridge(path: str) -> int:
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two bridges never start two servers
        sock = _connect(path)
        if sock is None:
            _start_server(path)
            deadline = time.monotonic() + 10.0
            while sock is None and time.monotonic() < deadline:
                time.sleep(0.005)
                sock = _connect(path)
        if sock is None:
            os.write(2, b"openfoal: the Python REPL server did not start\n")
            return 1
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    open_in = True
    while True:
        ready, _, _ = select.select([sock, stdin] if open_in else [sock], [], [])
        if sock in ready:
            data = sock.recv(65536)
            if not data:
                return 0
            view = memoryview(data)
            while view:
                view = view[os.write(stdout, view) :]
        if open_in and stdin in ready:
            data = os.read(stdin, 65536)
            if data:
                sock.sendall(data)
            else:
                open_in = False
                sock.shutdown(socket.SHUT_WR)


if __name__ == "__main__":
    sys.exit(_bridge(sys.argv[1]))
