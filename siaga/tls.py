"""The certificates siaga.toml names: read, checked to belong together, and made into the
console's server context (TLS 1.2 or later). A bad path, an unreadable file, a file that is no
certificate or key, or a key of another certificate is a `ConfigError` naming the key, at start
rather than at the first browser's handshake.
"""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from siaga.config import Config, ConfigError


def server_context(
    config: Config, cert: str, key: str, cert_key: str, key_key: str
) -> ssl.SSLContext:
    """A TLS 1.2+ server context holding `cert` and `key` (siaga.toml's `cert_key`/`key_key`)."""
    if "-----BEGIN CERTIFICATE-----" not in _text(config, cert, cert_key):
        raise ConfigError(config.path, cert_key, f"{cert} holds no PEM certificate")
    if "PRIVATE KEY-----" not in _text(config, key, key_key):
        raise ConfigError(config.path, key_key, f"{key} holds no PEM private key")
    mode = Path(key).stat().st_mode
    if mode & stat.S_IRWXO:
        raise ConfigError(
            config.path, key_key, f"anyone may read {key} (mode {stat.S_IMODE(mode):o}): chmod 600"
        )

    def no_passphrase() -> bytes:
        # Else OpenSSL would ask for it on a terminal a service does not have.
        raise ConfigError(
            config.path, key_key, f"{key} is encrypted: the key must be kept unencrypted (0600)"
        )

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(config.path, key_key, f"{key} is not the key of {cert}") from None
        raise ConfigError(config.path, key_key, f"{cert} with {key}: {exc}") from None
    return context


def web_context(config: Config) -> ssl.SSLContext | None:
    """The console's server context, or None when it serves plain HTTP."""
    web = config.web
    if not web.tls:
        return None
    return server_context(config, web.tls_cert, web.tls_key, "web.tls_cert", "web.tls_key")


def check_certificates(config: Config) -> None:
    """Every certificate and key siaga.toml names can be read and belong together."""
    web_context(config)
    ast = config.asterisk
    if ast.sip_tls_cert:
        server_context(
            config,
            ast.sip_tls_cert,
            ast.sip_tls_key,
            "asterisk.sip_tls_cert",
            "asterisk.sip_tls_key",
        )


def _text(config: Config, name: str, key: str) -> str:
    path = Path(name)
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ConfigError(config.path, key, f"no such file: {path}") from None
    except IsADirectoryError:
        raise ConfigError(config.path, key, f"a folder, not a file: {path}") from None
    except OSError as exc:
        raise ConfigError(config.path, key, f"cannot read {path}: {exc.strerror}") from None
