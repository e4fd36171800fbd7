#!/usr/bin/env python3
"""Opens N connections to HOST:PORT and holds them all idle until stdin closes. Prints
"ready <opened>" once all are idle.

    bench/idle.py 127.0.0.1 18080 10000 [h1|tls-h1|tls-h2] < fifo

h1 (the default) and tls-h1 send one keep-alive request each and read its answer; tls-h2
negotiates h2 by ALPN, sends the preface and an empty SETTINGS frame, reads the server's
SETTINGS and acknowledges it: an idle browser connection. Connections open BATCH at a time
(env IDLE_BATCH, default 500; 0 opens all at once).
"""
import asyncio
import os
import resource
import ssl
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"


def tls_context(alpn):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([alpn])
    return ctx


async def request(r, w):
    w.write(b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n")
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await r.readexactly(length)


async def h2_settings(r, w):
    w.write(PREFACE + SETTINGS)
    while True:  # frames until the server's (non-ACK) SETTINGS
        head = await r.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        await r.readexactly(length)
        if head[3] == 4 and not head[4] & 1:
            break
    w.write(SETTINGS_ACK)
    await w.drain()


async def one(host, port, mode, conns):
    if mode == "h1":
        r, w = await asyncio.open_connection(host, port)
        await request(r, w)
    elif mode == "tls-h1":
        r, w = await asyncio.open_connection(host, port, ssl=tls_context("http/1.1"))
        await request(r, w)
    elif mode == "tls-h2":
        r, w = await asyncio.open_connection(host, port, ssl=tls_context("h2"))
        await h2_settings(r, w)
    else:
        raise SystemExit(f"unknown mode {mode}")
    conns.append((r, w))


async def main(host, port, n, mode):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 1024)), hard))
    batch = int(os.environ.get("IDLE_BATCH", "500")) or n
    conns = []
    for start in range(0, n, batch):
        opening = [one(host, port, mode, conns) for _ in range(start, min(n, start + batch))]
        for res in await asyncio.gather(*opening, return_exceptions=True):
            if isinstance(res, Exception):
                print(f"connection failed: {res!r}", file=sys.stderr)
    print(f"ready {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    mode = sys.argv[4] if len(sys.argv) > 4 else "h1"
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), mode))
