#!/usr/bin/env python3
"""An independent WebSocket peer (the `websockets` library) for the Transport interop tests.

    ws_peer.py server [--tls CERT KEY]   bind 127.0.0.1:0, print "PORT <n>", echo every message;
                                         exit when stdin closes or on SIGTERM.
    ws_peer.py client URL                send text messages of several sizes plus one fragmented
                                         message, check each echo byte for byte, print a JSON
                                         summary line; exit 0 when everything matched, else 1.
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import threading

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

MAX_SIZE = 4 * 1024 * 1024
SIZES = [0, 125, 126, 64 * 1024, 1024 * 1024]


def payload(size: int, seed: int) -> str:
    """Deterministic printable ASCII, so that the byte count equals the character count."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    return "".join(alphabet[(i * 31 + seed) % len(alphabet)] for i in range(size))


async def run_server(tls) -> int:
    ssl_context = None
    if tls:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(tls[0], tls[1])

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    def watch_stdin():
        # The test holds our stdin open; EOF means the test process is gone.
        try:
            # os.read, not sys.stdin: a buffered reader blocked at shutdown aborts the interpreter.
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        try:
            loop.call_soon_threadsafe(stop.set)
        except RuntimeError:
            pass  # the loop already ended

    threading.Thread(target=watch_stdin, daemon=True).start()

    async with serve(echo, "127.0.0.1", 0, ssl=ssl_context, max_size=MAX_SIZE,
                     compression=None, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await stop.wait()
    return 0


async def run_client(url: str) -> int:
    results = []
    ok = True
    close_code = None
    try:
        async with connect(url, max_size=MAX_SIZE, compression=None, ping_interval=None,
                           open_timeout=10, close_timeout=10) as ws:
            for seed, size in enumerate(SIZES):
                sent = payload(size, seed)
                await ws.send(sent)
                echoed = await asyncio.wait_for(ws.recv(), 20)
                match = echoed == sent
                ok = ok and match
                results.append({"size": size, "ok": match,
                                "got": len(echoed.encode()) if isinstance(echoed, str) else None})
            # One message in several frames (RFC 6455 §5.4): an iterable is sent fragmented.
            fragments = [payload(1000, 7), "", payload(70000, 8), "é✓ UTF-8 spans fragments"]
            await ws.send(fragments)
            echoed = await asyncio.wait_for(ws.recv(), 20)
            match = echoed == "".join(fragments)
            ok = ok and match
            results.append({"fragmented": len(fragments), "ok": match})
            await ws.close(1000, "done")
            close_code = ws.close_code
    except Exception as error:  # noqa: BLE001 - any failure is a failed interop run
        ok = False
        results.append({"error": f"{type(error).__name__}: {error}"})
    ok = ok and close_code == 1000
    print(json.dumps({"ok": ok, "close_code": close_code, "results": results}), flush=True)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server")
    server.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    client = sub.add_parser("client")
    client.add_argument("url")
    args = parser.parse_args()
    if args.command == "server":
        return asyncio.run(run_server(args.tls))
    return asyncio.run(asyncio.wait_for(run_client(args.url), 60))


if __name__ == "__main__":
    sys.exit(main())
