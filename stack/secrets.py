"""`siaga provision --secrets`: strong secrets, generated once, in the secrets file that
siaga.toml names (`secrets_file`).

Every secret the centre's own machines share is generated here: the ARI and AMI passwords,
the FastAGI secret and each operator's SIP password. A strong secret already in the file is
kept (running it again changes nothing); a missing, shipped or short one is replaced. The
database password of an existing PostgreSQL is its administrator's to set: one written into
the file by hand is kept as it is. The embedded cluster makes its own (testbed/cluster.py).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from siaga.config import (
    MIN_SECRET_LENGTH,
    MIN_SIP_PASSWORD_LENGTH,
    ConfigError,
    load_config,
    read_secrets_file,
    read_toml,
    secrets_file_of,
    weak_secret_reason,
)

# token_urlsafe(n) gives about 1.3 n characters of [A-Za-z0-9_-]: safe in URLs and dialplans.
_MACHINE_BYTES = 24
_SIP_BYTES = 16


def write_secrets(config_path: Path) -> str:
    """Generate what is missing or weak into the secrets file; return a line saying what."""
    target = secrets_file_of(config_path, read_toml(config_path))
    if target is None:
        raise ConfigError(
            config_path,
            "secrets_file",
            "missing: name the file for the secrets, e.g. "
            'secrets_file = "/etc/siaga112/secrets.toml"',
        )
    config = load_config(config_path, with_secrets_file=False)
    old = read_secrets_file(target) if target.exists() else {}
    counts = {"generated": 0, "kept": 0}

    def secret(table: Mapping[str, Any], key: str, minimum: int, size: int) -> str:
        value = table.get(key)
        if isinstance(value, str) and weak_secret_reason(value, minimum) is None:
            counts["kept"] += 1
            return value
        counts["generated"] += 1
        return secrets.token_urlsafe(size)

    old_asterisk = _table(old, "asterisk")
    old_operators = _table(old, "operators")
    new: dict[str, dict[str, Any]] = {
        "asterisk": {
            key: secret(old_asterisk, key, MIN_SECRET_LENGTH, _MACHINE_BYTES)
            for key in ("ari_password", "ami_password")
        },
        "agi": {"secret": secret(_table(old, "agi"), "secret", MIN_SECRET_LENGTH, _MACHINE_BYTES)},
    }
    if "database" in old:
        new["database"] = dict(_table(old, "database"))
    new["operators"] = {
        op.id: {
            "sip_password": secret(
                _table(old_operators, op.id), "sip_password", MIN_SIP_PASSWORD_LENGTH, _SIP_BYTES
            )
        }
        for op in config.operators
    }
    _write_private(target, _toml(new))
    return f"Secrets: {target} (mode 600): {counts['generated']} generated, {counts['kept']} kept"


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    return value if isinstance(value, dict) else {}


def _toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [
        "# Siaga 112 secrets, written by `siaga provision --secrets`. Readable by its owner only.",
        "# These values override siaga.toml's; environment variables override both.",
    ]
    for name, table in tables.items():
        if name == "operators":
            for op_id, entry in table.items():
                lines += ["", f"[operators.{_string(op_id)}]"]
                lines += [f"{key} = {_string(value)}" for key, value in entry.items()]
            continue
        lines += ["", f"[{name}]"]
        lines += [f"{key} = {_string(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


def _string(value: object) -> str:
    # A JSON string is a TOML basic string (same quotes and escapes).
    return json.dumps(str(value), ensure_ascii=False)


def _write_private(path: Path, text: str) -> None:
    """Write `path` so that it is never readable by anyone but its owner, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    tmp.replace(path)
