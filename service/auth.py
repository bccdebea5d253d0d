"""Bearer-token authentication for SMART backend services: verify a JWT, then check the route's scope.

Rule: signatures are checked by PyJWT only (RS256/ES256 against the configured JWKS), never by hand;
every failure is a FhirError (401/403/400, or 503 when the keys cannot be fetched) whose
diagnostics and WWW-Authenticate header name the problem, never a claim value from the token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests

from service.config import Config, ConfigError
from service.errors import FhirError, Issue

# Asymmetric algorithms only: a shared-secret (HS*) or unsigned ("none") token is never accepted,
# which also closes the RS256→HS256 "public key as HMAC secret" confusion.
ALGORITHMS = ("RS256", "ES256")
KEY_TYPES = {"RS256": "RSA", "ES256": "EC"}
REALM = "trial-eligibility"
# One scope for both operations: $match is $evaluate-eligibility against every study (README "Deploying").
OPERATION_SCOPE = "system/ResearchStudy.$evaluate-eligibility"
# SMART v2 permission letters in their fixed order (c r u d s); a scope with a query (`?`) is narrower
# than a whole resource type and is not honoured here.
V2_PERMISSIONS = "cruds"
# A JWKS URL is fetched again at most this often when a token names a key id it does not hold.
MIN_REFRESH_SECONDS = 30
# A JWKS holds a few keys (a few KB); a larger answer is refused unread. The whole fetch, not each read,
# must end within AUTH_JWKS_TIMEOUT_SECONDS (a server trickling bytes would otherwise hold a request).
MAX_JWKS_BYTES = 256 * 1024
JWKS_READ_SIZE = 16 * 1024


@dataclass(frozen=True)
class Requirement:
    """What a route needs: `interaction` is read, search or operation on `resource_type`."""

    resource_type: str
    interaction: str

    @property
    def scope(self) -> str:
        """The scope to ask for (named in a 403 and its WWW-Authenticate header)."""
        if self.interaction == "operation":
            return OPERATION_SCOPE
        return f"system/{self.resource_type}.read"

    def granted_by(self, scopes: frozenset[str]) -> bool:
        return any(self._grants(scope) for scope in scopes)

    def _grants(self, scope: str) -> bool:
        context, _, rest = scope.partition("/")
        resource_type, dot, permission = rest.partition(".")
        if context != "system" or not dot or "?" in permission or resource_type not in (self.resource_type, "*"):
            return False
        if permission == "*":  # SMART v1 "all": read and write, so also the operations
            return True
        if self.interaction == "operation":
            return resource_type == self.resource_type and permission == OPERATION_SCOPE.rsplit(".", 1)[1]
        if permission == "read":  # SMART v1
            return True
        letter = "r" if self.interaction == "read" else "s"
        return _is_v2_permission(permission) and letter in permission


def _is_v2_permission(permission: str) -> bool:
    """`rs`, `cruds`, `r`...: letters of c r u d s, each once, in that order (SMART v2 scopes)."""
    positions = [V2_PERMISSIONS.find(letter) for letter in permission]
    return bool(permission) and -1 not in positions and positions == sorted(set(positions))


@dataclass(frozen=True)
class Principal:
    """Who called: the token's `sub`, its client id (`client_id` or `azp`) and granted scopes."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]


ANONYMOUS = Principal("anonymous", None, frozenset())


def unauthorized(error: str | None, description: str, status: int = 401) -> FhirError:
    """RFC 6750 §3: a request without credentials gets no error code; a bad token `invalid_token`."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}", error_description="{description}"'
    code = "login" if status == 401 else "invalid"
    return FhirError(status, Issue(code, description), headers={"WWW-Authenticate": challenge})


def forbidden(requirement: Requirement) -> FhirError:
    description = f"The token lacks the scope {requirement.scope}"
    challenge = (
        f'Bearer realm="{REALM}", error="insufficient_scope", error_description="{description}", '
        f'scope="{requirement.scope}"'
    )
    return FhirError(403, Issue("forbidden", description), headers={"WWW-Authenticate": challenge})


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1)."""
    if not header:
        raise unauthorized(None, "A bearer token is required")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise unauthorized(None, "Only the Bearer authentication scheme is supported")
    token = token.strip()
    if not token or " " in token:
        raise unauthorized("invalid_request", "The Authorization header is malformed", status=400)
    return token


class KeySet:
    """Signing keys of the authorization server: a JWKS file read once, or a URL fetched and cached."""

    def __init__(
        self,
        file: Path | None = None,
        url: str | None = None,
        cache_seconds: int = 300,
        timeout_seconds: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.cache_seconds, self.timeout, self.clock = url, cache_seconds, timeout_seconds, clock
        self._lock = threading.Lock()
        self._keys: list[jwt.PyJWK] = []
        self._fetched_at: float | None = None
        if file is not None:
            try:
                self._keys = _parse_jwks(json.loads(file.read_text(encoding="utf-8")))
            except (OSError, ValueError, jwt.PyJWKSetError) as exc:
                raise ConfigError(f"AUTH_JWKS_FILE {file}: not a usable JWKS ({type(exc).__name__})") from None

    def key(self, kid: str | None, algorithm: str) -> Any:
        """The key for a token header's `kid` (or the only key of the algorithm's type when no kid)."""
        if self.url is not None:
            self._refresh(force=False)
        found = _select(self._keys, kid, algorithm)
        if found is None and self.url is not None and kid is not None:
            self._refresh(force=True)  # the server may have rotated its keys since we fetched them
            found = _select(self._keys, kid, algorithm)
        if found is None:
            raise unauthorized("invalid_token", "The token is signed with an unknown key")
        return found.key

    def _refresh(self, force: bool) -> None:
        with self._lock:
            now = self.clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            if age is not None and (age < MIN_REFRESH_SECONDS or (not force and age < self.cache_seconds)):
                return
            try:
                self._keys = _parse_jwks(json.loads(self._fetch(str(self.url))))
            except (requests.RequestException, ValueError, jwt.PyJWKSetError):
                if not self._keys:
                    raise FhirError(
                        503,
                        Issue("transient", "The token signing keys cannot be fetched; try again later"),
                        headers={"Retry-After": str(MIN_REFRESH_SECONDS)},
                    ) from None
                # Keep serving with the keys we have; the next request past the wait tries again.
            self._fetched_at = now

    def _fetch(self, url: str) -> bytes:
        """The JWKS document's bytes; ValueError past MAX_JWKS_BYTES or the total timeout."""
        deadline = self.clock() + self.timeout
        with requests.get(url, timeout=self.timeout, stream=True) as response:
            response.raise_for_status()
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise ValueError("JWKS larger than MAX_JWKS_BYTES")
            received = bytearray()
            for piece in response.iter_content(JWKS_READ_SIZE):
                received += piece
                if len(received) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS larger than MAX_JWKS_BYTES")
                if self.clock() > deadline:
                    raise ValueError("JWKS fetch slower than AUTH_JWKS_TIMEOUT_SECONDS")
            return bytes(received)


def _parse_jwks(document: Any) -> list[jwt.PyJWK]:
    if not isinstance(document, dict):
        raise ValueError("a JWKS is a JSON object with `keys`")
    return [k for k in jwt.PyJWKSet.from_dict(document).keys if k.key_type in KEY_TYPES.values()]


def _select(keys: list[jwt.PyJWK], kid: str | None, algorithm: str) -> jwt.PyJWK | None:
    candidates = [k for k in keys if k.key_type == KEY_TYPES[algorithm] and (kid is None or k.key_id == kid)]
    return candidates[0] if len(candidates) == 1 else None


# Fixed descriptions per PyJWT failure: the exception text is not used (it can quote claim values).
FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired"),
    (jwt.ImmatureSignatureError, "The token is not valid yet"),
    (jwt.InvalidAudienceError, "The token is not issued for this service (audience)"),
    (jwt.InvalidIssuerError, "The token is not from the configured issuer"),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim (exp, iss, aud, sub)"),
    (jwt.InvalidSignatureError, "The token signature does not verify"),
)


class TokenVerifier:
    """Checks signature, issuer, audience, exp and nbf (with clock skew) and reads sub and scopes."""

    def __init__(self, keys: KeySet, issuer: str, audience: str, leeway_seconds: int = 60) -> None:
        self.keys, self.issuer, self.audience, self.leeway = keys, issuer, audience, leeway_seconds

    @classmethod
    def from_config(cls, config: Config) -> TokenVerifier:
        """Fails fast (ConfigError) when authentication is on but not fully configured."""
        missing = [
            name
            for name, value in (
                ("AUTH_ISSUER", config.auth_issuer),
                ("AUTH_AUDIENCE", config.auth_audience),
                ("AUTH_JWKS_FILE or AUTH_JWKS_URL", config.auth_jwks_file or config.auth_jwks_url),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"AUTH_ENABLED=true needs {', '.join(missing)} (or AUTH_ENABLED=false for local use)")
        keys = KeySet(
            config.auth_jwks_file,
            None if config.auth_jwks_file else config.auth_jwks_url,
            config.auth_jwks_cache_seconds,
            config.auth_jwks_timeout_seconds,
        )
        return cls(keys, str(config.auth_issuer), str(config.auth_audience), config.auth_clock_skew_seconds)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("invalid_token", "The token is not a well-formed JWT") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in ALGORITHMS:
            raise unauthorized("invalid_token", f"The token algorithm is not one of {', '.join(ALGORITHMS)}")
        key = self.keys.key(kid if isinstance(kid, str) else None, str(algorithm))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            description = next((text for kind, text in FAILURES if isinstance(exc, kind)), "The token is invalid")
            raise unauthorized("invalid_token", description) from None
        return Principal(str(claims["sub"]), _client_id(claims), _scopes(claims))


def _client_id(claims: dict[str, Any]) -> str | None:
    value = claims.get("client_id", claims.get("azp"))
    return value if isinstance(value, str) else None


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (space-separated, RFC 8693 / SMART) or `scp` (a list or a string, some servers)."""
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, list):
        return frozenset(str(item) for item in raw)
    return frozenset(str(raw).split())
