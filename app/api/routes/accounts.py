"""Sessions, API tokens and account activation under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.api.deps import DbDep, LimiterDep, SettingsDep, UserDep
from app.api.models import Activated, NewToken, Ok, Revoked, SessionStarted, TokenPublic, UserPublic
from app.auth import accounts
from app.auth import login as login_flow
from app.auth.sessions import csrf_token
from app.exceptions import ApiError
from app.http import sessions
from app.http.deps import ViewerDep
from app.store.models import User

router = APIRouter(tags=["accounts"])


def _user_view(user: User) -> UserPublic:
    return UserPublic(username=user.username, display_name=user.display_name, role=user.role,
                      nickname=user.nickname)


class LoginBody(BaseModel):
    username: str = Field(max_length=login_flow.MAX_USERNAME)
    password: str = Field(max_length=accounts.MAX_PASSWORD_LENGTH)


@router.post("/login", response_model=SessionStarted)
def login(body: LoginBody, request: Request, response: Response, db: DbDep, settings: SettingsDep,
          limiter: LimiterDep) -> SessionStarted:
    """Sets the session cookie; the returned csrf_token goes in X-CSRF-Token on later writes."""
    sessions.refuse_foreign_origin(request, settings)
    result = login_flow.attempt(db, limiter, settings, body.username, body.password,
                                client=sessions.client_address(request),
                                device_cookie=request.cookies.get(login_flow.DEVICE_COOKIE))
    if result.refused:
        raise ApiError(429, "rate_limited", "Too many login attempts; wait a minute and try again.",
                       headers={"Retry-After": str(result.refused.retry_after)})
    if result.user is None:
        raise ApiError(401, "bad_credentials", "Wrong username or password.")
    return SessionStarted(user=_user_view(result.user),
                          csrf_token=sessions.start_session(response, settings, result.user))


@router.post("/logout", response_model=Ok)
def logout(response: Response, user: UserDep, db: DbDep) -> Ok:
    """Ends every session of your account (a copied cookie too); API tokens stay valid."""
    with db.session() as s, s.begin():
        accounts.end_sessions(s.get(User, user.id))
    sessions.clear_session(response)
    return Ok(ok=True)


@router.get("/me", response_model=SessionStarted)
async def me(user: UserDep, principal: ViewerDep) -> SessionStarted:
    """Who you are, and the CSRF token of your session (empty with a Bearer token)."""
    return SessionStarted(user=_user_view(user), csrf_token=csrf_token(principal))


class ActivateBody(BaseModel):
    token: str
    password: str = Field(min_length=8, max_length=accounts.MAX_PASSWORD_LENGTH)


@router.post("/activate", response_model=Activated)
def activate(body: ActivateBody, request: Request, db: DbDep, settings: SettingsDep) -> Activated:
    sessions.refuse_foreign_origin(request, settings)
    try:
        with db.session() as s, s.begin():
            user = accounts.activate(s, body.token, body.password)
            return Activated(user=_user_view(user))
    except accounts.AccountError as exc:
        raise ApiError(400, "activation_failed", str(exc)) from None


class TokenBody(BaseModel):
    name: str = "token"


@router.get("/tokens", response_model=list[TokenPublic])
def list_tokens(user: UserDep, db: DbDep) -> list[TokenPublic]:
    with db.read_session() as s:
        rows = accounts.tokens(s, user.id)
        return [TokenPublic(id=t.id, name=t.name, created_at=t.created_at.isoformat(),
                            revoked=t.revoked_at is not None) for t in rows]


@router.post("/tokens", status_code=201, response_model=NewToken)
def create_token(body: TokenBody, user: UserDep, db: DbDep) -> NewToken:
    """The token is shown once; only its hash is stored."""
    with db.session() as s, s.begin():
        row, token = accounts.create_token(s, s.get(User, user.id), body.name)
        return NewToken(id=row.id, name=row.name, token=token)


@router.delete("/tokens/{token_id}", response_model=Revoked)
def revoke_token(token_id: int, user: UserDep, db: DbDep) -> Revoked:
    with db.session() as s, s.begin():
        if not accounts.revoke_token(s, user, token_id):
            raise ApiError(404, "not_found", "No such token.")
    return Revoked(revoked=token_id)
