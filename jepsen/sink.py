#!/usr/bin/python3
"""Sink MX for the Jepsen campaign (Debian package: python3-aiosmtpd).

Usage: sink.py --host IP --port N --out FILE --epoch WALL_SECONDS

Accepts every message and appends one JSON line per received message to FILE,
flushed per line, before answering 250:
  {"t": seconds since --epoch, "uid": X-Jepsen-Uid (else Subject),
   "rcpt": [recipients], "mail_from": ..., "hato_id": the id in Hato's Received: header,
   "by": the delivering node's EHLO name}
Prints "READY <port>" once listening. SIGTERM/SIGINT stop it (exit 0).
"""
import argparse
import asyncio
import email.parser
import email.policy
import json
import re
import signal
import sys
import time

from aiosmtpd.smtp import SMTP


def header(headers, name):
    value = headers.get(name)
    return None if value is None else " ".join(str(value).split())


HATO_ID = re.compile(r"\(Hato\) with \S+ id (\S+)")


def hato_id(headers):
    for value in headers.get_all("Received") or []:
        m = HATO_ID.search(" ".join(str(value).split()))
        if m:
            return m.group(1).rstrip(";")
    return None


class Handler:
    def __init__(self, out, epoch):
        self.out = open(out, "a", buffering=1)
        self.epoch = epoch

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or b""
        headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            raw, headersonly=True)
        uid = header(headers, "X-Jepsen-Uid") or header(headers, "Subject")
        entry = {
            "t": round(time.time() - self.epoch, 6),
            "uid": uid,
            "rcpt": list(envelope.rcpt_tos),
            "mail_from": envelope.mail_from,
            "hato_id": hato_id(headers),
            "by": getattr(session, "host_name", None),
        }
        self.out.write(json.dumps(entry) + "\n")
        self.out.flush()
        return "250 2.0.0 Ok: stored"


async def main():
    p = argparse.ArgumentParser(description="Jepsen campaign sink MX")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epoch", type=float, required=True)
    args = p.parse_args()

    handler = Handler(args.out, args.epoch)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="sink.jepsen.test", decode_data=False),
        host=args.host, port=args.port, reuse_address=True)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
