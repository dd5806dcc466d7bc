"""Provision what the stack runs on: the Asterisk 22 root folder and the rendered voice prompts.

Debian 12 has no Asterisk package, so the root is built from Debian's unstable suite with
mmdebstrap into a cache folder outside the checkout and reused from then on
(docs/architecture.md §6).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tomllib
from importlib import resources
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

ROOT_PACKAGES = ("asterisk", "asterisk-core-sounds-en-wav", "asterisk-moh-opsound-wav")
_COMPLETE_MARK = ".siaga-root-complete"
LANGUAGES = ("id", "en")


class ProvisionError(Exception):
    """Set-up could not be done; the message says what and how to fix it."""


def cache_dir() -> Path:
    """Where long-lived build products go (the Asterisk root, rendered prompts)."""
    if env := os.environ.get("SIAGA_CACHE_DIR"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/siaga112")
    return Path.home() / ".cache" / "siaga112"


def state_dir() -> Path:
    """Where the embedded PostgreSQL of `make run` keeps its data between runs."""
    if env := os.environ.get("SIAGA_STATE_DIR"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/siaga112")
    return Path.home() / ".local" / "state" / "siaga112"


def asterisk_root(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "asterisk-root"


def root_is_complete(root: Path) -> bool:
    return (root / _COMPLETE_MARK).exists() and (root / "usr/sbin/asterisk").exists()


def module_dir(root: Path) -> Path:
    """The Asterisk module folder inside the root, as a path inside the root."""
    found = sorted(root.glob("usr/lib/*/asterisk/modules"))
    if not found:
        raise ProvisionError(f"{root}: no usr/lib/*/asterisk/modules; remove {root} and rerun")
    return Path("/") / found[0].relative_to(root)


def ensure_asterisk_root(cache: Path | None = None) -> Path:
    """Build the Asterisk root once (about 20 s); later calls reuse it."""
    root = asterisk_root(cache)
    if root_is_complete(root):
        return root
    if os.geteuid() != 0:
        raise ProvisionError("building the Asterisk root needs root (mmdebstrap and chroot)")
    if shutil.which("mmdebstrap") is None:
        raise ProvisionError("mmdebstrap is missing: apt-get install mmdebstrap")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(root.name + ".tmp")
    command = [
        "mmdebstrap",
        "--variant=apt",
        # The suite's Release file is older than its validity date on the mirrors reached here.
        "--aptopt=Acquire::Check-Valid-Until false",
        "--include=" + ",".join(ROOT_PACKAGES),
        "sid",
        str(tmp),
    ]
    for attempt in (1, 2):  # CI has no second chance: retry a failed download once
        shutil.rmtree(tmp, ignore_errors=True)
        log.info("asterisk_root.build", root=str(root), attempt=attempt)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            break
        log.warning("asterisk_root.build_failed", attempt=attempt, tail=result.stderr[-2000:])
    else:
        raise ProvisionError(f"mmdebstrap failed twice:\n{result.stderr[-3000:]}")
    version = subprocess.run(
        ["chroot", str(tmp), "asterisk", "-V"], capture_output=True, text=True, check=False
    )
    if version.returncode != 0 or not version.stdout.startswith("Asterisk "):
        raise ProvisionError(f"the new root's asterisk does not run: {version.stderr.strip()}")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    (root / _COMPLETE_MARK).write_text(version.stdout)
    log.info("asterisk_root.ready", root=str(root), version=version.stdout.strip())
    return root


POSITIONS = 20  # "you are number N": spoken up to here, "many callers before you" beyond


def prompt_texts() -> dict[str, dict[str, str]]:
    """language -> prompt name -> text, from dialplan/prompts/prompts.toml.

    A text with `{n}` is a template: it becomes position_1 ... position_20."""
    raw = (resources.files("dialplan") / "prompts" / "prompts.toml").read_text(encoding="utf-8")
    data = tomllib.loads(raw)
    texts: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        texts[lang] = {}
        for name, text in data[lang].items():
            if "{n}" in text:
                for n in range(1, POSITIONS + 1):
                    texts[lang][f"{name}_{n}"] = text.format(n=n)
            else:
                texts[lang][name] = text
    return texts


def render_prompts(cache: Path | None = None) -> Path:
    """Render every prompt to 8 kHz mono 16-bit WAV; reuse files whose text has not changed."""
    out = (cache or cache_dir()) / "prompts"
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise ProvisionError(f"{tool} is missing: apt-get install espeak-ng sox")
    for lang, prompts in prompt_texts().items():
        folder = out / lang
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in prompts.items():
            target = folder / f"{name}.wav"
            stamp = folder / f"{name}.sha256"
            digest = hashlib.sha256(text.encode()).hexdigest()
            if target.exists() and stamp.exists() and stamp.read_text() == digest:
                continue
            raw = folder / f"{name}.raw.wav"
            subprocess.run(
                ["espeak-ng", "-v", lang, "-s", "180", "-w", str(raw), text],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(target)],
                check=True,
                capture_output=True,
            )
            raw.unlink()
            stamp.write_text(digest)
    return out
