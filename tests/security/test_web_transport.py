"""Attacks on the web tier's transport: slow and endless bodies, slow headers, the receive time
(issue 10, items 1, 3, 4, 5), against `grader serve` (a subprocess) or a uvicorn configured
exactly as `grader serve` configures it. Raw sockets, because HTTP clients will not misbehave."""

from __future__ import annotations

import select
import socket
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from support import wait_for

from app.auth import admin
from app.store.db import Database
from app.store.models import Submission

from .conftest import (
    TINY_TAR,
    form_token,
    grader_serve,
    make_settings,
    page_login,
    threaded_server,
    write_assessment,
)

GIVE_UP_SECONDS = 120   # a test fails (never passes) if the server has not acted by then
BOUNDARY = "----attack-boundary"


def _token(settings, name: str) -> str:
    db = Database(settings.db_url)
    try:
        return admin.create_token(db, name)
    finally:
        db.dispose()


def _submissions(settings) -> int:
    db = Database(settings.db_url)
    try:
        with db.read_session() as s:
            return s.query(Submission).count()
    finally:
        db.dispose()


def _connect(base: str) -> socket.socket:
    u = urlsplit(base)
    return socket.create_connection((u.hostname, u.port), timeout=GIVE_UP_SECONDS)


def _head(base: str, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {urlsplit(base).netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _multipart(data: bytes) -> tuple[bytes, bytes]:
    """(everything before the file's bytes, everything after) of a one-file multipart body."""
    start = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"handin\"; filename=\"handin.tar\"\r\n"
             "Content-Type: application/x-tar\r\n\r\n").encode()
    return start, data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _status(sock: socket.socket) -> int:
    """The status code of the response on SOCK (0 when the server closed without answering)."""
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def _stream_until_answered(sock: socket.socket, chunks, limit: int) -> tuple[int, int]:
    """Send CHUNKS until the server answers or LIMIT bytes went out; (status, bytes sent)."""
    sent = 0
    for chunk in chunks:
        if _answered(sock) or sent >= limit:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return _status(sock), sent


def _chunked(first: bytes, filler: bytes, total: int):
    """A chunked-encoding body: FIRST, then FILLER again and again (about TOTAL bytes, never ending)."""
    yield f"{len(first):x}\r\n".encode() + first + b"\r\n"
    n = len(first)
    while n < total:
        yield f"{len(filler):x}\r\n".encode() + filler + b"\r\n"
        n += len(filler)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`grader serve` with short read deadlines: 2 s for headers, 4 s for a body."""
    settings = make_settings(tmp_path_factory.mktemp("served"))
    with grader_serve(settings, header_timeout_seconds=2, body_timeout_seconds=4) as base:
        yield base, settings


# ---------------------------------------------------------------------------------------------
# item 3: bodies are capped while they stream

def test_chunked_upload_body_is_capped(served):
    base, settings = served
    sock = _connect(base)
    sock.sendall(_head(base, "POST", "/api/v1/assessments/capped/submissions", {
        "Authorization": f"Bearer {_token(settings, 'alice')}", "Transfer-Encoding": "chunked",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
    start, _ = _multipart(b"")
    status, sent = _stream_until_answered(sock, _chunked(start, b"\0" * 65536, 1 << 40), limit=64 << 20)
    sock.close()
    assert status == 413, (status, sent)
    assert sent < 16 << 20    # answered while streaming (the rest sat in socket buffers), not at the end


def test_login_form_body_is_capped(served):
    base, _ = served
    sock = _connect(base)
    sock.sendall(_head(base, "POST", "/login", {"Transfer-Encoding": "chunked",
                                               "Content-Type": "application/x-www-form-urlencoded"}))
    status, sent = _stream_until_answered(sock, _chunked(b"username=", b"a" * 65536, 1 << 40), limit=64 << 20)
    sock.close()
    assert status == 413, (status, sent)
    assert sent < 16 << 20


def test_declared_oversized_body_is_refused_before_it_is_sent(served):
    base, _ = served
    sock = _connect(base)
    sock.sendall(_head(base, "POST", "/activate", {"Content-Length": str(400 << 20),
                                                   "Content-Type": "application/x-www-form-urlencoded"}))
    status, sent = _stream_until_answered(sock, iter(lambda: b"a" * 65536, None), limit=64 << 20)
    sock.close()
    assert status == 413 and sent < 16 << 20, (status, sent)


# ---------------------------------------------------------------------------------------------
# item 4: slow clients are dropped

def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed SOCK (any response it sent first is read and dropped)."""
    try:
        while _answered(sock):
            if sock.recv(65536) == b"":
                return True
        return False
    except (ConnectionResetError, BrokenPipeError, OSError):
        return True


def test_slow_client_connection_is_dropped(served):
    """Dribbled headers, an idle connection, and a dribbled body on a route that never reads it."""
    base, _ = served
    dribblers = []
    for _ in range(20):
        s = _connect(base)
        s.sendall(b"GET / HTTP/1.1\r\n")
        dribblers.append(s)
    idle = _connect(base)
    body = _connect(base)
    body.sendall(_head(base, "POST", "/healthz", {"Content-Length": "100000"}))
    everyone = [*dribblers, idle, body]
    end = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < end and not all(_closed_by_server(s) for s in everyone):
        for s in [*dribblers, body]:
            if not _closed_by_server(s):
                try:
                    s.sendall(b"X-Slow: 1\r\n" if s is not body else b"a")
                except (BrokenPipeError, ConnectionResetError):
                    pass
        time.sleep(0.5)
    open_ones = sum(not _closed_by_server(s) for s in everyone)
    for s in everyone:
        s.close()
    assert open_ones == 0


def test_slow_upload_body_is_cut_off(served):
    base, settings = served
    before = _submissions(settings)
    start, rest = _multipart(TINY_TAR)
    body = start + rest
    sock = _connect(base)
    sock.sendall(_head(base, "POST", "/api/v1/assessments/open/submissions", {
        "Authorization": f"Bearer {_token(settings, 'bob')}", "Content-Length": str(len(body)),
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
    status, _ = _stream_until_answered(sock, _dribble(body), limit=len(body))
    sock.close()
    assert status == 408
    assert _submissions(settings) == before


def _dribble(body: bytes):
    """One byte every half second (for GIVE_UP_SECONDS at most)."""
    end = time.monotonic() + GIVE_UP_SECONDS
    for i in range(len(body)):
        if time.monotonic() > end:
            return
        yield body[i:i + 1]
        time.sleep(0.5)


@pytest.mark.parametrize("route", ["api-upload", "page-upload", "roster", "similarity-archive", "form"])
def test_each_route_takes_the_body_it_declares_and_not_a_byte_more(tmp_path, route):
    """The cap comes from the route the request was routed to (its @body_limit), not from a second
    list of paths: one byte over that route's own setting is refused, one byte over a form's is
    not where the route takes more."""
    from .conftest import Web

    # an overhead above the 64 KiB the upload use case once hard-coded beside the setting
    web = Web(make_settings(tmp_path, roster_max_bytes=20_000, similarity_archive_max_bytes=30_000,
                            upload_overhead_bytes=100_000))
    try:
        settings, tina = web.settings, web.browser()
        page_login(tina, "tina")
        csrf = form_token(tina.get("/ta/students").text)
        overhead = settings.upload_overhead_bytes
        path, client, headers, cap = {
            "api-upload": ("/api/v1/assessments/capped/submissions", web.browser(), web.bearer("alice"),
                           20_000 + overhead),
            "page-upload": ("/assessments/capped/submit", tina, {}, 20_000 + overhead),
            "roster": ("/ta/students/import", tina, {}, settings.roster_max_bytes + overhead),
            "similarity-archive": ("/ta/assessments/open/similarity/archive", tina, {},
                                   settings.similarity_archive_max_bytes + overhead),
            "form": ("/login", tina, {}, settings.form_max_bytes),
        }[route]

        def post(size: int):
            body = f"csrf_token={csrf}&x=".encode()
            return client.post(path, content=body + b"y" * (size - len(body)), headers={
                **headers, "Content-Type": "application/x-www-form-urlencoded"})

        def refused_for_size(r) -> bool:   # the upload page says so on the page it redirects to
            if r.status_code == 303 and route == "page-upload":
                return "larger than" in client.get(r.headers["location"]).text
            return r.status_code == 413

        assert not refused_for_size(post(cap))
        assert refused_for_size(post(cap + 1))
    finally:
        web.close()


def test_a_roster_over_its_setting_is_refused_even_inside_the_body_limit(tmp_path):
    """The body limit allows the roster plus multipart framing; the page itself holds the file to
    `roster_max_bytes` (it once read up to a hard-coded 5 MiB)."""
    from app.store.models import User

    from .conftest import Web

    web = Web(make_settings(tmp_path, roster_max_bytes=20_000))
    try:
        tina = web.browser()
        page_login(tina, "tina")
        csrf = form_token(tina.get("/ta/students").text)
        rows = "username\n" + "".join(f"s{i:05d}\n" for i in range(3400))
        roster = rows.encode()[:20_001]
        r = tina.post("/ta/students/import", data={"csrf_token": csrf}, files={"roster": ("r.csv", roster)})
        if r.status_code == 303:
            r = tina.get(r.headers["location"])
        assert "larger than 20000 bytes" in r.text
        with web.db.read_session() as s:
            assert s.query(User).filter(User.username.like("s0%")).count() == 0
    finally:
        web.close()


# ---------------------------------------------------------------------------------------------
# item 1: the receive time is when the whole body has arrived

def _extend(settings, student: str, slug: str, seconds: int) -> None:
    """Set STUDENT's extension on SLUG as the TA tina grants it (0 removes it)."""
    from app.course.extensions import set_extension
    from app.store.models import User

    db = Database(settings.db_url)
    try:
        with db.read_session() as s:
            tina = s.query(User).filter_by(username="tina").one()
        set_extension(db, slug, student, seconds, tina)
    finally:
        db.dispose()


def _upload_hits(settings) -> int:
    """Upload requests the server has begun handling (each records a rate-limit hit first)."""
    from app.store.models import RateLimitHit

    db = Database(settings.db_url)
    try:
        with db.read_session() as s:
            return s.query(RateLimitHit).count()
    finally:
        db.dispose()


def test_slow_upload_cannot_beat_deadline(tmp_path):
    """Headers sent before the deadline, the body finished after it: refused as late (the old code
    stamped the headers' arrival and stored it as on time).

    Clock-independent: the deadline is not fixed before the server starts. The assessment closed an
    hour ago and alice's extension keeps it open for her; once the server has begun handling her
    request (its rate-limit hit is in the database), the extension is cut so that her deadline is
    the present moment, after her headers' arrival and before her body's end."""
    settings = make_settings(tmp_path)
    closed = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    write_assessment(settings.assessments_dir, "closing", closed - timedelta(days=1), closed, closed)
    token = _token(settings, "alice")
    _extend(settings, "alice", "closing", 86400)
    with threaded_server(settings) as (base, _app):
        start, rest = _multipart(TINY_TAR)
        sock = _connect(base)
        sock.sendall(_head(base, "POST", "/api/v1/assessments/closing/submissions", {
            "Authorization": f"Bearer {token}", "Content-Length": str(len(start) + len(rest)),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}) + start + rest[:1])
        wait_for("the server to begin handling the upload", lambda: _upload_hits(settings) == 1)
        seconds = int((datetime.now(UTC) - closed).total_seconds()) + 1
        _extend(settings, "alice", "closing", seconds)   # her deadline: now (within a second)
        late = closed + timedelta(seconds=seconds + 1)   # deadlines are judged to the second
        wait_for("her deadline to pass", lambda: datetime.now(UTC) >= late)
        assert not _answered(sock)
        sock.sendall(rest[1:])
        status = _status(sock)
        sock.close()
    assert status == 403
    assert _submissions(settings) == 0


# ---------------------------------------------------------------------------------------------
# item 5: the browser upload form is parsed once, with the upload's limits

def test_browser_upload_respects_max_files(web):
    alice = web.browser()
    page_login(alice, "alice")
    csrf = form_token(alice.get("/assessments/open").text)
    files = [("handin", ("handin.tar", TINY_TAR))] + [(f"extra{i}", (f"x{i}.tar", b"x" * 1000)) for i in range(20)]
    r = alice.post("/assessments/open/submit", data={"csrf_token": csrf}, files=files)
    assert r.status_code in (400, 413, 422), r.status_code
    with web.db.read_session() as s:
        assert s.query(Submission).count() == 0
