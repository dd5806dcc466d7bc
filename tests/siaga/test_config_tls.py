"""TLS in siaga.toml: the console's certificate and key ([web]), SIP over TLS and SRTP
([asterisk]); production refuses a console over plain HTTP unless a TLS proxy is in front of it
(file, key, reason, exit 2); files that cannot be read or do not belong together are named by
their key; `siaga provision --tls` makes a self-signed pair."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from pathlib import Path

import pytest

from siaga.config import ConfigError, load_config, plain_sip_warning, refuse_plain_http
from siaga.tls import check_certificates, web_context
from stack.certificate import KEY_NAME, CertificatePair, subject_alt_names, write_self_signed
from stack.cli import EXIT_CONFIG, main

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"


def config_file(
    tmp_path: Path, *, web: str = "", asterisk: str = "", production: bool = False
) -> Path:
    """The shipped siaga.toml with lines added to [web] and [asterisk]; in `production` with
    strong secrets of its own (so that what is refused is the transport)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("[web]\n", f"[web]\n{web}\n").replace(
        "[asterisk]\n", f"[asterisk]\n{asterisk}\n"
    )
    if production:
        text = 'secrets_file = "secrets.toml"\n' + text
        text = text.replace("development = true", "development = false")
    path = tmp_path / "siaga.toml"
    path.write_text(text, encoding="utf-8")
    if production:
        assert main(["--config", str(path), "provision", "--secrets"]) == 0
    return path


def web_tls(pair: CertificatePair) -> str:
    return f'tls_cert = "{pair.cert}"\ntls_key = "{pair.key}"'


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        check_certificates(load_config(path))
    return error.value


# -- [web] -----------------------------------------------------------------------------------


def test_without_tls_keys_the_console_is_plain_http_and_development_accepts_it() -> None:
    config = load_config(EXAMPLE)
    assert (config.web.tls, config.web.https) == (False, False)
    assert config.web.url == "http://127.0.0.1:8112"
    refuse_plain_http(config)  # development
    assert web_context(config) is None


def test_a_certificate_and_key_make_the_console_https_only_tls_1_2_or_later(
    tmp_path: Path, tls_pair: CertificatePair
) -> None:
    config = load_config(config_file(tmp_path, web=web_tls(tls_pair), production=True))
    assert config.web.https
    assert config.web.url == "https://127.0.0.1:8112"
    refuse_plain_http(config)
    context = web_context(config)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_relative_paths_are_from_the_folder_of_siaga_toml(
    tmp_path: Path, tls_pair: CertificatePair
) -> None:
    shutil.copy(tls_pair.cert, tmp_path / "console.crt")
    shutil.copy(tls_pair.key, tmp_path / "console.key")
    path = config_file(tmp_path, web='tls_cert = "console.crt"\ntls_key = "console.key"')
    config = load_config(path)
    assert config.web.tls_cert == str(tmp_path / "console.crt")
    check_certificates(config)


@pytest.mark.parametrize(
    ("web", "key", "reason"),
    [
        ('tls_cert = "a.crt"', "web.tls_key", "needs its private key"),
        ('tls_key = "a.key"', "web.tls_cert", "needs its certificate"),
        (
            'tls_cert = "a.crt"\ntls_key = "a.key"\nbehind_tls_proxy = true',
            "web.behind_tls_proxy",
            "either",
        ),
        ("behind_tls_proxy = 1", "web.behind_tls_proxy", "must be a boolean"),
    ],
)
def test_half_or_contradicting_tls_settings_are_refused_naming_the_key(
    tmp_path: Path, web: str, key: str, reason: str
) -> None:
    path = config_file(tmp_path, web=web)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert (error.value.path, error.value.key) == (str(path), key)
    assert reason in error.value.reason


def test_production_refuses_a_plain_http_console_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, production=True)
    with pytest.raises(ConfigError) as error:
        refuse_plain_http(load_config(path))
    assert (error.value.path, error.value.key) == (str(path), "web.tls_cert")
    assert "behind_tls_proxy" in error.value.reason

    capsys.readouterr()
    assert main(["--config", str(path), "check-config"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"siaga: configuration error: {path}: web.tls_cert: missing: production" in err


def test_production_behind_a_tls_proxy_serves_plain_http_as_https(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, web="behind_tls_proxy = true", production=True)
    capsys.readouterr()
    assert main(["--config", str(path), "check-config"]) == 0
    assert "siaga: warning: " in capsys.readouterr().err  # SIP over UDP: warned, not refused
    config = load_config(path)
    refuse_plain_http(config)
    assert config.web.https and not config.web.tls
    assert web_context(config) is None
    assert config.web.url.startswith("http://")


def test_a_missing_file_or_a_folder_is_named_by_its_key(
    tmp_path: Path, tls_pair: CertificatePair
) -> None:
    missing = refused(
        config_file(tmp_path, web=f'tls_cert = "nope.crt"\ntls_key = "{tls_pair.key}"')
    )
    assert missing.key == "web.tls_cert"
    assert f"no such file: {tmp_path / 'nope.crt'}" in missing.reason

    folder = refused(config_file(tmp_path, web=f'tls_cert = "{tls_pair.cert}"\ntls_key = "."'))
    assert (folder.key, folder.reason) == ("web.tls_key", f"a folder, not a file: {tmp_path}")


def test_files_that_are_no_certificate_or_no_key_are_named_by_their_key(
    tmp_path: Path, tls_pair: CertificatePair
) -> None:
    # Each the other way round: a key given as the certificate, a certificate as the key.
    error = refused(
        config_file(tmp_path, web=f'tls_cert = "{tls_pair.key}"\ntls_key = "{tls_pair.key}"')
    )
    assert (error.key, error.reason) == ("web.tls_cert", f"{tls_pair.key} holds no PEM certificate")
    error = refused(
        config_file(tmp_path, web=f'tls_cert = "{tls_pair.cert}"\ntls_key = "{tls_pair.cert}"')
    )
    assert (error.key, error.reason) == ("web.tls_key", f"{tls_pair.cert} holds no PEM private key")


def test_a_key_of_another_certificate_is_refused(tmp_path: Path, tls_pair: CertificatePair) -> None:
    other, _ = write_self_signed(tmp_path / "other", ["127.0.0.1"])
    error = refused(
        config_file(tmp_path, web=f'tls_cert = "{tls_pair.cert}"\ntls_key = "{other.key}"')
    )
    assert (error.key, error.reason) == (
        "web.tls_key",
        f"{other.key} is not the key of {tls_pair.cert}",
    )


def test_a_key_anyone_may_read_is_refused(tmp_path: Path, tls_pair: CertificatePair) -> None:
    key = tmp_path / "open.key"
    shutil.copy(tls_pair.key, key)
    key.chmod(0o644)
    error = refused(config_file(tmp_path, web=f'tls_cert = "{tls_pair.cert}"\ntls_key = "{key}"'))
    assert error.key == "web.tls_key"
    assert "mode 644" in error.reason and "chmod 600" in error.reason


def test_an_encrypted_key_is_refused_without_asking_for_a_passphrase(
    tmp_path: Path, tls_pair: CertificatePair
) -> None:
    key = tmp_path / "encrypted.key"
    encrypted = ssl_encrypt(tls_pair.key)
    key.write_text(encrypted)
    key.chmod(0o600)
    error = refused(config_file(tmp_path, web=f'tls_cert = "{tls_pair.cert}"\ntls_key = "{key}"'))
    assert (error.key, error.reason) == (
        "web.tls_key",
        f"{key} is encrypted: the key must be kept unencrypted (0600)",
    )


def ssl_encrypt(key: Path) -> str:
    import subprocess

    return subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-aes256", "-passout", "pass:secret-pass"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_check_config_names_a_bad_certificate_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, web='tls_cert = "gone.crt"\ntls_key = "gone.key"')
    assert main(["--config", str(path), "check-config"]) == EXIT_CONFIG
    assert (
        f"siaga: configuration error: {path}: web.tls_cert: no such file" in capsys.readouterr().err
    )


# -- [asterisk] ------------------------------------------------------------------------------


def test_sip_tls_is_off_by_default_and_the_shipped_setup_stays_on_udp() -> None:
    ast = load_config(EXAMPLE).asterisk
    assert (ast.sip_tls_port, ast.sip_tls_cert, ast.srtp) == (0, "", False)


@pytest.mark.parametrize(
    ("asterisk", "key", "reason"),
    [
        ("srtp = true", "asterisk.srtp", "needs sip_tls_port"),
        ("sip_tls_port = 5061", "asterisk.sip_tls_cert", "needs a certificate"),
        ('sip_tls_port = 5061\nsip_tls_cert = "a.crt"', "asterisk.sip_tls_key", "private key"),
        ("sip_tls_port = 70000", "asterisk.sip_tls_port", "must be 0 (off) or a port"),
    ],
)
def test_incomplete_sip_tls_settings_are_refused_naming_the_key(
    tmp_path: Path, asterisk: str, key: str, reason: str
) -> None:
    path = config_file(tmp_path, asterisk=asterisk)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert (error.value.key, reason in error.value.reason) == (key, True)


def test_the_sip_certificate_is_checked_too(tmp_path: Path, tls_pair: CertificatePair) -> None:
    other, _ = write_self_signed(tmp_path / "other", ["127.0.0.1"])
    path = config_file(
        tmp_path,
        asterisk=f'sip_tls_port = 5061\nsip_tls_cert = "{tls_pair.cert}"\n'
        f'sip_tls_key = "{other.key}"\nsrtp = true',
    )
    config = load_config(path)
    assert (config.asterisk.sip_tls_port, config.asterisk.srtp) == (5061, True)
    assert refused(path).key == "asterisk.sip_tls_key"


def test_production_without_sip_tls_is_warned_not_refused(
    tmp_path: Path, tls_pair: CertificatePair, capsys: pytest.CaptureFixture[str]
) -> None:
    production = load_config(config_file(tmp_path, production=True))
    warning = plain_sip_warning(production)
    assert warning is not None and "asterisk.sip_tls_port" in warning
    assert plain_sip_warning(load_config(EXAMPLE)) is None  # development
    with_tls = config_file(
        tmp_path,
        asterisk=f'sip_tls_port = 5061\nsip_tls_cert = "{tls_pair.cert}"\n'
        f'sip_tls_key = "{tls_pair.key}"',
        production=True,
    )
    assert plain_sip_warning(load_config(with_tls)) is None


# -- siaga provision --tls -------------------------------------------------------------------


def test_subject_alt_names_tell_addresses_from_names() -> None:
    assert subject_alt_names(["127.0.0.1", "localhost", "::1", "127.0.0.1", "siaga.lan"]) == (
        "IP:127.0.0.1,DNS:localhost,IP:::1,DNS:siaga.lan"
    )


def test_provision_tls_makes_a_private_self_signed_pair_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "tls"
    argv = ["--config", str(EXAMPLE), "provision", "--tls", "--tls-dir", str(folder)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Made a self-signed certificate")
    key = folder / KEY_NAME
    assert key.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    first = key.read_bytes()
    assert f'tls_key = "{key}"' in out

    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("Kept")
    assert key.read_bytes() == first


def test_the_self_signed_certificate_is_its_own_ca_for_its_hosts(tls_pair: CertificatePair) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tls_pair.cert, tls_pair.key)
    client = ssl.create_default_context(cafile=str(tls_pair.cert))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    thread = threading.Thread(target=serve)
    thread.start()
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.getpeercert()["subjectAltName"] == (
            ("IP Address", "127.0.0.1"),
            ("DNS", "localhost"),
        )
        tls.sendall(b".")
    thread.join(5)
    listener.close()
