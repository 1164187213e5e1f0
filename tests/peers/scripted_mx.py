#!/usr/bin/python3
"""A scriptable MX for Hato's end-to-end tests (Debian python3-aiosmtpd).

Answers by the recipient's local part:
  contains "perm"  -> 550 5.1.1 at RCPT (user unknown)
  "tempN"          -> 451 4.3.0 at RCPT for the first N attempts to that address, then 250
  contains "slow"  -> waits 3 s before answering the end of DATA
  anything else    -> 250
Every accepted message is written (fsync'd) to OUT/<ns>-<n>.eml, and a JSON line
{"mail_from", "rcpt_tos", "size", "tls", "message_id"} is appended (fsync'd) to OUT/log.jsonl
before the 250 is sent. Prints "READY <port>" once listening; exits on SIGTERM.
"""
import argparse
import asyncio
import email.parser
import json
import os
import re
import signal
import ssl
import threading
import time

from aiosmtpd.controller import Controller

attempts = {}
lock = threading.Lock()
counter = [0]


class Handler:
    def __init__(self, out):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if "perm" in local:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        m = re.search(r"temp(\d+)", local)
        if m:
            with lock:
                n = attempts.get(address, 0) + 1
                attempts[address] = n
            if n <= int(m.group(1)):
                return "451 4.3.0 <%s>: temporarily deferred, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any("slow" in r.split("@")[0].lower() for r in envelope.rcpt_tos):
            await asyncio.sleep(3)
        data = envelope.original_content or envelope.content
        headers = email.parser.BytesHeaderParser().parsebytes(data)
        with lock:
            counter[0] += 1
            name = "%d-%06d.eml" % (time.time_ns(), counter[0])
            path = os.path.join(self.out, name)
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            rec = {
                "file": name,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "size": len(data),
                "tls": session.ssl is not None,
                "message_id": headers.get("Message-ID"),
            }
            with open(os.path.join(self.out, "log.jsonl"), "a") as f:
                f.write(json.dumps(rec) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return "250 2.0.0 Ok: stored as %s" % name


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--out", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    kwargs = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        kwargs["tls_context"] = ctx
    c = Controller(Handler(a.out), hostname=a.host, port=a.port,
                   server_hostname="mx.test", **kwargs)
    c.start()
    print("READY %d" % a.port, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    c.stop()


if __name__ == "__main__":
    main()
