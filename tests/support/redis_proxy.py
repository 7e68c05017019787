"""A TCP proxy between a greenq process and Redis that understands just enough RESP to inject faults.

Every client connection gets its own upstream connection. Commands from the client are parsed (RESP arrays
of bulk strings, which is all redis-py sends) and counted by name; a :class:`Fault` can then act on the
n-th command of a kind, across all connections:

* ``drop``: forward the command to Redis, wait until Redis has executed it (a PING sent behind it is
  answered), then close the client's connection without its reply: the lost-reply case.
* ``hold``: forward the command and withhold its reply until the test releases it (``Fault.release``), so
  a test can, e.g., kill the process while its transaction is committed but unacknowledged; then close
  the connection without the reply.
* ``pause``: like ``hold``, but on release the withheld reply is delivered and the connection goes on: a
  round trip made as slow as the test wants, with the command already executed by Redis.
* ``delay``: wait ``seconds`` before forwarding the command.
* ``cut``: close the client's connection instead of forwarding the command (the commands before it on that
  connection went on): the command never reached Redis, and the client cannot tell.

``refuse`` makes new connections close at once (a Redis that is unreachable).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["drop", "hold", "pause", "delay", "cut"]
Command = list[bytes]
PING = b"*1\r\n$4\r\nPING\r\n"


@dataclass
class Fault:
    """Act on the ``nth`` (1-based) command named ``command`` (upper case) that ``matches``."""

    command: str
    action: Action
    nth: int = 1
    seconds: float = 0.0
    matches: Callable[[Command], bool] = lambda _: True
    seen: int = 0
    fired: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wants(self, command: Command) -> bool:
        if command[0].upper().decode() != self.command or not self.matches(command):
            return False
        self.seen += 1
        return self.seen == self.nth

    def release(self) -> None:
        self.released.set()


class RespReader:
    """Splits a byte stream into complete RESP commands, keeping each command's raw bytes."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[Command, bytes]]:
        self._buffer += data
        commands: list[tuple[Command, bytes]] = []
        while (parsed := self._one()) is not None:
            commands.append(parsed)
        return commands

    def _one(self) -> tuple[Command, bytes] | None:
        buffer = self._buffer
        if not buffer.startswith(b"*"):
            end = buffer.find(b"\r\n")  # inline command (redis-cli style)
            if end < 0:
                return None
            raw, self._buffer = buffer[: end + 2], buffer[end + 2 :]
            return raw.split(), raw
        end = buffer.find(b"\r\n")
        if end < 0:
            return None
        count, position, parts = int(buffer[1:end]), end + 2, []
        for _ in range(count):
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            length = int(buffer[position + 1 : line_end])
            start = line_end + 2
            if len(buffer) < start + length + 2:
                return None
            parts.append(buffer[start : start + length])
            position = start + length + 2
        raw, self._buffer = buffer[:position], buffer[position:]
        return parts, raw


class RedisProxy:
    """Listens on 127.0.0.1:<port> and relays to ``upstream``; counts commands, injects faults."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.counts: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.refusing = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="redis-proxy", daemon=True).start()

    def url(self, password: str | None = None, db: int = 0) -> str:
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._sockets):
            _close(sock)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            try:
                server = socket.create_connection(self._upstream)
            except OSError:
                _close(client)
                continue
            for sock in (client, server):  # relay each write at once (no Nagle delay on small commands)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            _Relay(self, client, server).start()

    def _fault_for(self, command: Command) -> Fault | None:
        with self._lock:
            self.counts[command[0].upper().decode()] += 1
            for fault in self.faults:
                if fault.wants(command):
                    return fault
        return None


class _Relay:
    """One client connection and its upstream twin."""

    def __init__(self, proxy: RedisProxy, client: socket.socket, server: socket.socket) -> None:
        self._proxy, self._client, self._server = proxy, client, server
        self._muted = threading.Event()  # replies are withheld from the client (drop / hold / pause)
        self._pong_wanted = threading.Event()
        self._pong_seen = threading.Event()
        self._withheld = bytearray()
        self._tail = b""  # the last bytes of withheld replies: where the PING's answer shows
        self._lock = threading.Lock()  # the withheld replies change hands only under it

    def start(self) -> None:
        threading.Thread(target=self._upstream_loop, daemon=True).start()
        threading.Thread(target=self._replies_loop, daemon=True).start()

    def _upstream_loop(self) -> None:
        reader = RespReader()
        try:
            while data := self._client.recv(65536):
                passing = b""  # commands without a fault go on together, as the client wrote them
                for command, raw in reader.feed(data):
                    fault = self._proxy._fault_for(command)
                    if fault is None:
                        passing += raw
                        continue
                    self._server.sendall(passing)
                    passing = b""
                    if not self._inject(fault, raw):
                        return
                if passing:
                    self._server.sendall(passing)
        except OSError:
            pass
        self._shutdown()

    def _inject(self, fault: Fault, raw: bytes) -> bool:
        """Apply ``fault`` to the command ``raw``; False when the connection is finished."""
        if fault.action == "cut":
            fault.fired.set()
            self._shutdown()
            return False
        if fault.action == "delay":
            fault.fired.set()
            threading.Event().wait(fault.seconds)
            self._server.sendall(raw)
            return True
        self._muted.set()
        self._pong_wanted.set()
        self._server.sendall(raw + PING)  # Redis answers the PING only after executing the command
        self._pong_seen.wait(30)
        fault.fired.set()
        if fault.action == "pause":
            fault.released.wait(120)
            self._deliver_withheld()
            return True
        if fault.action == "hold":
            fault.released.wait(120)
        self._shutdown()
        return False

    def _deliver_withheld(self) -> None:
        """Send the replies withheld so far, without the answer to the proxy's own PING, and stop muting."""
        with self._lock:
            withheld, pong = bytes(self._withheld), b"+PONG\r\n"
            assert withheld.endswith(pong), withheld[-40:]
            self._client.sendall(withheld.removesuffix(pong))
            self._withheld.clear()
            self._tail = b""
            self._pong_wanted.clear()
            self._pong_seen.clear()
            self._muted.clear()

    def _replies_loop(self) -> None:
        try:
            while data := self._server.recv(65536):
                with self._lock:
                    if not self._muted.is_set():
                        self._client.sendall(data)
                        continue
                    self._withheld += data
                    self._tail = (self._tail + data)[-7:]
                if self._pong_wanted.is_set() and self._tail.endswith(b"+PONG\r\n"):
                    self._pong_seen.set()
        except OSError:
            pass
        self._shutdown()

    def _shutdown(self) -> None:
        _close(self._client)
        _close(self._server)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
