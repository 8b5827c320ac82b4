"""GET /handout/create_tarball.sh: the student's build-and-submit script.

Students run this script, so nothing a requester controls goes into it: the assessment must be
one we know (404 otherwise), the base URL is the configured one (never the Host header), and
both are shell-quoted into plain assignments.
"""

from __future__ import annotations

import shlex

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.course.assessments import default_assessment
from app.exceptions import ApiError
from app.http.deps import AssessmentsDep, SettingsDep
from app.store.states import FINAL_SUBMISSION
from grader.suite import Suite

router = APIRouter()

SCRIPT = r'''#!/usr/bin/env bash
# Build handin.tar from __FOLDERS__ and submit it to the grading service.
# Token: $GRADER_TOKEN, or the file named by $GRADER_TOKEN_FILE (default ~/.grader_token).
# Create one on the service's web pages (or ask a TA for `grader token create`).
set -euo pipefail
DEFAULT_URL=__BASE__
DEFAULT_SLUG=__SLUG__
BASE_URL="${GRADER_URL:-$DEFAULT_URL}"
SLUG="${GRADER_ASSESSMENT:-$DEFAULT_SLUG}"
WAIT="${GRADER_WAIT:-300}"

# Check the layout and the graded files before building: a handin built in the wrong folder
# (another assignment's, or without models/) stops here instead of being graded zero.
PROBLEMS=()
__CHECKS__
if [ ${#PROBLEMS[@]} -gt 0 ]; then
  for p in "${PROBLEMS[@]}"; do echo "error: $p" >&2; done
  echo "Nothing was built or submitted." >&2
  exit 1
fi
tar --exclude='__pycache__' --exclude='*.pyc' --exclude='.DS_Store' --exclude='._*' \
    -cf handin.tar __PACKAGES__
echo "Built handin.tar ($(wc -c < handin.tar) bytes)."
[ "${1:-}" = "--no-submit" ] && exit 0

TOKEN="${GRADER_TOKEN:-}"
if [ -z "$TOKEN" ]; then
  TOKEN_FILE="${GRADER_TOKEN_FILE:-$HOME/.grader_token}"
  [ -r "$TOKEN_FILE" ] || { echo "error: set GRADER_TOKEN or put your token in $TOKEN_FILE." >&2; exit 1; }
  TOKEN="$(tr -d ' \r\n' < "$TOKEN_FILE")"
fi
command -v curl >/dev/null || { echo "error: curl is needed to submit (handin.tar is built)." >&2; exit 1; }

echo "Submitting to $BASE_URL (assessment $SLUG); waiting up to ${WAIT}s for the grade..."
BODY="$(mktemp)"; trap 'rm -f "$BODY"' EXIT
STATUS="$(curl -sS -o "$BODY" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
  -F "handin=@handin.tar" "$BASE_URL/api/v1/assessments/$SLUG/submissions?wait=$WAIT")" || {
  echo "error: could not reach $BASE_URL." >&2; exit 1; }
if [ "${STATUS:0:1}" != 2 ]; then
  echo "error: the server answered HTTP $STATUS:" >&2
  python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); print(b.get("message") or b)' "$BODY" >&2 \
    || cat "$BODY" >&2
  exit 1
fi
python3 - "$BODY" "$BASE_URL" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
print(f"Submission {b['id']} (version {b['version']}): {b['status']}")
page = b.get("page_url") or ""
page = page if page.startswith("http") else sys.argv[2] + page
if b["status"] not in __FINAL_STATUSES__:
    print(f"Still {b['status']}; see {page} later."); sys.exit(0)
if b.get("grader_error"):
    print("Grader error (not your fault, does not count): " + b["grader_error"]); sys.exit(1)
if b.get("handin_error"):
    print("Cannot grade this handin: " + b["handin_error"]); sys.exit(1)
secs = b.get("sections", [])
w = max([len(s["name"]) for s in secs] + [7])
print(f"{'Section':<{w}}  Result  Points")
for s in secs:
    print(f"{s['name']:<{w}}  {'PASSED' if s['passed'] else 'FAILED'}  {s['score']:>2}/{s['max_score']}")
p = b.get("policy", {})
print(f"Score: {b['score']}/{b['max_score']}")
if p.get("late_penalty"):
    print(f"Late penalty: -{p['late_penalty']} ({p['late_days']} day(s) late)")
if p.get("early_bonus"):
    print(f"Early bonus: +{p['early_bonus']}")
print(f"Total for this assessment (counted: {p.get('counted_rule')}): {p.get('assessment_total')}")
for s in secs:   # what failed: each failing section's first failing test and its first message
    if s["passed"]:
        continue
    if s.get("message"):   # the section's own message (a syntax or import error: file and line)
        print(f"\n{s['name']}:")
        print("\n".join("    " + line for line in s["message"].strip().splitlines()[:6]))
        continue
    t = next((t for t in s.get("tests", []) if not t["passed"]), None)
    c = next((c for c in (t or {}).get("checks", []) if not c["passed"]), None)
    first = c["message"] if c else ((t or {}).get("message") or "").strip()
    print(f"\n{s['name']}: {t['name'] if t else 'did not run'}")
    print("    " + (first.splitlines()[0] if first else "failed"))
if b.get("summary"):
    print("\n" + b["summary"])
print(f"Feedback page: {page}")
PY
'''


@router.get("/handout/create_tarball.sh", response_class=PlainTextResponse, tags=["handout"])
def create_tarball(assessments: AssessmentsDep, settings: SettingsDep,
                   assessment: str | None = None) -> PlainTextResponse:
    shown = default_assessment(assessments.values())
    slug = assessment or (shown.slug if shown else "")
    if slug not in assessments:
        raise ApiError(404, "not_found", "There is no such assessment.")
    layout = assessments[slug].grading_suite.layout   # the folders this assessment's archive holds
    base = settings.base_url.rstrip("/")   # never the Host header
    text = (SCRIPT.replace("__CHECKS__", _checks(assessments[slug].grading_suite))
            .replace("__BASE__", shlex.quote(base)).replace("__SLUG__", shlex.quote(slug))
            .replace("__PACKAGES__", " ".join(layout.packages)).replace("__FOLDERS__", layout.summary)
            .replace("__FINAL_STATUSES__", repr(tuple(str(s) for s in FINAL_SUBMISSION))))
    return PlainTextResponse(text, media_type="text/x-shellscript",
                             headers={"Content-Disposition": 'attachment; filename="create_tarball.sh"'})



def _checks(suite: Suite) -> str:
    """Shell lines adding to PROBLEMS what the grader would refuse or grade zero: another
    assessment's layout, a missing package folder, none of the needed files, missing graded files."""
    layout, q = suite.layout, shlex.quote
    lines = [f"[ -e {q(m.present)} ] && " + " && ".join(f"[ ! -e {q(a)} ]" for a in m.absent)
             + f" && PROBLEMS+=({q(m.message)})" for m in layout.misplaced]
    lines += [f"[ -d {q(d)} ] || PROBLEMS+=({q(f'run this from the handout folder (no {d}/ here).')})"
              for d in layout.packages]
    if layout.needs_one_of:
        tests = " || ".join(f"[ -e {q(f)} ]" for f in layout.needs_one_of)
        lines.append(f"{{ {tests}; }} || PROBLEMS+=({q(layout.none_of_them)})")
    if suite.required_files:
        lines.append("MISSING=()")
        lines.append(f"for f in {' '.join(q(f) for f in suite.required_files)}; do "
                     '[ -f "$f" ] || MISSING+=("$f"); done')
        lines.append('[ ${#MISSING[@]} -eq 0 ] || PROBLEMS+=("missing graded file(s): ${MISSING[*]} '
                     '(every one is graded; run this from your handout folder).")')
    return "\n".join(lines)
