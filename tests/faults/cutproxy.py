#!/usr/bin/python3
"""TCP relay for fault tests: forwards 127.0.0.1:<own port> to a target and,
on SIGUSR1, resets every connection it is relaying (new ones still work).
Usage: cutproxy.py TARGET_HOST TARGET_PORT PORT_FILE"""
import asyncio
import signal
import socket
import struct
import sys

conns = set()


def reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # linger 0: close() sends RST, as a cut cable or a dead NAT entry would
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def cut():
    n = len(conns)
    for pair in list(conns):
        for w in pair:
            reset(w)
    conns.clear()
    print("cutproxy: cut %d connections" % n, file=sys.stderr, flush=True)


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


async def handle(host, port, creader, cwriter):
    try:
        breader, bwriter = await asyncio.open_connection(host, port)
    except OSError:
        cwriter.transport.abort()
        return
    pair = (cwriter, bwriter)
    conns.add(pair)
    await asyncio.gather(pipe(creader, bwriter), pipe(breader, cwriter))
    conns.discard(pair)


async def main():
    host, port, port_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    server = await asyncio.start_server(lambda r, w: handle(host, port, r, w), "127.0.0.1", 0)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, cut)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.sockets[0].getsockname()[1])
    import os
    os.rename(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


asyncio.run(main())
