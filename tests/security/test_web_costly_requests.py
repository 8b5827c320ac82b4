"""Requests that cost the server far more than they cost the sender (issue 18, items 3, 4, 5).

Each test is named after the attack and runs it against a real uvicorn configured as `grader serve`
configures it. Bounds are on memory and on answers, never on time."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from app.auth import passwords

from .conftest import make_settings, threaded_server


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")   # VmHWM := current RSS (Linux >= 4.0)


def _peak_rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def _rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def test_login_flood_runs_few_password_hashes_at_once(tmp_path):
    """30 simultaneous unauthenticated logins from one address (the per-client limit raised so all
    of them reach the password check): before, each ran its own 64 MiB argon2 hash at once and the
    web process grew by ~850 MiB. Now at most MAX_CONCURRENT hashes of 19 MiB run, a few wait, and
    the rest are answered 429 with Retry-After at once."""
    settings = make_settings(tmp_path, login_attempts_per_minute_per_client=1000, login_attempts_per_minute=1000)
    start = threading.Barrier(30)

    def attempt(i: int) -> httpx.Response:
        start.wait()
        return client.post("/api/v1/login", json={"username": f"nobody{i}", "password": "x" * 8})

    with threaded_server(settings) as (base, _app), \
            httpx.Client(base_url=base, timeout=120, limits=httpx.Limits(max_connections=30)) as client:
        client.get("/healthz")
        before = _rss_mib()
        _reset_peak_rss()
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(attempt, range(30)))
        grown = _peak_rss_mib() - before
    codes = [r.status_code for r in answers]
    assert set(codes) <= {401, 429} and 401 in codes      # how many wait or are turned away depends on timing
    assert all(r.headers.get("Retry-After") for r in answers if r.status_code == 429)
    # MAX_CONCURRENT x 19 MiB of hashing, plus room for 30 requests' own buffers; 30 x 64 MiB before
    assert grown < passwords.MAX_CONCURRENT * passwords.MEMORY_COST_KIB / 1024 + 120


def test_password_checks_beyond_the_running_and_waiting_ones_are_turned_away_not_queued():
    """The gate itself, deterministically: with every running and waiting place taken, the next
    password check is refused at once (HashingBusy, answered 429), and a place freed is a place."""
    import pytest

    lane = passwords.HashLane(running=2, waiting=1)
    release = threading.Event()
    holders = [threading.Thread(target=lane.run, args=(release.wait, 60)) for _ in range(3)]
    for t in holders:
        t.start()
    while lane._admitted < 3:        # two running, one waiting (start-up, not a timing assertion)
        threading.Event().wait(0.01)
    with pytest.raises(passwords.HashingBusy):
        lane.run(len, "refused")
    release.set()
    for t in holders:
        t.join(60)
    assert lane.run(len, "a place freed is a place") == 24


def test_stored_hash_with_old_parameters_still_logs_in_and_is_upgraded(tmp_path):
    """An account whose hash was made with argon2-cffi's 64 MiB default (earlier releases) still logs in,
    and its hash is replaced by one of the sized parameters."""
    from argon2 import PasswordHasher

    from app.store.db import Database
    from app.store.models import User

    settings = make_settings(tmp_path)
    db = Database(settings.db_url)
    with db.session() as s, s.begin():
        s.query(User).filter_by(username="alice").one().password_hash = PasswordHasher().hash("alice-password")
    with threaded_server(settings) as (base, _app):
        r = httpx.post(f"{base}/api/v1/login", json={"username": "alice", "password": "alice-password"}, timeout=60)
    assert r.status_code == 200
    with db.read_session() as s:
        stored = s.query(User).filter_by(username="alice").one().password_hash
    db.dispose()
    assert f"m={passwords.MEMORY_COST_KIB}," in stored and not passwords.needs_rehash(stored)


def test_one_client_holding_every_connection_cannot_starve_health_probes(tmp_path):
    """One address opens 300 idle sockets against a server whose global budget is 100 connections:
    before, every other request (health probes included) was answered 503 until they timed out. Now
    that address keeps at most `connections_per_client` of them (the rest are told 503 and closed), and
    a probe from another address is served."""
    import socket

    settings = make_settings(tmp_path, limit_concurrency=100, connections_per_client=20)
    with threaded_server(settings) as (base, _app):
        port = int(base.rsplit(":", 1)[1])
        flood = []
        try:
            for _ in range(300):
                sock = socket.socket()
                sock.bind(("127.0.0.2", 0))          # the flood's own address on the loopback range
                sock.connect(("127.0.0.1", port))
                flood.append(sock)
            refused = 0
            for sock in flood:
                sock.settimeout(0.2)
                try:
                    first = sock.recv(64)
                except TimeoutError:
                    continue                           # held open: one of the 20 allowed
                refused += first.startswith(b"HTTP/1.1 503")
            probe = httpx.get(f"{base}/healthz", timeout=30)
        finally:
            for sock in flood:
                sock.close()
    assert probe.status_code == 200
    assert refused == 300 - 20
