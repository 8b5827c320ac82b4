"""Sessions, API tokens and account activation under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from app.api.deps import DbDep, LimiterDep, SettingsDep, UserDep
from app.auth import accounts
from app.auth import login as login_flow
from app.auth.sessions import csrf_token
from app.exceptions import ApiError
from app.http import sessions
from app.http.deps import ViewerDep
from app.store.models import User

router = APIRouter(tags=["accounts"])


def _user_view(user: User) -> dict:
    return {"username": user.username, "display_name": user.display_name, "role": user.role,
            "nickname": user.nickname}


class LoginBody(BaseModel):
    username: str = Field(max_length=login_flow.MAX_USERNAME)
    password: str = Field(max_length=accounts.MAX_PASSWORD_LENGTH)


@router.post("/login")
def login(body: LoginBody, request: Request, response: Response, db: DbDep, settings: SettingsDep,
          limiter: LimiterDep) -> dict:
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
    return {"user": _user_view(result.user), "csrf_token": sessions.start_session(response, settings, result.user)}


@router.post("/logout")
def logout(response: Response, user: UserDep, db: DbDep) -> dict:
    """Ends every session of your account (a copied cookie too); API tokens stay valid."""
    with db.session() as s, s.begin():
        accounts.end_sessions(s.get(User, user.id))
    sessions.clear_session(response)
    return {"ok": True}


@router.get("/me")
async def me(user: UserDep, principal: ViewerDep) -> dict:
    return {"user": _user_view(user), "csrf_token": csrf_token(principal)}


class ActivateBody(BaseModel):
    token: str
    password: str = Field(min_length=8, max_length=accounts.MAX_PASSWORD_LENGTH)


@router.post("/activate")
def activate(body: ActivateBody, request: Request, db: DbDep, settings: SettingsDep) -> dict:
    sessions.refuse_foreign_origin(request, settings)
    try:
        with db.session() as s, s.begin():
            user = accounts.activate(s, body.token, body.password)
            return {"user": _user_view(user)}
    except accounts.AccountError as exc:
        raise ApiError(400, "activation_failed", str(exc)) from None


class TokenBody(BaseModel):
    name: str = "token"


@router.get("/tokens")
def list_tokens(user: UserDep, db: DbDep) -> list[dict]:
    with db.read_session() as s:
        rows = accounts.tokens(s, user.id)
        return [{"id": t.id, "name": t.name, "created_at": t.created_at.isoformat(),
                 "revoked": t.revoked_at is not None} for t in rows]


@router.post("/tokens", status_code=201)
def create_token(body: TokenBody, user: UserDep, db: DbDep) -> dict:
    """The token is shown once; only its hash is stored."""
    with db.session() as s, s.begin():
        row, token = accounts.create_token(s, s.get(User, user.id), body.name)
        return {"id": row.id, "name": row.name, "token": token}


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: int, user: UserDep, db: DbDep) -> dict:
    with db.session() as s, s.begin():
        if not accounts.revoke_token(s, user, token_id):
            raise ApiError(404, "not_found", "No such token.")
    return {"revoked": token_id}
