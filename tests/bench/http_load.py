#!/usr/bin/python3
"""HTTP send-API load generator (Python standard library only, asyncio).

    http_load.py --url http://HOST:PORT/api/v2/emails/send.json --api-user U --api-key K
                 --from sender@shop.example --to rcpt@dest.example
                 [--messages N] [--connections C] [--size BYTES] [--rate R --duration D]

Each request is a Customers Mail Cloud v2 JSON send: {"api_user", "api_key", "to": [{"address",
"name"}], "from": {"address", "name"}, "subject": "bench N", "text": BYTES of filler}. A request
succeeds if the answer is HTTP 200 with a JSON body that has "id". Any other answer and any
connection error count as one error for that request (counted by kind, not fatal).

Closed loop (the default): C workers each hold one keep-alive HTTP/1.1 connection and send POSTs
back to back until N requests have been sent in total. rate = ok / seconds measures throughput.
Latency is from writing the request to reading the end of the answer.

Open loop (--rate R --duration D): request i is scheduled at t0 + i/R. A free worker takes the
next request and waits for its time if it is still ahead. If all C connections are busy, the
request starts late, and its latency still counts from its scheduled time, so queueing shows
(no coordinated omission). After D seconds of scheduling, outstanding answers get at most 10 s.
Requests still in flight or never started then count as errors ("timeout", "unsent").

Responses: Content-Length, chunked, or read-to-close bodies. The connection is reused unless the
server says "Connection: close" (or answers HTTP/1.0 without keep-alive). It is reopened for the
next request when the server has closed it. A request that hits a close race still counts as an
error: POST is not idempotent, so it is not retried.

Output: human-readable lines on stderr. The last line on stdout is JSON: {"messages", "ok",
"errors", "seconds", "rate", "p50_ms", "p99_ms"}, plus "p90_ms", "max_ms", "error_kinds" and
"client_cpu_s". Percentiles are nearest-rank over successful requests only.

Caveats. The client is one Python process on one core. If client_cpu_s is close to seconds, the
client is the bottleneck: run several processes. Measured on the 2-core VM, one process did
about 10,000 req/s (4 KB text) against a trivial asyncio stub at about half a core. On 2 cores the
client and the server compete for CPU.
"""
import argparse
import asyncio
import collections
import json
import sys
import time
import urllib.parse

import loadstats


class HttpError(Exception):
    pass


def filler(size):
    line = "The quick brown fox jumps over the lazy dog, bench filler text 0123456789.\n"
    return (line * (size // len(line) + 1))[:size]


async def read_response(reader):
    """Return (status, body bytes, keep_alive)."""
    status_line = await reader.readline()
    if not status_line.endswith(b"\n"):
        raise HttpError("closed")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise HttpError("bad status line")
    version, status = parts[0], int(parts[1])
    headers = {}
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise HttpError("closed")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    conn = headers.get(b"connection", b"")
    keep = b"close" not in conn and (version != b"HTTP/1.0" or b"keep-alive" in conn)
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        chunks = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(chunks)
    elif b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif status in (204, 304) or 100 <= status < 200:
        body = b""
    else:
        body, keep = await reader.read(), False  # delimited by close
    return status, body, keep


class Worker:
    def __init__(self, args, stats):
        self.args, self.stats = args, stats
        self.reader = self.writer = None
        u = urllib.parse.urlsplit(args.url)
        if u.scheme != "http":
            raise SystemExit("only http:// URLs")
        self.host, self.port = u.hostname, u.port or 80
        self.head = (f"POST {u.path or '/'}{'?' + u.query if u.query else ''} HTTP/1.1\r\n"
                     f"Host: {u.netloc}\r\nContent-Type: application/json\r\n"
                     "Accept: application/json\r\nUser-Agent: hato-http-load\r\n")

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, i):
        a = self.args
        body = json.dumps({"api_user": a.api_user, "api_key": a.api_key,
                           "to": [{"address": a.rcpt, "name": "Rcpt"}],
                           "from": {"address": a.sender, "name": "Bench"},
                           "subject": f"bench {i}", "text": self.stats["text"]}).encode()
        if self.writer is None or self.reader.at_eof():  # the server closed an idle connection
            self.close()
            await self.connect()
        self.writer.write(self.head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode()
                          + body)
        status, answer, keep = await read_response(self.reader)
        if not keep:
            self.close()
        if status != 200:
            raise HttpError(f"HTTP {status}")
        try:
            doc = json.loads(answer)
        except ValueError:
            raise HttpError("200 without JSON") from None
        if not isinstance(doc, dict) or "id" not in doc:
            raise HttpError("200 without id")

    async def run(self, next_index, t0):
        s, rate = self.stats, self.args.rate
        while True:
            i = next_index()
            if i is None:
                return
            start = time.monotonic()
            if rate:  # open loop: latency counts from the scheduled time
                due = t0 + i / rate
                if due > start:
                    await asyncio.sleep(due - start)
                start = due
            s["sent"] += 1
            try:
                await self.post(i)
                done = time.monotonic()
                s["lat"].append(done - start)
                s["last"] = done
            except asyncio.CancelledError:
                s["kinds"]["timeout"] += 1
                self.close()
                raise
            except (OSError, HttpError, ValueError, asyncio.IncompleteReadError) as e:
                kind = str(e) if isinstance(e, HttpError) else type(e).__name__
                s["kinds"][kind] += 1
                self.close()
                if isinstance(e, OSError):
                    await asyncio.sleep(0.05)  # do not spin on a refused connection



async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--api-user", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--from", dest="sender", default="sender@shop.example")
    p.add_argument("--to", dest="rcpt", default="rcpt@dest.example")
    p.add_argument("--messages", type=int, default=5000, help="closed loop: total requests")
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--size", type=int, default=4096, help="bytes of text")
    p.add_argument("--rate", type=float, help="open loop: offered requests/second")
    p.add_argument("--duration", type=float, help="open loop: seconds of scheduling")
    args = p.parse_args()
    if (args.rate is None) != (args.duration is None):
        p.error("--rate and --duration go together")
    if (args.rate is not None and args.rate <= 0) or args.connections < 1:
        p.error("--rate must be > 0 and --connections >= 1")
    total = int(args.rate * args.duration) if args.rate else args.messages
    stats = {"sent": 0, "lat": [], "kinds": collections.Counter(), "last": None,
             "text": filler(args.size)}
    counter = iter(range(total))
    workers = [Worker(args, stats) for _ in range(args.connections)]
    mode = (f"open loop, {args.rate:g} req/s for {args.duration:g} s" if args.rate
            else "closed loop")
    print(f"{mode}: {total} requests, text of {args.size} bytes, {args.connections} "
          f"connections, {args.url}", file=sys.stderr)
    # Open the connections before t0, so the first requests do not pay for it.
    opened = await asyncio.gather(*(w.connect() for w in workers), return_exceptions=True)
    for w, r in zip(workers, opened):
        if isinstance(r, Exception):
            print(f"connect: {r!r} (retried per request)", file=sys.stderr)
            w.close()
    cpu0, t0 = time.process_time(), time.monotonic()
    tasks = [asyncio.create_task(w.run(lambda: next(counter, None), t0)) for w in workers]
    _, pending = await asyncio.wait(tasks, timeout=(args.duration + 10) if args.rate else None)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for w in workers:
        w.close()
    cpu = time.process_time() - cpu0
    lat, common = loadstats.summary(stats, total, cpu)
    ok = len(lat)
    seconds = (stats["last"] or time.monotonic()) - t0
    if args.rate:
        seconds = max(seconds, args.duration)
    out = {"messages": total, "seconds": round(seconds, 3),
           "rate": round(ok / seconds, 1) if seconds else 0.0, **common}
    loadstats.report(out, cpu, f"of {total} in {out['seconds']} s, {out['rate']} req/s",
                     sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
