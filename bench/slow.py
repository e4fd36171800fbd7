#!/usr/bin/env python3
"""N slow readers of a large response for SECONDS, then gone. Prints "started <n>" once every
request is sent and "done" when all have closed.

    bench/slow.py 127.0.0.1 18080 200 20 tcp      # HTTP/1.1, a small receive buffer, 4 KiB
                                                  # read every 100 ms
    bench/slow.py 127.0.0.1 18443 200 20 h2       # HTTP/2 over TLS, stream window 0: the
                                                  # server may send nothing until it grows
"""
import asyncio
import socket
import ssl
import sys

PATH = b"/10m"


def hpack_get(path, authority):
    # :method GET, :scheme https (static table), :path and :authority as literals with an
    # indexed name, without indexing (RFC 7541 6.2.2); all lengths < 127.
    return (b"\x82\x87" + b"\x04" + bytes([len(path)]) + path
            + b"\x01" + bytes([len(authority)]) + authority)


async def tcp_reader(host, port, seconds, started):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    r, w = await asyncio.open_connection(sock=sock, limit=4096)
    w.write(b"GET " + PATH + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
    started.append(1)
    end = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < end:
        if not await r.read(4096):
            break
        await asyncio.sleep(0.1)
    w.close()


async def h2_reader(host, port, seconds, started):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    r, w = await asyncio.open_connection(host, port, ssl=ctx)
    # SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream may receive DATA until a WINDOW_UPDATE.
    settings = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x04\x00\x00\x00\x00"
    block = hpack_get(PATH, b"localhost")
    headers = len(block).to_bytes(3, "big") + b"\x01\x05\x00\x00\x00\x01" + block
    w.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + headers)
    started.append(1)
    try:
        await asyncio.wait_for(drain_frames(r, w), seconds)
    except asyncio.TimeoutError:
        pass
    w.close()


async def drain_frames(r, w):
    while True:
        head = await r.readexactly(9)
        await r.readexactly(int.from_bytes(head[:3], "big"))
        if head[3] == 4 and not head[4] & 1:  # the server's SETTINGS: acknowledged
            w.write(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")


async def main(host, port, n, seconds, mode):
    reader = {"tcp": tcp_reader, "h2": h2_reader}[mode]
    started = []
    tasks = [asyncio.create_task(reader(host, port, seconds, started)) for _ in range(n)]
    while len(started) < n and not all(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    print(f"started {len(started)}", flush=True)
    for res in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(res, Exception):
            print(f"reader failed: {res!r}", file=sys.stderr)
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))
