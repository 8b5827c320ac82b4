"""Accounts: users, passwords (argon2), API tokens (stored as sha256), activation links, roles and
nicknames. The pages and the API call these; the rules (who may act on whom, what a nickname is)
live here only."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from app.auth import passwords
from app.store.models import ROLES, AccountLink, ApiToken, User, utcnow
from app.store.states import LinkPurpose

_ADJECTIVES = ("brisk", "calm", "clever", "daring", "eager", "fuzzy", "gentle", "happy", "jolly", "keen",
               "lucky", "mellow", "nimble", "plucky", "quiet", "rapid", "sunny", "swift", "tidy", "witty")
_ANIMALS = ("otter", "falcon", "lynx", "panda", "heron", "koala", "badger", "gecko", "ibis", "marten",
            "newt", "orca", "puffin", "quokka", "raven", "seal", "tapir", "walrus", "yak", "zebra")


# Letters, digits and . _ - (an Andrew id or the part of an email before @): nothing a spreadsheet
# would read as a formula, nothing that needs quoting in a URL.
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_PASSWORD_LENGTH = 1024   # argon2 hashes anything, but a megabyte password is a denial of service
NICKNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")


class AccountError(ValueError):
    pass


class NotAllowed(AccountError):
    """The actor's role does not reach the target account (see may_act_on)."""


def may_act_on(actor: User, target: User) -> bool:
    """The role order for every action on another account (activation links, roles, extensions,
    tokens): a TA acts on students only; an admin acts on everyone, staff included."""
    if actor.role == "admin":
        return True
    return actor.role == "ta" and target.role == "student"


def may_grant(actor: User, target: User, role: str) -> bool:
    """Only an admin makes or unmakes staff (TA or admin); nobody changes their own role."""
    if actor.id == target.id:
        return False
    return may_act_on(actor, target) and (role == "student" or actor.role == "admin")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise AccountError("passwords need at least 8 characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"passwords have at most {MAX_PASSWORD_LENGTH} characters")
    return passwords.hash_password(password)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_nickname(session: Session) -> str:
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}-{secrets.randbelow(1000):03d}"
        if session.scalar(select(User.id).where(User.nickname == name)) is None:
            return name


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def add_user(session: Session, username: str, role: str = "student", password: str | None = None,
             display_name: str = "", email: str = "") -> User:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if not USERNAME.match(username):
        raise AccountError(f"{username[:40]!r} is not a username: 1 to 100 letters, digits, dots, dashes or "
                           "underscores, starting with a letter or digit")
    if get_user(session, username) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = User(username=username, role=role, display_name=display_name or username, email=email,
                nickname=new_nickname(session),
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def end_sessions(user: User) -> None:
    """Every session cookie issued to USER so far stops working (API tokens are separate)."""
    user.session_generation = (user.session_generation or 0) + 1


def set_password(user: User, password: str) -> None:
    """Also ends the account's sessions (a changed password locks out whoever held the old one)
    and closes the account's open links (none of them may set the password again)."""
    user.password_hash = hash_password(password)
    end_sessions(user)
    session = object_session(user)
    if session is not None:
        for link in session.scalars(select(AccountLink).where(AccountLink.user_id == user.id,
                                                              AccountLink.used_at.is_(None),
                                                              AccountLink.replaced_at.is_(None))):
            link.replaced_at = utcnow()


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None. Raises passwords.HashingBusy when too many
    password checks are already running or waiting (the caller answers 429)."""
    user = get_user(session, username)
    if not passwords.verify(user.password_hash if user else None, password):
        return None
    if user is None or not user.active:
        return None
    return user


def upgrade_hash(user: User, password: str) -> bool:
    """Rehash PASSWORD (just verified) if USER's hash was made with other argon2 parameters."""
    if not passwords.needs_rehash(user.password_hash):
        return False
    user.password_hash = passwords.hash_password(password)
    return True


# ---------------------------------------------------------------------------------------------
# one-time links that set a password: activation and password reset (store.models.AccountLink)

RESET_LINK_LIFETIME = timedelta(hours=48)   # a reset link is copied to a student by hand: two days


class LinkState(StrEnum):
    """What a link's secret finds; everything but OPEN is a dead end the page explains."""
    OPEN = "open"
    USED = "used"
    REPLACED = "replaced"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LinkCheck:
    state: LinkState
    purpose: LinkPurpose | None = None
    username: str = ""
    display_name: str = ""
    expires_at: datetime | None = None


LINK_PATHS = {LinkPurpose.ACTIVATION: "/activate", LinkPurpose.PASSWORD_RESET: "/reset-password"}


def issue_link(session: Session, user: User, purpose: LinkPurpose, issued_by: User | None = None,
               now: datetime | None = None) -> str:
    """A one-time secret for USER's link; only its hash is stored, with who issued it (None: the
    CLI). Earlier open links of the same purpose stop working (the newest link is the one)."""
    now = now or utcnow()
    for old in session.scalars(select(AccountLink).where(
            AccountLink.user_id == user.id, AccountLink.purpose == purpose,
            AccountLink.used_at.is_(None), AccountLink.replaced_at.is_(None))):
        old.replaced_at = now
    secret = secrets.token_urlsafe(24)
    session.add(AccountLink(user_id=user.id, purpose=purpose, token_hash=hash_token(secret), created_at=now,
                            issued_by=issued_by.id if issued_by else None,
                            expires_at=now + RESET_LINK_LIFETIME if purpose == LinkPurpose.PASSWORD_RESET else None))
    session.flush()
    return secret


def link_url(base_url: str, purpose: LinkPurpose, secret: str) -> str:
    return f"{base_url.rstrip('/')}{LINK_PATHS[purpose]}?token={secret}"


def create_activation(session: Session, user: User, issued_by: User | None = None) -> str:
    return issue_link(session, user, LinkPurpose.ACTIVATION, issued_by)


def _link_row(session: Session, secret: str) -> AccountLink | None:
    return session.scalar(select(AccountLink).where(AccountLink.token_hash == hash_token(secret))) if secret else None


def check_link(session: Session, secret: str, now: datetime | None = None) -> LinkCheck:
    """What SECRET's link is now (the page says so before anyone types a password)."""
    row = _link_row(session, secret)
    if row is None:
        return LinkCheck(LinkState.UNKNOWN)
    return LinkCheck(link_state(row, now), LinkPurpose(row.purpose), row.user.username, row.user.display_name,
                     row.expires_at)


def link_state(row: AccountLink, now: datetime | None = None) -> LinkState:
    if row.used_at is not None:
        return LinkState.USED
    if row.replaced_at is not None:
        return LinkState.REPLACED
    if row.expires_at is not None and row.expires_at <= (now or utcnow()):
        return LinkState.EXPIRED
    return LinkState.OPEN


def use_link(session: Session, secret: str, password: str, now: datetime | None = None) -> User:
    """Sets the password through an open link, which then stops working. AccountError otherwise."""
    now = now or utcnow()
    check = check_link(session, secret, now)
    if check.state != LinkState.OPEN:
        raise AccountError(LINK_PROBLEMS[check.state])
    row = _link_row(session, secret)
    row.used_at = now
    set_password(row.user, password)
    return row.user


# One sentence per dead end, each with the way forward.
LINK_PROBLEMS = {
    LinkState.USED: "this link was already used: the password is set, so log in",
    LinkState.REPLACED: "a newer link replaced this one: use the newest link you were sent, or ask your TA "
                        "for a new one",
    LinkState.EXPIRED: "this link has expired: ask your TA for a new one",
    LinkState.UNKNOWN: "this link is not valid (mistyped, cut off, or from another server): ask your TA for "
                       "a new one",
}


def activate(session: Session, secret: str, password: str) -> User:
    return use_link(session, secret, password)


def has_open_activation(session: Session, user_ids: list[int]) -> set[int]:
    """The USER_IDS with an activation link not yet used or replaced (activation links do not expire)."""
    if not user_ids:
        return set()
    return set(session.scalars(select(AccountLink.user_id).where(
        AccountLink.user_id.in_(user_ids), AccountLink.purpose == LinkPurpose.ACTIVATION,
        AccountLink.used_at.is_(None), AccountLink.replaced_at.is_(None))))


def set_nickname(session: Session, user_id: int, nickname: str) -> str:
    """Saves and returns the (stripped) nickname; AccountError says why not."""
    nickname = nickname.strip()
    if not NICKNAME.match(nickname):
        raise AccountError("A nickname is 3 to 32 letters, digits, dots, dashes or underscores.")
    if session.scalar(select(User.id).where(User.nickname == nickname, User.id != user_id)):
        raise AccountError("That nickname is taken; pick another.")
    session.get(User, user_id).nickname = nickname
    return nickname


def set_role(session: Session, actor: User, username: str, role: str) -> User:
    """ACTOR makes USERNAME a ROLE (see may_grant); the account's sessions end with its old role.
    AccountError (NotAllowed for the role order) says why not."""
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}.")
    user = get_user(session, username)
    if user is None:
        raise AccountError(f"No user {username!r}.")
    if user.id == actor.id:
        raise NotAllowed("You cannot change your own role.")
    if not may_grant(actor, user, role):
        raise NotAllowed("Only an admin can change a TA's or an admin's role, or make someone staff.")
    if user.role != role:
        user.role = role
        end_sessions(user)
    return user


def activation_link(session: Session, actor: User, username: str, base_url: str) -> str | None:
    """A fresh one-time activation link for USERNAME (replaces any earlier one); None when there is
    no such user. Raises NotAllowed when ACTOR's role does not reach the account (a TA and an
    admin), AccountError when the account already has a password (that is a reset link's job)."""
    user = _reachable(session, actor, username)
    if user is None:
        return None
    if user.password_hash:
        raise AccountError(f"{username} has already activated their account: issue a password reset link instead.")
    return link_url(base_url, LinkPurpose.ACTIVATION, create_activation(session, user, actor))


def password_reset_link(session: Session, actor: User, username: str, base_url: str) -> str | None:
    """A one-time link, valid RESET_LINK_LIFETIME, that lets USERNAME choose a new password (no mail
    server: the TA copies it to the student). Recorded with ACTOR as its issuer. None when there
    is no such user; NotAllowed when ACTOR's role does not reach the account."""
    user = _reachable(session, actor, username)
    if user is None:
        return None
    return link_url(base_url, LinkPurpose.PASSWORD_RESET, issue_link(session, user, LinkPurpose.PASSWORD_RESET, actor))


def pending_activation_links(session: Session, actor: User, base_url: str) -> list[tuple[User, str]]:
    """A fresh activation link for every account ACTOR may act on that has no password yet (the
    roster's CSV download): the stored hashes cannot give back the links sent before, so these
    replace them."""
    users = session.scalars(select(User).where(User.password_hash.is_(None)).order_by(User.username)).all()
    return [(u, link_url(base_url, LinkPurpose.ACTIVATION, create_activation(session, u, actor)))
            for u in users if may_act_on(actor, u)]


def _reachable(session: Session, actor: User, username: str) -> User | None:
    user = get_user(session, username)
    if user is not None and not may_act_on(actor, user):
        raise NotAllowed(f"{actor.role} may not act on {user.role} accounts")
    return user


def tokens(session: Session, user_id: int) -> list[ApiToken]:
    """USER_ID's API tokens, revoked ones too, oldest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


def create_token(session: Session, user: User, name: str = "") -> tuple[ApiToken, str]:
    """Returns the row and the token itself, which is shown once and never stored."""
    token = "gr_" + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name or "token", token_hash=hash_token(token))
    session.add(row)
    session.flush()
    return row, token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    return row.user


def why_token_refused(session: Session, token: str) -> str:
    """One sentence for a Bearer token that `user_for_token` refused: revoked, or not a token."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    fix = "Create a new token on your profile page and use that one."
    if row is not None and row.revoked_at is not None:
        return f"This API token ({row.name!r}) was revoked on {row.revoked_at:%Y-%m-%d %H:%M} UTC. {fix}"
    if row is not None:
        return "This API token's account is not active. Ask your course staff."
    return f"This API token is not valid (mistyped, truncated, or from another server). {fix}"


def revoke_token(session: Session, user: User, token_id: int) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != user.id and user.role != "admin") or row.revoked_at:
        return False
    row.revoked_at = utcnow()
    return True


