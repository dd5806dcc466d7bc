"""What the database commands of `siaga` share (`db migrate`, `calls`, `report`, `block`,
`unblock`, `blocks`, `user`): the error they raise for the person at the terminal, and the
runner that turns a database that cannot be reached or refuses into that error.

`stack/cli.py` prints a `CommandError` as `siaga: <message>` on stderr and exits with
`EXIT_FAILED`; a bad argument found by a handler is an `argparse.ArgumentTypeError` there, as in
the argument types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import asyncpg

EXIT_FAILED = 1

DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class CommandError(Exception):
    """A command that could not be carried out; the message says why, for a person."""


def run_database_command(work: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine in its own event loop; return its exit code."""
    try:
        return asyncio.run(work)
    except DATABASE_ERRORS as exc:
        raise CommandError(f"database error: {type(exc).__name__}: {exc}") from exc
