#!/usr/bin/python3
"""A webhook receiver for Hato's tests (Python standard library only).

Usage: webhook_receiver.py --port N --out DIR [--fail-first N] [--status CODE]
Every POST is appended (fsync'd) as one JSON line to DIR/requests.jsonl:
{"n", "path", "headers": {...lower-case names}, "body_b64", "status"}; the first
--fail-first requests are answered with --status (default 500), later ones with 200.
Prints "READY <port>" once listening; exits on SIGTERM.
"""
import argparse
import base64
import http.server
import json
import os
import signal
import threading

lock = threading.Lock()
count = [0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--status", type=int, default=500)
    a = p.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                count[0] += 1
                n = count[0]
                status = a.status if n <= a.fail_first else 200
                rec = {
                    "n": n,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body_b64": base64.b64encode(body).decode(),
                    "status": status,
                }
                with open(os.path.join(a.out, "requests.jsonl"), "a") as f:
                    f.write(json.dumps(rec) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("READY %d" % a.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
