"""Test keys and tokens for SMART backend-services auth: an RSA and an EC key, their JWKS, and a minter.

Used by tests/test_auth.py and the bench scripts (which mint their own tokens against a JWKS file).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.example.org"
AUDIENCE = "https://trials.example.org/fhir"
ALL_SCOPES = "system/*.read system/ResearchStudy.$evaluate-eligibility"


class TestIssuer:
    """An authorization server stand-in: keys `rsa-1` (RS256) and `ec-1` (ES256)."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key, alg in (("rsa-1", self.rsa, "RS256"), ("ec-1", self.ec, "ES256")):
            algorithm = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
            jwk = json.loads(algorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps(self.jwks()), encoding="utf-8")
        return path

    def token(self, alg: str = "RS256", kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "client-app-1", "client_id": "client-app-1",
                   "iat": now, "exp": now + 300, "scope": ALL_SCOPES, **claims}  # fmt: skip
        payload = {k: v for k, v in payload.items() if v is not None}
        key = self.rsa if alg == "RS256" else self.ec
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid or ("rsa-1" if alg == "RS256" else "ec-1")})
