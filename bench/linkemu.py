#!/usr/bin/env python3
"""A userspace link emulator for benchmarks: a TCP proxy on 127.0.0.1 whose two directions are
paced to a rate (token buckets shared by every connection through it), with an optional one-way
delay. This kernel has no netem; the proxy gives each benchmark peer a link of its own.

    linkemu.py --to 127.0.0.1:PORT --rate 20mbit [--up-rate 100mbit] [--delay-ms 0]

--rate paces what the target sends (its egress: the direction a seed's uploads take); --up-rate
paces what clients send to it (default: unpaced). Prints one JSON line {"port": N} when
listening; on SIGTERM/SIGINT (or every second to --stats FILE) it reports {"down": bytes the
target sent, "up": bytes it received}.
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time


def parse_rate(text):
    units = {"kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8, "kb": 1e3, "mb": 1e6}
    for u, mult in units.items():
        if text.lower().endswith(u):
            return float(text[: -len(u)]) * mult
    return float(text)


class Bucket:
    """Bytes per second, shared by every connection in one direction; bursts up to 64 KiB."""

    def __init__(self, rate):
        self.rate = rate
        self.tokens = 0.0
        self.last = time.monotonic()

    async def take(self, n):
        if self.rate <= 0:
            return
        while True:
            now = time.monotonic()
            self.tokens = min(self.tokens + (now - self.last) * self.rate, 65536.0)
            self.last = now
            if self.tokens >= n:
                self.tokens -= n
                return
            await asyncio.sleep(max((n - self.tokens) / self.rate, 0.001))


async def pipe(reader, writer, bucket, delay, counter, key):
    """Paced by the bucket as bytes enter the link; each chunk leaves `delay` after it entered.
    The delay is latency, not a pause per chunk: chunks in flight overlap, as on a real link
    (sleeping per chunk would cap one connection at chunk/delay, 655 KB/s at 25 ms)."""
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                return
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            counter[key] += len(data)
            await writer.drain()

    out = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(16384)
            if not data:
                break
            await bucket.take(len(data))
            await queue.put((time.monotonic() + delay, data))
        await queue.put((0, None))
        await out
    except (ConnectionError, asyncio.CancelledError):
        out.cancel()
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True)
    ap.add_argument("--rate", default="0")
    ap.add_argument("--up-rate", default="0")
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--stats")
    a = ap.parse_args()
    host, port = a.to.rsplit(":", 1)
    down, up = Bucket(parse_rate(a.rate)), Bucket(parse_rate(a.up_rate))
    counter = {"down": 0, "up": 0}
    delay = a.delay_ms / 1000

    async def handle(cr, cw):
        try:
            tr, tw = await asyncio.open_connection(host, int(port))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(tr, cw, down, delay, counter, "down"),
                             pipe(cr, tw, up, delay, counter, "up"))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)

    async def report():
        while a.stats:
            with open(a.stats + ".tmp", "w") as f:
                json.dump(counter, f)
            os.replace(a.stats + ".tmp", a.stats)
            await asyncio.sleep(1)

    task = asyncio.create_task(report())
    await stop.wait()
    task.cancel()
    if a.stats:
        with open(a.stats, "w") as f:
            json.dump(counter, f)
    print(json.dumps(counter), file=sys.stderr)


asyncio.run(main())
