"""Every page: a basic accessibility check (labels, heading order, contrast), no horizontal scroll
at phone width (375 px), and a screenshot at desktop and phone width in test-artifacts/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")

CSS = Path(__file__).resolve().parents[2] / "app" / "static" / "style.css"

# Runs in the page; returns a list of problems.
A11Y_CHECK = """() => {
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!named) problems.push("input without a label: " + (el.id || el.name));
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (!(el.textContent.trim() || el.getAttribute("aria-label"))) problems.push("unnamed control: " + el.outerHTML.slice(0, 80));
  }
  const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].map(h => +h.tagName[1]);
  if (levels[0] !== 1) problems.push("the first heading is not h1");
  if (levels.filter(l => l === 1).length !== 1) problems.push("not exactly one h1");
  for (let i = 1; i < levels.length; i++)
    if (levels[i] > levels[i - 1] + 1) problems.push("heading skips from h" + levels[i - 1] + " to h" + levels[i]);
  for (const f of document.querySelectorAll("form")) {
    const path = new URL(f.action, location.href).pathname;
    if (f.method.toLowerCase() === "post") {   // login and activation forms carry their own token
      const t = f.querySelector("input[name=csrf_token]");
      if (!t || !t.value) problems.push("POST form without the CSRF token: " + path);
    }
  }
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  for (const svg of document.querySelectorAll("svg[role=img]"))
    if (!svg.querySelector("title")) problems.push("svg picture without a title");
  return problems;
}"""


def _luminance(hex_color: str) -> float:
    rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_css_colors_have_enough_contrast():
    colors = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS.read_text()))
    pairs = [("fg", "bg"), ("muted", "bg"), ("accent", "bg"), ("accent-fg", "accent"), ("ok", "bg"),
             ("bad", "bg"), ("warn", "bg"), ("fg", "soft"), ("muted", "soft"), ("accent", "soft")]
    for fg, bg in pairs:
        ratio = contrast(colors[fg], colors[bg])
        assert ratio >= 4.5, f"{fg} on {bg}: {ratio:.2f} < 4.5 (WCAG AA for body text)"


def _rgb_to_hex(css_color: str) -> str:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_color)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _check(page, name: str, helpers, width: int) -> None:
    problems = page.evaluate(A11Y_CHECK)
    assert not problems, f"{name}: {problems}"
    if width <= 400:
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: scrolls sideways by {overflow}px at {width}px"
    else:
        fg, bg = page.evaluate("[getComputedStyle(document.body).color, getComputedStyle(document.body).backgroundColor]")
        assert contrast(_rgb_to_hex(fg), _rgb_to_hex(bg)) >= 7, (name, fg, bg)
    helpers.screenshot(page, f"{name}-{'phone' if width <= 400 else 'desktop'}")


STUDENT_PAGES = {"home": "/", "assessment": "/assessments/hw1p1", "profile": "/profile",
                 "scoreboard-student": "/assessments/hw1p1/scoreboard"}
TA_PAGES = {"ta-home": "/", "ta-scoreboard": "/ta/assessments/hw1p1/scoreboard",
            "ta-submissions": "/ta/submissions?assessment=hw1p1", "ta-queue": "/ta/queue",
            "ta-students": "/ta/students"}


@pytest.mark.parametrize("width", [1280, 375])
def test_every_page_is_accessible_and_fits_a_phone(new_page, seeded, helpers, width):
    anon = new_page(width=width)
    for name, url in {"login": "/login", "activate": "/activate?token=nothing"}.items():
        anon.goto(url)
        _check(anon, name, helpers, width)

    student = new_page("carol", width=width)
    for name, url in STUDENT_PAGES.items():
        student.goto(url)
        _check(student, name, helpers, width)
    student.goto(f"/submissions/{seeded['carol']}")
    _check(student, "submission-passing", helpers, width)
    bob = new_page("bob", width=width)
    bob.goto(f"/submissions/{seeded['bob']}")
    _check(bob, "submission-failing", helpers, width)
    assert bob.goto(f"/submissions/{seeded['carol']}").status == 404
    _check(bob, "not-found", helpers, width)

    ta = new_page("tina", width=width)
    for name, url in TA_PAGES.items():
        ta.goto(url)
        _check(ta, name, helpers, width)
    ta.goto(f"/submissions/{seeded['bob']}")
    _check(ta, "ta-submission", helpers, width)
