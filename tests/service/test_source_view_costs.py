"""The source page's costly work (issue 18 item 5): four concurrent views of a 2.8 MiB file had held
the event loop (and /healthz) for 12 s. Highlighting now runs off the event loop, is capped and
cached, and each user's source views are rate-limited."""

from __future__ import annotations

import threading

from app.web import source

from .conftest import Service, make_tar, reference_files


def _handin_with(path: str, text: str) -> bytes:
    files = reference_files()
    files[path] = text.encode()
    return make_tar(files)


def test_highlighting_a_big_file_does_not_hold_the_event_loop(service, monkeypatch):
    """While one view's highlighting is held in progress, /healthz is still answered: the highlighting
    runs in a worker thread. (On the event loop, healthz would wait for it: the held highlight gives up
    after 60 s and the test fails.)"""
    sub_id = service.submit("alice", "open", _handin_with("mytorch/nn/big.py", "x = 1\n" * 20000)).json()["id"]
    started, healthz_answered = threading.Event(), threading.Event()
    real = source.highlighted

    def held(text, path, line):
        started.set()
        healthz_answered.wait(60)
        return real(text, path, line)

    monkeypatch.setattr(source, "highlighted", held)
    source._highlighted_file.cache_clear()
    view = threading.Thread(target=lambda: service.get("alice", f"/submissions/{sub_id}/source",
                                                        params={"path": "mytorch/nn/big.py"}))
    view.start()
    assert started.wait(60)
    probe = service.client.get("/healthz")
    answered_while_held = not view.is_alive()   # False: the view is still inside the held highlight
    healthz_answered.set()
    view.join(60)
    assert probe.status_code == 200 and not answered_while_held


def test_a_long_python_file_is_shown_plain_not_highlighted(service):
    long_text = "def f(x):\n    return x\n" * (source.HIGHLIGHT_BYTES // 20)
    sub_id = service.submit("alice", "open", _handin_with("mytorch/nn/long.py", long_text)).json()["id"]
    long_page = service.get("alice", f"/submissions/{sub_id}/source", params={"path": "mytorch/nn/long.py"})
    short_page = service.get("alice", f"/submissions/{sub_id}/source", params={"path": "mytorch/nn/linear.py"})
    assert long_page.status_code == short_page.status_code == 200
    assert '<span class="k">def</span>' in short_page.text        # Python tokens marked
    assert '<span class="k">def</span>' not in long_page.text     # plain text, still numbered
    assert 'id="L-1"' in long_page.text


def test_viewing_the_same_file_again_does_not_highlight_it_again(service):
    sub_id = service.submit("alice", "open", make_tar(reference_files())).json()["id"]
    source._highlighted_file.cache_clear()
    for _ in range(3):
        page = service.get("alice", f"/submissions/{sub_id}/source", params={"path": "mytorch/nn/linear.py"})
        assert page.status_code == 200
    info = source._highlighted_file.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_source_page_flood_by_one_user_is_rate_limited(settings):
    service = Service(settings.model_copy(update={"source_views_per_minute": 3}))
    try:
        sub_id = service.submit("alice", "open", make_tar(reference_files())).json()["id"]
        codes = [service.get("alice", f"/submissions/{sub_id}/source").status_code for _ in range(5)]
        assert codes == [200] * 3 + [429] * 2
        assert service.get("bob", "/healthz").status_code == 200
    finally:
        service.client.close()
        service.db.dispose()


def test_cached_html_is_per_handin_not_per_path(service):
    """Two handins with the same path but different code never share a cached page."""
    first = service.submit("alice", "open", _handin_with("mytorch/nn/extra.py", "first_version = 1\n")).json()["id"]
    second = service.submit("alice", "open", _handin_with("mytorch/nn/extra.py", "second_version = 2\n")).json()["id"]
    pages = [service.get("alice", f"/submissions/{i}/source", params={"path": "mytorch/nn/extra.py"}).text
             for i in (first, second)]
    assert "first_version" in pages[0] and "second_version" in pages[1] and "first_version" not in pages[1]
