"""The pure security decisions of the console: passwords, tokens, CSRF, login throttling,
redirect targets. No HTTP and no database here, so each rule is tested on its own."""

from __future__ import annotations

import collections
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# The password `siaga run` gives the users it creates in development mode. The console refuses
# to start outside development mode while an enabled user still has it, and `siaga user`
# refuses to set it.
DEV_PASSWORD = "siaga-dev-console"
MIN_PASSWORD_LENGTH = 10
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): ~40 ms per check on
# a small server, so a burst of logins at shift change does not starve the call handling that
# shares the machine. Hashes made with other parameters are upgraded at the next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified when the user does not exist, so that an unknown name costs the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists; False on any malformed hash."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def username_problem(username: str) -> str | None:
    if not _USERNAME.match(username):
        return "a user name is 1-64 letters, digits, . _ - (starting with a letter or digit)"
    return None


def password_problem(username: str, password: str) -> str | None:
    """Why this password may not be set, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if password == DEV_PASSWORD:
        return "that is the development password; choose another"
    if password.lower() == username.lower():
        return "the password must not be the user name"
    return None


def new_token() -> str:
    """A random token for a session cookie or a CSRF token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """What the database keeps of a session token: a stolen table opens no session."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def origin_allowed(origin: str | None, host: str) -> bool:
    """A browser's Origin header must name this very host; no header is left to the token."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host


def safe_next(target: str | None) -> str | None:
    """A redirect target after login: a path of this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


@dataclass
class LoginLimiter:
    """Failed logins per user name and per client address within a sliding window.

    A name is locked after `per_user` failures, an address after `per_client` (several users
    share a console PC); a success clears the name's count. Memory is bounded: the oldest keys
    go first when `max_keys` is reached.
    """

    per_user: int = 5
    per_client: int = 20
    window_seconds: float = 300.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: collections.OrderedDict[str, collections.deque[float]] = field(
        default_factory=collections.OrderedDict
    )

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until a login attempt is allowed again; 0 when it is allowed now."""
        now = self.clock()
        waits = [
            self._wait(key, limit, now)
            for key, limit in (
                (self._user_key(username), self.per_user),
                (self._client_key(client), self.per_client),
            )
        ]
        return max(waits)

    def failed(self, username: str, client: str) -> None:
        now = self.clock()
        for key in (self._user_key(username), self._client_key(client)):
            times = self._failures.pop(key, collections.deque())
            times.append(now)
            self._failures[key] = times
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(self._user_key(username), None)

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_seconds:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return times[-limit] + self.window_seconds - now

    @staticmethod
    def _user_key(username: str) -> str:
        return "user:" + username.strip().lower()

    @staticmethod
    def _client_key(client: str) -> str:
        return "client:" + client
