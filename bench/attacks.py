#!/usr/bin/env python3
"""The security review's measured attacks (issue 13), run again against today's server.

Usage: bench/attacks.py [--iotgo PATH] [--logins N] [--samples N]

Starts the release binary itself (`iotgo serve`, a temporary data directory, a free port on
127.0.0.1, an admin from IOTGO_ADMIN_EMAIL/IOTGO_ADMIN_PASSWORD) under
`prlimit --nofile=1024:1024`, with every setting at its default (rate limits on), runs each
attack in turn and prints one row per attack: what the review measured before, what is
measured now. Python 3.11 standard library only; Linux (reads /proc/<pid>/status and fd).

Attackers and victims come from their own loopback addresses (127.0.x.y: all of 127/8 is
the loopback on Linux), so the throttles one attack trips do not change the next one's
figures. That is also an attacker with many addresses (a botnet), the harder case for the
per-address limits. The binary must be built first: `cargo build --release -p iotgo-server`.
"""

import argparse
import base64
import collections
import datetime
import http.client
import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ADMIN_EMAIL = "admin@attacks.local"
ADMIN_PASSWORD = "attacks admin password"
PASSWORD = "the right password"
HOST = "127.0.0.1"


# --- the server -------------------------------------------------------------------------

class Server:
    """One `iotgo serve` with a fresh data directory, its open files capped at 1,024."""

    def __init__(self, binary, data_dir=None):
        self.binary = binary
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="iotgo-attacks-")
        self.log_path = self.data_dir + ".log"
        self.port = free_port()
        self.proc = None

    def start(self):
        env = dict(os.environ, IOTGO_ADMIN_EMAIL=ADMIN_EMAIL, IOTGO_ADMIN_PASSWORD=ADMIN_PASSWORD)
        for key in list(env):
            # Defaults only: nothing from the caller's environment changes a limit.
            if key.startswith("IOTGO_") and key not in ("IOTGO_ADMIN_EMAIL", "IOTGO_ADMIN_PASSWORD"):
                del env[key]
        self.log = open(self.log_path, "ab")
        # prlimit sets the limit and execs the server: the child's pid is the server's.
        self.proc = subprocess.Popen(
            ["prlimit", "--nofile=1024:1024", self.binary, "serve",
             "--listen", f"{HOST}:{self.port}", "--data-dir", self.data_dir],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"the server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                if request(self.port, "GET", "/healthz", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit("no /healthz within 60 s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def status(self, key):
        """A /proc/<pid>/status value in KiB (VmRSS, VmHWM)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_mib(self):
        return self.status("VmRSS") / 1024

    def open_files(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- clients ----------------------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, raw, seconds):
        self.status, self.headers, self.raw, self.seconds = status, headers, raw, seconds

    def json(self):
        try:
            return json.loads(self.raw)
        except ValueError:
            return {}


def request(port, method, path, body=None, token=None, src=HOST, timeout=30, conn=None):
    """One HTTP request from the loopback address `src`; a new connection unless given one."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout, source_address=(src, 0))
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    t0 = time.perf_counter()
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
    finally:
        if own:
            conn.close()
    return Answer(r.status, dict(r.getheaders()), raw, time.perf_counter() - t0)


def register(port, src, email=None):
    email = email or f"{uuid.uuid4().hex[:12]}@example.com"
    a = request(port, "POST", "/api/user/register", {"email": email, "password": PASSWORD}, src=src)
    body = a.json()
    if "jwt" not in body:
        sys.exit(f"sign-up from {src} failed: {a.status} {a.raw[:200]!r}")
    return email, body["jwt"], body["user"]["apikey"]


def device_api(port, body, src):
    return request(port, "POST", "/api/http", body, src=src)


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), frames in, close detection."""

    def __init__(self, port, src):
        self.sock = socket.create_connection((HOST, port), timeout=5, source_address=(src, 0))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /api/ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise OSError(f"no upgrade: {head[:80]!r}")

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, obj, opcode=0x1):
        payload = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self, timeout):
        """The next text frame as JSON; EOFError when the server closes the socket."""
        self.sock.settimeout(timeout)
        while True:
            b0, b1 = self._take(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._take(2), "big")
            elif n == 127:
                n = int.from_bytes(self._take(8), "big")
            payload = self._take(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise EOFError
            if opcode == 0x9:
                self.send(payload, opcode=0xA)
            elif opcode == 0x1:
                return json.loads(payload)

    def closed_within(self, seconds):
        """Seconds until the server closed the socket, or None if it is still open."""
        t0 = time.monotonic()
        deadline = t0 + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.recv(left)
        except (EOFError, ConnectionResetError):
            return time.monotonic() - t0
        except socket.timeout:
            pass
        return None

    def close(self):
        self.sock.close()


def poll_sockets(socks, state):
    """Classifies raw sockets without blocking: state[i] becomes 'open', 'answered' (bytes
    came, then maybe a close) or 'closed'. Returns a Counter of the states."""
    for i, s in enumerate(socks):
        if state[i] == "closed":
            continue
        try:
            data = s.recv(4096)
            if data:
                state[i] = "answered"
                data = s.recv(4096)  # the answer is followed by the close
            if not data:
                state[i] = "closed" if state[i] == "open" else "answered-closed"
        except BlockingIOError:
            pass
        except OSError:
            state[i] = "closed" if state[i] == "open" else "answered-closed"
    return collections.Counter(state)


def open_idle(port, src, n, timeout=2.0):
    socks, failed = [], 0
    for _ in range(n):
        s = socket.socket()
        s.settimeout(timeout)
        try:
            s.bind((src, 0))
            s.connect((HOST, port))
            s.setblocking(False)
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    return socks, failed


def ms(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --- the attacks ------------------------------------------------------------------------
# Each returns (attack, before: the review's figure from issue 13, now).

def attack_login_memory(srv, n):
    """n concurrent logins from n addresses (unknown e-mails: each one hashes)."""
    rss0 = srv.rss_mib()
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], srv.rss_mib())
            time.sleep(0.01)

    codes = collections.Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def login(i):
        src = f"127.0.10.{i + 1}" if i < 250 else f"127.0.11.{i - 249}"
        barrier.wait()
        try:
            a = request(srv.port, "POST", "/api/user/login",
                        {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": "wrong password"},
                        src=src, timeout=60)
            code = a.status
        except OSError as e:
            code = type(e).__name__
        with lock:
            codes[code] += 1

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=login, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    stop.set()
    sampler.join()
    hwm = srv.status("VmHWM") / 1024
    got = ", ".join(f"{c}×{k}" for k, c in sorted(codes.items(), key=str))
    return (f"{n} concurrent logins (unknown e-mails, {n} addresses)",
            "32 → 1,252 MiB",
            f"{rss0:.0f} → {peak[0]:.0f} MiB peak (VmHWM {hwm:.0f} MiB), answers {got}, in {took:.1f} s")


def attack_idle(srv, n=1100):
    """n idle connections from 127.0.0.1 against 1,024 descriptors; a client from 127.0.0.2."""
    files0 = srv.open_files()
    rss0 = srv.rss_mib()
    t0 = time.monotonic()
    socks, failed = open_idle(srv.port, "127.0.0.1", n)
    opened = time.monotonic() - t0
    files_peak = srv.open_files()
    try:
        h = request(srv.port, "GET", "/healthz", src="127.0.0.2", timeout=10)
        normal = f"{h.status} in {ms(h.seconds)}"
    except OSError as e:
        normal = f"no answer ({type(e).__name__})"
    # Times from the last connection's opening: the server's timeouts run per connection.
    t1 = time.monotonic()
    state = ["open"] * len(socks)
    time.sleep(max(0, 3 - (time.monotonic() - t1)))
    at3 = poll_sockets(socks, state)
    held3 = at3["open"]
    files3 = srv.open_files()
    time.sleep(max(0, 12 - (time.monotonic() - t1)))
    at12 = poll_sockets(socks, state)
    rss1 = srv.rss_mib()
    for s in socks:
        s.close()
    answered = at12["answered"] + at12["answered-closed"]
    return (f"{n} idle connections, one address, 1,024 descriptors",
            "all 1,024 descriptors taken; a normal client got no answer",
            f"{len(socks)} connected in {opened:.1f} s ({failed} failed); server fds {files0} → {files_peak}; "
            f"other client's /healthz meanwhile: {normal}; 3 s after the last opened {held3} held, "
            f"{len(socks) - held3} closed ({answered} with a 503), fds {files3}; 12 s after: {at12['open']} held; RSS {rss0:.0f} → {rss1:.0f} MiB")


def attack_slowloris(srv, n=500, seconds=12):
    """n connections sending a request head one byte per second."""
    rss0 = srv.rss_mib()
    t_open = time.monotonic()
    socks, failed = open_idle(srv.port, "127.0.0.3", n)
    opened = time.monotonic() - t_open
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    drip = b"X-a: b\r\n"
    state = ["open"] * len(socks)
    for s in socks:
        s.send(head)
    t0 = time.monotonic()
    rss_held = rss0
    held_at = {}
    tick = 0
    while (elapsed := time.monotonic() - t0) < seconds:
        tick += 1
        time.sleep(max(0, tick - (time.monotonic() - t0)))
        counts = poll_sockets(socks, state)
        held_at[tick] = counts["open"]
        if tick == 5:
            rss_held = srv.rss_mib()
        for i, s in enumerate(socks):
            if state[i] == "open":
                try:
                    s.send(drip[tick % len(drip):tick % len(drip) + 1])
                except OSError:
                    state[i] = "closed"
    counts = poll_sockets(socks, state)
    for s in socks:
        s.close()
    per_conn = (rss_held - rss0) * 1024 / max(1, len(socks))
    return (f"{n} slowloris connections (a header byte a second)",
            "500 of 500 still held after 10 s, ~30 KiB each",
            f"held: {held_at.get(5, '?')} at 5 s, {held_at.get(9, '?')} at 9 s, {held_at.get(11, '?')} at 11 s, "
            f"{counts['open']} at {seconds} s (seconds from the last head sent; {len(socks)} opened over {opened:.1f} s, "
            f"{failed} failed); RSS {rss0:.0f} → {rss_held:.0f} MiB "
            f"at 5 s (~{per_conn:.0f} KiB each)")


def guess(port, src, seconds, threads, email_of, path="/api/user/login"):
    counts = collections.Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work():
        conn = None
        while time.monotonic() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(HOST, port, timeout=30, source_address=(src, 0))
            try:
                a = request(port, "POST", path, {"email": email_of(), "password": "wrong password"},
                            conn=conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
                continue
            key = {200: "checked", 429: "throttled"}.get(a.status, str(a.status))
            if key == "checked" and "jwt" in a.json():
                key = "signed in"
            with lock:
                counts[key] += 1
        if conn:
            conn.close()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return counts


def attack_guessing(srv, seconds):
    victim, _, _ = register(srv.port, "127.0.20.100")

    def real(path, email, password, src):
        """The account's owner, from an address of their own, right after the guessing."""
        a = request(srv.port, "POST", path, {"email": email, "password": password}, src=src)
        if "jwt" in a.json():
            return "signed in"
        return f"{a.status}, Retry-After {a.headers.get('retry-after', a.headers.get('Retry-After'))} s"

    one = guess(srv.port, "127.0.20.1", seconds, 4, lambda: victim)
    victim_now = real("/api/user/login", victim, PASSWORD, "127.0.20.100")
    many = guess(srv.port, "127.0.20.2", seconds, 4, lambda: f"{uuid.uuid4().hex[:12]}@example.com")
    admin = guess(srv.port, "127.0.20.3", seconds / 2, 4, lambda: ADMIN_EMAIL, "/api/admin/login")
    admin_now = real("/api/admin/login", ADMIN_EMAIL, ADMIN_PASSWORD, "127.0.20.101")

    def fmt(c, s):
        return f"{c['checked']} checked ({c['checked'] / s:.1f}/s), {c['throttled']} answered 429"

    return ("wrong logins, one client, 4 at a time",
            "~30 per second, unthrottled (users and admins)",
            f"one account {seconds:.0f} s: {fmt(one, seconds)}; new e-mails {seconds:.0f} s: {fmt(many, seconds)}; "
            f"admin {seconds / 2:.0f} s: {fmt(admin, seconds / 2)}; the real owner at once, from "
            f"another address: user {victim_now}, admin {admin_now}")


def attack_registrations(srv, n=40):
    counts = collections.Counter()
    t0 = time.monotonic()
    for _ in range(n):
        a = request(srv.port, "POST", "/api/user/register",
                    {"email": f"{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD},
                    src="127.0.21.1")
        counts["made" if "jwt" in a.json() else str(a.status)] += 1
    took = time.monotonic() - t0
    return (f"{n} sign-ups in a row, one address",
            "40 of 40 accepted at 33/s",
            f"{counts['made']} made, {counts['429']} answered 429, "
            f"{n - counts['made'] - counts['429']} other, in {took:.1f} s")


def attack_timing(srv, samples):
    """Wrong password for real accounts against unknown e-mails, interleaved. Each account
    takes 5 wrong passwords before its back-off, each address 30: so one account per 5
    samples and one address per sample, all at default settings."""
    accounts = []
    for i in range((samples + 4) // 5):
        src = f"127.0.30.{i // 5 + 1}"
        accounts.append(register(srv.port, src)[0])
    known, unknown, other = [], [], collections.Counter()
    for i in range(samples):
        for kind, email, src in (("known", accounts[i // 5], f"127.0.31.{i + 1}"),
                                 ("unknown", f"{uuid.uuid4().hex[:12]}@example.com", f"127.0.32.{i + 1}")):
            a = request(srv.port, "POST", "/api/user/login", {"email": email, "password": "wrong password"},
                        src=src)
            if a.status == 200 and "jwt" not in a.json():
                (known if kind == "known" else unknown).append(a.seconds)
            else:
                other[f"{kind} {a.status}"] += 1
    mk, mu = statistics.median(known), statistics.median(unknown)
    extra = f"; not counted: {dict(other)}" if other else ""
    return ("login timing: wrong password vs unknown e-mail",
            "30 ms vs 0.3 ms (accounts can be enumerated)",
            f"median {ms(mk)} vs {ms(mu)} (ratio {mu / mk:.2f}; {len(known)}+{len(unknown)} logins, "
            f"p10–p90 {ms(quantile(known, .1))}–{ms(quantile(known, .9))} vs "
            f"{ms(quantile(unknown, .1))}–{ms(quantile(unknown, .9))}){extra}")


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def attack_state(srv, updates=40, keys=52, value_len=1000):
    src = "127.0.40.1"
    _, jwt, apikey = register(srv.port, src)
    dev = request(srv.port, "POST", "/api/user/device", {"name": "big", "group": "", "type": "00"},
                  token=jwt, src=src).json()
    deviceid = dev["deviceid"]
    results = []
    body_len = 0
    for u in range(updates):
        params = {f"u{u:02d}k{k:02d}": "x" * value_len for k in range(keys)}
        body = {"action": "update", "deviceid": deviceid, "apikey": apikey, "params": params,
                "userAgent": "device", "sequence": str(u)}
        body_len = len(json.dumps(body))
        a = device_api(srv.port, body, src)
        results.append((a.json().get("error"), a.json().get("reason"), a.seconds))
    accepted = [r for r in results if r[0] == 0]
    refused = [(i + 1, r) for i, r in enumerate(results) if r[0] != 0]
    q = device_api(srv.port, {"action": "query", "deviceid": deviceid, "apikey": apikey, "params": [],
                              "userAgent": "device"}, src).json()
    stored = len(json.dumps(q.get("params", {}), separators=(",", ":")))
    listing = request(srv.port, "GET", "/api/user/device", token=jwt, src=src)
    first = f"#{refused[0][0]} ({refused[0][1][0]} {refused[0][1][1]})" if refused else "none"
    times = ", ".join(ms(r[2]) for r in results[:3])
    return (f"device state: {updates} updates of {body_len / 1000:.0f} KB with new keys",
            "grew to 2.1 MB; each update 4 → 29 ms; device list 2.1 MB",
            f"{len(accepted)} accepted, {len(refused)} refused, first refused {first}; stored params "
            f"{stored:,} B; device list {len(listing.raw):,} B; first updates {times}, "
            f"refusals median {ms(statistics.median(r[1][2] for r in refused)) if refused else '-'}"), (jwt, deviceid)


def attack_history(srv, jwt, deviceid):
    src = "127.0.40.1"
    out = []
    for q in ("from=-9223372036854775808", "to=9223372036854775807"):
        a = request(srv.port, "GET", f"/api/user/device/{deviceid}/history?{q}", token=jwt, src=src)
        out.append(f"`{q}` → {a.status} {a.json().get('error', a.raw[:60])!r}")
    return ("history `from=-9223372036854775808`",
            "overflows (wraps in release, would panic in debug)",
            "; ".join(out))


def modes(data_dir):
    out = []
    for name in (".", "iotgo.db", "iotgo.db-wal", "iotgo.db-shm"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            out.append(f"{'data dir' if name == '.' else name} {os.stat(p).st_mode & 0o777:04o}")
    return ", ".join(out)


def cut_text(cut):
    if cut is None:
        return "NOT closed within 3 s"
    return "closed by the time the answer came" if cut < 0.001 else f"closed {ms(cut)} after the answer"


def attack_credentials(srv):
    src = "127.0.50.1"
    email, jwt, apikey = register(srv.port, src)
    dev = request(srv.port, "POST", "/api/user/device", {"name": "lamp", "group": "", "type": "01"},
                  token=jwt, src=src).json()
    deviceid = dev["deviceid"]

    def query(key):
        return device_api(srv.port, {"action": "query", "deviceid": deviceid, "apikey": key,
                                     "params": [], "userAgent": "app"}, src).json().get("error")

    # An app socket subscribed with the apikey, then the apikey rotated.
    ws = WebSocket(srv.port, src)
    ws.send({"action": "subscribe", "apikey": apikey, "userAgent": "app"})
    sub = ws.recv(5).get("error")
    before = query(apikey)
    rot = request(srv.port, "POST", "/api/user/apikey", token=jwt, src=src).json()
    new_jwt, new_key = rot["jwt"], rot["user"]["apikey"]
    cut = ws.closed_within(3)
    ws.close()
    old_after, new_after = query(apikey), query(new_key)
    old_jwt = request(srv.port, "GET", "/api/user/device", token=jwt, src=src).status
    rotation = (f"rotation: old apikey {before} → {old_after} on HTTP (new key {new_after}), "
                f"apikey socket (subscribe {sub}) {cut_text(cut)}, "
                f"old JWT {old_jwt}")

    # An app socket subscribed with the token, then the password changed.
    ws = WebSocket(srv.port, src)
    ws.send({"action": "subscribe", "jwt": new_jwt})
    sub = ws.recv(5).get("error")
    pw = request(srv.port, "POST", "/api/user/password",
                 {"oldPassword": PASSWORD, "newPassword": "a new password"}, token=new_jwt, src=src)
    cut = ws.closed_within(3)
    ws.close()
    after = request(srv.port, "GET", "/api/user/device", token=new_jwt, src=src).status
    password = (f"password change ({pw.status} {pw.raw.decode()[:20]}): old JWT {after}, JWT socket "
                f"(subscribe {sub}) {cut_text(cut)}")

    # Admin tokens revoked.
    admin = request(srv.port, "POST", "/api/admin/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                    src="127.0.50.2").json()["jwt"]
    ok = request(srv.port, "GET", "/api/admin/users", token=admin, src="127.0.50.2").status
    request(srv.port, "POST", "/api/admin/logout-all", token=admin, src="127.0.50.2")
    gone = request(srv.port, "GET", "/api/admin/users", token=admin, src="127.0.50.2").status
    return ("credentials that cannot be revoked",
            "apikey cannot be rotated; a password change retires nothing; a JWT socket keeps its pushes; "
            "admin tokens live to expiry",
            f"{rotation}; {password}; admin token {ok} → {gone} after logout-all")


# --- main -------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--iotgo", default=os.path.join(root, "target/release/iotgo"))
    ap.add_argument("--logins", type=int, default=64, help="concurrent logins (default 64)")
    ap.add_argument("--samples", type=int, default=20, help="logins of each kind for the timing")
    ap.add_argument("--guess-seconds", type=float, default=8)
    args = ap.parse_args()
    if not shutil.which("prlimit"):
        sys.exit("prlimit (util-linux) is needed")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2000:
        sys.exit(f"this script needs ~2,000 open files of its own (hard limit {hard})")

    commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"# attacks of issue 13, {started:%Y-%m-%d %H:%M} UTC, commit {commit}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)

    srv = Server(args.iotgo)
    try:
        attack_all(args, srv, started)
    finally:
        shutil.rmtree(srv.data_dir, ignore_errors=True)
        if os.path.exists(srv.log_path):
            os.unlink(srv.log_path)


def attack_all(args, srv, started):
    srv.start()
    print(f"server pid {srv.proc.pid} on {HOST}:{srv.port}, data {srv.data_dir}, "
          f"RSS {srv.rss_mib():.0f} MiB, {srv.open_files()} open files", flush=True)
    rows = []

    def run(fn, *a):
        t0 = time.monotonic()
        out = fn(*a)
        row = out[0] if isinstance(out[1], tuple) else out
        rows.append(row)
        print(f"[{time.monotonic() - t0:5.1f} s] {row[0]}: {row[2]}", flush=True)
        return out

    try:
        run(attack_login_memory, srv, args.logins)
        run(attack_idle, srv)
        run(attack_slowloris, srv)
        # Before the guessing, which locks the admin account out for a while.
        run(attack_credentials, srv)
        run(attack_guessing, srv, args.guess_seconds)
        run(attack_registrations, srv)
        run(attack_timing, srv, args.samples)
        _, (jwt, deviceid) = run(attack_state, srv)
        run(attack_history, srv, jwt, deviceid)
        first = modes(srv.data_dir)
    finally:
        srv.stop()

    # An existing install with wide modes: loosen them, start again, look.
    data = srv.data_dir
    os.chmod(data, 0o755)
    for name in os.listdir(data):
        if name.startswith("iotgo.db"):
            os.chmod(os.path.join(data, name), 0o644)
    again = Server(args.iotgo, data)
    try:
        again.start()
        fixed = modes(data)
    finally:
        again.stop()
    rows.append(("file modes", "data dir 0755, iotgo.db 0644",
                 f"first start: {first}; an install loosened to 0755/0644, restarted: {fixed}"))
    print(f"[  0.0 s] file modes: {rows[-1][2]}", flush=True)

    with open(srv.log_path, errors="replace") as f:
        log = f.read()
    refusals = [l for l in log.splitlines() if "refused" in l and "connection" in l]
    took = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    print(f"\nserver log: {len(log.splitlines())} lines, {len(refusals)} about refused connections; "
          f"run took {took:.0f} s, load {os.getloadavg()[0]:.1f}")
    print("\n| attack | review (before) | now |\n|---|---|---|")
    for name, before, now in rows:
        print(f"| {name} | {before} | {now} |")


if __name__ == "__main__":
    main()
