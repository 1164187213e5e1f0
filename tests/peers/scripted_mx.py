#!/usr/bin/python3
"""Scriptable MX for Hato's end-to-end tests (Debian package: python3-aiosmtpd).

Usage: scripted_mx.py --port N --out DIR [--host 127.0.0.1]
                      [--tls-cert F --tls-key F] [--no-pipelining]

--port 0 picks a free port; "READY <port>" is printed (flushed) once listening.
With a certificate the server offers STARTTLS. PIPELINING is advertised unless
--no-pipelining. Behaviour per RCPT address local part:
  contains "perm"     -> 550 5.1.1 user unknown
  "tempN" (e.g. temp2) -> 451 4.3.0 for the first N attempts of that address
                          (counted across connections, in memory), then 250
  contains "slow"     -> the reply to the end of DATA comes after 3 s
  otherwise           -> 250
Each accepted message is written, fsync'd, to DIR/<unix-ns>-<counter>.eml and
described by one JSON line appended to DIR/log.jsonl. SIGTERM/SIGINT stop the
server and exit 0.
"""
import argparse
import asyncio
import collections
import email.parser
import email.policy
import itertools
import json
import os
import re
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP

TEMP = re.compile(r"temp(\d+)")


def local_part(address):
    return address.rsplit("@", 1)[0].lower()


FSYNC = True


def write_synced(path, data, mode):
    """Write (or append) bytes and fsync before returning (unless --no-fsync)."""
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if FSYNC:
            os.fsync(f.fileno())


class Handler:
    def __init__(self, out_dir, pipelining):
        self.out_dir = out_dir
        self.pipelining = pipelining
        self.attempts = collections.Counter()  # RCPT attempts per address
        self.counter = itertools.count(1)      # file name uniqueness

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # the 5-argument hook must do this itself
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the final "250 HELP"
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = local_part(address)
        self.attempts[address] += 1
        if "perm" in local:
            return "550 5.1.1 user unknown"
        temp = TEMP.search(local)
        if temp and self.attempts[address] <= int(temp.group(1)):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any("slow" in local_part(r) for r in envelope.rcpt_tos):
            await asyncio.sleep(3)
        raw = envelope.original_content  # bytes, CRLF, dot-stuffing undone
        name = f"{time.time_ns()}-{next(self.counter)}.eml"
        write_synced(os.path.join(self.out_dir, name), raw, "wb")
        headers = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            raw, headersonly=True)
        entry = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "size": len(raw),
            "tls": session.ssl is not None,
            "x_hato_id": header(headers, "X-Hato-Id"),
            "message_id": header(headers, "Message-ID"),
            "file": name,
        }
        line = json.dumps(entry) + "\n"
        write_synced(os.path.join(self.out_dir, "log.jsonl"), line.encode(), "ab")
        return "250 2.0.0 queued as " + name


def header(headers, name):
    value = headers.get(name)
    return None if value is None else str(value).strip()


async def main():
    p = argparse.ArgumentParser(description="scriptable MX for tests")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--no-fsync", action="store_true",
                   help="answer 250 without waiting for the disk (a fast MX)")
    args = p.parse_args()
    global FSYNC
    FSYNC = not args.no_fsync
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    os.makedirs(args.out, exist_ok=True)

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    handler = Handler(args.out, not args.no_pipelining)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mx.test", tls_context=tls_context,
                     decode_data=False),
        host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
