#!/usr/bin/env python3
"""Seeded, randomized trials of the gateway's per-client cancel-on-disconnect (SPEC §7, §8).

Starts `deribit-sim` and `deribit-gateway`, runs client lifecycles against the gateway in
concurrent rounds (connect, authenticate, maybe toggle the flag, place resting orders, edit or
cancel some, then end in a random way), and compares the simulator's open orders with what
SPEC §7 says must be left. See docs/TRIALS.md for the rules and the output.

Exit status: 0 when there is no wrong and no missed cancel, 1 otherwise, 2 on a harness error
(or when trials could not run as planned).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from websockets.asyncio.client import connect

VARIANTS = ("normal", "low-tier", "stalled")
TAG = {"normal": "n", "low-tier": "lt", "stalled": "st"}

# Endings of a trial (what the client does to end its connection).
ABORT, CLOSE, LOGOUT, HEARTBEAT, SLOW, SIGTERM = "abort", "close", "logout", "heartbeat", "slow", "sigterm"
# Endings of "mixed" rounds, with weights.
MIXED_ENDINGS = ((ABORT, 35), (CLOSE, 25), (LOGOUT, 22), (SLOW, 18))
P_SIGTERM_ROUND = 0.10     # the whole round ends with SIGTERM to the gateway
SHUTDOWN_CANCEL_WAIT_MS = 60_000  # the gateway's shutdown.cancel_wait_ms (see start_gateway)
P_HEARTBEAT_ROUND = 0.065  # rounds where most trials miss heartbeats (~20 s): ~5 % of trials
P_HEARTBEAT_IN_ROUND = 0.75
# Rounds whose clients all end at the same moment (after every one has done its orders): a burst
# of disconnects whose cancels queue behind each other.
P_SYNC_END = {"normal": 0.3, "low-tier": 0.6, "stalled": 0.3}

# Channels a slow consumer subscribes to before it stops reading: either incremental books whose
# snapshots (~16 KB each at --book-depth 400) overflow the gateway's buffer for it at once, or a
# stream of full top-20 books and tickers that fills the socket and then the buffer in ~2 s.
SLOW_INSTRUMENTS = ["BTC-PERPETUAL", "ETH-PERPETUAL", "BTC-25DEC26", "BTC-26MAR27", "ETH-25DEC26"]
SLOW_CHANNELS = {
    "snapshots": [f"book.{i}.100ms" for i in SLOW_INSTRUMENTS] + [f"book.{i}.none.20.100ms" for i in SLOW_INSTRUMENTS],
    "stream": [f"book.{i}.none.20.100ms" for i in SLOW_INSTRUMENTS] + [f"ticker.{i}.100ms" for i in SLOW_INSTRUMENTS],
}
SLOW_STALL_S = {"snapshots": 0.5, "stream": 3.0}   # how long the consumer stops reading
SIM_RATE = 500            # market-data steps per second (only while something is subscribed)
SIM_BOOK_DEPTH = 400      # ~16 KB book snapshots
CLIENT_BUFFER_BYTES = 65536

# Matching-engine tier (requests/s, burst) used at both the simulator and the gateway's model.
ME_TIER = {"normal": (200, 400), "low-tier": (5, 20), "stalled": (200, 400)}

# The gateway's upstream.request_timeout_ms per variant unless --request-timeout-ms is given: the
# gateway's default (15 s), but 5 s at the low tier, so that cancels queued for matching-engine
# credits outlast it (at 5/s that takes more than 25 queued cancels; with 15 s, more than 75).
REQUEST_TIMEOUT_MS = {"normal": None, "low-tier": 5000, "stalled": None}

# Methods that count as "the gateway is still working on orders" (quiescence).
ORDER_METHODS = ("private/buy", "private/sell", "private/edit", "private/cancel", "private/cancel_all",
                 "private/cancel_all_by_instrument", "private/cancel_all_by_currency", "private/cancel_by_label",
                 "private/get_order_state", "private/get_open_orders", "private/get_open_orders_by_currency",
                 "private/get_open_orders_by_instrument")

# Gateway answers meaning "this request never reached the exchange".
NOT_SENT_CODES = {10028, -32003, -32602, -32600, -32601, -32002, 13009, 11050}
NOT_OPEN_CODES = {11044, 10004}


class HarnessError(Exception):
    """Something the harness itself needs failed: exit status 2."""


class Closed(Exception):
    """The client's connection has ended."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- processes

ALL_PROCS: list["Proc"] = []


class Proc:
    """A child process with stdout/stderr in files; stopped by its pid."""

    def __init__(self, name: str, argv: list[str], logdir: Path):
        self.name = name
        self.out_path = logdir / f"{name}.out"
        self.err_path = logdir / f"{name}.log"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        try:
            self.p = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        except OSError as e:
            raise HarnessError(f"cannot start {argv[0]}: {e}") from e
        ALL_PROCS.append(self)
        self._seen: dict[str, int] = {}
        self.port = 0

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    async def wait_listening(self, prefix: str, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out_path.read_text(errors="replace")
            for line in text.splitlines():
                if line.startswith(prefix):
                    self.port = int(line.rsplit(":", 1)[1])
                    return self.port
            if not self.alive():
                raise HarnessError(f"{self.name} exited with {self.p.returncode} before listening: {self.tail()}")
            await asyncio.sleep(0.02)
        raise HarnessError(f"{self.name}: no '{prefix}' line within {timeout} s: {self.tail()}")

    def tail(self, n: int = 5) -> str:
        try:
            return " | ".join(self.err_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def new_log_lines(self, needle: str) -> list[str]:
        """Lines containing `needle` logged since the last call."""
        try:
            lines = [l for l in self.err_path.read_text(errors="replace").splitlines() if needle in l]
        except OSError:
            return []
        seen = self._seen.get(needle, 0)
        self._seen[needle] = len(lines)
        return lines[seen:]

    def log_lines(self, needle: str, limit: int = 4) -> list[str]:
        try:
            lines = [l for l in self.err_path.read_text(errors="replace").splitlines() if needle in l]
        except OSError:
            return []
        return lines[:limit]

    async def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.p.poll()
            if rc is not None:
                return rc
            await asyncio.sleep(0.02)
        return None

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM to this pid, then SIGKILL after `grace` seconds. Synchronous (used in finally)."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            except ProcessLookupError:
                pass
        for f in (self._out, self._err):
            try:
                f.close()
            except OSError:
                pass
        return self.p.returncode


def http(method: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


async def http_json(method: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, dict]:
    status, body = await asyncio.wait_for(asyncio.to_thread(http, method, port, path, timeout), timeout + 2)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {}


# ----------------------------------------------------------------------------- JSON-RPC client

class Rpc:
    """A JSON-RPC client over a WebSocket; a reader task routes responses by id."""

    def __init__(self, ws):
        self.ws = ws
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.test_requests = 0
        self.notifications = 0
        self.stray: list[dict] = []
        self.on_notification = None
        self.reader: asyncio.Task | None = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, port: int, small_rcvbuf: bool = False, max_queue: int = 64) -> "Rpc":
        sock = None
        if small_rcvbuf:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)), 5)
            except BaseException:
                sock.close()
                raise
        ws = await asyncio.wait_for(
            connect(url, sock=sock, ping_interval=None, close_timeout=3, open_timeout=5, max_queue=max_queue,
                    compression=None, max_size=2 ** 24), 10)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._dispatch(raw)
        except websockets.ConnectionClosed:
            pass
        self._mark_closed()

    def _dispatch(self, raw) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        rid = msg.get("id")
        if rid is not None and rid in self.pending:
            fut = self.pending.pop(rid)
            if not fut.done():
                fut.set_result(msg)
            return
        method = msg.get("method")
        if method == "heartbeat":
            self.test_requests += 1
        elif method == "subscription":
            self.notifications += 1
            if self.on_notification:
                self.on_notification(msg.get("params") or {})
        else:
            self.stray.append(msg)

    def _mark_closed(self) -> None:
        if self.closed.is_set():
            return
        self.close_code = self.ws.close_code
        self.close_reason = self.ws.close_reason
        self.closed.set()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(Closed(f"closed {self.close_code}"))
        self.pending.clear()

    def stop_reading(self) -> None:
        if self.reader and not self.reader.done():
            self.reader.cancel()

    def resume_reading(self) -> None:
        if not self.closed.is_set() and (self.reader is None or self.reader.done()):
            self.reader = asyncio.create_task(self._read())

    async def send(self, method: str, params: dict | None = None) -> asyncio.Future:
        if self.closed.is_set():
            raise Closed(f"closed {self.close_code}")
        self.next_id += 1
        rid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)  # never "unretrieved"
        self.pending[rid] = fut
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
        try:
            await asyncio.wait_for(self.ws.send(json.dumps(msg)), 10)
        except websockets.ConnectionClosed as e:
            self.pending.pop(rid, None)
            raise Closed(str(e)) from e
        return fut

    async def call(self, method: str, params: dict | None = None, timeout: float = 15.0) -> dict:
        fut = await self.send(method, params)
        return await asyncio.wait_for(asyncio.shield(fut), timeout)

    def abort(self) -> None:
        """Closes the TCP connection without a close frame (a strategy that crashed)."""
        t = self.ws.transport
        if t is not None and not t.is_closing():
            t.abort()

    async def wait_closed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


def error_code(resp: dict) -> int | None:
    e = resp.get("error")
    return e.get("code") if isinstance(e, dict) else None


# ----------------------------------------------------------------------------- plans

@dataclass
class Order:
    label: str
    instrument: str
    side: str
    amount: int
    price: float
    inflight: bool = False
    order_id: str | None = None
    create: str = "unsent"            # unsent | ok | refused CODE | unknown (sent, no definite answer)
    client_cancel: str | None = None  # None | ok | not-open | uncertain
    edits: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Trial:
    index: int
    variant: str
    round: int
    client: str
    config_flag: bool
    ending: str                        # planned ending
    ops: list[tuple]                   # ("place", k) | ("edit", k) | ("cancel", k) | ("toggle", bool)
    orders: list[Order]
    flag_end: bool | None = None       # the flag so far, at the end the flag at the end; None: unknown
    toggles: list[str] = field(default_factory=list)
    actual_end: str | None = None
    close_code: int | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    connected: bool = False
    slow_channels: str = "snapshots"


def far_price(rng: random.Random, instrument: str, side: str) -> float:
    if instrument.startswith("BTC"):
        return float(1000 + 10 * rng.randint(0, 200)) if side == "buy" else float(200000 + 10 * rng.randint(0, 200))
    return float(100 + rng.randint(0, 200)) if side == "buy" else float(20000 + rng.randint(0, 200))


def plan_trial(rng: random.Random, seed: int, variant: str, index: int, rnd: int, client: str,
               config_flag: bool, ending: str) -> Trial:
    tag = f"s{seed}-{TAG[variant]}-r{rnd}-t{index}"
    n = rng.randint(5, 12) if variant == "low-tier" else rng.randint(1, 8)

    def order(label: str) -> Order:
        inst = "BTC-PERPETUAL" if rng.random() < 0.8 else "ETH-PERPETUAL"
        side = "buy" if rng.random() < 0.6 else "sell"
        return Order(label, inst, side, 10 * rng.randint(1, 5), far_price(rng, inst, side))

    orders = [order(f"{tag}-o{k}") for k in range(n)]
    ops: list[tuple] = [("place", k) for k in range(n)]
    for k in range(n):
        after = ops.index(("place", k)) + 1
        if rng.random() < 0.25:
            pos = rng.randint(after, len(ops))
            ops.insert(pos, ("edit", k))
            after = pos + 1
        if rng.random() < 0.25:
            ops.insert(rng.randint(after, len(ops)), ("cancel", k))
    r = rng.random()
    for _ in range(2 if r < 0.1 else 1 if r < 0.35 else 0):
        ops.insert(rng.randint(0, len(ops)), ("toggle", rng.random() < 0.5))
    # Orders sent right before the end without waiting for their answer.
    if ending in (ABORT, CLOSE, LOGOUT, SIGTERM) and rng.random() < 0.3:
        for j in range(rng.randint(1, 2)):
            o = order(f"{tag}-f{j}")
            o.inflight = True
            orders.append(o)
    t = Trial(index, variant, rnd, client, config_flag, ending, ops, orders)
    t.slow_channels = "snapshots" if rng.random() < 0.8 else "stream"
    return t


@dataclass
class RoundPlan:
    number: int
    kind: str                    # mixed | heartbeat | sigterm
    trials: list[Trial]
    fault: tuple | None = None   # stalled: (kind, trigger_after, duration_s)
    sync_end: bool = False       # every trial waits for the others before its ending


def plan_round(seed: int, variant: str, rnd: int, first_index: int, size: int, clients: list[str],
               flags: dict[str, bool]) -> RoundPlan:
    rng = random.Random(f"{seed}/{variant}/round{rnd}")
    r = rng.random()
    kind = "sigterm" if r < P_SIGTERM_ROUND else "heartbeat" if r < P_SIGTERM_ROUND + P_HEARTBEAT_ROUND else "mixed"
    names = rng.sample(clients, size)
    trials = []
    for i in range(size):
        if kind == "sigterm":
            ending = SIGTERM
        elif kind == "heartbeat" and rng.random() < P_HEARTBEAT_IN_ROUND:
            ending = HEARTBEAT
        else:
            ending = rng.choices([e for e, _ in MIXED_ENDINGS], [w for _, w in MIXED_ENDINGS])[0]
        trng = random.Random(f"{seed}/{variant}/trial{first_index + i}")
        trials.append(plan_trial(trng, seed, variant, first_index + i, rnd, names[i], flags[names[i]], ending))
    fault = None
    if variant == "stalled":
        fkind = "delay" if rng.random() < 0.6 else "stop"
        trigger = 0 if rng.random() < 0.3 else rng.randint(1, size)   # 0: at the round's start
        duration = rng.uniform(1.0, 4.0) if fkind == "delay" else rng.uniform(0.5, 2.0)
        fault = (fkind, trigger, round(duration, 2))
    sync_end = kind != "sigterm" and rng.random() < P_SYNC_END[variant]
    return RoundPlan(rnd, kind, trials, fault, sync_end)


# ----------------------------------------------------------------------------- the world

class World:
    """The simulator, the gateway and the janitor (a direct connection to the simulator as the
    gateway's account: it sees every order event and cleans up between rounds)."""

    def __init__(self, opts, variant: str, bin_dir: Path, logdir: Path):
        self.opts = opts
        self.variant = variant
        self.bin = bin_dir
        self.logdir = logdir
        self.sim: Proc | None = None
        self.gw: Proc | None = None
        self.gw_count = 0
        self.gw_flags: dict[str, bool] = {}
        self.janitor: Rpc | None = None
        self.feed: dict[str, dict] = {}       # label -> {"order_id", "states": [...], "cancel_reason"}
        self.rate, self.burst = ME_TIER[variant]
        self.clients = [f"c{i}" for i in range(2 * opts.concurrency)]
        self.request_timeout_ms = opts.request_timeout_ms or REQUEST_TIMEOUT_MS[variant]
        self.notes: list[str] = []

    async def start_sim(self) -> None:
        argv = [str(self.bin / "deribit-sim"), "--listen", "127.0.0.1:0", "--keys", "gw:gw-secret",
                "--rate", str(SIM_RATE), "--book-depth", str(SIM_BOOK_DEPTH),
                "--me-rate", str(self.rate), "--me-burst", str(self.burst), "--seed", str(self.opts.seed)]
        self.sim = Proc(f"{TAG[self.variant]}-sim", argv, self.logdir)
        await self.sim.wait_listening("deribit-sim listening on")
        await self.connect_janitor()

    async def connect_janitor(self) -> None:
        try:
            self.janitor = await Rpc.open(f"ws://127.0.0.1:{self.sim.port}/ws/api/v2", self.sim.port)
            r = await self.janitor.call("public/auth", {"grant_type": "client_credentials", "client_id": "gw",
                                                        "client_secret": "gw-secret"}, timeout=5)
            if "result" not in r:
                raise HarnessError(f"janitor auth at the simulator: {r}")
            self.janitor.on_notification = self._feed
            r = await self.janitor.call("private/subscribe", {"channels": ["user.orders.any.any.raw"]}, timeout=5)
            if r.get("result") != ["user.orders.any.any.raw"]:
                raise HarnessError(f"janitor subscribe at the simulator: {r}")
        except (OSError, asyncio.TimeoutError, Closed, websockets.WebSocketException) as e:
            raise HarnessError(f"janitor connection to the simulator: {e!r}") from e

    def _feed(self, params: dict) -> None:
        if not str(params.get("channel", "")).startswith("user.orders."):
            return
        data = params.get("data")
        for o in data if isinstance(data, list) else [data]:
            if not isinstance(o, dict) or not o.get("label"):
                continue
            rec = self.feed.setdefault(o["label"], {"order_id": o.get("order_id"), "states": [], "cancel_reason": None})
            rec["states"].append(o.get("order_state"))
            if o.get("order_state") == "cancelled":
                rec["cancel_reason"] = o.get("cancel_reason")

    async def ensure_janitor(self) -> None:
        if self.janitor is None or self.janitor.closed.is_set():
            self.notes.append(f"the simulator closed the janitor's connection ({self.janitor.close_code if self.janitor else None}): "
                              "reconnected; order events in between were missed")
            await self.connect_janitor()

    async def janitor_barrier(self) -> None:
        """A round trip on the janitor's connection: every order event before it has been read."""
        await self.ensure_janitor()
        try:
            r = await self.janitor.call("public/test", {}, timeout=10)
        except (asyncio.TimeoutError, Closed) as e:
            raise HarnessError(f"janitor barrier: {e!r}") from e
        if "result" not in r:
            raise HarnessError(f"janitor barrier: {r}")

    async def sim_request(self, method: str, path: str) -> dict:
        """GET /sim/state or POST /sim/fault/… (both idempotent): 3 tries of 10 s each, so that a
        simulator slowed down by a busy machine is not taken for a dead one."""
        last: object = None
        for attempt in range(3):
            if not self.sim.alive():
                raise HarnessError(f"deribit-sim exited with {self.sim.p.returncode}: {self.sim.tail()}")
            try:
                status, body = await http_json(method, self.sim.port, path, timeout=10)
                if status == 200:
                    if attempt:
                        self.notes.append(f"{method} {path} answered at try {attempt + 1}")
                    return body
                last = status
            except (OSError, asyncio.TimeoutError) as e:
                last = repr(e)
            await asyncio.sleep(0.5)
        raise HarnessError(f"{method} {path}: {last} (3 tries)")

    async def sim_state(self) -> dict:
        return await self.sim_request("GET", "/sim/state")

    async def sim_post(self, path: str) -> None:
        await self.sim_request("POST", path)

    async def leaked_channels(self, timeout: float = 5.0) -> list[str]:
        """Market-data channels the simulator still streams to the gateway although the gateway has
        no client left (waits up to `timeout` for late unsubscribes)."""
        deadline = time.monotonic() + timeout
        while True:
            subs = (await self.sim_state()).get("subscriptions", {})
            leaked = sorted(c for c in subs if not c.startswith("user."))
            if not leaked or time.monotonic() > deadline:
                return leaked
            await asyncio.sleep(0.2)

    async def restart_gateway(self, rnd: int) -> None:
        if self.gw and self.gw.alive():
            await asyncio.to_thread(self.gw.stop, 10.0)
        await self.cleanup()
        await self.wait_credits_full()
        await self.start_gateway(rnd, same_flags=True)

    async def start_gateway(self, rnd: int, same_flags: bool = False) -> None:
        """A new gateway; its clients' configured flags are drawn anew (after SIGTERM) or kept
        (a restart the plan did not call for), so the plan stays the seed's."""
        if not same_flags:
            rng = random.Random(f"{self.opts.seed}/{self.variant}/gateway@{rnd}")
            self.gw_flags = {c: rng.random() < 0.5 for c in self.clients}
        upstream = {"url": f"ws://127.0.0.1:{self.sim.port}/ws/api/v2", "client_id": "gw", "client_secret": "gw-secret",
                    "reconnect_min_ms": 50, "reconnect_max_ms": 500, "cancel_on_disconnect": True,
                    "credits": {"matching_engine_rate": self.rate, "matching_engine_burst": self.burst}}
        if self.request_timeout_ms:
            upstream["request_timeout_ms"] = self.request_timeout_ms
        config = {
            "listen": "127.0.0.1:0",
            "upstream": upstream,
            "clients": [{"name": c, "secret": f"{c}-secret", "scope": "trade", "cancel_on_disconnect": self.gw_flags[c]}
                        for c in self.clients],
            "limits": {"client_buffer_bytes": CLIENT_BUFFER_BYTES},
            # SPEC §8: the shutdown waits for the cancels up to this bound. A round can leave ~60
            # flagged orders; at the lowest tier (5/s) their cancels take ~12 s, more than the
            # 10 s default: an operator sizes the bound to the tier, as here.
            "shutdown": {"cancel_wait_ms": SHUTDOWN_CANCEL_WAIT_MS},
        }
        self.gw_count += 1
        name = f"{TAG[self.variant]}-gateway{self.gw_count}"
        path = self.logdir / f"{name}.json"
        path.write_text(json.dumps(config, indent=1))
        self.gw = Proc(name, [str(self.bin / "deribit-gateway"), "--config", str(path)], self.logdir)
        await self.gw.wait_listening("deribit-gateway listening on")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                status, _ = await http_json("GET", self.gw.port, "/health", timeout=2)
                if status == 200:
                    return
            except (OSError, asyncio.TimeoutError):
                pass
            if not self.gw.alive():
                break
            await asyncio.sleep(0.05)
        raise HarnessError(f"{name}: /health not 200 within 15 s: {self.gw.tail()}")

    async def gateway_clients(self) -> int | None:
        if not self.gw or not self.gw.alive():
            return 0
        try:
            status, body = await http_json("GET", self.gw.port, "/health", timeout=2)
        except (OSError, asyncio.TimeoutError):
            return None
        c = body.get("clients", {})
        return c.get("connected") if isinstance(c, dict) else None

    async def wait_credits_full(self, timeout: float = 15.0) -> None:
        """Until the account's buckets at the simulator are full: whatever the janitor or a previous
        gateway spent, the gateway's model (at most full) can never overdraw the exchange."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            st = await self.sim_state()
            acct = st.get("credits", {}).get("accounts", {}).get("gw")
            last = acct
            if not acct or (acct.get("matching_engine", 0) >= self.burst - 1e-6
                            and acct.get("default", 0) >= 50000 - 1e-6 and acct.get("subscribe", 0) >= 30000 - 1e-6):
                return
            await asyncio.sleep(0.1)
        raise HarnessError(f"the simulator's credits did not refill within {timeout} s: {last}")

    async def cleanup(self) -> int:
        """Cancels every open order at the simulator (directly, as the account). Returns how many."""
        st = await self.sim_state()
        n = len(st.get("open_orders", []))
        if n:
            await self.ensure_janitor()
            try:
                r = await self.janitor.call("private/cancel_all", {}, timeout=10)
            except (asyncio.TimeoutError, Closed) as e:
                raise HarnessError(f"cleanup cancel_all: {e!r}") from e
            if "result" not in r:
                raise HarnessError(f"cleanup cancel_all: {r}")
            deadline = time.monotonic() + 10
            while (await self.sim_state()).get("open_orders"):
                if time.monotonic() > deadline:
                    raise HarnessError("cleanup: orders still open 10 s after cancel_all")
                await asyncio.sleep(0.1)
        return n

    async def close(self) -> None:
        if self.janitor:
            self.janitor.abort()
        for p in (self.gw, self.sim):
            if p:
                await asyncio.to_thread(p.stop)


# ----------------------------------------------------------------------------- one round

class RoundRun:
    def __init__(self, world: World, plan: RoundPlan, opts):
        self.w = world
        self.plan = plan
        self.opts = opts
        self.arrived = 0          # trials at their ending point (or finished early)
        self.done_ops = 0         # trials done with their orders (or finished early)
        self.cond = asyncio.Condition()
        self.ws_url = f"ws://127.0.0.1:{world.gw.port}/ws/api/v2"
        self.gw_port = world.gw.port
        self.call_timeout = {"normal": 20.0, "low-tier": 40.0, "stalled": 30.0}[world.variant]
        # How long a client keeps retrying a request the gateway refused with 10028, and the pause.
        self.retry_for = 40.0 if world.variant == "low-tier" else 10.0
        self.retry_pause = 0.3
        self.sigterm_exit: int | None = None
        self.notes: list[str] = []
        self.fault_off_at = 0.0

    async def arrive(self) -> None:
        async with self.cond:
            self.arrived += 1
            self.cond.notify_all()

    async def ops_done(self, wait: bool) -> None:
        """Counts a trial that has done its orders; with `wait`, waits (bounded) for all of them."""
        async with self.cond:
            self.done_ops += 1
            self.cond.notify_all()
        if wait:
            async def w():
                async with self.cond:
                    await self.cond.wait_for(lambda: self.done_ops >= len(self.plan.trials))
            try:
                await asyncio.wait_for(w(), 120)
            except asyncio.TimeoutError:
                self.notes.append("not every trial finished its orders within 120 s: ended anyway")

    async def wait_arrived(self, n: int, timeout: float) -> bool:
        async def w():
            async with self.cond:
                await self.cond.wait_for(lambda: self.arrived >= n)
        try:
            await asyncio.wait_for(w(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.trial(t)) for t in self.plan.trials]
        if self.plan.kind == "sigterm":
            tasks.append(asyncio.create_task(self.sigterm()))
        if self.plan.fault:
            tasks.append(asyncio.create_task(self.fault()))
        try:
            done, pending = await asyncio.wait(tasks, timeout=180)
            errors = [t.exception() for t in done if not t.cancelled() and t.exception() is not None]
            if errors:
                raise errors[0]
            if pending:
                raise HarnessError(f"round {self.plan.number} did not finish within 180 s")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=10)   # their own cleanup (aborting sockets) runs
            for t in tasks:
                if t.done() and not t.cancelled():
                    t.exception()   # retrieved: no "never retrieved" noise

    async def sigterm(self) -> None:
        if not await self.wait_arrived(len(self.plan.trials), 120):
            self.notes.append("not every trial reached its end before SIGTERM")
        gw = self.w.gw
        os.kill(gw.pid, signal.SIGTERM)
        rc = await gw.wait_exit(SHUTDOWN_CANCEL_WAIT_MS / 1000 + 20)
        if rc is None:
            self.notes.append(f"gateway did not exit within {SHUTDOWN_CANCEL_WAIT_MS // 1000 + 20} s of SIGTERM: killed")
            await asyncio.to_thread(gw.stop, 0.1)
            rc = gw.p.returncode
        self.sigterm_exit = rc
        if rc != 0:
            self.notes.append(f"gateway exit status {rc} after SIGTERM")

    async def fault(self) -> None:
        kind, trigger, duration = self.plan.fault
        if trigger:
            await self.wait_arrived(trigger, 120)
        on, off = (("/sim/fault/delay?ms=3000", "/sim/fault/delay?ms=0") if kind == "delay"
                   else ("/sim/fault/stop_answering?on=true", "/sim/fault/stop_answering?on=false"))
        await self.w.sim_post(on)
        try:
            await asyncio.sleep(duration)
        finally:
            await self.w.sim_post(off)
            self.fault_off_at = time.monotonic()

    # -- one client lifecycle

    async def trial(self, t: Trial) -> None:
        rpc = None
        arrived = synced = False
        try:
            try:
                rpc = await Rpc.open(self.ws_url, self.gw_port, small_rcvbuf=(t.ending == SLOW),
                                     max_queue=2 if t.ending == SLOW else 64)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
                t.error = f"connect: {e!r}"
                return
            t.connected = True
            t.flag_end = t.config_flag
            r = await rpc.call("public/auth", {"grant_type": "client_credentials", "client_id": t.client,
                                               "client_secret": f"{t.client}-secret"}, timeout=self.call_timeout)
            if "result" not in r:
                t.error = f"auth: {r.get('error')}"
                rpc.abort()
                t.actual_end = ABORT
                return
            hb_at = None
            if t.ending == HEARTBEAT:
                r = await rpc.call("public/set_heartbeat", {"interval": 10}, timeout=self.call_timeout)
                if r.get("result") != "ok":
                    t.notes.append(f"set_heartbeat: {r}")
                hb_at = time.monotonic()
            for op in t.ops:
                kind, arg = op
                if kind == "toggle":
                    method = "private/enable_cancel_on_disconnect" if arg else "private/disable_cancel_on_disconnect"
                    t.toggles.append("on" if arg else "off")
                    prev = t.flag_end
                    if prev != arg:
                        t.flag_end = None      # unknown until answered
                    try:
                        r = await rpc.call(method, {}, timeout=self.call_timeout)
                    except asyncio.TimeoutError:
                        t.notes.append(f"{method}: no answer")
                        continue
                    if r.get("result") == "ok":
                        t.flag_end = arg
                    else:
                        t.flag_end = prev      # refused: unchanged
                        t.notes.append(f"{method}: {r}")
                elif kind == "place":
                    await self.place(rpc, t.orders[arg])
                elif kind == "edit":
                    await self.edit(rpc, t, t.orders[arg])
                elif kind == "cancel":
                    await self.cancel(rpc, t.orders[arg])
            synced = True
            await self.ops_done(wait=self.plan.sync_end)
            for o in t.orders:
                if o.inflight:
                    await rpc.send(self.order_method(o), self.order_params(o))
                    o.create = "unknown"
            await self.arrive()
            arrived = True
            await self.end(t, rpc, hb_at)
        except Closed:
            t.actual_end = t.actual_end or "closed-by-gateway"
        except asyncio.TimeoutError:
            t.notes.append("a request went unanswered: connection aborted")
            t.actual_end = t.actual_end or ABORT
        except (OSError, websockets.WebSocketException, ValueError, KeyError, TypeError, AttributeError) as e:
            t.error = f"{type(e).__name__}: {e}"
            t.actual_end = t.actual_end or ABORT
        finally:
            if rpc is not None:
                if not rpc.closed.is_set():
                    rpc.abort()
                    t.actual_end = t.actual_end or ABORT
                    await rpc.wait_closed(5)
                rpc.stop_reading()
                if t.close_code is None:
                    t.close_code = rpc.close_code
                if t.actual_end == "closed-by-gateway" and t.ending == HEARTBEAT and "heartbeat" in (rpc.close_reason or ""):
                    t.actual_end = HEARTBEAT   # its heartbeat ran out before it was done with its orders
                    t.notes.append("heartbeat ran out before its orders were done")
                if t.actual_end == "closed-by-gateway":
                    t.notes.append(f"connection ended by the gateway before the planned end ({rpc.close_code} {rpc.close_reason})")
            if not synced:
                await self.ops_done(wait=False)
            if not arrived:
                await self.arrive()

    @staticmethod
    def order_method(o: Order) -> str:
        return "private/buy" if o.side == "buy" else "private/sell"

    @staticmethod
    def order_params(o: Order) -> dict:
        return {"instrument_name": o.instrument, "amount": o.amount, "type": "limit", "price": o.price, "label": o.label}

    async def place(self, rpc: Rpc, o: Order) -> None:
        """Places the order; like a strategy that paces itself, retries while the gateway answers
        10028 (its credit model refused: nothing was sent), within a deadline."""
        deadline = time.monotonic() + self.retry_for
        while True:
            o.create = "unknown"
            try:
                r = await rpc.call(self.order_method(o), self.order_params(o), timeout=self.call_timeout)
            except asyncio.TimeoutError:
                o.notes.append("creation unanswered")
                return
            if error_code(r) != 10028 or time.monotonic() > deadline:
                break
            o.create = "refused 10028"
            await asyncio.sleep(self.retry_pause)
        if "result" in r:
            order = r["result"].get("order", {})
            o.order_id = order.get("order_id")
            o.create = "ok"
            if order.get("order_state") != "open":
                o.notes.append(f"created {order.get('order_state')}")
        else:
            code = error_code(r)
            o.create = f"refused {code}" if code in NOT_SENT_CODES else "unknown"
            o.notes.append(f"creation error {code}")

    async def edit(self, rpc: Rpc, t: Trial, o: Order) -> None:
        if o.order_id is None or o.client_cancel:
            return
        rng = random.Random(f"{o.label}/edit{o.edits}")
        o.edits += 1
        amount = 10 * rng.randint(1, 5)
        price = far_price(rng, o.instrument, o.side)
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                r = await rpc.call("private/edit", {"order_id": o.order_id, "amount": amount, "price": price},
                                   timeout=self.call_timeout)
            except asyncio.TimeoutError:
                o.notes.append("edit unanswered")
                return
            if error_code(r) != 10028 or time.monotonic() > deadline:
                break
            await asyncio.sleep(self.retry_pause)
        if "result" in r:
            state = r["result"].get("order", {}).get("order_state")
            if state != "open":
                o.notes.append(f"edit left it {state}")
        else:
            code = error_code(r)
            o.notes.append(f"edit error {code}")
            if code in NOT_OPEN_CODES:
                o.notes.append("closed while its client was connected (edit answered not open)")

    async def cancel(self, rpc: Rpc, o: Order) -> None:
        if o.order_id is None or o.client_cancel in ("ok", "not-open"):
            return
        uncertain = o.client_cancel == "uncertain"
        deadline = time.monotonic() + self.retry_for
        while time.monotonic() < deadline:
            fut = await rpc.send("private/cancel", {"order_id": o.order_id})
            # Sent: until its answer comes, nobody knows whether it was carried out (the
            # connection may end first, a heartbeat running out, say).
            prev, o.client_cancel = o.client_cancel, "uncertain"
            try:
                r = await asyncio.wait_for(asyncio.shield(fut), self.call_timeout)
            except asyncio.TimeoutError:
                uncertain = True
                break
            o.client_cancel = prev
            if "result" in r:
                o.client_cancel = "ok"
                return
            code = error_code(r)
            if code in NOT_OPEN_CODES:
                o.client_cancel = "not-open"
                o.notes.append("closed while its client was connected (cancel answered not open)")
                return
            if code not in NOT_SENT_CODES:
                uncertain = True    # -32000 / -32001: it may have been carried out
            if code != 10028:
                o.notes.append(f"cancel error {code}")
            await asyncio.sleep(self.retry_pause)
        o.client_cancel = "uncertain" if uncertain else None

    async def end(self, t: Trial, rpc: Rpc, hb_at: float | None) -> None:
        e = t.ending
        if e == ABORT:
            rpc.abort()
            t.actual_end = ABORT
            await rpc.wait_closed(5)
        elif e == CLOSE:
            try:
                await asyncio.wait_for(rpc.ws.close(1000), 10)
            except asyncio.TimeoutError:
                t.notes.append("close handshake timed out")
            t.actual_end = CLOSE
            await rpc.wait_closed(5)
            t.close_code = rpc.ws.close_code
        elif e == LOGOUT:
            await rpc.send("private/logout")
            if await rpc.wait_closed(10):
                t.actual_end = LOGOUT
                if rpc.close_code != 1000:
                    t.notes.append(f"logout closed with {rpc.close_code}")
            else:
                t.notes.append("logout did not close the connection within 10 s: aborted")
                t.actual_end = "logout-unanswered"   # unchecked: did the gateway take the logout?
                rpc.abort()
        elif e == HEARTBEAT:
            left = (hb_at or time.monotonic()) + 45 - time.monotonic()
            if await rpc.wait_closed(max(left, 1)):
                t.actual_end = HEARTBEAT
                t.notes.append(f"closed {time.monotonic() - hb_at:.1f} s after set_heartbeat "
                               f"({rpc.test_requests} test_requests, code {rpc.close_code})")
            else:
                t.notes.append("not disconnected 45 s after set_heartbeat without answers: aborted")
                t.actual_end = ABORT
                rpc.abort()
        elif e == SLOW:
            await rpc.send("public/subscribe", {"channels": SLOW_CHANNELS[t.slow_channels]})
            rpc.stop_reading()
            await asyncio.sleep(SLOW_STALL_S[t.slow_channels])
            rpc.resume_reading()
            if await rpc.wait_closed(8):
                t.actual_end = SLOW if rpc.close_code == 1008 else "closed-by-gateway"
                if rpc.close_code != 1008:
                    t.notes.append(f"slow consumer closed with {rpc.close_code} {rpc.close_reason}")
            else:
                t.notes.append(f"not closed as a slow consumer ({t.slow_channels}): aborted")
                t.actual_end = ABORT
                rpc.abort()
        elif e == SIGTERM:
            if await rpc.wait_closed(60):
                t.actual_end = SIGTERM
                if rpc.close_code != 1001:
                    t.notes.append(f"closed with {rpc.close_code} at shutdown")
            else:
                t.notes.append("not closed by the gateway's shutdown: aborted")
                t.actual_end = ABORT
                rpc.abort()
        await rpc.wait_closed(5)


# ----------------------------------------------------------------------------- checking

@dataclass
class Mismatch:
    kind: str       # wrong | missed
    trial: Trial
    order: Order
    order_id: str | None
    detail: str


def gateway_must_cancel(t: Trial) -> bool | None:
    if t.flag_end is None or t.actual_end == "logout-unanswered":
        return None
    return t.flag_end and t.actual_end != LOGOUT


async def settle(w: World, run: RoundRun, trials: list[Trial]) -> dict:
    """Waits (deadline) until every order the gateway must cancel is gone and the exchange has
    seen no order request for a while; returns the final /sim/state."""
    opts = w.opts
    if run.plan.fault and run.plan.fault[0] == "delay":
        # Responses (and the order events after them) delayed before the fault went off.
        await asyncio.sleep(max(0.0, run.fault_off_at + 3.2 - time.monotonic()))
    must_close = {o.label for t in trials if gateway_must_cancel(t) and t.connected
                  for o in t.orders if o.create != "unsent" and not o.create.startswith("refused")
                  and o.client_cancel not in ("ok", "not-open")}
    timeout_s = (w.request_timeout_ms or 15000) / 1000
    quiet_short, quiet_long = 0.7, timeout_s + 5
    deadline = time.monotonic() + opts.settle_timeout + (2 * len(must_close) / w.rate)
    # The gateway's clients must all be gone (it has seen every end).
    while time.monotonic() < deadline:
        n = await w.gateway_clients()
        if n == 0:
            break
        await asyncio.sleep(0.1)
    else:
        run.notes.append("the gateway still counted connected clients at the settlement deadline")
    last_calls, quiet_since = None, time.monotonic()
    while True:
        st = await w.sim_state()
        calls = sum(st.get("method_calls", {}).get(m, 0) for m in ORDER_METHODS)
        now = time.monotonic()
        if calls != last_calls:
            last_calls, quiet_since = calls, now
        open_labels = {o.get("label") for o in st.get("open_orders", [])}
        quiet = now - quiet_since
        # Nobody is left to cancel once the gateway has exited (a SIGTERM round).
        gateway_gone = not (w.gw and w.gw.alive())
        if ((quiet >= quiet_short and (gateway_gone or not (must_close & open_labels)))
                or quiet >= quiet_long or now > deadline):
            break
        await asyncio.sleep(0.1)
    await w.janitor_barrier()
    return await w.sim_state()


def evaluate(w: World, trials: list[Trial], state: dict, stats: Counter) -> list[Mismatch]:
    open_by_label = {o.get("label"): o for o in state.get("open_orders", [])}
    out: list[Mismatch] = []
    for t in trials:
        stats["ending " + str(t.actual_end)] += 1
        must = gateway_must_cancel(t)
        for o in t.orders:
            fed = w.feed.get(o.label)
            created = o.order_id is not None or fed is not None or o.label in open_by_label
            if not created:
                stats["orders never created"] += 1
                continue
            oid = o.order_id or (fed or {}).get("order_id")
            is_open = o.label in open_by_label
            reason = (fed or {}).get("cancel_reason")
            if o.client_cancel == "not-open":
                stats["orders closed before their client's cancel"] += 1
            if o.client_cancel in ("ok", "not-open"):
                stats["orders cancelled by their client"] += 1
                if is_open:
                    stats["orders open although their client's cancel succeeded"] += 1
                continue
            if must is None or (o.client_cancel == "uncertain" and not must):
                stats["orders unchecked"] += 1
                continue
            stats["orders checked"] += 1
            if must and is_open:
                out.append(Mismatch("missed", t, o, oid, "expected cancelled by the gateway, still open"))
            elif not must and not is_open:
                states = "/".join(s or "?" for s in (fed or {}).get("states", [])) or "no event seen"
                why = (" = the exchange's own cancel-on-disconnect: the gateway's upstream session ended"
                       if reason == "cancel_on_disconnect" else "")
                out.append(Mismatch("wrong", t, o, oid, f"expected open, found closed ({states}"
                                    + (f", cancel_reason {reason}{why})" if reason else ")")))
    return out


# ----------------------------------------------------------------------------- a variant

@dataclass
class VariantResult:
    variant: str
    trials: int = 0
    wrong: int = 0
    missed: int = 0
    rounds: int = 0
    seconds: float = 0.0
    errors: int = 0
    stats: Counter = field(default_factory=Counter)
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    harness_error: str | None = None


def describe(t: Trial) -> str:
    flag = {True: "on", False: "off", None: "unknown"}[t.flag_end]
    cfg = "on" if t.config_flag else "off"
    toggles = f" toggled {','.join(t.toggles)}" if t.toggles else ""
    end = t.actual_end if t.actual_end == t.ending else f"{t.actual_end} (planned {t.ending})"
    return f"client {t.client} flag {flag} (config {cfg}{toggles}) ending {end} close {t.close_code}"


async def run_variant(opts, variant: str, n_trials: int, bin_dir: Path, logroot: Path) -> VariantResult:
    res = VariantResult(variant)
    logdir = logroot / variant
    logdir.mkdir(parents=True, exist_ok=True)
    w = World(opts, variant, bin_dir, logdir)
    started = time.monotonic()
    try:
        await w.start_sim()
        await w.wait_credits_full()
        await w.start_gateway(0)
        rnd, index = 0, 0
        while index < n_trials:
            size = min(opts.concurrency, n_trials - index)
            if not w.gw.alive():
                rc = w.gw.p.returncode
                res.notes.append(f"gateway exited unexpectedly with {rc} before round {rnd}: restarted")
                await w.restart_gateway(rnd)
            plan = plan_round(opts.seed, variant, rnd, index, size, w.clients, w.gw_flags)
            res.digest.update(repr((plan.kind, plan.fault, plan.sync_end, [(t.client, t.config_flag, t.ending, t.ops, t.slow_channels,
                                    [(o.label, o.instrument, o.side, o.amount, o.price) for o in t.orders])
                                   for t in plan.trials])).encode())
            gw = w.gw
            run = RoundRun(w, plan, opts)
            t0 = time.monotonic()
            try:
                await run.run()
            finally:
                # Faults never outlive the round.
                if plan.fault:
                    await w.sim_post("/sim/fault/delay?ms=0")
                    await w.sim_post("/sim/fault/stop_answering?on=false")
            if plan.kind == "sigterm":
                res.stats[f"gateway exit status {run.sigterm_exit} after SIGTERM"] += 1
            # The upstream session lost during the round: the exchange's own cancel-on-disconnect
            # then cancels every order placed through it.
            for line in gw.new_log_lines("upstream connection lost"):
                if plan.kind == "sigterm" and ("logout" in line or "gateway shutdown" in line):
                    continue     # the shutdown's own end of the session
                res.stats["gateway upstream sessions lost during a round"] += 1
                run.notes.append("upstream session lost: " + line.split(" deribit-gateway: ", 1)[-1])
            if plan.kind != "sigterm" and not gw.alive():
                run.notes.append(f"gateway exited with {gw.p.returncode} during the round")
            t1 = time.monotonic()
            state = await settle(w, run, plan.trials)
            t2 = time.monotonic()
            mism = evaluate(w, plan.trials, state, res.stats)
            stray = {o.get("label") for o in state.get("open_orders", [])} - {o.label for t in plan.trials for o in t.orders}
            if stray:
                run.notes.append(f"orders of earlier rounds open: {sorted(stray)[:5]}")
            res.trials += size
            res.rounds += 1
            for t in plan.trials:
                if t.error:
                    res.errors += 1
                    res.notes.append(f"round {rnd} trial {t.index} ({t.client}): {t.error}")
            for m in mism:
                if m.kind == "wrong":
                    res.wrong += 1
                else:
                    res.missed += 1
                fault = f", fault {plan.fault[0]} {plan.fault[2]} s" if plan.fault else ""
                lines = gw.log_lines(f"order_id={m.order_id}") if m.order_id else []
                o = m.order
                extra = f"; order notes: {'; '.join(o.notes)}" if o.notes else ""
                extra += f"; trial notes: {'; '.join(m.trial.notes)}" if m.trial.notes else ""
                res.mismatches.append(
                    f"{m.kind.upper():6} {variant} round {rnd} ({plan.kind}{', synchronized ends' if plan.sync_end else ''}"
                    f"{fault}) trial {m.trial.index}: "
                    f"{describe(m.trial)}; order {o.label} id {m.order_id} ({o.side} {o.instrument}"
                    f"{', in flight at the end' if o.inflight else ''}, creation {o.create}, "
                    f"client cancel {o.client_cancel}): {m.detail}{extra}"
                    + "".join(f"\n         gateway log: {l}" for l in lines))
            for n in run.notes:
                res.notes.append(f"round {rnd}: {n}")
            if opts.verbose:
                log(f"[{variant}] round {rnd} {plan.kind}{' sync' if plan.sync_end else ''}"
                    f"{' ' + str(plan.fault) if plan.fault else ''}: "
                    f"{size} trials, {sum(m.kind == 'wrong' for m in mism)} wrong, "
                    f"{sum(m.kind == 'missed' for m in mism)} missed; trials {t1 - t0:.1f} s, settle {t2 - t1:.1f} s")
            await w.cleanup()
            await w.wait_credits_full()
            if plan.kind == "sigterm":
                await w.start_gateway(rnd + 1)
            elif not w.gw.alive():
                await w.start_gateway(rnd + 1, same_flags=True)
            elif leaked := await w.leaked_channels():
                # Rounds must not interfere: a channel left subscribed upstream keeps the exchange
                # streaming to nobody. A new gateway starts clean.
                res.notes.append(f"round {rnd}: the gateway kept {len(leaked)} market-data channels subscribed "
                                 f"upstream with no client left ({', '.join(leaked[:3])}{', …' if len(leaked) > 3 else ''}): "
                                 f"gateway restarted")
                res.stats["gateway restarts for channels left subscribed upstream"] += 1
                await w.restart_gateway(rnd + 1)
            res.notes.extend(f"round {rnd}: {n}" for n in w.notes)
            w.notes.clear()
            rnd += 1
            index += size
    except HarnessError as e:
        res.harness_error = str(e)
    finally:
        await w.close()
        res.seconds = time.monotonic() - started
    return res


# ----------------------------------------------------------------------------- main

def default_bin() -> Path:
    repo = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=repo, capture_output=True, text=True,
                             timeout=120)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired):
        pass
    return repo / ".build" / "debug"


def split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


async def amain(opts) -> int:
    bin_dir = Path(opts.bin) if opts.bin else default_bin()
    for exe in ("deribit-gateway", "deribit-sim"):
        if not os.access(bin_dir / exe, os.X_OK):
            log(f"harness error: {bin_dir / exe} not found (build first: swift build)")
            return 2
    variants = list(VARIANTS) if opts.variant == "all" else [opts.variant]
    counts = split(opts.trials, len(variants))
    own_logs = opts.log_dir is None
    logroot = Path(opts.log_dir) if opts.log_dir else Path(tempfile.mkdtemp(prefix="cod-trials-"))
    logroot.mkdir(parents=True, exist_ok=True)
    results: list[VariantResult] = []
    keep = False
    try:
        for v, n in zip(variants, counts):
            if n == 0:
                continue
            r = await run_variant(opts, v, n, bin_dir, logroot)
            results.append(r)
            extras = [f"{r.stats['orders checked']} orders checked", f"{r.stats['orders unchecked']} unchecked"]
            early = r.stats["orders closed before their client's cancel"]
            if early:
                extras.append(f"{early} closed before their own client's cancel")
            if r.errors:
                extras.append(f"{r.errors} trial errors")
            extras.append(f"{r.rounds} rounds, {r.seconds:.1f} s")
            print(f"{v}: {r.trials} trials, {r.wrong} wrong cancels, {r.missed} missed cancels ({'; '.join(extras)})",
                  flush=True)
            if opts.verbose:
                endings = ", ".join(f"{k[7:]} {c}" for k, c in sorted(r.stats.items()) if k.startswith("ending "))
                others = ", ".join(f"{k[7:]} {c}" for k, c in sorted(r.stats.items()) if k.startswith("orders "))
                gateway = ", ".join(f"{k[8:]} {c}" for k, c in sorted(r.stats.items()) if k.startswith("gateway "))
                print(f"  plan {r.digest.hexdigest()[:16]} (the same for the same seed, trials and concurrency)")
                print(f"  endings: {endings}\n  orders: {others}")
                if gateway:
                    print(f"  gateway: {gateway}")
                for m in r.mismatches:
                    print("  " + m)
                for n_ in r.notes:
                    print("  note: " + n_)
            if r.wrong or r.missed or r.errors or r.harness_error:
                keep = True
            if r.harness_error:
                print(f"harness error ({v}): {r.harness_error}", file=sys.stderr, flush=True)
                break
    finally:
        if own_logs and not keep:
            shutil.rmtree(logroot, ignore_errors=True)
        elif opts.verbose or keep:
            print(f"logs: {logroot}", file=sys.stderr)
    n = sum(r.trials for r in results)
    wrong = sum(r.wrong for r in results)
    missed = sum(r.missed for r in results)
    print(f"{n} trials, {wrong} wrong cancels, {missed} missed cancels", flush=True)
    if any(r.harness_error for r in results):
        return 2
    if wrong or missed:
        return 1
    if any(r.errors for r in results):
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Seeded randomized trials of per-client cancel-on-disconnect "
                                             "(SPEC §7) against deribit-gateway and deribit-sim.")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--trials", type=int, default=100, help="total trials (split evenly over the variants of 'all')")
    ap.add_argument("--variant", choices=(*VARIANTS, "all"), default="normal")
    ap.add_argument("--concurrency", type=int, default=8, help="trials per round, run at once (default 8)")
    ap.add_argument("--bin", help="directory holding deribit-gateway and deribit-sim "
                                  "(default: swift build --show-bin-path)")
    ap.add_argument("--request-timeout-ms", type=int, default=None,
                    help="upstream.request_timeout_ms of the gateway (default: the gateway's own, 15000, "
                         "but 5000 for low-tier)")
    ap.add_argument("--settle-timeout", type=float, default=30.0,
                    help="seconds to wait for the expected cancels after a round, plus twice the time they take at the tier's matching-engine rate (default 30)")
    ap.add_argument("--log-dir", help="keep the processes' logs and configs here (default: a temporary "
                                      "directory, kept only when something went wrong)")
    ap.add_argument("--verbose", action="store_true", help="every mismatch with its client, flag, ending and order")
    opts = ap.parse_args(argv)
    if opts.trials < 0 or opts.concurrency < 1:
        ap.error("--trials must be >= 0 and --concurrency >= 1")

    async def guarded() -> int:
        # Ctrl-C or SIGTERM cancels the run: every finally runs, then the processes are stopped.
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await amain(opts)
        except asyncio.CancelledError:
            log("interrupted")
            return 2
        except Exception:
            traceback.print_exc()
            log("harness error: unexpected exception")
            return 2

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        log("interrupted")
        return 2
    finally:
        for p in ALL_PROCS:     # every process this run started, by pid
            p.stop(grace=2.0)


if __name__ == "__main__":
    sys.exit(main())
