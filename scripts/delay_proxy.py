#!/usr/bin/env python3
"""A TCP relay on 127.0.0.1 that adds round-trip time, for scripts/bench_remote.sh.

    scripts/delay_proxy.py UPSTREAM_PORT RTT_MS PORT_FILE

Listens on a free port of 127.0.0.1 (written to PORT_FILE once it listens) and relays every
connection to 127.0.0.1:UPSTREAM_PORT. It adds RTT_MS to each round trip: the connection to the
upstream is opened RTT_MS after the client's (a TCP handshake costs one round trip), and every
byte from the client reaches the upstream RTT_MS after it arrived (in order), so each request and
its answer take RTT_MS longer. The answers are relayed as they come, unthrottled: this models the
latency of a distant store, not a link's bandwidth-delay product (TCP's window growth is not
slowed). Used because this machine's kernel has no netem qdisc (`tc qdisc ... netem` answers
"Specified qdisc kind is unknown"). Stops on SIGTERM.
"""
import asyncio
import signal
import sys

upstream_port = int(sys.argv[1])
delay = float(sys.argv[2]) / 1000.0
port_file = sys.argv[3]


async def pipe_delayed(reader, writer):
    # Each chunk is held until RTT after it arrived; order is kept (one queue per direction).
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                writer.write_eof() if writer.can_write_eof() else None
                return
            writer.write(data)
            await writer.drain()

    await asyncio.gather(read(), write())


async def pipe(reader, writer):
    while True:
        data = await reader.read(1 << 20)
        if not data:
            if writer.can_write_eof():
                writer.write_eof()
            return
        writer.write(data)
        await writer.drain()


async def handle(c_reader, c_writer):
    try:
        await asyncio.sleep(delay)
        u_reader, u_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        c_writer.close()
        return
    try:
        await asyncio.gather(pipe_delayed(c_reader, u_writer), pipe(u_reader, c_writer))
    except (ConnectionError, OSError):
        pass
    finally:
        for w in (u_writer, c_writer):
            try:
                w.close()
            except Exception:
                pass


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    import os
    os.rename(port_file + ".tmp", port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


asyncio.run(main())
