#!/usr/bin/env python3
"""An independent JSON-RPC client (the `websockets` library) for the gateway's end-to-end tests.

    rpc_peer.py URL SCRIPT

SCRIPT is a JSON array of steps, run in order on one connection:

    {"send": TEXT}                   send TEXT as one text message, byte for byte
    {"until_id": ID_JSON}            read until the response whose raw id is ID_JSON (e.g. "1",
                                     "\\"x\\"")
    {"until_contains": TEXT}         read until a message containing TEXT
    {"collect": N, "contains": TEXT} read until N more messages containing TEXT were seen
    {"print": WORD}                  print WORD on its own line (a marker the test waits for)
    {"wait_stdin": true}             wait for one line on stdin (the test says "go on")

Every message received is printed as `MSG <JSON string of the text>` so that the test sees the
exact bytes; the end is `DONE` (exit 0), a failure `ERROR <text>` (exit 1).
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect


def has_id(text: str, id_json: str) -> bool:
    return f'"id":{id_json},' in text or f'"id":{id_json}}}' in text


async def run(url: str, steps) -> int:
    loop = asyncio.get_running_loop()
    async with connect(url, max_size=64 * 1024 * 1024, compression=None, ping_interval=None,
                       open_timeout=10, close_timeout=5) as ws:

        async def recv() -> str:
            text = await asyncio.wait_for(ws.recv(), 30)
            print("MSG " + json.dumps(text), flush=True)
            return text

        for step in steps:
            if "send" in step:
                await ws.send(step["send"])
            elif "until_id" in step:
                while not has_id(await recv(), step["until_id"]):
                    pass
            elif "until_contains" in step:
                while step["until_contains"] not in await recv():
                    pass
            elif "collect" in step:
                seen = 0
                while seen < step["collect"]:
                    if step.get("contains", "") in await recv():
                        seen += 1
            elif "print" in step:
                print(step["print"], flush=True)
            elif "wait_stdin" in step:
                await loop.run_in_executor(None, sys.stdin.readline)
            else:
                raise ValueError(f"unknown step {step}")
        await ws.close(1000, "done")
    print("DONE", flush=True)
    return 0


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return asyncio.run(asyncio.wait_for(run(sys.argv[1], json.loads(sys.argv[2])), 90))
    except Exception as error:  # noqa: BLE001 - any failure is reported to the test
        print(f"ERROR {type(error).__name__}: {error}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
