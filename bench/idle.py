#!/usr/bin/env python3
"""Opens N keep-alive connections to HOST:PORT, sends one request on each and reads its answer,
then holds them all idle until stdin closes. Prints "ready <opened>" once all are idle.

    bench/idle.py 127.0.0.1 18080 10000 < fifo
"""
import asyncio
import resource
import sys


async def one(host, port, conns):
    r, w = await asyncio.open_connection(host, port)
    w.write(b"GET /1k HTTP/1.1\r\nHost: bench\r\n\r\n")
    head = await r.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await r.readexactly(length)
    conns.append((r, w))


async def main(host, port, n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 1024)), hard))
    conns = []
    for start in range(0, n, 500):
        batch = [one(host, port, conns) for _ in range(start, min(n, start + 500))]
        for res in await asyncio.gather(*batch, return_exceptions=True):
            if isinstance(res, Exception):
                print(f"connection failed: {res!r}", file=sys.stderr)
    print(f"ready {len(conns)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
