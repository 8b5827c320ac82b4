"""The web service: FastAPI app, database, queue and workers. The grading core (grader/) never
imports this package.

    settings.py     GRADER_* settings (DATABASE_URL too)
    db.py           engine and sessions (BEGIN IMMEDIATE on SQLite for writers, one process's writers
                    taking turns), schema check, the doorbells that wake idle workers
    models.py       tables; migrations/ holds their Alembic history
    assessments.py  assessments/*.toml -> Assessment (+ the --demo copy)
    accounts.py     users, argon2 passwords, hashed API tokens, activation links
    auth.py         Bearer token or signed session cookie; CSRF; FastAPI dependencies
    uploads.py      the one upload use case (web form and API): checks, limits, storage
    submissions.py  storing a submission with its job; reading submissions back (visibility rule)
    standings.py    counted scores, the scoreboard, the gradebook CSV
    extensions.py   a student's deadlines with their extension; granting extensions
    regrades.py     queueing regrades
    queue.py        jobs: claim with a lease, heartbeat, reap, idempotent recording, health
    worker.py       the worker loop and the in-process pool (tests)
    worker_processes.py  `grader serve`'s workers as child processes, woken through pipes
    api.py          JSON routes under /api/v1; handout.py: create_tarball.sh
    admin.py        what the `grader user/roster/token` commands and the demo do
    cli.py          the `grader` console script: grader's `grade` plus the service's commands
"""
