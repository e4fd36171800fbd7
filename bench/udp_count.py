#!/usr/bin/env python3
"""Counts syslog datagrams: bench/udp_count.py PORT OUTFILE. Binds 127.0.0.1:PORT with a large
receive buffer, counts every datagram until SIGTERM, then writes the count to OUTFILE."""
import signal, socket, sys

port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.bind(("127.0.0.1", port))
count = 0
def stop(*_):
    with open(out, "w") as f:
        f.write(f"{count}\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
buf = bytearray(65536)
with open(out + ".ready", "w") as f:
    f.write("ready\n")
while True:
    s.recv_into(buf)
    count += 1
