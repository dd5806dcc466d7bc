"""`siaga backup` and `siaga restore`: the records and the recordings, kept somewhere safe.

A backup is a folder `<to>/<UTC time>/` holding:
- `database.dump`: `pg_dump --format=custom` of the records database;
- `recordings/`: every recording; a file the previous backup holds unchanged (same name, size
  and SHA-256) is hard-linked from it, so each backup is whole on its own and costs only what
  changed;
- `manifest.json`, written last (a folder without one is an unfinished backup, never used):
  when, which database, and the name, size and SHA-256 of the dump and of every recording.

`restore` checks every checksum before it touches anything, then restores the database
(`pg_restore --clean`: the records become the backup's) and copies back the recordings that
are missing. A recording that exists with other content is kept and reported, never
overwritten. It refuses a database that already holds records unless told to replace them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from db.command import CommandError

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
RECORDINGS = "recordings"


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str  # relative to its folder
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str
    database: str
    dump: FileEntry
    recordings: tuple[FileEntry, ...]
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise CommandError(f"{path}: format {raw.get('format')!r}, expected {FORMAT}")
            return cls(
                created_at=str(raw["created_at"]),
                database=str(raw["database"]),
                dump=FileEntry(**raw["dump"]),
                recordings=tuple(FileEntry(**r) for r in raw["recordings"]),
            )
        except FileNotFoundError:
            raise CommandError(f"{folder}: no {MANIFEST}: not a finished backup") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{path}: unreadable manifest ({exc})") from None


@dataclass(frozen=True, slots=True)
class BackupReport:
    folder: Path
    recordings: int
    linked: int  # unchanged since the previous backup
    bytes_copied: int


@dataclass(frozen=True, slots=True)
class RestoreReport:
    recordings_restored: int
    recordings_present: int
    recordings_differing: tuple[str, ...]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_for(folder: Path, path: Path) -> FileEntry:
    return FileEntry(str(path.relative_to(folder)), path.stat().st_size, sha256_of(path))


def previous_backup(to: Path, before: str) -> Path | None:
    """The newest finished backup in `to` older than `before` (folder names sort by time)."""
    done = sorted(
        p for p in to.iterdir() if p.is_dir() and p.name < before and (p / MANIFEST).exists()
    )
    return done[-1] if done else None


def pg_tool(name: str) -> str:
    from testbed.cluster import find_bindir

    try:
        return str(find_bindir() / name)
    except Exception:
        found = shutil.which(name)
        if found is None:
            raise CommandError(f"{name} is missing: apt-get install postgresql-client") from None
        return found


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CommandError(f"{what} failed: {result.stderr.strip()[-500:]}")


def backup(dsn: str, recordings_dir: Path | None, to: Path) -> BackupReport:
    to.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = to / stamp
    folder.mkdir(mode=0o700)
    dump = folder / DUMP
    _run([pg_tool("pg_dump"), "--format=custom", f"--file={dump}", f"--dbname={dsn}"], "pg_dump")
    before = previous_backup(to, stamp)
    known = (
        {(e.name, e.size, e.sha256) for e in Manifest.read(before).recordings}
        if before is not None
        else set()
    )
    entries: list[FileEntry] = []
    linked = copied = 0
    for source, entry in _recordings(recordings_dir):
        target = folder / RECORDINGS / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if before is not None and (entry.name, entry.size, entry.sha256) in known:
            os.link(before / RECORDINGS / entry.name, target)
            linked += 1
        else:
            shutil.copy2(source, target)
            copied += entry.size
        entries.append(entry)
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(),
        database=urlsplit(dsn).path.lstrip("/"),
        dump=entry_for(folder, dump),
        recordings=tuple(entries),
    )
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(folder / MANIFEST)
    return BackupReport(folder, len(entries), linked, copied)


def verify(folder: Path) -> Manifest:
    """The backup's manifest, once every file in it is there with its checksum."""
    manifest = Manifest.read(folder)
    for entry, base in [(manifest.dump, folder)] + [
        (r, folder / RECORDINGS) for r in manifest.recordings
    ]:
        path = base / entry.name
        if not path.is_file():
            raise CommandError(f"{folder}: {entry.name} is missing")
        if path.stat().st_size != entry.size or sha256_of(path) != entry.sha256:
            raise CommandError(f"{folder}: {entry.name} is damaged (checksum)")
    return manifest


async def database_holds_records(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        exists = await conn.fetchval("SELECT to_regclass('call_events') IS NOT NULL")
        return bool(exists) and bool(await conn.fetchval("SELECT EXISTS (SELECT FROM call_events)"))
    finally:
        await conn.close()


async def restore(
    dsn: str, recordings_dir: Path | None, folder: Path, *, replace: bool = False
) -> RestoreReport:
    manifest = verify(folder)
    if not replace and await database_holds_records(dsn):
        raise CommandError(
            "the database already holds records: restore into an empty one, or pass --replace"
            " to make its records the backup's"
        )
    _run(
        [
            pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            f"--dbname={dsn}",
            str(folder / DUMP),
        ],
        "pg_restore",
    )
    restored = present = 0
    differing: list[str] = []
    for entry in manifest.recordings:
        if recordings_dir is None:
            break
        target = recordings_dir / entry.name
        if target.exists():
            if target.stat().st_size == entry.size and sha256_of(target) == entry.sha256:
                present += 1
            else:
                differing.append(entry.name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / RECORDINGS / entry.name, target)
        restored += 1
    return RestoreReport(restored, present, tuple(differing))


def _recordings(folder: Path | None) -> Iterable[tuple[Path, FileEntry]]:
    if folder is None or not folder.is_dir():
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        yield path, entry_for(folder, path)
