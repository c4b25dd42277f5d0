#!/usr/bin/env python3
"""Wrong logins per second that one client gets checked, against a running server.

Usage: bench/throttle-logins.py BASE_URL [SECONDS] [THREADS]

Two runs from this one client address, each SECONDS long (default 10) with THREADS
concurrent clients (default 4): wrong passwords for one real account, then for a new
unknown e-mail address each time (a flood over many accounts). Prints, per run, the
wrong logins checked (answered 200 with the error: a password was verified) and those
refused with 429, in all and per second. Needs `requests` (PyPI).
"""

import sys
import threading
import time
import uuid

import requests


def run(base, seconds, threads, email_of):
    counts = {"checked": 0, "throttled": 0, "other": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work():
        s = requests.Session()
        while time.monotonic() < deadline:
            body = {"email": email_of(), "password": "wrong password"}
            r = s.post(f"{base}/api/user/login", json=body, timeout=30)
            key = {200: "checked", 429: "throttled"}.get(r.status_code, "other")
            if key == "checked" and "jwt" in r.json():
                key = "other"
            with lock:
                counts[key] += 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return counts


def main():
    base = sys.argv[1].rstrip("/")
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    r = requests.post(f"{base}/api/user/register",
                      json={"email": victim, "password": "the right password"}, timeout=30)
    assert "jwt" in r.json(), r.text
    runs = [
        ("one account", lambda: victim),
        ("many accounts", lambda: f"{uuid.uuid4().hex[:12]}@example.com"),
    ]
    for name, email_of in runs:
        c = run(base, seconds, threads, email_of)
        print(f"{name}: {c['checked']} wrong logins checked ({c['checked'] / seconds:.1f}/s), "
              f"{c['throttled']} answered 429 ({c['throttled'] / seconds:.0f}/s), "
              f"{c['other']} other, in {seconds:.0f} s with {threads} clients")


if __name__ == "__main__":
    main()
