#!/usr/bin/python3
"""Open-loop SMTP latency generator (Python standard library only, asyncio).

    smtp_latency.py --target HOST:PORT --rate R --duration D --connections C --size BYTES
                    [--from a@src.example] [--to b@dest.example] [--no-pipelining]

Method. Message i (0 <= i < R*D) is scheduled at t0 + i/R, whatever the server does. C workers
each hold one persistent SMTP connection (greeting and EHLO once, then MAIL/RCPT/DATA/"." per
message; a closed or failed connection is reopened for the next message). A free worker takes
the next unsent message and waits for its scheduled time if that is still ahead. When all C
connections are busy, messages start late, and their latency still counts from the scheduled
time, so queueing shows up in the percentiles (no coordinated omission). Latency is measured
from the scheduled time to the 250 after the final ".". If the server advertises PIPELINING,
MAIL, RCPT and DATA go out in one write (RFC 2920), as a real MTA client would do.

Each message is a valid RFC 5322 message (From, To, Subject, Date, a unique Message-ID) padded
with filler lines to BYTES bytes before dot-stuffing. Some filler lines start with ".", so the
server's dot-unstuffing is exercised. Lines end in CRLF.

Errors: a non-2xx reply (354 for DATA) or a connection error counts as one error for that
message. Scheduling stops after D seconds, then outstanding replies get at most 10 s. Messages
still in flight or never started when that time runs out count as errors ("timeout" or "unsent").
They are not included in the percentiles. Percentiles cover successful messages only.

Output: human-readable lines on stderr. The last line on stdout is JSON: {"offered_rate",
"achieved_rate", "sent", "ok", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms"}, plus
"error_kinds" and "client_cpu_s". achieved_rate = ok / (time from t0 to the last 250 reply,
and at least D).

Caveats. The generator is one Python process on one core. Check its ceiling against smtp-sink
first, and compare client_cpu_s with the wall time. If they are close, the client is the
bottleneck, so split the load over several processes. Measured on the 2-core VM: about 10,000
msg/s of 4 KB with pipelining, at the same moment as smtp-source -d (one connection per session)
did 9,500. A server that closes a connection just as a message is sent causes one error; the
message is not retried. The latencies include the client's own
event-loop delay. At rates near the client's ceiling, this delay is not negligible.
"""
import argparse
import asyncio
import collections
import email.utils
import json
import sys
import time
import uuid

import loadstats

RUN = uuid.uuid4().hex  # Message-ID: <RUN.i@bench.invalid>, unique per message


def header(i, sender, rcpt):
    return (f"From: Bench <{sender}>\r\nTo: <{rcpt}>\r\nSubject: bench {i:09d}\r\n"
            f"Date: {email.utils.formatdate(localtime=True)}\r\n"
            f"Message-ID: <{RUN}.{i:09d}@bench.invalid>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n").encode()


def filler(head_len, size):
    """Body lines bringing the message to `size` bytes, already dot-stuffed."""
    lines, n, k = [], head_len, 0
    while n < size:
        # 76 characters + CRLF; every 10th line starts with "." (stuffed below).
        line = (("." if k % 10 == 0 else "x") + f"{k:06d}" + "abcdefghij" * 7)[:76] + "\r\n"
        if size - n < len(line):  # the last line: shorter, but at least "x\r\n"
            line = "x" * max(1, size - n - 2) + "\r\n"
        lines.append(line)
        n += len(line)
        k += 1
    return ("\r\n" + "".join(lines)).replace("\r\n.", "\r\n..")[2:].encode()


class SmtpError(Exception):
    pass


async def reply(reader):
    """Read one (possibly multi-line) reply; return (code, text)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise SmtpError("closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[0][:3]), b"".join(lines)


def expect(code, want, step):
    if code // 100 != want:
        raise SmtpError(f"{step} {code}")


class Worker:
    def __init__(self, args, stats):
        self.args, self.stats = args, stats
        self.reader = self.writer = None
        self.pipelining = False

    async def connect(self):
        host, port = self.args.target.rsplit(":", 1)
        self.reader, self.writer = await asyncio.open_connection(host, int(port))
        code, _ = await reply(self.reader)
        expect(code, 2, "greeting")
        self.writer.write(b"EHLO bench.invalid\r\n")
        code, text = await reply(self.reader)
        expect(code, 2, "EHLO")
        self.pipelining = b"PIPELINING" in text.upper() and not self.args.no_pipelining

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def send(self, msg):
        if self.writer is None or self.reader.at_eof():  # the server may close idle sessions
            self.close()
            await self.connect()
        w, r, a = self.writer, self.reader, self.args
        cmds = [f"MAIL FROM:<{a.sender}>\r\n".encode(), f"RCPT TO:<{a.rcpt}>\r\n".encode(),
                b"DATA\r\n"]
        if self.pipelining:
            w.write(b"".join(cmds))
            replies = [await reply(r) for _ in cmds]
        else:
            replies = []
            for c in cmds:
                w.write(c)
                replies.append(await reply(r))
                if replies[-1][0] // 100 != (3 if c == b"DATA\r\n" else 2):
                    break
        for (code, _), step, want in zip(replies, ("MAIL", "RCPT", "DATA"), (2, 2, 3)):
            expect(code, want, step)
        w.write(msg + b".\r\n")
        code, _ = await reply(r)
        expect(code, 2, "end of DATA")

    async def run(self, queue_next, t0):
        s, a = self.stats, self.args
        while True:
            i = queue_next()
            if i is None:
                return
            due = t0 + i / self.args.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            s["sent"] += 1
            try:
                await self.send(header(i, a.sender, a.rcpt) + s["body"])
                done = time.monotonic()
                s["lat"].append(done - due)
                s["last"] = done
            except asyncio.CancelledError:
                s["kinds"]["timeout"] += 1
                self.close()
                raise
            except (OSError, SmtpError, ValueError) as e:
                kind = str(e) if isinstance(e, SmtpError) else type(e).__name__
                s["kinds"][kind] += 1
                self.close()
                if isinstance(e, OSError):
                    await asyncio.sleep(0.05)  # do not spin on a refused connection



async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--rate", type=float, required=True, help="offered messages/second")
    p.add_argument("--duration", type=float, required=True, help="seconds of scheduling")
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--size", type=int, default=4096, help="message size before dot-stuffing")
    p.add_argument("--from", dest="sender", default="a@src.example")
    p.add_argument("--to", dest="rcpt", default="b@dest.example")
    p.add_argument("--no-pipelining", action="store_true")
    args = p.parse_args()
    if args.rate <= 0 or args.connections < 1:
        p.error("--rate must be > 0 and --connections >= 1")
    total = int(args.rate * args.duration)
    # The filler is built once; the headers (Date, unique Message-ID) per message.
    body = filler(len(header(total, args.sender, args.rcpt)), args.size)
    stats = {"sent": 0, "lat": [], "kinds": collections.Counter(), "last": None, "body": body}
    counter = iter(range(total))

    def queue_next():
        return next(counter, None)

    workers = [Worker(args, stats) for _ in range(args.connections)]
    # Open the connections before t0, so the first messages do not pay for it.
    opened = await asyncio.gather(*(w.connect() for w in workers), return_exceptions=True)
    for w, r in zip(workers, opened):
        if isinstance(r, Exception):
            print(f"connect: {r!r} (retried per message)", file=sys.stderr)
            w.close()
    cpu0 = time.process_time()
    t0 = time.monotonic()
    tasks = [asyncio.create_task(w.run(queue_next, t0)) for w in workers]
    print(f"offering {args.rate:g} msg/s for {args.duration:g} s ({total} messages of "
          f"{args.size} bytes) over {args.connections} connections to {args.target}",
          file=sys.stderr)
    _, pending = await asyncio.wait(tasks, timeout=t0 - time.monotonic() + args.duration + 10)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for w in workers:
        w.close()
    cpu = time.process_time() - cpu0
    sent = stats["sent"]
    lat, common = loadstats.summary(stats, total, cpu)
    span = max(args.duration, (stats["last"] or t0) - t0)
    out = {"offered_rate": args.rate, "achieved_rate": round(len(lat) / span, 1), "sent": sent,
           **common}
    loadstats.report(out, cpu, f"of {total}, {out['achieved_rate']} msg/s over {span:.2f} s",
                     sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
