"""The pure security decisions of the console: passwords, tokens, CSRF, login throttling,
redirect targets. No HTTP and no database here, so each rule is tested on its own.

Login throttling slows guessing down without locking the real user out. A lock on the user
name (the rule before: five failures, then even the right password refused for five minutes)
lets anyone who knows an operator's name keep them off the console in the middle of a shift.
So nothing is locked; failed attempts earn growing delays (`Backoff`: a few free, then 1 s
doubling to a cap) on three counts, and an attempt waits for the longest that applies:

- per user at a source (3 free, cap 30 s) and per source (10 free, since several operators
  share a desk PC; cap 30 s): one address guessing, at one name or at many, soon gets one try
  per 30 s. The real user is only held here by failures made at their own desk.
- per user, from anywhere (5 free, cap 5 s): many addresses guessing one name together get at
  most one try per 5 s between them. Anyone else may type that name, so this delay is capped
  low and it does not apply at a source where that user has signed in before (within 30 days):
  the operator at their own desk is never held by guessing done elsewhere, and at a new desk
  waits a few seconds at worst (unless many addresses keep taking every slot).

Why not spare any address that has no failures of its own instead of the user's known ones?
Fresh addresses are cheap (a host picks any address of its IPv6 /64; botnets; DHCP), so that
would give every new address a free guess at every name; an address where the user already
proved their password is not something a guesser can make. IPv6 sources count per /64.

An attempt is counted as failed when it is let through, before the password is checked, so
guesses sent in parallel do not all pass before the first is judged; a success takes it back.
Held attempts are not counted (a user retrying early does not lengthen their own wait).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any
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


class CredentialProblem(StrEnum):
    """Why a user name or password is refused; the console shows each in words
    (supervisor/i18n.py, `users.problem.<code>`), the command line in `password_problem`'s."""

    USERNAME = "username"
    PASSWORD_SHORT = "password_short"
    PASSWORD_DEV = "password_dev"
    PASSWORD_IS_NAME = "password_is_name"


_PROBLEM_TEXT = {
    CredentialProblem.USERNAME: (
        "a user name is 1-64 letters, digits, . _ - (starting with a letter or digit)"
    ),
    CredentialProblem.PASSWORD_SHORT: f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
    CredentialProblem.PASSWORD_DEV: "that is the development password; choose another",
    CredentialProblem.PASSWORD_IS_NAME: "the password must not be the user name",
}


def check_username(username: str) -> CredentialProblem | None:
    return None if _USERNAME.match(username) else CredentialProblem.USERNAME


def check_password(username: str, password: str) -> CredentialProblem | None:
    """Why this password may not be set, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return CredentialProblem.PASSWORD_SHORT
    if password == DEV_PASSWORD:
        return CredentialProblem.PASSWORD_DEV
    if password.lower() == username.lower():
        return CredentialProblem.PASSWORD_IS_NAME
    return None


def username_problem(username: str) -> str | None:
    problem = check_username(username)
    return None if problem is None else _PROBLEM_TEXT[problem]


def password_problem(username: str, password: str) -> str | None:
    """Why this password may not be set, in words for the command line, or None."""
    problem = check_password(username, password)
    return None if problem is None else _PROBLEM_TEXT[problem]


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


def origin_allowed(origin: str | None, host: str, *, https: bool) -> bool:
    """A browser's Origin header must name this very origin: the host, and the scheme browsers
    reach the console with (`https`: served over TLS or behind a TLS proxy), since a page of
    the same host over plain HTTP is another, untrusted origin. No header is left to the token."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme == ("https" if https else "http") and parts.netloc == host


def safe_next(target: str | None) -> str | None:
    """A redirect target after login: a path of this site only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    return target


class Limit(Enum):
    """Which count holds a login attempt back."""

    SOURCE = "source"
    USER = "user"
    USER_AT_SOURCE = "user_at_source"


@dataclass(frozen=True, slots=True)
class Backoff:
    """No wait for the first `free` failures, then `first_seconds` doubling up to `cap_seconds`."""

    free: int
    first_seconds: float
    cap_seconds: float

    def seconds(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap_seconds, self.first_seconds * 2.0 ** min(failures - self.free, 62))


@dataclass(frozen=True, slots=True)
class Held:
    """A login attempt refused unseen: it may come back in `seconds`."""

    seconds: float
    by: Limit


@dataclass(frozen=True, slots=True)
class Admitted:
    """A login attempt let through; it counts as a failure until `LoginLimiter.succeeded`, so
    that guesses sent in parallel do not all slip through before the first one is judged."""

    user: str
    source: str
    at: float


# ("user", name), ("source", address group) or ("pair", name, address group): tuples, so that
# no name typed into the form can pass for another kind of key.
_Key = tuple[str, ...]


def address_group(address: str) -> str:
    """The source a login attempt is counted against: the IPv4 address, or the IPv6 /64 (a
    host picks any address of its /64 at will, so single IPv6 addresses would count nothing)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class LoginLimiter:
    """Growing delays for failed logins per source, per user at a source, and per user (the
    reasoning is in this module's docstring). In memory: a restart forgets, and the oldest
    keys go first when `max_keys` is reached."""

    per_source: Backoff = Backoff(free=10, first_seconds=1.0, cap_seconds=30.0)
    per_user_at_source: Backoff = Backoff(free=3, first_seconds=1.0, cap_seconds=30.0)
    per_user: Backoff = Backoff(free=5, first_seconds=1.0, cap_seconds=5.0)
    # How long a failure counts; long next to the caps, or a patient guesser would never reach
    # them (at one guess per 30 s a source still has 30 failures in the window).
    memory_seconds: float = 900.0
    # How long a source where the user signed in stays theirs (exempt from the per-user delay).
    known_seconds: float = 30 * 24 * 3600.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: collections.OrderedDict[_Key, collections.deque[float]] = field(
        default_factory=collections.OrderedDict
    )
    _known: collections.OrderedDict[_Key, float] = field(default_factory=collections.OrderedDict)

    def admit(self, username: str, client: str) -> Admitted | Held:
        """Let the attempt through (counted as failed until it succeeds) or hold it back."""
        now = self.clock()
        held = self._hold(username, client, now)
        if held is not None:
            return held
        user, source = _user_of(username), address_group(client)
        for key in (("user", user), ("source", source), ("pair", user, source)):
            times = self._failures.pop(key, None) or collections.deque(maxlen=_MAX_COUNTED)
            times.append(now)
            self._failures[key] = times
        _trim(self._failures, self.max_keys)
        return Admitted(user, source, now)

    def retry_after(self, username: str, client: str) -> float:
        """Seconds until this user may try again from this client; 0 when it may now."""
        held = self._hold(username, client, self.clock())
        return held.seconds if held is not None else 0.0

    def succeeded(self, attempt: Admitted) -> None:
        """The password was right: the attempt was no failure, the user's own failures at this
        source are forgiven, and the source becomes one of the user's known sources. The
        source's count of other names is kept (a user signing in as themselves must not wipe
        the trail of their guesses at others)."""
        pair: _Key = ("pair", attempt.user, attempt.source)
        self._failures.pop(pair, None)
        for key in (("user", attempt.user), ("source", attempt.source)):
            times = self._failures.get(key)
            if times is not None and attempt.at in times:
                times.remove(attempt.at)
        self._known.pop(pair, None)
        self._known[pair] = attempt.at
        _trim(self._known, self.max_keys)

    def _hold(self, username: str, client: str, now: float) -> Held | None:
        user, source = _user_of(username), address_group(client)
        pair: _Key = ("pair", user, source)
        checks: list[tuple[Limit, _Key, Backoff]] = [
            (Limit.USER_AT_SOURCE, pair, self.per_user_at_source),
            (Limit.SOURCE, ("source", source), self.per_source),
        ]
        if not self._is_known(pair, now):
            checks.append((Limit.USER, ("user", user), self.per_user))
        longest: Held | None = None
        for limit, key, backoff in checks:
            wait = self._wait(key, backoff, now)
            if wait > 0 and (longest is None or wait > longest.seconds):
                longest = Held(wait, limit)
        return longest

    def _wait(self, key: _Key, backoff: Backoff, now: float) -> float:
        times = self._failures.get(key)
        if times is None:
            return 0.0
        while times and times[0] <= now - self.memory_seconds:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        return max(0.0, times[-1] + backoff.seconds(len(times)) - now)

    def _is_known(self, pair: _Key, now: float) -> bool:
        since = self._known.get(pair)
        return since is not None and now - since < self.known_seconds


# A count beyond this changes no delay (every cap is reached long before); it bounds memory.
_MAX_COUNTED = 64


def _user_of(username: str) -> str:
    return username.strip().lower()


def _trim(keys: collections.OrderedDict[_Key, Any], max_keys: int) -> None:
    while len(keys) > max_keys:
        keys.popitem(last=False)
