"""Who may see the app: whoever knows the supervisor's API token (`service/api.token`).

The token is entered once, on the login form or as `?token=` in a link, compared in constant
time, and exchanged for a session cookie (HttpOnly, SameSite=Strict), then a redirect drops it
from the address bar. The cookie holds a random session id, never the token: cookies on a host
reach every port of it, and the token also opens the supervisor's API. Sessions live in this
server's memory for `SESSION_TTL_SEC` (a restart of `vik-tui web` asks again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SESSION_TTL_SEC = 24 * 3600.0
MAX_SESSIONS = 64  # logins kept at once; the oldest goes first
COOKIE_PREFIX = "vik_tui_web_"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Access:
    """The token check and the sessions it opened. `read_token` reads the token file each time,
    so a token made after this server started (or replaced) is the one asked for."""

    read_token: Callable[[], str | None]
    port: int  # part of the cookie's name: two servers on one host keep their own
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, float] = field(default_factory=dict)  # sha256(session id) -> expiry

    @property
    def cookie_name(self) -> str:
        return f"{COOKIE_PREFIX}{self.port}"

    def token_matches(self, given: str) -> bool:
        """Constant time in the token's content (`hmac.compare_digest`)."""
        token = self.read_token()
        if not token:
            return False
        return hmac.compare_digest(given.strip().encode(), token.encode())

    def open_session(self) -> str:
        """A new session id for the cookie (only its digest is kept)."""
        now = self.clock()
        self._drop_expired(now)
        while len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[min(self._sessions, key=self._sessions.__getitem__)]
        session = secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = now + SESSION_TTL_SEC
        return session

    def session_valid(self, session: str | None) -> bool:
        if not session:
            return False
        expiry = self._sessions.get(_digest(session))
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._sessions[_digest(session)]
            return False
        return True

    def _drop_expired(self, now: float) -> None:
        for key in [key for key, expiry in self._sessions.items() if expiry <= now]:
            del self._sessions[key]
