"""`siaga provision --tls`: a self-signed certificate for trying HTTPS and SIP over TLS in
development and tests. A centre in production uses a certificate its browsers and phones
already trust; this one they trust only once told to (its own file is its CA).

Made with the `openssl` command (Debian has it) rather than a Python library of its own.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pbx.provision import ProvisionError

CERT_NAME = "siaga-selfsigned.crt"
KEY_NAME = "siaga-selfsigned.key"
VALID_DAYS = 825  # the longest validity browsers accept for a server certificate


@dataclass(frozen=True, slots=True)
class CertificatePair:
    cert: Path
    key: Path


def subject_alt_names(hosts: list[str]) -> str:
    """openssl's subjectAltName for `hosts`: IP: for addresses, DNS: for names, no repeats."""
    names: list[str] = []
    for host in hosts:
        try:
            name = f"IP:{ipaddress.ip_address(host)}"
        except ValueError:
            name = f"DNS:{host}"
        if host and name not in names:
            names.append(name)
    return ",".join(names)


def write_self_signed(folder: Path, hosts: list[str]) -> tuple[CertificatePair, bool]:
    """The pair in `folder` (key 0600), made for `hosts` unless there already; True if made."""
    pair = CertificatePair(folder / CERT_NAME, folder / KEY_NAME)
    if pair.cert.exists() and pair.key.exists():
        return pair, False
    if shutil.which("openssl") is None:
        raise ProvisionError("openssl is missing: apt-get install openssl")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    tmp_key = pair.key.with_suffix(".tmp")
    tmp_key.unlink(missing_ok=True)
    tmp_key.touch(mode=0o600)  # private before a byte of the key is in it
    command = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",  # RSA, not EC: what the oldest desk phones still speak
        "-nodes",
        "-days",
        str(VALID_DAYS),
        "-subj",
        f"/O=Siaga 112/CN={hosts[0]}",
        "-addext",
        f"subjectAltName={subject_alt_names(hosts)}",
        "-keyout",
        str(tmp_key),
        "-out",
        str(pair.cert),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tmp_key.unlink(missing_ok=True)
        raise ProvisionError(f"openssl req failed: {result.stderr.strip()}")
    tmp_key.chmod(0o600)
    tmp_key.replace(pair.key)
    return pair, True
