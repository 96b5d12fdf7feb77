"""Bearer-token auth for REST and WebSocket: API keys or HS256 JWTs, roles viewer < operator < admin.

Secrets come only from environment variables (see ``settings.py``). REST routes take a ``Viewer``,
``Operator`` or ``Admin`` parameter (``require_role(Role.X)``; ``ViewerByHeaderOrQuery`` also reads
``?token=`` for media elements); WebSocket routes call ``authenticate_websocket`` before accepting,
which answers a real HTTP 401/403 on the upgrade request (browsers cannot set headers on a
WebSocket, so the token may also come as ``?token=`` or as the sub-protocol ``bearer.<token>``).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated, Mapping

import jwt
from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

WS_PROTOCOL_PREFIX = "bearer."
MIN_JWT_SECRET_BYTES = 32  # HS256 keys shorter than its 256-bit output can be brute-forced
MIN_API_KEY_CHARS = 16


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    viewer = 1  # watch sessions and media
    operator = 2  # send commands (target, mode, pause)
    admin = 3  # create/delete sessions, upload videos

    @classmethod
    def parse(cls, name: str) -> "Role":
        try:
            return cls[name.strip().lower()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}: use one of {[r.name for r in cls]}") from None


@dataclass(frozen=True)
class Principal:
    """Who is calling, and with which role."""

    subject: str
    role: Role


@dataclass(frozen=True)
class AuthConfig:
    """API keys (key -> role) and an optional JWT secret; empty means nobody gets in.

    A JWT must carry ``exp``; one that lives longer than ``jwt_max_lifetime_s`` (``exp - iat``, or
    ``exp - now`` without ``iat``) is refused, and ``aud`` / ``iss`` are checked when configured.
    """

    api_keys: Mapping[str, Role] = field(default_factory=dict)
    jwt_secret: str | None = None
    jwt_max_lifetime_s: float = 24 * 3600.0
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    def check(self) -> "AuthConfig":
        """Refuse weak secrets at startup, naming the variable to fix (never the secret itself)."""
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"SPOTON_JWT_SECRET is {len(self.jwt_secret.encode())} bytes: use at least "
                             f"{MIN_JWT_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)")
        short = [role.name for key, role in self.api_keys.items() if len(key) < MIN_API_KEY_CHARS]
        if short:
            raise ValueError(f"SPOTON_API_KEYS has {len(short)} key(s) shorter than {MIN_API_KEY_CHARS} "
                             f"characters (roles {sorted(set(short))}): use long random keys "
                             "(e.g. `openssl rand -hex 16`)")
        if self.jwt_max_lifetime_s <= 0:
            raise ValueError("SPOTON_JWT_MAX_LIFETIME_S must be positive")
        return self

    @classmethod
    def parse_api_keys(cls, text: str) -> dict[str, Role]:
        """``"key:role,key2:role"`` (the SPOTON_API_KEYS format)."""
        keys: dict[str, Role] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, role = item.rpartition(":")
            if not sep or not key:
                raise ValueError(f"SPOTON_API_KEYS entry {item!r} is not 'key:role' "
                                 "(e.g. SPOTON_API_KEYS='k1:admin,k2:viewer')")
            keys[key] = Role.parse(role)
        return keys


class AuthError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def issue_jwt(secret: str, subject: str, role: Role | str, ttl_s: float = 3600.0, *,
              audience: str | None = None, issuer: str | None = None) -> str:
    """Mint an HS256 token (for tests, the bench and operators holding the secret)."""
    import time

    role = Role.parse(role) if isinstance(role, str) else role
    now = int(time.time())
    claims = {"sub": subject, "role": role.name, "iat": now, "exp": now + int(ttl_s)}
    claims.update({k: v for k, v in (("aud", audience), ("iss", issuer)) if v is not None})
    return jwt.encode(claims, secret, algorithm="HS256")


def _jwt_principal(token: str, config: AuthConfig) -> Principal:
    import time

    claims = jwt.decode(token, config.jwt_secret, algorithms=["HS256"], audience=config.jwt_audience,
                        issuer=config.jwt_issuer, options={"require": ["exp", "sub"]})
    start = claims.get("iat", time.time())
    if not isinstance(start, (int, float)) or claims["exp"] - start > config.jwt_max_lifetime_s:
        raise AuthError(401, f"token lives longer than the server's maximum of "
                             f"{config.jwt_max_lifetime_s:g} s (exp - iat): get a shorter-lived one")
    return Principal(subject=str(claims["sub"]), role=Role.parse(str(claims.get("role", ""))))


def authenticate_token(token: str | None, config: AuthConfig) -> Principal:
    """Resolve a bearer token to a principal, or raise AuthError(401)."""
    if not token:
        raise AuthError(401, "missing bearer token: send 'Authorization: Bearer <token>' "
                             "(WebSocket: ?token=<token> or sub-protocol 'bearer.<token>')")
    for key, role in config.api_keys.items():
        if hmac.compare_digest(token.encode(), key.encode()):
            return Principal(subject=f"key:{key[:4]}…", role=role)
    if config.jwt_secret and token.count(".") == 2:
        try:
            return _jwt_principal(token, config)
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "token expired: get a new one") from None
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise AuthError(401, f"invalid token ({exc}): check the token and the server's "
                                 "SPOTON_JWT_SECRET") from None
    raise AuthError(401, "unknown API key or token: check SPOTON_API_KEYS / SPOTON_JWT_SECRET on "
                         "the server")


def authorize(principal: Principal, role: Role) -> Principal:
    if principal.role < role:
        raise AuthError(403, f"role {principal.role.name!r} may not do this: it needs "
                             f"{role.name!r} or higher")
    return principal


def auth_config(request_or_ws: Request | WebSocket) -> AuthConfig:
    return request_or_ws.app.state.auth


_bearer = HTTPBearer(auto_error=False)


def _principal(token: str | None, request: Request, role: Role) -> Principal:
    """The caller with at least ``role``, else the 401 (with its challenge) or 403 as an HTTP error."""
    try:
        return authorize(authenticate_token(token, auth_config(request)), role)
    except AuthError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        raise HTTPException(exc.status, exc.detail, headers=headers) from None


def require_role(role: Role):
    """FastAPI dependency: 401 without a valid token, 403 with a lower role."""

    def dependency(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        return _principal(credentials.credentials if credentials is not None else None, request, role)

    return dependency


def viewer_by_header_or_query(request: Request,
                              credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
                              ) -> Principal:
    """Like ``require_role(Role.viewer)``, also accepting ``?token=`` for ``<video>``/``<img>``."""
    token = credentials.credentials if credentials is not None else request.query_params.get("token")
    return _principal(token, request, Role.viewer)


# the route parameter that lets in that role or higher: ``_: Viewer``
Viewer = Annotated[Principal, Depends(require_role(Role.viewer))]
Operator = Annotated[Principal, Depends(require_role(Role.operator))]
Admin = Annotated[Principal, Depends(require_role(Role.admin))]
ViewerByHeaderOrQuery = Annotated[Principal, Depends(viewer_by_header_or_query)]


def websocket_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """(token, sub-protocol to echo back) from the header, the query string or the sub-protocol."""
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), None
    if websocket.query_params.get("token"):
        return websocket.query_params["token"], None
    for protocol in websocket.scope.get("subprotocols", []):
        if protocol.startswith(WS_PROTOCOL_PREFIX):
            return protocol[len(WS_PROTOCOL_PREFIX):], protocol
    return None, None


async def authenticate_websocket(websocket: WebSocket, role: Role) -> tuple[Principal, str | None] | None:
    """Check the token before accepting; on failure answer HTTP 401/403 and return None.

    Returns the principal and the sub-protocol to pass to ``websocket.accept(subprotocol=...)``.
    """
    token, subprotocol = websocket_token(websocket)
    try:
        principal = authorize(authenticate_token(token, auth_config(websocket)), role)
    except AuthError as exc:
        await websocket.send_denial_response(
            JSONResponse({"detail": exc.detail}, status_code=exc.status))
        return None
    return principal, subprotocol
