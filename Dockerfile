# syntax=docker/dockerfile:1
# The HW1P1 grading service: one image for the three roles of docker-compose.yml
#   migrate: grader db upgrade      web: grader serve --workers 0      worker: grader worker
# Build: docker build -t hw1p1-grader .      Details and the worker's security settings: deploy/README.md

############################ build stage: resolve and install into a venv ############################
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Every dependency (numpy, scipy, psycopg[binary], argon2-cffi, ...) ships manylinux wheels for
# CPython 3.11 on amd64 and arm64, so no compiler is needed even here; if one ever is, install it in
# THIS stage only: nothing of this stage but /opt/venv reaches the final image.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first (a layer that survives source edits), then the project itself, NOT editable.
COPY pyproject.toml README.md ./
COPY grader ./grader
COPY sandbox ./sandbox
COPY app ./app
COPY mytorch_reference ./mytorch_reference
COPY mytorch_reference_bonus ./mytorch_reference_bonus
COPY mytorch_reference_hw2 ./mytorch_reference_hw2
RUN pip install --upgrade pip setuptools wheel \
 && pip install . \
 && python -c "import grader.cli, app.cli, sandbox, mytorch_reference"

# app/settings.py and app/store/db.py find assessments/ and migrations/ next to the installed `app`
# package (REPO_ROOT = parent of app/), and neither is Python package data yet: put them there.
COPY assessments /opt/venv/lib/python3.11/site-packages/assessments
COPY migrations /opt/venv/lib/python3.11/site-packages/migrations
# Compile once now, as root: at run time the code is read-only and nobody writes bytecode.
RUN python -m compileall -q /opt/venv/lib/python3.11/site-packages \
 && find /opt/venv -name '*.pyc' -path '*/tests/*' -delete

############################ final stage: runtime only ############################
FROM python:3.11-slim-bookworm

# bubblewrap: the sandbox that runs students' code. libseccomp2: the sandbox builds its own seccomp
# filter with it (already in the base image; named so it stays). tini is not needed: compose sets
# `init: true`. No compilers, no headers, no package caches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap libseccomp2 \
 && rm -rf /var/lib/apt/lists/* \
 && bwrap --version

COPY --from=build /opt/venv /opt/venv

# The service's own unprivileged account (web and migrate run as it). Fixed ids so volumes keep
# their owner across rebuilds. The sandbox's per-slot uids (60000 + slot) need no passwd entry.
RUN groupadd --system --gid 10001 grader \
 && useradd --system --uid 10001 --gid grader --home-dir /srv/grader --shell /usr/sbin/nologin grader \
 && mkdir -p /srv/grader/data \
 && chown -R grader:grader /srv/grader \
 && chmod -R a+rX /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRADER_DATA_DIR=/srv/grader/data
WORKDIR /srv/grader

# Non-root by default. The worker service overrides this with `user: "0:0"` because the sandbox
# (sandbox/sandbox.py) refuses to start unless it is root: it switches every run to its own slot
# uid (60000 + slot), which needs CAP_SETUID/CAP_SETGID, and it builds each run's mount namespace as
# root (CAP_SYS_ADMIN), optionally in per-slot cgroups. In Docker that root is confined by the
# worker's cap_drop/cap_add, seccomp profile, pids/memory limits and, on the host, userns-remap;
# see docker-compose.yml and deploy/README.md for exactly what the worker container gets.
USER grader

EXPOSE 8000

# The web tier's liveness probe: GET /healthz (app/main.py) must answer 200.
# Python, not curl: the image carries no curl. The worker overrides it in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["grader", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "0"]
