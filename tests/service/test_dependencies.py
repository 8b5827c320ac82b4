"""Every handler gets its guards as named dependencies (app.http.deps), read from the app's routes:
no page or route checks the login, the role or the path's assessment by hand, so none can forget.

A route that only redirects (a POST-only address opened again) needs none of them."""

from __future__ import annotations

import inspect

from fastapi.routing import APIRoute, iter_route_contexts

from app.http import deps

# Reachable without logging in: logging in, account links, the docs, the served script, health.
PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/activate"), ("POST", "/activate"),
          ("GET", "/reset-password"), ("POST", "/reset-password"), ("POST", "/logout"), ("GET", "/docs"), ("GET", "/healthz"), ("GET", "/handout/create_tarball.sh"),
          ("POST", "/api/v1/login"), ("POST", "/api/v1/activate")}


def _calls(dependant) -> set:
    """Every dependency callable in DEPENDANT's tree."""
    found = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= _calls(sub)
    return found


def _routes(app) -> list[tuple[str, str, APIRoute, set]]:
    """(method, full path, route, its dependencies) of every handler, included routers' too."""
    out = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        if inspect.signature(route.endpoint).return_annotation == "RedirectResponse":
            continue   # only redirects
        for method in context.methods:
            out.append((method, context.path, route, _calls(route.dependant)))
    return out


def test_the_scan_sees_the_routes(service):
    seen = {(m, p) for m, p, _, _ in _routes(service.app)}
    assert ("GET", "/assessments/{slug}") in seen
    assert ("GET", "/ta/queue") in seen
    assert ("POST", "/api/v1/assessments/{slug}/submissions") in seen
    assert ("GET", "/assessments/{slug}/submit") not in seen   # a redirect only


def test_every_json_route_but_login_names_its_caller(service):
    missing = [f"{m} {p}" for m, p, _, calls in _routes(service.app)
               if p.startswith("/api/") and (m, p) not in PUBLIC and deps.api_user not in calls]
    assert not missing, f"API routes without UserDep/StaffDep: {missing}"


def test_every_ta_page_is_guarded_as_staff(service):
    missing = [f"{m} {p}" for m, p, _, calls in _routes(service.app)
               if p.startswith("/ta/") and deps.staff_page not in calls]
    assert not missing, f"TA pages without StaffPage/StaffForm: {missing}"


def test_every_other_page_asks_for_a_login_by_dependency(service):
    missing = [f"{m} {p}" for m, p, _, calls in _routes(service.app)
               if not p.startswith(("/api/", "/ta/")) and (m, p) not in PUBLIC
               and not calls & {deps.page_user, deps.polled_user, deps.viewer}]
    assert not missing, f"pages without PageUser: {missing}"


def test_every_route_naming_an_assessment_gets_it_from_assessment_dep(service):
    missing = [f"{m} {p}" for m, p, _, calls in _routes(service.app)
               if "{slug}" in p and deps.assessment not in calls]
    assert not missing, f"routes looking up {{slug}} by hand: {missing}"


def test_an_unknown_assessment_is_a_404_page_after_the_login(service):
    """The guards' order: the login first (a stranger learns nothing), then the path's assessment."""
    r = service.client.get("/assessments/nope", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = service.get("alice", "/assessments/nope")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    r = service.get("alice", "/api/v1/assessments/nope/submissions")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_a_student_on_a_ta_page_gets_the_403_page_and_the_api_a_403_body(service):
    r = service.get("alice", "/ta/queue")
    assert r.status_code == 403 and "Only TAs" in r.text
    r = service.get("alice", "/api/v1/queue")
    assert r.status_code == 403 and r.json() == {"error": "forbidden", "message": "Only TAs and admins can do this."}


def test_a_polled_fragment_without_a_session_answers_an_empty_401(service):
    r = service.client.get("/assessments/open/mine", follow_redirects=False)
    assert r.status_code == 401 and r.text == ""
