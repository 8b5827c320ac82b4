"""The web service: FastAPI app, database, queue and workers. The grading core (grader/) never
imports this package.

    settings.py     GRADER_* settings (DATABASE_URL too)
    db.py           engine and sessions (BEGIN IMMEDIATE on SQLite for writers), schema check
    models.py       tables; migrations/ holds their Alembic history
    assessments.py  assessments/*.toml -> Assessment (+ the --demo copy)
    accounts.py     users, argon2 passwords, hashed API tokens, activation links
    auth.py         Bearer token or signed session cookie; CSRF; FastAPI dependencies
    services.py     what routes do with the database (uploads, views, scoreboard, CSV, regrades)
    queue.py        jobs: claim with a lease, heartbeat, reap, idempotent recording, health
    worker.py       the worker loop and the in-process pool
    api.py          JSON routes under /api/v1; handout.py: create_tarball.sh
    admin.py        what the `grader user/roster/token` commands and the demo do
"""
