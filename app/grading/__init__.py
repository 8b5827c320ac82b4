"""Running grades: the job queue (claim with a lease, heartbeat, reap, idempotent recording), the
worker loop that calls grader.grade, and `grader serve`'s worker processes. Builds on store and
the grading core (grader); knows nothing of pages, routes or course rules.
"""
