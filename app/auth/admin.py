"""What the admin commands do (`grader user add`, `roster import`, `token create`, the demo)."""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

from app.auth import accounts
from app.store.db import Database
from app.store.models import User
from app.store.states import LinkPurpose


def add_user(db: Database, username: str, role: str, password: str | None, display_name: str = "",
             email: str = "") -> None:
    with db.session() as s, s.begin():
        accounts.add_user(s, username, role, password, display_name, email)


def import_roster(db: Database, path: Path, base_url: str, issued_by: User | None = None) -> list[tuple[str, str]]:
    """CSV with a `username` column (optional: name, email). Creates missing students and returns
    (username, one-time activation link) for each new one; the links record ISSUED_BY (None: the CLI)."""
    links = []
    with open(path, newline="") as f, db.session() as s, s.begin():
        # All or nothing: one bad username refuses the whole file (the transaction rolls back).
        for line, row in enumerate(csv.DictReader(f), start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            username = row.get("username") or row.get("andrew_id") or row.get("email", "").split("@")[0]
            if not username or accounts.get_user(s, username):
                continue
            try:
                user = accounts.add_user(s, username, "student", None, row.get("name", ""), row.get("email", ""))
            except accounts.AccountError as exc:
                raise accounts.AccountError(f"line {line}: {exc}") from None
            secret = accounts.create_activation(s, user, issued_by)
            links.append((username, accounts.link_url(base_url, LinkPurpose.ACTIVATION, secret)))
    return links


def create_token(db: Database, username: str, name: str = "cli") -> str:
    with db.session() as s, s.begin():
        user = accounts.get_user(s, username)
        if user is None:
            raise accounts.AccountError(f"no user {username!r}")
        return accounts.create_token(s, user, name)[1]


def setup_demo(db: Database) -> dict[str, str]:
    """Demo accounts with fresh passwords (reset if they exist) and a student API token."""
    creds = {}
    with db.session() as s, s.begin():
        for username, role in (("ta", "ta"), ("student", "student"), ("student2", "student")):
            password = secrets.token_urlsafe(9)
            user = accounts.get_user(s, username) or accounts.add_user(s, username, role, None)
            accounts.set_password(user, password)
            creds[username] = password
        creds["token"] = accounts.create_token(s, accounts.get_user(s, "student"), "demo")[1]
    return creds
