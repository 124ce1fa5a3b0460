#!/usr/bin/env python3
"""An independent Deribit client (the `websockets` library) for the deribit-sim interop test.

    sim_peer.py PORT [CLIENT_ID CLIENT_SECRET]

Talks to ws://127.0.0.1:PORT/ws/api/v2 and http://127.0.0.1:PORT/api/v2 the way a Python
strategy would: public/hello, public/get_time, public/auth (client_signature), an incremental
book subscription whose change_id chain it checks over 100 messages, a resting private/buy that
it cancels, a frame over 32 kB, and Deribit's HTTP GET API. Prints one JSON summary line and
exits 0 when every check passed, else 1.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request

from websockets.asyncio.client import connect

BOOK = "book.BTC-PERPETUAL.100ms"


class Peer:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.pending = []  # messages read while waiting for something else

    async def recv(self, timeout=20):
        if self.pending:
            return self.pending.pop(0)
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def call(self, method, params=None, raw_id=None):
        self.next_id += 1
        rid = raw_id if raw_id is not None else self.next_id
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}))
        kept = []
        deadline = time.monotonic() + 20
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic())))
            if msg.get("id") == rid and "method" not in msg:
                self.pending = kept + self.pending
                return msg
            kept.append(msg)


async def run(port, client_id, client_secret):
    checks = {}
    failures = []

    def check(name, ok, detail=""):
        checks[name] = bool(ok)
        if not ok:
            failures.append(f"{name}: {detail}")

    url = f"ws://127.0.0.1:{port}/ws/api/v2"
    async with connect(url, max_size=8 * 1024 * 1024, compression=None, ping_interval=None,
                       open_timeout=10, close_timeout=10) as ws:
        peer = Peer(ws)

        r = await peer.call("public/hello", {"client_name": "sim_peer", "client_version": "1.0"}, raw_id="hello-1")
        check("hello", r.get("id") == "hello-1" and isinstance(r.get("result", {}).get("version"), str)
              and r.get("jsonrpc") == "2.0" and r.get("testnet") is True, r)
        check("envelope_times", all(isinstance(r.get(k), int) for k in ("usIn", "usOut", "usDiff"))
              and r["usOut"] - r["usIn"] == r["usDiff"] and r["usDiff"] >= 0, r)

        r = await peer.call("public/get_time")
        check("get_time", isinstance(r.get("result"), int) and abs(r["result"] - time.time() * 1000) < 5000, r)

        timestamp = int(time.time() * 1000)
        nonce = secrets.token_hex(8)
        signature = hmac.new(client_secret.encode(), f"{timestamp}\n{nonce}\n".encode(), hashlib.sha256).hexdigest()
        r = await peer.call("public/auth", {"grant_type": "client_signature", "client_id": client_id,
                                            "timestamp": timestamp, "nonce": nonce, "signature": signature, "data": ""})
        result = r.get("result", {})
        check("auth_signature", result.get("token_type") == "bearer" and result.get("expires_in") == 31536000
              and isinstance(result.get("access_token"), str), r)
        token = result.get("access_token", "")

        r = await peer.call("public/auth", {"grant_type": "client_credentials", "client_id": client_id,
                                            "client_secret": "wrong"})
        check("auth_rejected", r.get("error", {}).get("code") == 13004 and "result" not in r, r)

        r = await peer.call("public/subscribe", {"channels": [BOOK, "no.such.channel"]})
        check("subscribe_result", r.get("result") == [BOOK], r)
        prev = None
        chain_ok = True
        seen = 0
        first_type = None
        while seen < 100:
            msg = await peer.recv()
            if msg.get("method") != "subscription" or msg["params"]["channel"] != BOOK:
                continue
            data = msg["params"]["data"]
            if first_type is None:
                first_type = data.get("type")
            elif data.get("prev_change_id") != prev:
                chain_ok = False
            prev = data.get("change_id")
            seen += 1
        check("book_snapshot_first", first_type == "snapshot", first_type)
        check("book_chain", chain_ok and seen == 100, f"seen {seen}")
        r = await peer.call("public/unsubscribe", {"channels": [BOOK]})
        check("unsubscribe", r.get("result") == [BOOK], r)

        r = await peer.call("private/buy", {"instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 40000,
                                            "label": "py-peer"})
        order = r.get("result", {}).get("order", {})
        check("buy_rests", order.get("order_state") == "open" and r["result"].get("trades") == [], r)
        r = await peer.call("private/cancel", {"order_id": order.get("order_id", "")})
        check("cancel", r.get("result", {}).get("order_state") == "cancelled", r)

        big = json.dumps({"jsonrpc": "2.0", "id": 4242, "method": "public/test", "params": {"pad": "x" * 40000}})
        await ws.send(big)
        msg = await peer.recv()
        while msg.get("method") == "subscription":
            msg = await peer.recv()
        check("frame_over_32kB", msg.get("error", {}).get("code") == -32600 and "id" not in msg, msg)
        r = await peer.call("public/test")
        check("open_after_big_frame", "result" in r, r)

        await ws.close(1000, "done")

    def http_get(path, token=None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    status, body = http_get("/api/v2/public/get_instruments?currency=BTC")
    check("http_get_instruments", status == 200 and "id" not in body and body["result"]
          and all(i["base_currency"] == "BTC" for i in body["result"]), (status, body))
    status, body = http_get("/api/v2/private/get_open_orders_by_currency?currency=BTC", token)
    check("http_private_bearer", status == 200 and isinstance(body.get("result"), list), (status, body))
    status, body = http_get("/api/v2/private/get_open_orders_by_currency?currency=BTC")
    check("http_private_unauthorized", status == 400 and body.get("error", {}).get("code") == 13009, (status, body))

    return checks, failures


def main():
    port = int(sys.argv[1])
    client_id = sys.argv[2] if len(sys.argv) > 2 else "sim-client"
    client_secret = sys.argv[3] if len(sys.argv) > 3 else "sim-secret"
    try:
        checks, failures = asyncio.run(asyncio.wait_for(run(port, client_id, client_secret), 90))
    except Exception as error:  # noqa: BLE001 - any failure is a failed interop run
        checks, failures = {}, [f"{type(error).__name__}: {error}"]
    ok = not failures and bool(checks)
    print(json.dumps({"ok": ok, "checks": checks, "failures": failures}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
