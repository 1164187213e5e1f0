#!/usr/bin/python3
"""Jepsen-style fault-injection campaign against a real Hato cluster.

Usage (as root; normally through jepsen/run.sh):
    campaign.py --out DIR [--duration 60] [--seed N] [--nodes 3|5] [--nemesis LIST]
    campaign.py --cleanup          remove what a crashed run left behind

Builds a bridge (hjb0, 10.77.0.254/24) with one network namespace per node
(hato-nI at 10.77.0.I), runs `hato serve` in each, HAProxy and a sink MX in the
root namespace, drives SMTP / HTTP API / block-list clients while a nemesis
injects faults, then heals, waits for the queue to drain and tears everything
down. Output files (history.jsonl, sink.jsonl, faults.jsonl, summary.json, node
logs) are described in jepsen/README.md. Python 3 standard library only.
"""

import argparse
import concurrent.futures
import email.utils
import fcntl
import http.client
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

BRIDGE = "hjb0"
NET = "10.77.0"
HOST_IP = NET + ".254"
RAFT_PORT, HTTP_PORT, SMTP_PORT, PROXY_PORT, SINK_PORT = 9400, 8400, 2525, 2526, 2599
NS_RE = re.compile(r"^hato-n\d+$")
STATE_DIR = "/run/hato-jepsen"
STATE_FILE = os.path.join(STATE_DIR, "state.json")
HAPROXY_SOCK = os.path.join(STATE_DIR, "haproxy.sock")
TMPFS_SOURCE = "hato-jepsen"  # device name of our tmpfs mounts, to find them after a crash
FWD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment",
            "hato-jepsen", "-j", "ACCEPT"]
NEMESES = ["kill", "pause", "partition-majority-minority", "partition-isolate-leader",
           "partition-bridge", "netem", "clock-skew", "disk-full", "membership"]
BLOCK_KEYS = ["k%d@blocks.test" % i for i in range(3)]
FROM = "jepsen@shop.test"
MAX_NODE_ID = 250
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"]

_log_lock = threading.Lock()
_log_file = None


def log(msg):
    line = "%s %s" % (time.strftime("%H:%M:%S"), msg)
    with _log_lock:
        print(line, flush=True)
        if _log_file is not None:
            _log_file.write(line + "\n")
            _log_file.flush()


def run(cmd, timeout=20, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                (r.stderr or r.stdout).strip()[-400:]))
    return r


def nsrun(ns, cmd, **kw):
    return run(["ip", "netns", "exec", ns] + cmd, **kw)


def http_get(ip, path, timeout=1.0):
    """GET http://ip:8400/path -> (status, body bytes, headers) or None."""
    conn = http.client.HTTPConnection(ip, HTTP_PORT, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


# --------------------------------------------------------------------------- cleanup

class State:
    """What this run created outside OUT, persisted so that --cleanup (or the next run)
    can remove it after a crash: root-namespace pids (haproxy, sink) with a marker
    string their command line must contain."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pids = {}

    def add_pid(self, pid, marker):
        with self.lock:
            self.pids[str(pid)] = marker
            self._save()

    def del_pid(self, pid):
        with self.lock:
            self.pids.pop(str(pid), None)
            self._save()

    def _save(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        tmp = STATE_FILE + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pids": self.pids}, f)
        os.replace(tmp, STATE_FILE)


def _cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def _kill_pid(pid):
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.kill(int(pid), sig)
        except (OSError, ValueError):
            pass


def our_netns():
    r = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines()
            if line.split() and NS_RE.match(line.split()[0])]


def our_mounts():
    out = []
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[0] == TMPFS_SOURCE and parts[2] == "tmpfs":
                out.append(parts[1].replace("\\040", " "))
    return out


_lock_fd = None


def take_lock():
    """One campaign (or cleanup) at a time: they share the bridge, addresses and names.
    Returns None when taken, else the pid of the campaign holding it."""
    global _lock_fd
    os.makedirs(STATE_DIR, exist_ok=True)
    fd = os.open(os.path.join(STATE_DIR, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        return holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _lock_fd = fd
    return None


def cleanup_stale(quiet=False):
    """Remove everything a previous (possibly crashed) run of this script left behind.
    Touches only our own objects: netns named hato-nN (and the processes inside them),
    the hjb0 bridge and hjv* veths, tmpfs mounts named hato-jepsen, the FORWARD rule
    tagged hato-jepsen, and the pids recorded in the state file (nodes, haproxy, sink), each
    only if its command line still carries the recorded marker."""
    did = []
    try:
        with open(STATE_FILE) as f:
            pids = json.load(f).get("pids", {})
    except (OSError, ValueError):
        pids = {}
    for pid, marker in pids.items():
        cl = _cmdline(pid)
        if cl and marker in cl:
            _kill_pid(pid)
            did.append("killed %s (%s)" % (pid, cl[:60]))
    namespaces = our_netns()
    for ns in namespaces:
        r = run(["ip", "netns", "pids", ns], check=False)
        for pid in r.stdout.split():
            _kill_pid(pid)
            did.append("killed %s in %s" % (pid, ns))
    if did:
        time.sleep(0.5)
    for m in sorted(our_mounts(), key=len, reverse=True):
        if run(["umount", m], check=False).returncode != 0:
            run(["umount", "-l", m], check=False)
        did.append("unmounted " + m)
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
        did.append("deleted netns " + ns)
    r = run(["ip", "-o", "link", "show"], check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"\d+: (hjv\d+)[@:]", line)
        if m:
            run(["ip", "link", "del", m.group(1)], check=False)
            did.append("deleted " + m.group(1))
    if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
        run(["ip", "link", "del", BRIDGE], check=False)
        did.append("deleted bridge " + BRIDGE)
    for _ in range(10):
        if run(["iptables", "-w", "-C"] + FWD_RULE, check=False).returncode != 0:
            break
        run(["iptables", "-w", "-D"] + FWD_RULE, check=False)
        did.append("removed FORWARD rule")
    for f in (STATE_FILE, HAPROXY_SOCK):
        try:
            os.unlink(f)
        except OSError:
            pass
    if did and not quiet:
        log("cleanup: " + "; ".join(did))
    return did


# --------------------------------------------------------------------------- nodes

class Node:
    def __init__(self, c, nid, bootstrap, join):
        self.c = c
        self.id = nid
        self.name = "n%d" % nid
        self.ip = "%s.%d" % (NET, nid)
        self.ns = "hato-n%d" % nid
        self.veth = "hjv%d" % nid
        self.dir = os.path.join(c.out, "nodes", self.name)
        self.disk = os.path.join(self.dir, "disk")
        self.data = os.path.join(self.disk, "data")
        self.ballast = os.path.join(self.disk, "ballast")
        self.cfg = os.path.join(self.dir, "hato.toml")
        self.logpath = os.path.join(c.out, "nodes", self.name + ".log")
        self.bootstrap = bootstrap
        self.join = join
        self.proc = None
        self.paused = False
        self.skew = None
        self.expected_down = False  # a nemesis stopped it on purpose
        self.hold = False           # do not restart it automatically (disk full, removed)
        self.removed = False
        self.starts = 0
        self.exits = []             # (t, returncode, expected)
        self.lock = threading.RLock()

    @property
    def raft_addr(self):
        return "%s:%d" % (self.ip, RAFT_PORT)

    @property
    def http_addr(self):
        return "%s:%d" % (self.ip, HTTP_PORT)

    # -- creation / destruction
    def create(self):
        os.makedirs(self.disk, exist_ok=True)
        self.setup_net()
        run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % self.c.args.disk_mb,
             TMPFS_SOURCE, self.disk])
        os.makedirs(self.data, exist_ok=True)
        self.write_config()

    def setup_net(self):
        peer = "hjp%d" % self.id
        run(["ip", "netns", "add", self.ns])
        run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", peer])
        run(["ip", "link", "set", peer, "netns", self.ns])
        run(["ip", "link", "set", self.veth, "master", BRIDGE, "up"])
        script = ("set -e; ip link set lo up; ip link set {p} name eth0; "
                  "ip addr add {ip}/24 dev eth0; ip link set eth0 up; "
                  "iptables -w -N HJ; iptables -w -I INPUT -j HJ; iptables -w -I OUTPUT -j HJ"
                  ).format(p=peer, ip=self.ip)
        nsrun(self.ns, ["sh", "-c", script])

    def destroy(self):
        """Stop the process, unmount the data disk, delete the namespace (veth goes too)."""
        self.kill()
        for m in (self.disk,):
            if os.path.ismount(m):
                if run(["umount", m], check=False).returncode != 0:
                    run(["umount", "-l", m], check=False)
        run(["ip", "netns", "del", self.ns], check=False)

    def write_config(self):
        a = self.c.args
        join = ", ".join('"%s"' % j for j in self.join)
        text = f"""# written by jepsen/campaign.py
node_id = {self.id}
data_dir = "{self.data}"

[listen]
raft = "{self.raft_addr}"
http = "{self.http_addr}"
console = ""

[cluster]
bootstrap = {"true" if self.bootstrap else "false"}
join = [{join}]
write_timeout_ms = {a.write_timeout_ms}
heartbeat_ms = 100
election_timeout_min_ms = 500
election_timeout_max_ms = 1000
snapshot_every = {a.snapshot_every}
keep_logs_after_snapshot = 500

[smtp]
hostname = "{self.name}.hato.test"
max_connections_per_ip = 1000
command_timeout_secs = 30
data_timeout_secs = 30

[[smtp.listener]]
addr = "{self.ip}:{SMTP_PORT}"
mode = "relay"
tls = "none"
proxy_protocol = false

[[smtp.listener]]
addr = "{self.ip}:{PROXY_PORT}"
mode = "relay"
tls = "none"
proxy_protocol = true

[delivery]
enabled = true
lease_secs = {a.lease_secs}
retry_schedule_secs = [1, 2, 3]
connect_timeout_secs = 2
command_timeout_secs = 2
data_timeout_secs = 3
poll_ms = 200

[log]
level = "info"
"""
        with open(self.cfg, "w") as f:
            f.write(text)

    # -- process control
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, skew=None):
        with self.lock:
            if self.alive():
                return
            env = dict(os.environ)
            env.pop("HATO_CONFIG", None)
            env["RUST_BACKTRACE"] = "1"
            if skew:
                env.update(LD_PRELOAD=self.c.faketime_lib, FAKETIME=skew,
                           FAKETIME_DONT_FAKE_MONOTONIC="1", NO_FAKE_STAT="1")
            with open(self.logpath, "ab") as lf:
                lf.write(("\n=== jepsen: start %s at t=%.2f%s\n" % (
                    self.name, self.c.now(), " FAKETIME=%s" % skew if skew else "")).encode())
                lf.flush()
                self.proc = subprocess.Popen(
                    ["ip", "netns", "exec", self.ns, self.c.bin, "serve", "--config", self.cfg],
                    stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True)
            self.c.state.add_pid(self.proc.pid, self.cfg)
            self.skew = skew
            self.paused = False
            self.expected_down = False
            self.starts += 1

    def _reap(self, expected):
        rc = self.proc.wait(timeout=10)
        self.c.state.del_pid(self.proc.pid)
        self.exits.append((round(self.c.now(), 3), rc, expected))
        self.proc = None

    def kill(self):
        self._stop(lambda p: p.kill())

    def terminate(self, grace):
        """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
        self._stop(lambda p: (p.terminate(), p.wait(timeout=grace)))

    def _stop(self, how):
        with self.lock:
            if self.proc is None:
                return
            self.expected_down = True
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(signal.SIGCONT)
                    how(self.proc)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                except OSError:
                    pass
            self._reap(True)
            self.paused = False

    def pause(self):
        with self.lock:
            if self.alive():
                self.proc.send_signal(signal.SIGSTOP)
                self.paused = True

    def resume(self):
        with self.lock:
            if self.alive() and self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def status(self, timeout=1.0):
        r = http_get(self.ip, "/status", timeout)
        if r is None or r[0] != 200:
            return None
        try:
            return json.loads(r[1])
        except ValueError:
            return None

    def wait_health(self, timeout):
        end = time.time() + timeout
        while time.time() < end:
            r = http_get(self.ip, "/health", 0.5)
            if r is not None and r[0] == 200:
                return r
            if not self.alive():
                return None
            time.sleep(0.1)
        return None


# --------------------------------------------------------------------------- history

class History:
    def __init__(self, path, epoch):
        self.f = open(path, "a", buffering=1)
        self.epoch = epoch
        self.lock = threading.Lock()
        self.counts = {}

    def add(self, rec):
        with self.lock:
            rec = dict(rec)
            rec["t"] = round(time.time() - self.epoch, 6)
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
            k = "%s/%s" % (rec.get("f"), rec.get("type"))
            self.counts[k] = self.counts.get(k, 0) + 1

    def close(self):
        with self.lock:
            self.f.close()


# --------------------------------------------------------------------------- workload

class Worker(threading.Thread):
    """One client thread. Its `process` never has two ops in flight; after an op whose
    outcome is unknown (info) it continues under a fresh process id (Jepsen's rule)."""

    def __init__(self, c, idx, kind):
        super().__init__(daemon=True, name="%s-%d" % (kind, idx))
        self.c = c
        self.idx = idx
        self.kind = kind
        self.process = idx
        self.rng = random.Random(c.seed * 1000003 + idx)
        self.seq = 0

    def target(self, lb=True):
        nodes = self.c.targets()
        opts = [(n.name, n.ip) for n in nodes]
        if lb or not opts:
            opts.append(("lb", HOST_IP))
        return self.rng.choice(opts)

    def run(self):
        while not self.c.stop_work.is_set():
            try:
                typ = self.step()
            except Exception:  # a bug in this script: keep going, but say so
                log("worker %s crashed op: %s" % (self.name, traceback.format_exc()))
                typ = "info"
            if typ == "info":
                self.process += self.c.n_workers
            if self.kind == "blocks":
                pause = self.rng.uniform(0.1, 0.45)
            else:
                pause = self.rng.uniform(*self.c.send_pause)
                if typ == "fail":
                    pause += 0.2
            self.c.stop_work.wait(pause)

    def op(self, f, value, via, proto, fn):
        """Record invoke, run fn() -> (type, value, error), record the completion."""
        base = {"process": self.process, "f": f, "via": via, "proto": proto}
        self.c.history.add(dict(base, type="invoke", value=value))
        typ, result, err = fn()
        rec = dict(base, type=typ, value=result)
        if err:
            rec["error"] = err[:300]
        self.c.history.add(rec)
        return typ

    def step(self):
        if self.kind == "blocks":
            return self.block_step()
        self.seq += 1
        uid = "c%d-%06d" % (self.idx, self.seq)
        via, ip = self.target()
        if self.kind == "smtp":
            # nodes directly on :2525; the LB listens on :2525 too and speaks PROXY v2 to
            # the nodes' :2526
            return self.op("send", uid, via, "smtp", lambda: smtp_send(ip, SMTP_PORT, uid))
        return self.op("send", uid, via, "http", lambda: http_send(ip, uid, self.c.api_key))

    def block_step(self):
        via, ip = self.target(lb=False)
        r = self.rng.random()
        node = "%s:%d" % (ip, RAFT_PORT)
        if r < 0.35:
            addr = self.rng.choice(BLOCK_KEYS)
            return self.op("add", addr, via, "cli",
                           lambda: self.c.cli_write(["blocks", "add", addr], node, addr))
        if r < 0.65:
            addr = self.rng.choice(BLOCK_KEYS)
            return self.op("remove", addr, via, "cli",
                           lambda: self.c.cli_write(["blocks", "remove", addr], node, addr))
        return self.op("list", None, via, "cli", lambda: self.c.cli_list(node))


def message_bytes(uid, rcpt):
    lines = ["From: Jepsen <%s>" % FROM, "To: <%s>" % rcpt, "Subject: %s" % uid,
             "X-Jepsen-Uid: %s" % uid, "Message-ID: <%s@jepsen.test>" % uid,
             "Date: %s" % email.utils.formatdate(), "", "payload for %s" % uid, ""]
    return "\r\n".join(lines).encode()


def smtp_send(ip, port, uid):
    """One message over SMTP. Returns (type, uid, error). Anything that goes wrong before
    the final dot of DATA is sent is a definite failure; after it, only a 250 is ok, a 5xx
    is a failure and everything else (4xx, timeout, lost connection) is unknown."""
    rcpt = "%s@sink.test" % uid
    stage = "connect"
    s = smtplib.SMTP(timeout=10, local_hostname="client.jepsen.test")
    try:
        code, msg = s.connect(ip, port)
        if code != 220:
            return "fail", uid, "greeting %d %s" % (code, msg.decode("utf-8", "replace"))
        stage = "ehlo"
        code, msg = s.ehlo()
        if code != 250:
            return "fail", uid, "EHLO %d %s" % (code, msg.decode("utf-8", "replace"))
        stage = "mail"
        code, msg = s.mail(FROM)
        if code != 250:
            return "fail", uid, "MAIL %d %s" % (code, msg.decode("utf-8", "replace"))
        stage = "rcpt"
        code, msg = s.rcpt(rcpt)
        if code not in (250, 251):
            return "fail", uid, "RCPT %d %s" % (code, msg.decode("utf-8", "replace"))
        stage = "data"
        code, msg = s.docmd("DATA")
        if code != 354:
            return "fail", uid, "DATA %d %s" % (code, msg.decode("utf-8", "replace"))
        stage = "dot"  # from here on the server may have the whole message
        s.send(message_bytes(uid, rcpt) + b".\r\n")
        code, msg = s.getreply()
        text = "%d %s" % (code, msg.decode("utf-8", "replace"))
        if code == 250:
            try:
                s.sock.settimeout(2)
                s.docmd("QUIT")
            except (OSError, smtplib.SMTPException):
                pass
            return "ok", uid, None
        if 500 <= code < 600:
            return "fail", uid, "end of DATA " + text
        return "info", uid, "end of DATA " + text
    except (OSError, smtplib.SMTPException) as e:
        err = "%s at %s: %s" % (type(e).__name__, stage, e)
        return ("info" if stage == "dot" else "fail"), uid, err
    finally:
        s.close()


def http_send(ip, uid, api_key):
    """One message through the CMC API. A failure to connect is a definite failure; after
    the request was sent: 200 ok, 4xx fail, HAProxy's own 503 (no server, never forwarded)
    fail, everything else (Hato's 503 90-003, 502/504, timeouts, resets) unknown."""
    rcpt = "%s@sink.test" % uid
    body = json.dumps({
        "api_user": "app", "api_key": api_key,
        "to": [{"address": rcpt}], "from": {"address": FROM, "name": "Jepsen"},
        "subject": uid, "text": "payload for %s" % uid,
        "headers": [{"name": "X-Jepsen-Uid", "value": uid}],
    })
    conn = http.client.HTTPConnection(ip, HTTP_PORT, timeout=10)
    try:
        try:
            conn.connect()
        except OSError as e:
            return "fail", uid, "connect: %s: %s" % (type(e).__name__, e)
        try:
            conn.request("POST", "/api/v2/emails/send.json", body,
                         {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            return "info", uid, "%s: %s" % (type(e).__name__, e)
        text = data.decode("utf-8", "replace")[:200]
        if r.status == 200:
            try:
                if json.loads(data).get("id"):
                    return "ok", uid, None
            except (ValueError, AttributeError):
                pass
            return "info", uid, "200 without id: " + text
        err = "HTTP %d %s" % (r.status, " ".join(text.split()))
        if 400 <= r.status < 500:
            return "fail", uid, err
        if r.status == 503 and "No server is available" in text:
            return "fail", uid, err
        return "info", uid, err
    finally:
        conn.close()


# --------------------------------------------------------------------------- campaign

class Campaign:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed
        self.out = os.path.abspath(args.out)
        self.bin = args.bin
        self.n = args.nodes
        self.kinds = args.nemesis
        self.members = []        # current cluster members (Node), in order of creation
        self.all_nodes = []      # every node ever created
        self.lock = threading.RLock()
        self.state = State()
        self.stop_work = threading.Event()
        self.stop_monitor = threading.Event()
        self.epoch = None
        self.history = None
        self.api_key = None
        self.haproxy = None
        self.sink = None
        self.workers = []
        self.faults = []
        self.faults_f = None
        self.events = []          # notable things (unexpected exits, ...)
        self.n_workers = args.smtp_clients + args.http_clients + args.block_clients
        self.send_pause = (args.send_pause_min, args.send_pause_max)
        self.next_id = self.n + 1
        self.max_id = min(MAX_NODE_ID, self.n + 1 + int(args.duration // 13) + 1)
        self.faketime_lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
        self.t_setup = time.time()
        self.bridge_up = False

    def now(self):
        return time.time() - (self.epoch if self.epoch is not None else self.t_setup)

    def targets(self):
        with self.lock:
            return list(self.members)

    # ---------------------------------------------------------------- CLI
    def cli(self, args, node, timeout=5, check=False):
        cmd = [self.bin] + args + ["--node", node, "--timeout", str(timeout)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 8,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            if check:
                raise RuntimeError("%s: timed out" % " ".join(cmd))
            return None
        if check and r.returncode != 0:
            raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode,
                                                    r.stderr.strip()[-400:]))
        return r

    @staticmethod
    def refused(stderr):
        s = stderr.lower()
        # the CLI says "unavailable: ADDR: tcp connect error" when the TCP connection to
        # --node could not be made: the request was never sent
        return ("tcp connect error" in s or "connection refused" in s
                or "os error 111" in s or "no route to host" in s)

    def cli_write(self, args, node, value):
        """A blind block-list write: ok on exit 0; fail only when the CLI provably never
        reached the node (connection refused / no route); otherwise unknown."""
        r = self.cli(args, node, timeout=self.args.cli_timeout)
        if r is None:
            return "info", value, "CLI timed out"
        if r.returncode == 0:
            return "ok", value, None
        err = " ".join(r.stderr.split())
        return ("fail" if self.refused(r.stderr) else "info"), value, err

    def cli_list(self, node):
        r = self.cli(["blocks", "list"], node, timeout=self.args.cli_timeout)
        if r is None:
            return "info", None, "CLI timed out"
        if r.returncode != 0:
            return "fail", None, " ".join(r.stderr.split())
        try:
            addrs = sorted(json.loads(line)["address"] for line in r.stdout.splitlines()
                           if line.strip())
        except (ValueError, KeyError, TypeError) as e:
            return "info", None, "unparsable list output: %s" % e
        return "ok", addrs, None

    # ---------------------------------------------------------------- status
    def statuses(self, nodes=None, timeout=1.0):
        nodes = self.targets() if nodes is None else nodes
        if not nodes:
            return {}
        with concurrent.futures.ThreadPoolExecutor(len(nodes)) as ex:
            res = list(ex.map(lambda n: n.status(timeout), nodes))
        return {n.id: s for n, s in zip(nodes, res)}

    def leader(self):
        """The member that says it is leader with the highest term, or None."""
        best = None
        sts = self.statuses()
        for n in self.targets():
            s = sts.get(n.id)
            if s and s.get("role") == "leader" and (best is None or s["term"] > best[1]):
                best = (n, s["term"])
        return best[0] if best else None

    def node_by_id(self, nid):
        for n in self.all_nodes:
            if n.id == nid:
                return n
        return None

    # ---------------------------------------------------------------- setup
    def setup_bridge(self):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        self.bridge_up = True
        run(["ip", "addr", "add", HOST_IP + "/24", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])
        # With br_netfilter loaded (Docker does) bridged frames traverse the root FORWARD
        # chain, whose policy may be DROP: accept traffic between our bridge ports.
        if os.path.exists("/proc/sys/net/bridge/bridge-nf-call-iptables"):
            run(["iptables", "-w", "-I"] + FWD_RULE, check=False)

    def new_node(self, nid, bootstrap, join):
        n = Node(self, nid, bootstrap, join)
        with self.lock:
            self.all_nodes.append(n)
        n.create()
        return n

    def form_cluster(self):
        n1 = self.new_node(1, True, [])
        n1.start()
        if n1.wait_health(60) is None:
            raise RuntimeError("n1 did not come up; see %s" % n1.logpath)
        members = [n1]
        for i in range(2, self.n + 1):
            members.append(self.new_node(i, False, [n1.raft_addr]))
        for n in members[1:]:
            n.start()
        with self.lock:
            self.members = members
        want = set(range(1, self.n + 1))
        end = time.time() + 90
        last = None
        while time.time() < end:
            sts = self.statuses()
            l = [s for s in sts.values() if s and s.get("role") == "leader"]
            if (len(l) == 1 and set(l[0].get("voters", [])) == want
                    and all(s and s.get("ready") for s in sts.values())):
                log("cluster formed: leader n%d, voters %s" % (l[0]["id"], sorted(want)))
                return
            for n in members:
                if not n.alive():
                    raise RuntimeError("%s exited during formation; see %s" % (n.name, n.logpath))
            last = {k: (v and (v.get("role"), v.get("voters"), v.get("ready"))) for k, v in sts.items()}
            time.sleep(0.3)
        raise RuntimeError("cluster did not form within 90 s: %s" % last)

    def configure(self):
        node = self.members[0].raft_addr
        steps = [
            ["smtp", "allow", "add", NET + ".0/24"],
            ["route", "set", "*", "--host", HOST_IP, "--port", str(SINK_PORT), "--tls", "disabled"],
            ["domain", "add", "shop.test", "--algorithm", "ed25519"],
            ["api", "user", "add", "app"],
        ]
        for st in steps:
            for attempt in range(5):
                r = self.cli(st, node, timeout=10)
                if r is not None and r.returncode == 0:
                    break
                time.sleep(1)
            else:
                raise RuntimeError("setup step failed: hato %s: %s" % (
                    " ".join(st), r.stderr.strip() if r else "timeout"))
            if st[0] == "api":
                self.api_key = json.loads(r.stdout)["api_key"]
        with open(os.path.join(self.out, "api-user.json"), "w") as f:
            json.dump({"api_user": "app", "api_key": self.api_key}, f)
        log("configured: relay from %s.0/24, route * -> %s:%d, domain shop.test, api user app"
            % (NET, HOST_IP, SINK_PORT))

    def start_haproxy(self):
        cfg = os.path.join(self.out, "haproxy.cfg")
        lines = [
            "# written by jepsen/campaign.py",
            "global",
            "    maxconn 4096",
            "    stats socket %s mode 600 level admin" % HAPROXY_SOCK,
            "defaults",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    timeout check 1s",
            "    retries 2",
            "    option redispatch",
            "",
            "listen smtp",
            "    bind %s:%d" % (HOST_IP, SMTP_PORT),
            "    mode tcp",
            "    balance roundrobin",
            "    option httpchk GET /ready",
            "    http-check expect status 200",
            "    default-server inter 500ms fastinter 300ms fall 2 rise 2 check port %d send-proxy-v2" % HTTP_PORT,
        ]
        ids = range(1, self.max_id + 1)
        lines += ["    server n%d %s.%d:%d%s" % (i, NET, i, PROXY_PORT, "" if i <= self.n else " disabled")
                  for i in ids]
        lines += [
            "",
            "listen http",
            "    bind %s:%d" % (HOST_IP, HTTP_PORT),
            "    mode http",
            "    balance roundrobin",
            "    retry-on conn-failure",
            "    option httpchk GET /ready",
            "    http-check expect status 200",
            "    default-server inter 500ms fastinter 300ms fall 2 rise 2 check",
        ]
        lines += ["    server n%d %s.%d:%d%s" % (i, NET, i, HTTP_PORT, "" if i <= self.n else " disabled")
                  for i in ids]
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        run(["haproxy", "-c", "-q", "-f", cfg])
        os.makedirs(STATE_DIR, exist_ok=True)
        lf = open(os.path.join(self.out, "haproxy.log"), "ab")
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdin=subprocess.DEVNULL,
                                        stdout=lf, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        lf.close()
        self.state.add_pid(self.haproxy.pid, "haproxy.cfg")
        end = time.time() + 15
        while time.time() < end:
            if self.haproxy.poll() is not None:
                raise RuntimeError("haproxy exited; see %s/haproxy.log" % self.out)
            r = http_get(HOST_IP, "/ready", 1)
            if r is not None and r[0] == 200:
                time.sleep(1.0)
                log("haproxy up on %s:%d (smtp, PROXY v2 -> :%d) and :%d (http)"
                    % (HOST_IP, SMTP_PORT, PROXY_PORT, HTTP_PORT))
                return
            time.sleep(0.2)
        raise RuntimeError("haproxy does not answer /ready on %s:%d" % (HOST_IP, HTTP_PORT))

    def lb(self, node, state):
        for be in ("smtp", "http"):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(HAPROXY_SOCK)
                s.sendall(("set server %s/%s state %s\n" % (be, node.name, state)).encode())
                reply = s.recv(4096).decode("utf-8", "replace").strip()
                s.close()
                if reply:
                    log("haproxy: %s/%s %s: %s" % (be, node.name, state, reply))
            except OSError as e:
                log("haproxy runtime API: %s" % e)

    def start_sink(self):
        lf = open(os.path.join(self.out, "sink.log"), "ab")
        self.sink = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "sink.py"), "--host", HOST_IP, "--port",
             str(SINK_PORT), "--out", os.path.join(self.out, "sink.jsonl"), "--epoch",
             repr(self.epoch)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=lf, start_new_session=True)
        lf.close()
        self.state.add_pid(self.sink.pid, "sink.py")
        line = self.sink.stdout.readline()
        if not line.startswith(b"READY"):
            raise RuntimeError("sink did not start; see %s/sink.log" % self.out)
        log("sink MX on %s:%d -> sink.jsonl" % (HOST_IP, SINK_PORT))

    # ---------------------------------------------------------------- monitor
    def monitor(self):
        """Notice nodes that exit without a nemesis asking; restart them (like systemd's
        Restart=on-failure) unless they are held down, and record it."""
        while not self.stop_monitor.wait(0.5):
            for n in self.targets():
                with n.lock:
                    if n.proc is None or n.proc.poll() is None or n.expected_down:
                        continue
                    rc = n.proc.returncode
                    self.state.del_pid(n.proc.pid)
                    n.exits.append((round(self.now(), 3), rc, False))
                    n.proc = None
                    ev = {"t": round(self.now(), 3), "event": "unexpected-exit",
                          "node": n.name, "returncode": rc, "held": n.hold}
                    self.events.append(ev)
                    log("!! %s exited by itself (code %s)%s" % (
                        n.name, rc, "; held down" if n.hold else "; restarting"))
                    if not n.hold:
                        n.start(n.skew)

    def ensure_running(self):
        for n in self.targets():
            with n.lock:
                if not n.alive() and not n.hold:
                    n.start(n.skew)

    # ---------------------------------------------------------------- nemeses
    def pick(self, rng, prefer_leader=None):
        """A member: the leader (prefer_leader True), a follower (False) or a coin flip."""
        members = self.targets()
        leader = self.leader()
        if prefer_leader is None:
            prefer_leader = rng.random() < 0.5
        followers = [m for m in members if m is not leader]
        if prefer_leader and leader is not None:
            return leader, "leader"
        if followers:
            return rng.choice(followers), "follower" if leader else "node"
        return rng.choice(members), "node"

    def nem_kill(self, rng):
        n, role = self.pick(rng)
        n.kill()

        def heal():
            n.start(n.skew)
            return "restarted"
        return "SIGKILL %s (%s)" % (n.name, role), [n.name], heal

    def nem_pause(self, rng):
        n, role = self.pick(rng)
        n.pause()

        def heal():
            n.resume()
            return "SIGCONT"
        return "SIGSTOP %s (%s)" % (n.name, role), [n.name], heal

    def cut(self, a, b):
        """Drop all traffic between node groups a and b (both directions, both ends)."""
        for x, others in [(x, b) for x in a] + [(y, a) for y in b]:
            cmds = []
            for o in others:
                cmds.append("iptables -w -A HJ -s %s -j DROP" % o.ip)
                cmds.append("iptables -w -A HJ -d %s -j DROP" % o.ip)
            nsrun(x.ns, ["sh", "-c", " && ".join(cmds)])

    def heal_partitions(self):
        for n in self.targets():
            nsrun(n.ns, ["iptables", "-w", "-F", "HJ"], check=False)

    def _partition(self, a, b, what):
        self.cut(a, b)

        def heal():
            self.heal_partitions()
            return "healed"
        names = lambda g: "{%s}" % ",".join(x.name for x in g)
        return "%s: %s | %s" % (what, names(a), names(b)), [x.name for x in a + b], heal

    def nem_partition_majority_minority(self, rng):
        m = self.targets()
        rng.shuffle(m)
        k = len(m) // 2
        return self._partition(m[:k], m[k:], "minority | majority")

    def nem_partition_isolate_leader(self, rng):
        n, role = self.pick(rng, prefer_leader=True)
        rest = [m for m in self.targets() if m is not n]
        return self._partition([n], rest, "isolate %s %s" % (role, n.name))

    def nem_partition_bridge(self, rng):
        m = self.targets()
        rng.shuffle(m)
        bridge, rest = m[0], m[1:]
        half = len(rest) // 2
        a, b = rest[:half], rest[half:]
        detail, nodes, heal = self._partition(a, b, "bridge %s sees both sides" % bridge.name)
        return detail, nodes + [bridge.name], heal

    def nem_netem(self, rng):
        """tc netem (delay 50ms +-20ms, 20% loss) on every node's egress. Kernels built
        without sch_netem (some VMs) get the loss part only, from an iptables statistic
        rule on the node's egress; the fault's detail says which one ran."""
        spec = ["delay", "50ms", "20ms", "loss", "20%"]
        nodes = self.targets()
        r = nsrun(nodes[0].ns, ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem"] + spec,
                  check=False)
        if r.returncode == 0:
            for n in nodes[1:]:
                nsrun(n.ns, ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem"] + spec)
            what = "netem %s on every node's eth0" % " ".join(spec)
        else:
            for n in nodes:
                nsrun(n.ns, ["iptables", "-w", "-A", "HJ", "-o", "eth0", "-m", "statistic",
                             "--mode", "random", "--probability", "0.2", "-j", "DROP"])
            what = ("20%% random loss on every node's eth0 egress (iptables statistic; no "
                    "delay: kernel has no sch_netem: %s)" % " ".join(r.stderr.split())[:60])

        def heal():
            for n in nodes:
                nsrun(n.ns, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
                nsrun(n.ns, ["iptables", "-w", "-F", "HJ"], check=False)
            return "removed"
        return what, [n.name for n in nodes], heal

    def measured_skew(self, n):
        r = n.wait_health(30)
        if r is None:
            return None
        date = r[2].get("date") or r[2].get("Date")
        if not date:
            return None
        try:
            return email.utils.parsedate_to_datetime(date).timestamp() - time.time()
        except (TypeError, ValueError):
            return None

    def nem_clock_skew(self, rng):
        if self.faketime_lib is None:
            raise RuntimeError("libfaketime not installed")
        n, role = self.pick(rng)
        skew = rng.choice(["+30s", "-20s"])
        n.kill()
        n.start(skew)
        got = self.measured_skew(n)
        got_s = "unmeasured" if got is None else "%+.0fs" % got
        if got is not None and abs(got - float(skew[:-1])) > 5:
            log("!! faketime does not seem effective on %s: asked %s, HTTP Date says %s"
                % (n.name, skew, got_s))

        def heal():
            n.kill()
            n.start(None)
            return "restarted without skew"
        return ("restart %s (%s) with FAKETIME=%s (HTTP Date offset %s)"
                % (n.name, role, skew, got_s)), [n.name], heal

    def nem_disk_full(self, rng):
        n, role = self.pick(rng)
        # Only ever fill our own small tmpfs: never the filesystem under it.
        if os.path.realpath(n.disk) not in [os.path.realpath(m) for m in our_mounts()]:
            raise RuntimeError("%s is not a %s tmpfs mount; refusing to fill it"
                               % (n.disk, TMPFS_SOURCE))
        n.hold = True
        st = os.statvfs(n.disk)
        free = min(st.f_bavail * st.f_frsize, self.args.disk_mb * 2**20)
        fd = os.open(n.ballast, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, free)
            except OSError:
                pass
            chunk = b"\0" * 4096
            os.lseek(fd, 0, os.SEEK_END)
            for _ in range(1024):  # whatever fallocate left (at most 4 MB more)
                try:
                    os.write(fd, chunk)
                except OSError:
                    break
        finally:
            os.close(fd)
        st = os.statvfs(n.disk)
        left = st.f_bavail * st.f_frsize
        # RocksDB preallocates its WAL, so a running node may not notice a full disk for a
        # while; half of the time also restart it on the full disk (new WAL, MANIFEST, ...).
        restart = rng.random() < 0.5
        log("disk-full: %s's data disk filled (%d bytes left)%s" % (
            n.name, left, "; restarting it on the full disk" if restart else ""))
        if restart:
            n.kill()
            n.start(n.skew)
            time.sleep(2)
            with n.lock:
                if n.alive():
                    restart_s = "running"
                else:
                    rc = n.proc.poll() if n.proc is not None else n.exits[-1][1]
                    restart_s = "exited (code %s)" % rc
            restart_s = "; restarted on the full disk: " + restart_s
        else:
            restart_s = ""

        def heal():
            try:
                os.unlink(n.ballast)
            except OSError:
                pass
            n.hold = False
            died = not n.alive()
            if died:
                n.start(n.skew)
            return "ballast removed" + ("; node had died, restarted" if died else "; node stayed up")
        return ("fill %s (%s) data disk: %d MB ballast, %d bytes left%s"
                % (n.name, role, free // 2**20, left, restart_s)), [n.name], heal

    def nem_membership(self, rng):
        members = self.targets()
        leader = self.leader()
        if self.next_id > self.max_id:
            raise RuntimeError("no node ids left for membership changes")
        followers = [m for m in members if m is not leader]
        victim = rng.choice(followers)
        via = leader if leader is not None else rng.choice([m for m in members if m is not victim])
        r = self.cli(["cluster", "leave", "--id", str(victim.id)], via.raft_addr, timeout=15)
        removed = False
        end = time.time() + 15
        while time.time() < end:
            l = self.leader()
            s = l.status() if l else None
            if s and victim.id not in s.get("voters", []) and victim.id not in s.get("learners", []):
                removed = True
                break
            time.sleep(0.3)
        if not removed:
            err = "timeout" if r is None else " ".join((r.stderr or r.stdout).split())[:200]
            return ("leave %s via %s did not take effect (%s); nothing changed"
                    % (victim.name, via.name, err)), [victim.name], lambda: "nothing to heal"
        with self.lock:
            self.members.remove(victim)
        victim.hold = True
        victim.removed = True
        self.lb(victim, "maint")
        victim.destroy()

        def heal():
            nid = self.next_id
            self.next_id += 1
            cur = self.targets()
            new = self.new_node(nid, False, [m.raft_addr for m in cur])
            new.start()
            end = time.time() + 30
            ok = False
            while time.time() < end:
                l = self.leader()
                s = l.status() if l else None
                if s and nid in s.get("voters", []):
                    ok = True
                    break
                time.sleep(0.3)
            with self.lock:
                self.members.append(new)
            self.lb(new, "ready")
            return "added %s (%s)" % (new.name, "voter" if ok else "NOT a voter after 30 s")
        return ("removed %s (follower) via %s: left, stopped, wiped"
                % (victim.name, via.name)), [victim.name], heal

    def heal_all(self):
        """Undo every possible fault (used before recovery and at teardown)."""
        for n in self.targets():
            nsrun(n.ns, ["iptables", "-w", "-F", "HJ"], check=False)
            nsrun(n.ns, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
            try:
                os.unlink(n.ballast)
            except OSError:
                pass
            n.hold = False
            n.resume()
            if n.skew:
                n.kill()
                n.start(None)

    def record_fault(self, start, kind, detail, nodes):
        rec = {"start": round(start, 3), "end": round(self.now(), 3), "kind": kind,
               "detail": detail, "nodes": nodes}
        self.faults.append(rec)
        self.faults_f.write(json.dumps(rec) + "\n")
        self.faults_f.flush()

    def plan(self):
        rng = random.Random(self.seed)
        dur = self.args.duration
        t = rng.uniform(3, 6)
        plan, bag = [], []
        while self.kinds:
            if not bag:
                bag = list(self.kinds)
                rng.shuffle(bag)
            length = rng.uniform(8, 15)
            if t + length > dur - 1:
                break
            plan.append({"at": round(t, 2), "kind": bag.pop(), "length": round(length, 2)})
            t += length + rng.uniform(5, 10)
        return plan, random.Random(self.seed + 1)

    def sleep_until(self, t):
        while True:
            d = t - self.now()
            if d <= 0:
                return
            time.sleep(min(d, 0.5))

    def nemesis_loop(self):
        plan, rng = self.plan()
        with open(os.path.join(self.out, "plan.json"), "w") as f:
            json.dump(plan, f, indent=1)
        log("nemesis plan: " + ", ".join("%s@%.0fs/%.0fs" % (p["kind"], p["at"], p["length"])
                                          for p in plan))
        dur = self.args.duration
        for p in plan:
            start_at = max(p["at"], self.now() + 3)
            if start_at + 4 > dur:
                break
            self.sleep_until(start_at)
            t0 = self.now()
            kind = p["kind"]
            try:
                detail, nodes, heal = getattr(self, "nem_" + kind.replace("-", "_"))(rng)
            except Exception as e:
                log("!! nemesis %s could not start: %s" % (kind, e))
                self.record_fault(t0, kind, "could not start: %s" % e, [])
                continue
            log("FAULT %s: %s" % (kind, detail))
            self.sleep_until(min(t0 + p["length"], dur - 1))
            try:
                extra = heal()
            except Exception as e:
                extra = "heal failed: %s" % e
                log("!! " + extra)
                self.heal_all()
            self.ensure_running()
            log("HEAL  %s: %s" % (kind, extra))
            self.record_fault(t0, kind, "%s; %s" % (detail, extra), nodes)
        self.sleep_until(dur)

    # ---------------------------------------------------------------- recovery
    def queue_pending(self, node):
        r = self.cli(["queue", "stats"], node.raft_addr, timeout=5)
        if r is None or r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout).get("pending")
        except ValueError:
            return None

    def recover(self):
        t0 = time.time()
        deadline = t0 + self.args.recovery_timeout
        self.heal_all()
        why, leader, pending = "not checked", None, None
        while time.time() < deadline:
            self.ensure_running()
            members = self.targets()
            want = {m.id for m in members}
            sts = self.statuses()
            leaders = [s for s in sts.values() if s and s.get("role") == "leader"]
            if any(s is None for s in sts.values()):
                why = "no status from %s" % [m.name for m in members if sts.get(m.id) is None]
            elif len(leaders) != 1:
                why = "%d leaders" % len(leaders)
            elif set(leaders[0].get("voters", [])) != want:
                why = "voters %s != members %s" % (leaders[0].get("voters"), sorted(want))
            elif not all(s.get("ready") and s.get("leader_id") == leaders[0]["id"]
                         for s in sts.values()):
                why = "not every node ready and agreeing on the leader"
            else:
                leader = self.node_by_id(leaders[0]["id"])
                pending = self.queue_pending(leader)
                if pending == 0:
                    return True, time.time() - t0, leader, "drained"
                why = "pending %s" % pending
            time.sleep(1)
        return False, time.time() - t0, leader, why

    # ---------------------------------------------------------------- main
    def run(self):
        a = self.args
        os.makedirs(os.path.join(self.out, "nodes"), exist_ok=True)
        cleanup_stale()
        log("campaign: seed %d, %d nodes, duration %ss, nemeses %s, out %s, hato %s"
            % (self.seed, self.n, a.duration, ",".join(self.kinds) or "none", self.out, self.bin))
        self.setup_bridge()
        self.form_cluster()
        self.configure()
        self.start_haproxy()
        self.epoch = time.time()
        self.start_sink()
        self.faults_f = open(os.path.join(self.out, "faults.jsonl"), "a", buffering=1)
        self.history = History(os.path.join(self.out, "history.jsonl"), self.epoch)
        mon = threading.Thread(target=self.monitor, daemon=True, name="monitor")
        mon.start()
        idx = 0
        for kind, count in (("smtp", a.smtp_clients), ("http", a.http_clients),
                            ("blocks", a.block_clients)):
            for _ in range(count):
                self.workers.append(Worker(self, idx, kind))
                idx += 1
        for w in self.workers:
            w.start()
        log("workload: %d SMTP, %d HTTP, %d block-list clients" % (
            a.smtp_clients, a.http_clients, a.block_clients))
        self.nemesis_loop()
        self.stop_work.set()
        for w in self.workers:
            w.join(timeout=30)
        stuck = [w.name for w in self.workers if w.is_alive()]
        if stuck:
            log("!! workers still running: %s" % stuck)
        log("workload stopped at t=%.1f: %s" % (self.now(), json.dumps(self.history.counts,
                                                                        sort_keys=True)))
        ok, drain, leader, why = self.recover()
        log("recovery: %s after %.1f s (%s), leader %s" % (
            "RECOVERED" if ok else "NOT RECOVERED", drain, why, leader.name if leader else None))
        self.stop_monitor.set()
        mon.join(timeout=5)
        self.save_final_state(leader)
        self.write_summary(ok, drain, leader, why)
        return 0

    def save_final_state(self, leader):
        node = (leader or (self.targets() or [None])[0])
        if node is None:
            return
        r = self.cli(["cluster", "status", "--all"], node.raft_addr, timeout=5)
        if r is not None:
            with open(os.path.join(self.out, "final-status.json"), "w") as f:
                f.write(r.stdout or r.stderr)
        # Hato's own delivery log (every attempt, with the node that made it): what to read
        # next to sink.jsonl when a message arrived twice.
        r = self.cli(["log", "--limit", "1000000"], node.raft_addr, timeout=20)
        if r is not None:
            with open(os.path.join(self.out, "delivery-log.jsonl"), "w") as f:
                f.write(r.stdout if r.returncode == 0 else r.stderr)

    def scan_logs(self):
        found = {}
        pat = re.compile(r"panicked|thread '.*' panicked|fatal|FATAL|stack backtrace|SIGSEGV")
        for n in self.all_nodes:
            hits = []
            try:
                with open(n.logpath, "r", errors="replace") as f:
                    for i, line in enumerate(f, 1):
                        if pat.search(line):
                            hits.append("%d: %s" % (i, line.rstrip()[:300]))
            except OSError:
                continue
            if hits:
                found[n.name] = {"count": len(hits), "first": hits[:5]}
        return found

    def write_summary(self, ok, drain, leader, why):
        sink_count = 0
        try:
            with open(os.path.join(self.out, "sink.jsonl")) as f:
                sink_count = sum(1 for line in f if line.strip())
        except OSError:
            pass
        panics = self.scan_logs()
        if panics:
            log("!! suspicious lines in node logs: %s" % {k: v["count"] for k, v in panics.items()})
        s = {
            "seed": self.seed,
            "duration": self.args.duration,
            "nodes": self.n,
            "nemeses": self.kinds,
            "recovered": bool(ok),
            "recovery_reason": why,
            "drain_seconds": round(drain, 3),
            "final_leader": leader.name if leader else None,
            "started_wall": self.epoch,
            "members_final": [m.name for m in self.targets()],
            "nodes_created": [n.name for n in self.all_nodes],
            "history_counts": self.history.counts if self.history else {},
            "sink_records": sink_count,
            "faults": len(self.faults),
            "unexpected_exits": self.events,
            "node_exits": {n.name: n.exits for n in self.all_nodes},
            "log_findings": panics,
            "hato_bin": self.bin,
            "config": {"lease_secs": self.args.lease_secs,
                       "write_timeout_ms": self.args.write_timeout_ms,
                       "retry_schedule_secs": [1, 2, 3],
                       "disk_mb": self.args.disk_mb,
                       "clients": {"smtp": self.args.smtp_clients,
                                   "http": self.args.http_clients,
                                   "blocks": self.args.block_clients}},
        }
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(s, f, indent=1)

    def teardown(self):
        self.stop_work.set()
        self.stop_monitor.set()
        nodes = [n for n in self.all_nodes if n.proc is not None]
        for n in nodes:
            try:
                with n.lock:
                    if n.alive():
                        n.proc.send_signal(signal.SIGCONT)
                        n.proc.terminate()
            except OSError:
                pass
        end = time.time() + self.args.stop_grace
        for n in nodes:
            try:
                n.proc.wait(timeout=max(0.1, end - time.time()))
            except (subprocess.TimeoutExpired, AttributeError):
                pass
            try:
                n.kill()
            except Exception:
                pass
        for p in (self.haproxy, self.sink):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=3)
            if p is not None:
                self.state.del_pid(p.pid)
        for n in self.all_nodes:
            try:
                n.destroy()
            except Exception as e:
                log("teardown %s: %s" % (n.name, e))
        if self.history:
            self.history.close()
        if self.faults_f:
            self.faults_f.close()
        cleanup_stale(quiet=True)
        log("torn down")


def parse_nemeses(text):
    if text in ("all", ""):
        return list(NEMESES)
    if text == "none":
        return []
    out = []
    aliases = {"partition": ["partition-majority-minority", "partition-isolate-leader",
                             "partition-bridge"]}
    for k in text.split(","):
        k = k.strip()
        for kk in aliases.get(k, [k]):
            if kk not in NEMESES:
                raise argparse.ArgumentTypeError(
                    "unknown nemesis %r (known: %s, partition, all, none)" % (kk, ", ".join(NEMESES)))
            if kk not in out:
                out.append(kk)
    return out


def default_bin():
    for p in (os.environ.get("HATO_BIN"),
              os.path.expanduser("~/.cache/hato-target/release/hato"),
              os.path.expanduser("~/.cache/hato-target/debug/hato")):
        if p and os.access(p, os.X_OK):
            return p
    return None


def main():
    global _log_file
    ap = argparse.ArgumentParser(description="Hato fault-injection campaign (see jepsen/README.md)")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--duration", type=float, default=60, help="seconds of workload and faults")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    ap.add_argument("--nemesis", type=parse_nemeses, default=list(NEMESES),
                    help="comma list of %s, 'partition', 'all' (default) or 'none'" % ", ".join(NEMESES))
    ap.add_argument("--bin", default=None, help="hato binary ($HATO_BIN, else release, else debug)")
    ap.add_argument("--smtp-clients", type=int, default=6)
    ap.add_argument("--http-clients", type=int, default=2)
    ap.add_argument("--block-clients", type=int, default=2)
    ap.add_argument("--send-pause-min", type=float, default=0.05)
    ap.add_argument("--send-pause-max", type=float, default=0.3)
    ap.add_argument("--cli-timeout", type=int, default=3, help="hato CLI --timeout for block ops")
    ap.add_argument("--recovery-timeout", type=float, default=100)
    ap.add_argument("--lease-secs", type=int, default=12)
    ap.add_argument("--write-timeout-ms", type=int, default=3000)
    ap.add_argument("--snapshot-every", type=int, default=3000)
    ap.add_argument("--disk-mb", type=int, default=256)
    ap.add_argument("--stop-grace", type=float, default=5)
    ap.add_argument("--cleanup", action="store_true", help="only remove leftovers of a crashed run")
    args = ap.parse_args()

    if os.geteuid() != 0:
        print("campaign.py must run as root: it creates network namespaces, a bridge, iptables "
              "rules and tmpfs mounts (try: sudo jepsen/run.sh)", file=sys.stderr)
        return 2
    holder = take_lock()
    if holder is not None:
        print("another campaign is running (pid %s); not touching its namespaces" % holder,
              file=sys.stderr)
        return 2
    if args.cleanup:
        cleanup_stale()
        return 0
    if not args.out:
        ap.error("--out is required")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    args.bin = args.bin or default_bin()
    if not args.bin or not os.access(args.bin, os.X_OK):
        print("no hato binary: set HATO_BIN or build (cargo build --workspace)", file=sys.stderr)
        return 2
    for tool in ("haproxy", "ip", "iptables", "tc"):
        if shutil.which(tool) is None:
            print("missing %s (jepsen/run.sh installs it)" % tool, file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    _log_file = open(os.path.join(args.out, "campaign.log"), "a")

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    c = Campaign(args)
    try:
        return c.run()
    except (KeyboardInterrupt, SystemExit) as e:
        log("interrupted (%s); tearing down" % (e,))
        return 130
    except Exception:
        log("campaign failed:\n" + traceback.format_exc())
        return 3
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            c.teardown()
        except Exception:
            log("teardown failed:\n" + traceback.format_exc())
            cleanup_stale()


if __name__ == "__main__":
    sys.exit(main())
