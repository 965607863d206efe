"""JWT verification with roles and the caller's organisation; every service verifies the same tokens.

Enrollment issues the tokens (it owns staff accounts). A token carries the caller's role, organisation
code, the organisation's level and its path from the centre (``org_path``), and for a member their
``member_id``. Staff act only within their organisation's subtree: an object belongs to the caller's
branch when the caller's organisation code lies on the object's own path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request

from shared.errors import Forbidden, Unauthorized
from shared.scope import in_branch
from shared.vocab import REVIEWER_LEVEL, Role

__all__ = ["ALGORITHM", "REVIEWER_LEVEL", "ROLES", "CurrentUser", "Principal", "current_principal", "issue_token",
           "require_fund_wide", "require_roles", "verify_token"]

ROLES: tuple[str, ...] = tuple(Role)
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: str
    org: str
    org_level: str
    org_path: tuple[str, ...]
    member_id: str | None = None

    @property
    def branch(self) -> tuple[str, ...]:
        """The caller's organisation path from the centre (shared.scope compares paths by segments)."""
        return self.org_path or ((self.org,) if self.org else ())

    @property
    def fund_wide(self) -> bool:
        """The admin, or staff of the centre itself: the fund's books and payout batches are theirs."""
        return self.role == "admin" or len(self.branch) == 1

    def covers(self, path: list[str] | tuple[str, ...]) -> bool:
        """True when an object on ``path`` (centre ... unit) lies in this caller's subtree."""
        return self.role == "admin" or in_branch(path, self.branch)

    def require_covers(self, path: list[str] | tuple[str, ...]) -> None:
        if not self.covers(path):
            raise Forbidden("该对象不在您所属组织的管辖范围内。", code="outside_subtree")


def issue_token(principal: Principal, secret: str, ttl_seconds: int, issuer: str = "huzhu") -> str:
    now = int(time.time())
    claims = {
        "sub": principal.user_id, "name": principal.username, "role": principal.role, "org": principal.org,
        "org_level": principal.org_level, "org_path": list(principal.org_path), "member_id": principal.member_id,
        "iss": issuer, "iat": now, "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, issuer: str = "huzhu") -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=issuer,
                            options={"require": ["exp", "sub", "role"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("登录已过期，请重新登录。", code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("身份令牌无效。", code="invalid_token") from None
    if claims.get("role") not in ROLES:
        raise Unauthorized("身份令牌中的角色无效。", code="invalid_token")
    return Principal(
        user_id=str(claims["sub"]), username=str(claims.get("name", "")), role=claims["role"],
        org=str(claims.get("org", "")), org_level=str(claims.get("org_level", "")),
        org_path=tuple(claims.get("org_path") or ()), member_id=claims.get("member_id"),
    )


def current_principal(request: Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("请先登录（Authorization: Bearer <token>）。", code="missing_token")
    secret: str = request.app.state.settings.jwt_secret
    return verify_token(token.strip(), secret, request.app.state.settings.jwt_issuer)


async def _principal(request: Request) -> Principal:
    """:func:`current_principal` as a dependency: async, so FastAPI runs it on the event loop (a plain ``def``
    dependency is run in a worker thread, a hop between threads on every request; issue 15)."""
    return current_principal(request)


CurrentUser = Annotated[Principal, Depends(_principal)]


def require_roles(*roles: str) -> object:
    async def check(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"此操作需要以下角色之一：{', '.join(roles)}。", code="role_not_allowed")
        return principal

    return Depends(check)


def require_fund_wide(*roles: str) -> object:
    """One of ``roles`` and the fund's whole branch (the admin, or staff of the centre): finance at an office
    acts on its office's branch only, so the fund's batches and books are not theirs."""
    async def check(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"此操作需要以下角色之一：{', '.join(roles)}。", code="role_not_allowed")
        if not principal.fund_wide:
            raise Forbidden("此操作属于互助中心（全省基金），不在您所属组织的管辖范围内。", code="outside_subtree")
        return principal

    return Depends(check)
