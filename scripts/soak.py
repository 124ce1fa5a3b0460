#!/usr/bin/env python3
"""Soak test of deribit-gateway: connection churn of every kind, then a leak check.

For each event loop asked for, the script starts `deribit-sim` and `deribit-gateway` on
ephemeral loopback ports, warms the gateway up, records a baseline of its resources
(RSS, open file descriptors, threads, read from /proc/<pid>), runs a mix of WebSocket and
HTTP churn for --duration seconds next to a steady set of idle WebSocket clients, stops,
lets the gateway settle and compares what it holds then with the baseline.

    scripts/soak.py --duration 60 --event-loop both --bin .build-soak/release

Exit status: 0 when every run passed; 1 when a run failed (fds after churn above the
baseline by more than --fd-tolerance, RSS after above baseline * 1.25 + 8 MiB, or the
gateway died; with --strict also any unexpected outcome); 2 for a usage or set-up error.

Python 3.11; the only third-party package is websockets 15. Every process started here
is stopped by pid in a finally block; every wait has a deadline; all traffic is to
127.0.0.1; every loop is bounded in time and count. docs/SOAK.md explains the rest.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

try:
    import websockets
    from websockets.asyncio.client import connect as ws_connect
except ImportError:  # pragma: no cover
    sys.exit("soak.py needs websockets==15.0.1 (e.g. /work/main/.venv/bin/python)")

HOST = "127.0.0.1"
CLIENTS = [("soak-a", "soak-a-secret", "read"), ("soak-b", "soak-b-secret", "trade")]
# Instruments the idle clients hold (churn subscriptions to them are confirmed by the gateway
# at once) and one that only churn clients use (its upstream subscription comes and goes).
HELD_INSTRUMENTS = ["BTC-PERPETUAL", "ETH-PERPETUAL"]
CHURN_ONLY_INSTRUMENT = "BTC-25DEC26"
OP_TIMEOUT = 15.0          # one churn operation, end to end
IO_TIMEOUT = 5.0           # one read/answer inside an operation
SERVER_CLOSE_TIMEOUT = 8.0  # server closes after Connection: close / HTTP/1.0 / 400 (5 s flush + 2 s drain bound)
SETTLE_TIMEOUT = 30.0      # after churn: wait at most this long for fds to come back
BIG_CREDITS = 10_000_000   # credits of the sim and the gateway's model: the soak is not about rate limits


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- processes

class Child:
    """A child process whose stdout/stderr go to files; stopped by pid."""

    def __init__(self, name: str, argv: list[str], workdir: str):
        self.name = name
        self.out_path = os.path.join(workdir, f"{name}.stdout")
        self.err_path = os.path.join(workdir, f"{name}.stderr")
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err)
        self.pid = self.proc.pid
        self.exit_status: int | None = None

    def wait_for_port(self, prefix: str, timeout: float) -> int:
        """Polls stdout for `PREFIX HOST:PORT` until the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.out_path, "rb") as f:
                for line in f.read().decode(errors="replace").splitlines():
                    if line.startswith(prefix):
                        return int(line.rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before listening; see {self.err_path}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no '{prefix}' line within {timeout} s; see {self.err_path}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    log(f"{self.name} (pid {self.pid}) did not stop within {timeout} s: SIGKILL")
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.exit_status = self.proc.returncode
        finally:
            self._out.close()
            self._err.close()
        return self.exit_status


# ---------------------------------------------------------------------------- /proc sampling

@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    threads: int


def sample_proc(pid: int) -> Sample | None:
    try:
        rss = threads = None
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if rss is None or threads is None:  # a zombie has no VmRSS
        return None
    return Sample(time.monotonic(), rss, fds, threads)


# ---------------------------------------------------------------------------- bookkeeping

@dataclass
class Tally:
    ops: collections.Counter = field(default_factory=collections.Counter)
    unexpected: collections.Counter = field(default_factory=collections.Counter)
    examples: dict = field(default_factory=dict)
    counting: bool = True  # False during warm-up: those operations are not reported

    def done(self, kind: str) -> None:
        if self.counting:
            self.ops[kind] += 1

    def odd(self, what: str, detail: str = "") -> None:
        self.unexpected[what] += 1
        if what not in self.examples and detail:
            self.examples[what] = detail[:300]


class Unexpected(Exception):
    """An outcome the gateway should not have produced; the message is the tally key."""

    def __init__(self, key: str, detail: str = ""):
        super().__init__(key)
        self.key = key
        self.detail = detail


# ---------------------------------------------------------------------------- raw HTTP

async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IO_TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise Unexpected("http: bad status line", lines[0])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), IO_TIMEOUT)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        for _ in range(10_000):
            size = int((await asyncio.wait_for(reader.readline(), IO_TIMEOUT)).split(b";")[0], 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), IO_TIMEOUT)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await asyncio.wait_for(reader.read(), SERVER_CLOSE_TIMEOUT)
    return status, headers, body


async def expect_server_close(reader: asyncio.StreamReader, what: str) -> None:
    try:
        rest = await asyncio.wait_for(reader.read(65536), SERVER_CLOSE_TIMEOUT)
    except asyncio.TimeoutError:
        raise Unexpected(f"{what}: server did not close the connection", "") from None
    except ConnectionResetError:
        return
    if rest:
        raise Unexpected(f"{what}: bytes after the response", rest[:100].decode(errors="replace"))


async def close_writer(writer: asyncio.StreamWriter, abort: bool = False) -> None:
    if abort:
        writer.transport.abort()
        return
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), IO_TIMEOUT)
    except (asyncio.TimeoutError, ConnectionError):
        writer.transport.abort()


def request_bytes(method: str, path: str, version: str, close: bool, body: bytes = b"", extra: str = "") -> bytes:
    h = f"{method} {path} {version}\r\nHost: {HOST}\r\n{extra}"
    if close:
        h += "Connection: close\r\n"
    if body:
        h += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (h + "\r\n").encode() + body


def check_probe(kind: str, status: int, body: bytes) -> None:
    if status != 200:
        raise Unexpected(f"{kind}: status {status}", body[:200].decode(errors="replace"))
    if kind == "http_metrics":
        if b"deribit_gateway_clients_connected" not in body:
            raise Unexpected(f"{kind}: metric missing", body[:200].decode(errors="replace"))
        return
    try:
        doc = json.loads(body)
    except ValueError:
        raise Unexpected(f"{kind}: body not JSON", body[:200].decode(errors="replace")) from None
    if kind == "http_health":
        if doc.get("status") != "ok":
            raise Unexpected(f"{kind}: not ok", body[:200].decode(errors="replace"))
    elif "result" not in doc:
        raise Unexpected(f"{kind}: no result", body[:200].decode(errors="replace"))


PROBES = {
    "http_health": ("GET", "/health", b""),
    "http_metrics": ("GET", "/metrics", b""),
    "http_get_time": ("GET", "/api/v2/public/get_time", b""),
    "http_post_rpc": ("POST", "/api/v2", b'{"jsonrpc":"2.0","id":7,"method":"public/get_time","params":{}}'),
}
PROBE_VARIANTS = ["keepalive", "close", "http10"]


async def http_probe(port: int, kind: str, variant: str) -> None:
    method, path, body = PROBES[kind]
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)
    try:
        if variant == "keepalive":
            # Two requests on one HTTP/1.1 connection, then the client closes it.
            for _ in range(2):
                writer.write(request_bytes(method, path, "HTTP/1.1", False, body))
                status, headers, resp = await read_response(reader)
                check_probe(kind, status, resp)
                if headers.get("connection", "").lower() == "close":
                    raise Unexpected(f"{kind}/keepalive: server closed a keep-alive connection", "")
        else:
            version = "HTTP/1.0" if variant == "http10" else "HTTP/1.1"
            writer.write(request_bytes(method, path, version, variant == "close", body))
            status, _, resp = await read_response(reader)
            check_probe(kind, status, resp)
            await expect_server_close(reader, f"{kind}/{variant}")
    finally:
        await close_writer(writer)


async def http_garbage(port: int) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)
    try:
        junk = random.choice([
            b"GARBAGE\r\n\r\n",
            b"\x00\x01\x02 / HTTP/1.1\r\n\r\n",
            b"GET /health HTTP/9.9\r\n\r\n",
            b"GET /health HTTP/1.1\r\nNo-Colon-Here\r\n\r\n",
            b"GET / HTTP/1.1 extra tokens\r\n\r\n",
        ])
        writer.write(junk)
        status, _, resp = await read_response(reader)
        if status not in (400, 505):
            raise Unexpected(f"http_garbage: status {status}", resp[:200].decode(errors="replace"))
        await expect_server_close(reader, "http_garbage")
    finally:
        await close_writer(writer)


async def http_bad_upgrade(port: int) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)
    try:
        writer.write(request_bytes("GET", "/ws/api/v2", "HTTP/1.1", False, extra=(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n")))
        status, _, resp = await read_response(reader)
        if status not in (400, 426):
            raise Unexpected(f"http_bad_upgrade: status {status}", resp[:200].decode(errors="replace"))
    finally:
        await close_writer(writer)


async def tcp_silent(port: int) -> None:
    """Connects and closes without a byte (a port scanner, a health checker)."""
    _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)
    await close_writer(writer, abort=random.random() < 0.5)


async def http_partial_head(port: int) -> None:
    """Half a request head, then the client goes away (FIN or RST)."""
    _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
    await writer.drain()
    await asyncio.sleep(0.05)
    abort = random.random() < 0.5
    if abort:
        set_linger_rst(writer.transport)
    await close_writer(writer, abort=abort)


# ---------------------------------------------------------------------------- WebSocket

def set_linger_rst(transport) -> None:
    """SO_LINGER {on, 0}: close() then sends RST instead of FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def masked_frame(opcode: int, payload: bytes, declared_len: int | None = None) -> bytes:
    """A client frame (masked). `declared_len` > len(payload) makes a truncated frame."""
    n = len(payload) if declared_len is None else declared_len
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RPC:
    """JSON-RPC over a websockets connection; notifications are counted, not kept."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.notifications = 0

    async def call(self, method: str, params: dict, timeout: float = IO_TIMEOUT) -> dict:
        self.next_id += 1
        rid = self.next_id
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if msg.get("id") == rid:
                if "error" in msg:
                    raise Unexpected(f"ws: {method} error {msg['error'].get('code')}", json.dumps(msg)[:300])
                return msg["result"]
            if msg.get("method") == "subscription":
                self.notifications += 1
        raise Unexpected(f"ws: no answer to {method}", "")

    async def wait_notification(self, timeout: float = IO_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(100_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), left))
            if msg.get("method") == "subscription":
                self.notifications += 1
                return
        raise Unexpected("ws: no notification after subscribe", "")


async def ws_open(port: int, ping_interval: float | None = None):
    return await ws_connect(
        f"ws://{HOST}:{port}/ws/api/v2", open_timeout=IO_TIMEOUT, close_timeout=IO_TIMEOUT,
        ping_interval=ping_interval, ping_timeout=IO_TIMEOUT if ping_interval else None,
        compression=None, proxy=None, max_size=16 * 1024 * 1024, max_queue=64)


async def ws_session(port: int, index: int, instrument: str, ping_interval: float | None = None):
    """Connects, authenticates as one of CLIENTS and subscribes a ticker and a book channel."""
    ws = await ws_open(port, ping_interval)
    try:
        rpc = RPC(ws)
        name, secret, _ = CLIENTS[index % len(CLIENTS)]
        auth = await rpc.call("public/auth", {"grant_type": "client_credentials", "client_id": name, "client_secret": secret})
        if "access_token" not in auth:
            raise Unexpected("ws: auth without access_token", json.dumps(auth)[:200])
        channels = [f"ticker.{instrument}.100ms", f"book.{instrument}.100ms"]
        got = await rpc.call("public/subscribe", {"channels": channels}, timeout=IO_TIMEOUT * 2)
        if sorted(got) != sorted(channels):
            raise Unexpected("ws: subscribe result differs", json.dumps(got)[:200])
        return ws, rpc
    except BaseException:
        ws.transport.abort()
        raise


async def expect_close_code(ws, code: int, kind: str) -> None:
    try:
        for _ in range(100_000):
            await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
    except websockets.ConnectionClosed:
        pass
    except asyncio.TimeoutError:
        raise Unexpected(f"{kind}: not closed by the gateway", "") from None
    try:
        await asyncio.wait_for(ws.wait_closed(), IO_TIMEOUT)
    except asyncio.TimeoutError:
        raise Unexpected(f"{kind}: close handshake did not finish", "") from None
    if ws.close_code != code:
        raise Unexpected(f"{kind}: close code {ws.close_code}, expected {code}", str(ws.close_reason))


WS_KINDS = ["ws_clean_close", "ws_abort", "ws_half_frame", "ws_invalid_utf8", "ws_binary"]


async def ws_churn(port: int, kind: str, index: int) -> None:
    instrument = CHURN_ONLY_INSTRUMENT if index % 4 == 3 else HELD_INSTRUMENTS[index % len(HELD_INSTRUMENTS)]
    ws, rpc = await ws_session(port, index, instrument)
    try:
        await rpc.wait_notification()
        # One in four stays a little (reading notifications) so that connections overlap.
        hold_until = time.monotonic() + (random.random() * 0.5 if index % 4 == 1 else 0.0)
        for _ in range(10_000):
            left = hold_until - time.monotonic()
            if left <= 0:
                break
            try:
                await asyncio.wait_for(ws.recv(), left)
            except asyncio.TimeoutError:
                break
        if kind == "ws_clean_close":
            await asyncio.wait_for(ws.close(1000, "bye"), IO_TIMEOUT * 2)
            if ws.close_code not in (1000,):
                raise Unexpected(f"{kind}: gateway answered close with {ws.close_code}", "")
        elif kind == "ws_abort":
            set_linger_rst(ws.transport)
            ws.transport.abort()
        elif kind == "ws_half_frame":
            # A frame header announcing 200 bytes, 20 of them, then FIN or RST.
            ws.transport.write(masked_frame(0x1, b'{"jsonrpc":"2.0","i', declared_len=200))
            await asyncio.sleep(0.05)
            if index % 2:
                set_linger_rst(ws.transport)
                ws.transport.abort()
            else:
                ws.transport.close()
        elif kind == "ws_invalid_utf8":
            await ws.send(b'{"jsonrpc":"2.0","id":1,"method":"public/test","params":{"x":"\xc3\x28"}}', text=True)
            await expect_close_code(ws, 1007, kind)
        elif kind == "ws_binary":
            await ws.send(b"\x00\x01binary")
            await expect_close_code(ws, 1003, kind)
        else:
            raise AssertionError(kind)
    finally:
        if ws.transport is not None and not ws.transport.is_closing():
            ws.transport.abort()


class IdleClient:
    """Stays connected and subscribed, reading every notification, until told to go."""

    def __init__(self, port: int, index: int):
        self.port = port
        self.index = index
        self.ws = None
        self.rpc: RPC | None = None
        self.task: asyncio.Task | None = None
        self.last_notification = 0.0
        self.closed_early: str | None = None

    async def start(self) -> None:
        self.ws, self.rpc = await ws_session(self.port, self.index, HELD_INSTRUMENTS[self.index % len(HELD_INSTRUMENTS)], ping_interval=20)
        self.last_notification = time.monotonic()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if '"subscription"' in raw:
                    self.rpc.notifications += 1
                    self.last_notification = time.monotonic()
        except websockets.ConnectionClosed:
            pass
        self.closed_early = f"closed with {self.ws.close_code} {self.ws.close_reason!r}"

    async def stop(self) -> None:
        if self.ws is None or (self.task is not None and self.task.done()):
            return  # never started, or already gone (reported by the caller)
        try:
            await asyncio.wait_for(self.ws.close(1000, "soak done"), IO_TIMEOUT * 2)
        except (asyncio.TimeoutError, ConnectionError):
            self.ws.transport.abort()
        if self.task is not None:
            self.task.cancel()
            try:
                await asyncio.wait_for(self.task, IO_TIMEOUT)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                pass


# ---------------------------------------------------------------------------- the run

@dataclass
class RunResult:
    event_loop: str
    duration: float
    baseline: Sample | None = None
    peak: Sample | None = None        # each field is its own maximum
    after: Sample | None = None
    ops: dict = field(default_factory=dict)
    unexpected: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)
    died: str | None = None
    exit_status: int | None = None
    health_end: int | None = None
    idle_notifications: int = 0
    settle_s: float = 0.0
    failures: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    op_rate: float = 0.0
    workdir: str = ""
    gateway_log: list = field(default_factory=list)


OP_MIX = (  # (kind, weight)
    [(k, 3) for k in WS_KINDS]
    + [(k, 2) for k in PROBES]
    + [("http_garbage", 2), ("http_bad_upgrade", 2), ("tcp_silent", 1), ("http_partial_head", 1)]
)


async def one_op(port: int, kind: str, n: int, tally: Tally) -> None:
    label = kind
    try:
        if kind in WS_KINDS:
            await asyncio.wait_for(ws_churn(port, kind, n), OP_TIMEOUT)
        elif kind in PROBES:
            variant = PROBE_VARIANTS[n % len(PROBE_VARIANTS)]
            label = f"{kind}/{variant}"
            await asyncio.wait_for(http_probe(port, kind, variant), OP_TIMEOUT)
        elif kind == "http_garbage":
            await asyncio.wait_for(http_garbage(port), OP_TIMEOUT)
        elif kind == "http_bad_upgrade":
            await asyncio.wait_for(http_bad_upgrade(port), OP_TIMEOUT)
        elif kind == "tcp_silent":
            await asyncio.wait_for(tcp_silent(port), OP_TIMEOUT)
        elif kind == "http_partial_head":
            await asyncio.wait_for(http_partial_head(port), OP_TIMEOUT)
        tally.done(label)
    except Unexpected as e:
        tally.done(label)
        tally.odd(e.key, e.detail)
    except asyncio.TimeoutError:
        tally.done(label)
        tally.odd(f"{label}: no answer within {OP_TIMEOUT:.0f} s")
    except (OSError, websockets.WebSocketException, asyncio.IncompleteReadError, ValueError) as e:
        tally.done(label)
        tally.odd(f"{label}: {type(e).__name__}", str(e))


async def churn(port: int, seconds: float, workers: int, tally: Tally, gateway_alive, only: list[str]) -> int:
    """Runs the mix on `workers` concurrent workers for `seconds`. Returns operations done."""
    kinds = [k for k, w in OP_MIX for _ in range(w) if not only or k in only]
    end = time.monotonic() + seconds
    max_ops = int(seconds * 2000) + 100  # a bound on the count, far above what the loop reaches
    counter = 0

    async def worker(w: int) -> None:
        nonlocal counter
        rng = random.Random(w)
        for _ in range(max_ops):
            if time.monotonic() >= end or counter >= max_ops or not gateway_alive():
                return
            counter += 1
            await one_op(port, rng.choice(kinds), counter, tally)

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return counter


async def http_get_json(port: int, path: str) -> tuple[int, dict]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)
    try:
        writer.write(request_bytes("GET", path, "HTTP/1.1", True))
        status, _, body = await read_response(reader)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, {}
    finally:
        await close_writer(writer)


async def wait_health(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = await http_get_json(port, "/health")
            if status == 200:
                return True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, Unexpected):
            pass
        await asyncio.sleep(0.2)
    return False


async def soak(args, gw: Child, port: int, event_loop: str) -> RunResult:
    res = RunResult(event_loop, args.duration)
    tally = Tally()
    samples: list[Sample] = []
    phase = {"name": "start"}
    peak_window: list[Sample] = []

    def record() -> Sample | None:
        s = sample_proc(gw.pid) if gw.alive() else None
        if s is None:
            if res.died is None:
                gw.proc.poll()
                res.died = f"gateway gone during {phase['name']} (exit status {gw.proc.returncode})"
            return None
        samples.append(s)
        if phase["name"] == "churn":
            peak_window.append(s)
        return s

    async def sampler() -> None:
        for _ in range(int((args.duration + args.warmup + 600) * 2)):  # bounded; cancelled at the end
            record()
            await asyncio.sleep(1.0)

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _l, ctx: tally.odd("asyncio: unhandled " + type(ctx.get("exception")).__name__, str(ctx.get("message"))))
    sampler_task = asyncio.create_task(sampler())
    try:
        if not await wait_health(port, 30):
            res.failures.append("gateway /health never 200 at start")
            return res

        # Warm-up: a round of everything (idle clients included), not counted.
        phase["name"] = "warm-up"
        tally.counting = False
        idle = [IdleClient(port, i) for i in range(args.idle)]
        for e in await asyncio.gather(*(c.start() for c in idle), return_exceptions=True):
            if isinstance(e, BaseException):
                tally.odd(f"idle client (warm-up): {type(e).__name__}", str(e))
        await churn(port, args.warmup, args.workers, tally, gw.alive, args.only)
        await asyncio.gather(*(c.stop() for c in idle))
        # Warm-up outcomes that went wrong still count as unexpected.
        res.baseline = await settle(port, gw, record, None, args.fd_tolerance, tally.odd)
        if res.baseline is None:
            return res  # the gateway died: res.died says when
        log(f"{event_loop}: baseline rss {res.baseline.rss_kib / 1024:.1f} MiB, fds {res.baseline.fds}, threads {res.baseline.threads}")

        # Churn next to idle clients.
        phase["name"] = "churn"
        tally.counting = True
        idle = [IdleClient(port, i) for i in range(args.idle)]
        started = await asyncio.gather(*(c.start() for c in idle), return_exceptions=True)
        for e in started:
            if isinstance(e, BaseException):
                tally.odd(f"idle client: {type(e).__name__}", str(e))
        t0 = time.monotonic()
        n = await churn(port, args.duration, args.workers, tally, gw.alive, args.only)
        res.op_rate = n / max(time.monotonic() - t0, 1e-9)
        now = time.monotonic()
        for c in idle:
            if c.task is None:
                continue
            if c.task.done():
                tally.odd("idle client dropped", c.closed_early or "")
            elif now - c.last_notification > 5:
                tally.odd("idle client: no notification in the last 5 s", f"{now - c.last_notification:.1f} s")
            res.idle_notifications += c.rpc.notifications if c.rpc else 0
        phase["name"] = "idle clients leaving"
        await asyncio.gather(*(c.stop() for c in idle))

        phase["name"] = "settle"
        t1 = time.monotonic()
        res.after = await settle(port, gw, record, res.baseline, args.fd_tolerance, tally.odd)
        res.settle_s = time.monotonic() - t1
        if peak_window:
            res.peak = Sample(0, max(s.rss_kib for s in peak_window), max(s.fds for s in peak_window), max(s.threads for s in peak_window))
        if gw.alive():
            try:
                res.health_end, body = await http_get_json(port, "/health")
                if res.health_end != 200:
                    tally.odd(f"/health {res.health_end} at the end", json.dumps(body)[:300])
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, Unexpected) as e:
                tally.odd("/health: no answer at the end", str(e))
        return res
    finally:
        sampler_task.cancel()
        try:
            await sampler_task
        except asyncio.CancelledError:
            pass
        res.ops = dict(sorted(tally.ops.items()))
        res.unexpected = dict(sorted(tally.unexpected.items()))
        res.examples = tally.examples
        res.samples = [(round(s.t, 2), s.rss_kib, s.fds, s.threads) for s in samples]


async def settle(port: int, gw: Child, record, baseline: Sample | None, tolerance: int, tally_odd) -> Sample | None:
    """Waits (deadline SETTLE_TIMEOUT) until no WebSocket client is left, the fd count has been
    steady for 3 samples and, with a baseline, is within the tolerance of it. Returns the last
    sample (the median RSS of the last 3)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    recent: list[Sample] = []
    clients = None
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        s = record()
        if s is None:
            return None
        recent = (recent + [s])[-3:]
        try:
            _, body = await http_get_json(port, "/health")
            clients = body.get("clients", {}).get("connected")
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, Unexpected):
            clients = None
        steady = len(recent) == 3 and len({r.fds for r in recent}) == 1
        within = baseline is None or s.fds <= baseline.fds + tolerance
        if clients == 0 and steady and within:
            break
    else:
        tally_odd(f"settle: not steady within {SETTLE_TIMEOUT:.0f} s (clients {clients}, fds {[r.fds for r in recent]})")
    if not recent:
        return None
    # /health's own connection may still be closing: take a sample after a short pause.
    await asyncio.sleep(1.0)
    s = record()
    if s is None:
        return None
    recent = (recent + [s])[-3:]
    return Sample(s.t, int(statistics.median(r.rss_kib for r in recent)), min(r.fds for r in recent[-2:]), s.threads)


def run_one(args, event_loop: str) -> RunResult:
    workdir = tempfile.mkdtemp(prefix=f"soak-{event_loop}-")
    children: list[Child] = []
    res = RunResult(event_loop, args.duration)
    try:
        credits = ["--credit-max", str(BIG_CREDITS), "--credit-refill", str(BIG_CREDITS),
                   "--subscribe-max", str(BIG_CREDITS), "--subscribe-refill", str(BIG_CREDITS)]
        sim = Child("deribit-sim", [os.path.join(args.bin, "deribit-sim"), "--listen", f"{HOST}:0",
                                    "--keys", "gw:gw-secret", "--log-level", "warning", *credits], workdir)
        children.append(sim)
        sim_port = sim.wait_for_port("deribit-sim listening on", 20)
        config = {
            "listen": f"{HOST}:0",
            "upstream": {
                "url": f"ws://{HOST}:{sim_port}/ws/api/v2", "client_id": "gw", "client_secret": "gw-secret",
                "reconnect_min_ms": 50, "reconnect_max_ms": 500,
                # refill_per_s feeds the non-matching-engine and the subscribe buckets.
                "credits": {"max": BIG_CREDITS, "refill_per_s": BIG_CREDITS, "subscribe_max": BIG_CREDITS},
            },
            "clients": [{"name": n, "secret": s, "scope": sc} for n, s, sc in CLIENTS],
            "limits": {"max_clients": 10_000},
            "transport": {"event_loop": event_loop},
            "shutdown": {"cancel_wait_ms": 1000},
        }
        config_path = os.path.join(workdir, "gateway.json")
        with open(config_path, "w") as f:
            json.dump(config, f, indent=2)
        gw = Child("deribit-gateway", [os.path.join(args.bin, "deribit-gateway"), "--config", config_path,
                                       "--log-level", args.log_level], workdir)
        children.append(gw)
        port = gw.wait_for_port("deribit-gateway listening on", 20)
        log(f"{event_loop}: sim pid {sim.pid} port {sim_port}, gateway pid {gw.pid} port {port}, logs in {workdir}")
        res = asyncio.run(soak(args, gw, port, event_loop))
    except RuntimeError as e:
        res.failures.append(str(e))
    finally:
        for c in reversed(children):
            status = c.stop()
            if c.name == "deribit-gateway":
                res.exit_status = status
    res.workdir = workdir
    res.gateway_log = summarize_log(os.path.join(workdir, "deribit-gateway.stderr"))
    judge(res, args)
    return res


def summarize_log(path: str, top: int = 8) -> list:
    """Distinct gateway log messages (timestamp and pid stripped) with their counts."""
    counts: collections.Counter = collections.Counter()
    try:
        with open(path, errors="replace") as f:
            for i, line in enumerate(f):
                if i >= 1_000_000:
                    break
                parts = line.rstrip("\n").split(" ", 1)
                counts[parts[1] if len(parts) == 2 and parts[0][:2].isdigit() else line.strip()] += 1
    except OSError:
        return []
    return counts.most_common(top)


def judge(res: RunResult, args) -> None:
    if res.died:
        res.failures.append(res.died)
    elif res.exit_status not in (0, None):
        res.failures.append(f"gateway exit status {res.exit_status} after SIGTERM")
    b, a = res.baseline, res.after
    if b and a:
        if a.fds > b.fds + args.fd_tolerance:
            res.failures.append(f"fds after churn {a.fds} > baseline {b.fds} + {args.fd_tolerance}")
        limit = b.rss_kib * 1.25 + 8 * 1024
        if a.rss_kib > limit:
            res.failures.append(f"RSS after churn {a.rss_kib / 1024:.1f} MiB > baseline * 1.25 + 8 MiB = {limit / 1024:.1f} MiB")
    elif not res.failures:
        res.failures.append("no baseline/after figures")
    if args.strict and res.unexpected:
        res.failures.append(f"{sum(res.unexpected.values())} unexpected outcomes (--strict)")


def report(res: RunResult, args) -> str:
    out = [f"### event loop: {res.event_loop}", ""]
    out.append(f"churn {res.duration:.0f} s, {args.workers} workers, {args.idle} idle clients; "
               f"{sum(res.ops.values())} operations ({res.op_rate:.0f}/s); settled in {res.settle_s:.1f} s; "
               f"/health at the end: {res.health_end}; gateway exit status: {res.exit_status}")
    out.append("")
    out.append("| | baseline | peak | after | limit |")
    out.append("|---|---:|---:|---:|---:|")
    b, p, a = res.baseline, res.peak, res.after

    def f(s, attr, scale=1.0, fmt="{:.0f}"):
        return fmt.format(getattr(s, attr) / scale) if s else "-"
    out.append(f"| RSS (MiB) | {f(b, 'rss_kib', 1024, '{:.1f}')} | {f(p, 'rss_kib', 1024, '{:.1f}')} | "
               f"{f(a, 'rss_kib', 1024, '{:.1f}')} | {(b.rss_kib * 1.25 / 1024 + 8):.1f} |" if b else "| RSS (MiB) | - | - | - | - |")
    out.append(f"| fds | {f(b, 'fds')} | {f(p, 'fds')} | {f(a, 'fds')} | {b.fds + args.fd_tolerance if b else '-'} |")
    out.append(f"| threads | {f(b, 'threads')} | {f(p, 'threads')} | {f(a, 'threads')} | |")
    out.append("")
    out.append("| operation | count |")
    out.append("|---|---:|")
    for k, v in res.ops.items():
        out.append(f"| {k} | {v} |")
    out.append(f"| idle-client notifications | {res.idle_notifications} |")
    out.append("")
    if res.unexpected:
        out.append("unexpected outcomes:")
        for k, v in res.unexpected.items():
            ex = res.examples.get(k)
            out.append(f"- {k}: {v}" + (f" (e.g. {ex})" if ex else ""))
    else:
        out.append("unexpected outcomes: none")
    out.append("")
    if res.gateway_log:
        out.append(f"gateway log (--log-level {args.log_level}), most frequent lines:")
        for line, n in res.gateway_log:
            out.append(f"- {n} x `{line[:200]}`")
        out.append("")
    out.append("verdict: " + ("PASS" if not res.failures else "FAIL: " + "; ".join(res.failures)))
    out.append(f"(logs: {res.workdir})")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description="Soak test of deribit-gateway (connection churn, fd/RSS leak check).")
    ap.add_argument("--duration", type=float, default=60, help="seconds of churn per event loop (default 60)")
    ap.add_argument("--event-loop", choices=["dispatch", "epoll", "both"], default="both")
    ap.add_argument("--bin", default=".build-soak/release", help="directory with deribit-gateway and deribit-sim")
    ap.add_argument("--warmup", type=float, default=10, help="seconds of churn before the baseline (default 10)")
    ap.add_argument("--workers", type=int, default=16, help="concurrent churn workers (default 16)")
    ap.add_argument("--idle", type=int, default=20, help="idle WebSocket clients held during churn (default 20)")
    ap.add_argument("--fd-tolerance", type=int, default=2, help="fds allowed above the baseline after churn (default 2)")
    ap.add_argument("--log-level", default="warning", help="the gateway's --log-level (default warning)")
    ap.add_argument("--strict", action="store_true", help="also fail on any unexpected outcome")
    ap.add_argument("--json", metavar="FILE", help="write the results (with the 1 s samples) as JSON")
    ap.add_argument("--only", metavar="KIND,...", default="",
                    help="run only these operation kinds (to narrow a leak down): " + ",".join(k for k, _ in OP_MIX))
    args = ap.parse_args()
    args.only = [k for k in args.only.split(",") if k]
    unknown = set(args.only) - {k for k, _ in OP_MIX}
    if unknown:
        ap.error(f"--only: unknown kinds {sorted(unknown)}")
    if not (1 <= args.duration <= 86_400) or not (0 <= args.warmup <= 3600) or not (1 <= args.workers <= 256) \
            or not (0 <= args.idle <= 1000):
        ap.error("--duration 1..86400, --warmup 0..3600, --workers 1..256, --idle 0..1000")
    for p in ("deribit-gateway", "deribit-sim"):
        if not os.access(os.path.join(args.bin, p), os.X_OK):
            print(f"missing {os.path.join(args.bin, p)} (build: swift build -c release --scratch-path .build-soak)", file=sys.stderr)
            return 2
    def on_sigterm(*_):
        raise KeyboardInterrupt  # unwinds through the finally blocks that stop the children
    signal.signal(signal.SIGTERM, on_sigterm)

    loops = ["dispatch", "epoll"] if args.event_loop == "both" else [args.event_loop]
    results = []
    for kind in loops:
        log(f"{kind}: warm-up {args.warmup:.0f} s, churn {args.duration:.0f} s")
        res = run_one(args, kind)
        results.append(res)
        print(report(res, args), flush=True)
        print(flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: (v.__dict__ if isinstance(v, Sample) else v) for k, v in r.__dict__.items()} for r in results], f, indent=1)
    failed = [r.event_loop for r in results if r.failures]
    print("overall: " + ("PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
