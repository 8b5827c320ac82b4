"""The `grader` console script (pyproject's `grader = "app.cli:main"`): grader's `grade` plus the
service's commands. It may use every layer; nothing imports it."""

from app.cli.main import main

__all__ = ["main"]
