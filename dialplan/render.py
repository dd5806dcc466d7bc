"""Render the Asterisk configuration the project owns from `siaga.toml`.

Templates use `{{name}}` placeholders (Asterisk's own `${...}` must pass through untouched). A
placeholder without a value is an error rather than an empty string: a config file with a hole
in it would start an Asterisk that silently refuses calls.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from dialplan import ami
from siaga.config import Config

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# Operator names end up inside config lines (and queue member lists, split on commas): keep
# them to one printable line with no quotes, commas or section brackets.
_UNSAFE_IN_CONFIG = re.compile(r"[\",\\;\[\]\x00-\x1f\x7f]")

# Asterisk's own record of every call, in the instance's log folder (cel_custom.conf).
CEL_FILE = "cel.jsonl"
# A call in the app's Stasis that no app has taken this long after it entered is stranded:
# the dialplan's guard sends it to the fallback (extensions.conf). A live app takes a call
# within milliseconds; a takeover by the standby app takes several seconds.
STRANDED_AFTER_SECONDS = 2

CONFIG_FILES = (
    "asterisk.conf",
    "modules.conf",
    "logger.conf",
    "http.conf",
    "ari.conf",
    "manager.conf",
    "rtp.conf",
    "musiconhold.conf",
    "pjsip.conf",
    "extensions.conf",
    "queues.conf",
    "features.conf",
    "indications.conf",
    "cdr.conf",
    "cel.conf",
    "cel_custom.conf",
    "stasis.conf",
)


@dataclass(frozen=True, slots=True)
class InstanceLayout:
    """Where an instance keeps its files, as seen from inside the Asterisk root."""

    base: PurePosixPath
    module_dir: PurePosixPath

    @property
    def etc_dir(self) -> PurePosixPath:
        return self.base / "etc"

    @property
    def lib_dir(self) -> PurePosixPath:
        return self.base / "lib"

    @property
    def spool_dir(self) -> PurePosixPath:
        return self.base / "spool"

    @property
    def run_dir(self) -> PurePosixPath:
        return self.base / "run"

    @property
    def log_dir(self) -> PurePosixPath:
        return self.base / "log"

    @property
    def cel_file(self) -> PurePosixPath:
        """Asterisk's own record of every call (cel_custom.conf), read by db/cel.py."""
        return self.log_dir / CEL_FILE

    @property
    def prompts_dir(self) -> PurePosixPath:
        return self.base / "prompts"

    @property
    def recordings_dir(self) -> PurePosixPath:
        return self.spool_dir / "recording"

    @property
    def asterisk_conf(self) -> PurePosixPath:
        return self.etc_dir / "asterisk.conf"

    @property
    def sip_tls_cert(self) -> PurePosixPath:
        """The copy of `[asterisk] sip_tls_cert` (Asterisk, chrooted, cannot reach the original)."""
        return self.etc_dir / "sip-tls.crt"

    @property
    def sip_tls_key(self) -> PurePosixPath:
        return self.etc_dir / "sip-tls.key"


def template(name: str) -> str:
    return (resources.files("dialplan") / "templates" / name).read_text(encoding="utf-8")


def fill(text: str, values: dict[str, str], name: str = "<template>") -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"{name}: no value for placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, text)


def config_safe(text: str) -> str:
    return _UNSAFE_IN_CONFIG.sub("", text).strip()


def _operator_sections(config: Config) -> str:
    if config.edge is not None:
        return _edge_operator_sections(config)
    sections = []
    for op in config.operators:
        name = "operator-webrtc.pjsip.conf" if op.webrtc else "operator.pjsip.conf"
        values = {
            "op_id": op.id,
            "op_name": config_safe(op.name),
            "sip_user": op.sip_user,
            "sip_password": op.sip_password,
            "sip_host": config.asterisk.sip_host,
            "media_encryption": "sdes" if config.asterisk.srtp else "no",
        }
        sections.append(fill(template(name), values, name))
    return "".join(sections)


def _edge_operator_sections(config: Config) -> str:
    """Behind the Kamailio edge: each operator is reached at the edge, which finds the phone."""
    assert config.edge is not None
    sections = []
    for op in config.operators:
        values = {
            "op_id": op.id,
            "op_name": config_safe(op.name),
            "sip_user": op.sip_user,
            "sip_host": config.asterisk.sip_host,
            "edge_host": config.edge.sip_host,
            "edge_port": str(config.edge.sip_port),
        }
        sections.append(
            fill(template("operator-edge.pjsip.conf"), values, "operator-edge.pjsip.conf")
        )
    return "".join(sections)


def _trunk_networks(config: Config) -> list[str]:
    """Where 112 calls may come from: behind an edge, the edge first (it sends them all; a
    pair of edges also probes the node from each one's own address)."""
    networks = list(config.asterisk.trunk_networks)
    if config.edge is not None:
        edges = (config.edge.sip_host, *config.edge.hosts)
        networks[:0] = [f"{address}/32" for address in edges]
    return networks


# pjproject reads a single version (tlsv1_2) as "that one only": sslv23 lets a phone choose
# TLS 1.2 or 1.3, and the root's OpenSSL 3 refuses anything older at its default security
# level (tests/integration/test_sip_tls.py holds it to that).
SIP_TLS_METHOD = "sslv23"


def _tls_transport(config: Config, layout: InstanceLayout) -> str:
    ast = config.asterisk
    if not ast.sip_tls_port:
        return ""
    values = {
        "sip_host": ast.sip_host,
        "sip_tls_port": str(ast.sip_tls_port),
        "sip_tls_cert": str(layout.sip_tls_cert),
        "sip_tls_key": str(layout.sip_tls_key),
        "sip_tls_method": SIP_TLS_METHOD,
    }
    return fill(template("transport-tls.pjsip.conf"), values, "transport-tls.pjsip.conf")


def has_browser_phones(config: Config) -> bool:
    """Any operator on the browser phone: the WebSocket transport and ICE are then on."""
    return any(op.webrtc for op in config.operators)


def _ws_transport(config: Config) -> str:
    if not has_browser_phones(config):
        return ""
    values = {"sip_host": config.asterisk.sip_host}
    return fill(template("transport-ws.pjsip.conf"), values, "transport-ws.pjsip.conf")


def values_for(config: Config, layout: InstanceLayout) -> dict[str, str]:
    ast = config.asterisk
    return {
        "etc_dir": str(layout.etc_dir),
        "module_dir": str(layout.module_dir),
        "lib_dir": str(layout.lib_dir),
        "spool_dir": str(layout.spool_dir),
        "run_dir": str(layout.run_dir),
        "log_dir": str(layout.log_dir),
        "cel_file": str(layout.cel_file),
        "http_host": ast.http_host,
        "http_port": str(ast.http_port),
        "ari_user": ast.ari_user,
        "ari_password": ast.ari_password,
        "ami_host": ast.ami_host,
        "ami_port": str(ast.ami_port),
        "ami_user": ast.ami_user,
        "ami_password": ast.ami_password,
        "ami_read": ",".join(ami.READ_CLASSES),
        "ami_event_filters": ami.event_filters(),
        "rtp_start": str(ast.rtp_start),
        "rtp_end": str(ast.rtp_end),
        "sip_host": ast.sip_host,
        "sip_port": str(ast.sip_port),
        "tls_transport": _tls_transport(config, layout),
        "ws_transport": _ws_transport(config),
        "ice_support": "yes" if has_browser_phones(config) else "no",
        "trunk_matches": "\n".join(f"match = {net}" for net in _trunk_networks(config)),
        "endpoint_identifier_order": "ip" if config.edge is not None else "username,ip",
        "systemname_option": f"systemname = {ast.systemname}" if ast.systemname else "",
        "operator_sections": _operator_sections(config),
        "emergency_number": ast.emergency_number,
        "app": ast.app,
        "fallback_timeout": str(int(config.acd.ring_timeout_seconds * 3)),
        "stranded_after": str(STRANDED_AFTER_SECONDS),
        "fallback_prompt": str(layout.prompts_dir / config.centre.language / "fallback"),
        "overflow_dial": config.acd.overflow_dial,
        "overflow_ring_seconds": str(int(config.acd.ring_timeout_seconds * 2)),
        "agi_host": config.agi.host,
        "agi_port": str(config.agi.port),
        "agi_secret": config.agi_secret,
        "fallback_members": "\n".join(
            f"member => PJSIP/{op.sip_user},0,{config_safe(op.name)}" for op in config.operators
        ),
    }


def loaded_modules(modules_conf: str) -> list[str]:
    """The modules a rendered modules.conf loads (its `load =` lines)."""
    names = []
    for line in modules_conf.splitlines():
        key, _, value = line.split(";", 1)[0].partition("=")
        if key.strip() == "load" and value.strip():
            names.append(value.strip())
    return names


def render(config: Config, layout: InstanceLayout) -> dict[str, str]:
    """Return file name -> rendered text for every file of the instance's etc folder."""
    values = values_for(config, layout)
    return {name: fill(template(name), values, name) for name in CONFIG_FILES}


def write(config: Config, layout: InstanceLayout, root: Path) -> Path:
    """Render into `root` + layout.etc_dir, with copies of the SIP TLS certificate and key;
    return that folder (as seen from outside the root)."""
    etc = root / layout.etc_dir.relative_to("/")
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in render(config, layout).items():
        target = etc / name
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)  # holds ARI/AMI/SIP secrets
        tmp.replace(target)
    ast = config.asterisk
    if ast.sip_tls_port:
        for source, inside in (
            (ast.sip_tls_cert, layout.sip_tls_cert),
            (ast.sip_tls_key, layout.sip_tls_key),
        ):
            target = root / inside.relative_to("/")
            tmp = target.with_suffix(".tmp")
            tmp.unlink(missing_ok=True)
            tmp.touch(mode=0o600)  # private before a byte of the key is in it
            shutil.copyfile(source, tmp)
            tmp.replace(target)
    return etc
