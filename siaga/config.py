"""Load and validate `siaga.toml`.

Every problem is reported as a `ConfigError` naming the file, the dotted key and the reason, so
that a regency's IT staff can fix a typo without reading Python. Unknown keys are errors: a
misspelt key silently ignored would leave a 112 centre running on a default nobody chose.

Secrets (ARI, AMI and SIP passwords, the FastAGI secret, the database password) may live in a
file of their own that `siaga.toml` names (`secrets_file`, mode 0600, written by `siaga
provision --secrets`); its values override the config's, and environment variables override
both. Production (`[centre] development = false`) refuses the shipped development secrets and
short ones (see `refuse_weak_secrets`), and a console over plain HTTP (`refuse_plain_http`;
the certificates themselves are read and checked by siaga/tls.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

from queues.config import (
    Category,
    OverflowCondition,
    OverflowRule,
    OverflowTarget,
    TargetKind,
)
from queues.errors import InvalidConfig

T = TypeVar("T")

STRATEGIES = ("longest_idle", "fewest_calls", "round_robin", "ring_all")
_CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_SIP_USER_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_SIP_USER_RULE = "must be 1-32 letters, digits, . _ -"
_DIGITS = set("0123456789*#")


# Where the shipped siaga.toml's development secrets start; production refuses them.
SHIPPED_SECRET_PREFIX = "siaga-dev-"
DEV_AGI_SECRET = "siaga-dev-agi-secret"
# The shortest secret production accepts: machines' secrets, and SIP passwords (typed into
# softphones, and the digest is all that stands between a stranger and an operator's phone).
MIN_SECRET_LENGTH = 16
MIN_SIP_PASSWORD_LENGTH = 12
# Goes into the dialplan's AGI URLs: nothing that would end the path or the argument.
_AGI_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class ConfigError(Exception):
    """A configuration problem: which file, which key, and why."""

    def __init__(self, path: Path | str, key: str, reason: str) -> None:
        self.path = str(path)
        self.key = key
        self.reason = reason
        super().__init__(f"{self.path}: {key}: {reason}" if key else f"{self.path}: {reason}")


@dataclass(frozen=True, slots=True)
class CentreConfig:
    name: str = "Siaga 112"
    language: str = "id"
    # Development mode: the console may create users with a known password. A config without
    # the key is production: the console then refuses to start with such a password.
    development: bool = False


@dataclass(frozen=True, slots=True)
class AsteriskNode:
    """One Asterisk node behind the edge ([[asterisk.nodes]]): its name is its `systemname`,
    so the ids of two nodes never collide."""

    name: str
    sip_host: str
    sip_port: int = 5060
    ari_url: str = ""  # "" = http://<sip_host>:8088


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """The Kamailio SIP edge ([edge], docs/ha.md): registrar of the operators' phones and
    dispatcher of 112 calls to the Asterisk nodes, which it probes with OPTIONS."""

    sip_host: str
    sip_port: int = 5060
    probe_interval_seconds: int = 2  # an OPTIONS to every node this often
    # No answer from a node this long: the call goes to the next node, the node out of the set.
    timeout_ms: int = 1000
    # JSON-RPC over HTTP (TCP) on sip_host, for the nodes only: the operators' registrations.
    rpc_port: int = 5062
    # Two (or more) edge machines sharing sip_host as a virtual address (keepalived, VRRP):
    # each one's own address. They copy the phones' registrations to each other (DMQ), and the
    # one holding sip_host does the routing. Empty: one edge, whose address is sip_host.
    hosts: tuple[str, ...] = ()
    virtual_router_id: int = 112  # VRRP's id of the pair, unique on their network


@dataclass(frozen=True, slots=True)
class HaConfig:
    """One active app and a standby ([ha], docs/ha.md): whoever holds a PostgreSQL advisory
    lock (`lock_key`) is active. The holder stops acting once its lock session has not
    answered a check for `lease_seconds`; a new holder waits `lease_seconds` plus a margin
    before acting, so the two never act at once."""

    role: str = "auto"  # the one role so far: wait for the lease, then be active
    lease_seconds: float = 2.0
    lock_key: int = 112112


@dataclass(frozen=True, slots=True)
class AsteriskConfig:
    embedded: bool = True
    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "siaga"
    ari_password: str = "siaga-dev-ari"
    app: str = "siaga"
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "siaga"
    ami_password: str = "siaga-dev-ami"
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_start: int = 10000
    rtp_end: int = 10999
    trunk_networks: tuple[str, ...] = ("127.0.0.0/8",)
    emergency_number: str = "112"
    # How a caller is rung back (abandoned calls), with {number} for the caller's number,
    # e.g. PJSIP/trunk/sip:{number}@carrier.example. "" = callbacks are off.
    callback_dial: str = ""
    # Where Asterisk writes its own record of every call (cel.jsonl): read by
    # the reconciliation. "" = the folder of the Asterisk `siaga run` or `siaga asterisk` starts.
    log_dir: str = ""
    # Where Asterisk writes the calls' recordings: "" = the folder of the Asterisk `siaga run`
    # or `siaga asterisk` starts.
    recordings_dir: str = ""
    # SIP over TLS for the operators' phones: 0 = off. The certificate and key are copied into
    # the instance's own folder (Asterisk runs chrooted and cannot reach them where they are).
    sip_tls_port: int = 0
    sip_tls_cert: str = ""
    sip_tls_key: str = ""
    # The operators' calls encrypted (SRTP, keys exchanged in the SDP over TLS): an operator's
    # phone offering plain RTP is refused. Needs sip_tls_port: keys sent over UDP protect nothing.
    srtp: bool = False
    # High availability ([edge] and [[asterisk.nodes]], docs/ha.md): the Asterisk nodes behind
    # the Kamailio edge, and the name the node being rendered puts in its ids (`systemname`).
    nodes: tuple[AsteriskNode, ...] = ()
    systemname: str = ""

    @property
    def http_host(self) -> str:
        return urlsplit(self.ari_url).hostname or "127.0.0.1"

    @property
    def http_port(self) -> int:
        return urlsplit(self.ari_url).port or 8088


def this_node(config: Config, name: str | None) -> AsteriskNode | None:
    """The node this machine is (`siaga run --node NAME`, or SIAGA_NODE): with
    [[asterisk.nodes]] every `siaga run` must say which, and only one of them; without, none."""
    names = [node.name for node in config.asterisk.nodes]
    if not names:
        if name:
            raise ConfigError(
                config.path, "asterisk.nodes", f"--node {name}: no [[asterisk.nodes]] here"
            )
        return None
    if not name:
        raise ConfigError(
            config.path,
            "asterisk.nodes",
            f"say which node this machine is: siaga run --node NAME (one of {', '.join(names)})",
        )
    for node in config.asterisk.nodes:
        if node.name == name:
            return node
    raise ConfigError(
        config.path, "asterisk.nodes", f"no node {name!r} (the nodes: {', '.join(names)})"
    )


def node_config(config: Config, node: AsteriskNode) -> Config:
    """`config` as node `node` renders and runs its Asterisk: its own SIP and ARI addresses
    and systemname; everything else (operators, dialplan, the edge) shared."""
    asterisk = dataclasses.replace(
        config.asterisk,
        sip_host=node.sip_host,
        sip_port=node.sip_port,
        ari_url=node.ari_url,
        systemname=node.name,
    )
    return dataclasses.replace(config, asterisk=asterisk)


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    embedded: bool = True
    url: str = "postgresql://siaga@127.0.0.1:5433/siaga"
    port: int = 5433


@dataclass(frozen=True, slots=True)
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The console's listener. With `tls_cert` and `tls_key` it serves HTTPS only;
    `behind_tls_proxy`: plain HTTP to a proxy that terminates TLS, the browser's side being
    HTTPS all the same (cookies `Secure`, HSTS)."""

    host: str = "127.0.0.1"
    port: int = 8112
    tls_cert: str = ""
    tls_key: str = ""
    behind_tls_proxy: bool = False

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert)

    @property
    def https(self) -> bool:
        """The browser reaches the console over HTTPS (served here or by the proxy)."""
        return self.tls or self.behind_tls_proxy

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ScreeningConfig:
    block_hours: float = 24.0  # how long `siaga block` blocks by default
    auto_block_pranks: int = 0  # block after this many prank verdicts in 24 h; 0 = never
    history_days: int = 30  # prank/silent verdicts this recent flag the number


@dataclass(frozen=True, slots=True)
class DiskConfig:
    """When the recordings' and the journal's file systems count as running low: free space
    below `min_free_percent` of the file system or below `min_free_mib`, whichever is more
    (0 turns a limit off). /healthz then says degraded; calls go on regardless."""

    min_free_percent: float = 5.0
    min_free_mib: float = 1024.0
    check_interval_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    """How many days a call's recording is kept after the call ended, by the category it ended
    in (`by_category`, else `retention_days`); 0 keeps it for ever. A recording under legal
    hold is kept whatever its age (stack/retention.py)."""

    retention_days: int = 0
    by_category: Mapping[str, int] = field(default_factory=dict)

    def days_for(self, category: str | None) -> int:
        if category is not None and category in self.by_category:
            return self.by_category[category]
        return self.retention_days


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """When the console raises an alarm on the board, the wallboard and the desk. An emergency
    category is one of priority `emergency_max_priority` or more urgent (1 is the most urgent);
    its calls raise an alarm once they wait past the category's `target_answer_seconds`."""

    emergency_max_priority: int = 2
    no_ready_after_seconds: float = 5.0  # calls waited this long while no operator was ready
    # Today's service level alarms only once this many calls were answered or abandoned: two
    # calls early in the morning say nothing about the shift.
    service_level_min_calls: int = 10
    sound: bool = True  # a beep in the browser with each new alarm


# -- the callback list (disposition and callback workflow)
@dataclass(frozen=True, slots=True)
class CallbacksConfig:
    """Which abandoned calls the desk's callback list offers: not a caller who hung up within
    `min_hangup_seconds` of arriving (a misdial, a pocket call), 0 = every one."""

    min_hangup_seconds: float = 2.0


# Reasons a person may choose. Dialled in this order of digits on the phone (*131 ... *139).
PAUSE_REASONS: Mapping[str, str] = {
    "1": "break",
    "2": "meal",
    "3": "prayer",
    "4": "training",
    "5": "meeting",
    "6": "admin",
    "7": "technical",
    "8": "briefing",
    "9": "other",
}
# Reasons the system gives itself: plain *13, a supervisor's pause, too many missed rings, an
# operator calling a caller back.
SYSTEM_PAUSE_REASONS = frozenset({"pause", "supervisor", "no_answer", "callback"})


@dataclass(frozen=True, slots=True)
class AcdSettings:
    strategy: str = "longest_idle"
    ring_timeout_seconds: float = 20.0
    max_consecutive_misses: int = 3
    retry_after_busy_seconds: float = 5.0
    announce_interval_seconds: float = 30.0
    # Operators count as logged in from the start (ready once their phone registers). With
    # false they log in with a feature code or the console.
    login_on_start: bool = True
    # While the app is away (fallback queue), nobody answering within the queue timeout sends
    # the call here: a partner centre's dial string, e.g. PJSIP/trunk/sip:112@partner. "" = none.
    overflow_dial: str = ""
    # Why an operator pauses: the digit N of the phone's *13N -> the reason's code, which the
    # console offers too and the records and reports keep.
    pause_reasons: Mapping[str, str] = field(default_factory=lambda: dict(PAUSE_REASONS))
    # The disposition rule: an operator owing a disposition this long gets no call until it is
    # given (the ACD core's disposition_block_after_seconds). 0 = off.
    disposition_block_after_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    id: str
    name: str
    sip_user: str
    sip_password: str
    skills: Mapping[str, int]
    # How the operator is rung: PJSIP/<sip_user> for a softphone, a Local channel for a
    # simulated operator (`siaga simulate`, benchmarks).
    dial: str = ""
    # The browser phone (WebRTC in the console's desk page) instead of a desk phone: the
    # endpoint PJSIP/<sip_user> then takes WebRTC only (supervisor/views/phone.py).
    webrtc: bool = False

    @property
    def dial_string(self) -> str:
        return self.dial or f"PJSIP/{self.sip_user}"


@dataclass(frozen=True, slots=True)
class MenuConfig:
    name: str
    prompt: str
    # digit -> category code, or "menu:<name>" for a sub-menu
    choices: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class IvrConfig:
    timeout_seconds: float
    no_input: str
    invalid_retries: int
    language_digit: str
    menus: Mapping[str, MenuConfig]
    # From the call's arrival: a caller who has chosen nothing by then is queued as `no_input`
    # (flagged `unclassified`) while the menu goes on, so the menu never keeps a caller from
    # a free operator (a free operator's phone rings within this, plus a fraction of a second).
    queue_after_seconds: float = 6.0


@dataclass(frozen=True, slots=True)
class AgencyConfig:
    code: str
    name: str
    digit: str
    dial: str


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    centre: CentreConfig
    asterisk: AsteriskConfig
    database: DatabaseConfig
    web: WebConfig
    agi: ListenConfig
    acd: AcdSettings
    operators: tuple[OperatorConfig, ...]
    categories: tuple[Category, ...]  # the ACD's own type: one copy of each category
    ivr: IvrConfig
    agencies: tuple[AgencyConfig, ...] = field(default=())
    screening: ScreeningConfig = field(default=ScreeningConfig())
    # Asterisk names it in every FastAGI URL (agi://host:port/<secret>/screen), so the server
    # knows the one calling is our Asterisk; `[agi] secret` in siaga.toml or the secrets file.
    agi_secret: str = DEV_AGI_SECRET
    # Where each secret came from: "asterisk.ari_password" -> (file or "environment", key).
    secret_origins: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    overflow: tuple[OverflowRule, ...] = field(default=())  # the ACD's own rules, [[overflow]]
    disk: DiskConfig = field(default=DiskConfig())
    recordings: RecordingsConfig = field(default=RecordingsConfig())
    alerts: AlertsConfig = field(default=AlertsConfig())
    callbacks: CallbacksConfig = field(default=CallbacksConfig())  # the callback list's rules
    edge: EdgeConfig | None = None  # None: the single box, no Kamailio (the default)
    ha: HaConfig | None = None  # None: the single box, no lease (the default)

    def category(self, code: str) -> Category:
        for category in self.categories:
            if category.code == code:
                return category
        raise KeyError(code)


class _Table:
    """A TOML table being read: typed getters, and a check that no key was left unread."""

    def __init__(self, path: Path, prefix: str, data: Any) -> None:
        self.path = path
        self.prefix = prefix
        if not isinstance(data, dict):
            raise ConfigError(path, prefix, f"must be a table, not {_type_name(data)}")
        self.data: dict[str, Any] = data
        self.read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), reason)

    def get(self, name: str, kind: type[T], default: T | None = None) -> T:
        self.read.add(name)
        if name not in self.data:
            if default is None:
                raise self.error(name, "missing (required)")
            return default
        value = self.data[name]
        # bool is an int in Python; a port written as `true` is a mistake, not 1.
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(
                name, f"must be {_type_name_of(kind)}, not {_type_name(value)} ({value!r})"
            )
        return value

    def check(self, name: str, ok: bool, reason: str) -> None:
        if not ok:
            raise self.error(name, reason)

    def table(self, name: str, *, required: bool = False) -> _Table:
        self.read.add(name)
        if name not in self.data and not required:
            return _Table(self.path, self.key(name), {})
        if name not in self.data:
            raise self.error(name, "missing (required table)")
        return _Table(self.path, self.key(name), self.data[name])

    def array_of_tables(self, name: str) -> list[_Table]:
        self.read.add(name)
        items = self.data.get(name, [])
        if not isinstance(items, list):
            raise self.error(name, f"must be an array of tables ([[{name}]])")
        return [_Table(self.path, f"{self.key(name)}[{i}]", item) for i, item in enumerate(items)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.read)
        if unknown:
            name = unknown[0]
            hint = difflib.get_close_matches(name, sorted(self.read), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise self.error(name, f"unknown key{suggestion}")


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _type_name_of(kind: type) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)


def _port(table: _Table, name: str, default: int) -> int:
    port = table.get(name, int, default)
    table.check(name, 1 <= port <= 65535, f"must be a port between 1 and 65535, not {port}")
    return port


def _positive(table: _Table, name: str, default: float) -> float:
    value = table.get(name, float, default)
    table.check(name, math.isfinite(value) and value > 0, f"must be greater than 0, not {value}")
    return value


def _at_least_zero(table: _Table, name: str, default: float) -> float:
    value = table.get(name, float, default)
    table.check(name, math.isfinite(value) and value >= 0, f"must be 0 or more, not {value}")
    return value


def _env(name: str, value: str) -> str:
    return os.environ.get(name, value)


def _centre(t: _Table) -> CentreConfig:
    language = t.get("language", str, "id")
    t.check("language", language in ("id", "en"), f"must be 'id' or 'en', not {language!r}")
    result = CentreConfig(
        name=t.get("name", str, "Siaga 112"),
        language=language,
        development=t.get("development", bool, False),
    )
    t.finish()
    return result


def _asterisk(t: _Table) -> AsteriskConfig:
    d = AsteriskConfig()
    ari_url = t.get("ari_url", str, d.ari_url)
    parts = urlsplit(ari_url)
    t.check(
        "ari_url",
        parts.scheme in ("http", "https") and bool(parts.hostname),
        f"must be an http(s) URL like http://127.0.0.1:8088, not {ari_url!r}",
    )
    t.check("ari_url", not parts.username, "must not hold credentials (use ari_user/ari_password)")
    networks = t.get("trunk_networks", list, list(d.trunk_networks))
    for i, net in enumerate(networks):
        try:
            ipaddress.ip_network(net)
        except (TypeError, ValueError):
            raise t.error(f"trunk_networks[{i}]", f"not an IP network: {net!r}") from None
    number = t.get("emergency_number", str, d.emergency_number)
    t.check("emergency_number", number.isdigit(), f"must be digits, not {number!r}")
    rtp_start = _port(t, "rtp_start", d.rtp_start)
    rtp_end = _port(t, "rtp_end", d.rtp_end)
    t.check("rtp_end", rtp_end > rtp_start, "must be greater than rtp_start")
    result = AsteriskConfig(
        embedded=t.get("embedded", bool, d.embedded),
        ari_url=ari_url.rstrip("/"),
        ari_user=t.get("ari_user", str, d.ari_user),
        ari_password=_env("SIAGA_ARI_PASSWORD", t.get("ari_password", str, d.ari_password)),
        app=t.get("app", str, d.app),
        ami_host=t.get("ami_host", str, d.ami_host),
        ami_port=_port(t, "ami_port", d.ami_port),
        ami_user=t.get("ami_user", str, d.ami_user),
        ami_password=_env("SIAGA_AMI_PASSWORD", t.get("ami_password", str, d.ami_password)),
        sip_host=t.get("sip_host", str, d.sip_host),
        sip_port=_port(t, "sip_port", d.sip_port),
        rtp_start=rtp_start,
        rtp_end=rtp_end,
        trunk_networks=tuple(networks),
        emergency_number=number,
        callback_dial=t.get("callback_dial", str, d.callback_dial),
        log_dir=t.get("log_dir", str, d.log_dir),
        recordings_dir=t.get("recordings_dir", str, d.recordings_dir),
        nodes=_nodes(t.array_of_tables("nodes")),
        **_sip_tls(t),
    )
    t.check(
        "callback_dial",
        not result.callback_dial or "{number}" in result.callback_dial,
        "must contain {number}, where the caller's number goes",
    )
    for key in ("log_dir", "recordings_dir"):
        value = getattr(result, key)
        t.check(key, not value or value.startswith("/"), "must be an absolute path")
    t.finish()
    return result


_SYSTEMNAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _nodes(tables: list[_Table]) -> tuple[AsteriskNode, ...]:
    nodes = []
    for t in tables:
        name = t.get("name", str)
        # The node's systemname: it starts every channel's uniqueid, so no separators in it.
        t.check(
            "name",
            bool(_SYSTEMNAME_RE.match(name)),
            f"must be letters, digits, - or _, not {name!r}",
        )
        sip_host = t.get("sip_host", str)
        _ip_address(t, "sip_host", sip_host)
        ari_url = t.get("ari_url", str, f"http://{sip_host}:8088")
        parts = urlsplit(ari_url)
        t.check(
            "ari_url",
            parts.scheme in ("http", "https") and bool(parts.hostname),
            f"must be an http(s) URL, not {ari_url!r}",
        )
        nodes.append(
            AsteriskNode(
                name=name,
                sip_host=sip_host,
                sip_port=_port(t, "sip_port", 5060),
                ari_url=ari_url.rstrip("/"),
            )
        )
        t.finish()
    _unique(nodes, tables, lambda n: n.name, "name")
    _unique(nodes, tables, lambda n: f"{n.sip_host}:{n.sip_port}", "sip_host")
    return tuple(nodes)


def _ip_address(t: _Table, name: str, value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise t.error(name, f"must be an IP address, not {value!r}") from None


def _edge(t: _Table, nodes: tuple[AsteriskNode, ...]) -> EdgeConfig:
    sip_host = t.get("sip_host", str)
    _ip_address(t, "sip_host", sip_host)
    interval = t.get("probe_interval_seconds", int, 2)
    t.check("probe_interval_seconds", interval >= 1, f"must be 1 or more, not {interval}")
    timeout = t.get("timeout_ms", int, 1000)
    t.check("timeout_ms", 100 <= timeout <= 30000, f"must be 100 to 30000, not {timeout}")
    t.check("sip_host", bool(nodes), "an [edge] needs at least one [[asterisk.nodes]]")
    sip_port = _port(t, "sip_port", 5060)
    rpc_port = _port(t, "rpc_port", 5062)
    t.check("rpc_port", rpc_port != sip_port, f"must differ from sip_port ({sip_port})")
    hosts = t.get("hosts", list, [])
    for i, host in enumerate(hosts):
        if not isinstance(host, str):
            raise t.error(f"hosts[{i}]", f"must be a string, not {_type_name(host)}")
        _ip_address(t, f"hosts[{i}]", host)
    t.check("hosts", len(hosts) != 1, "one edge is sip_host alone: list two or more, or none")
    t.check("hosts", len(set(hosts)) == len(hosts), "an address is listed twice")
    t.check("hosts", sip_host not in hosts, f"sip_host ({sip_host}) is the shared address")
    router_id = t.get("virtual_router_id", int, 112)
    t.check("virtual_router_id", 1 <= router_id <= 255, f"must be 1 to 255, not {router_id}")
    result = EdgeConfig(
        sip_host=sip_host,
        sip_port=sip_port,
        probe_interval_seconds=interval,
        timeout_ms=timeout,
        rpc_port=rpc_port,
        hosts=tuple(hosts),
        virtual_router_id=router_id,
    )
    t.finish()
    return result


def _ha(t: _Table, asterisk: AsteriskConfig, database: DatabaseConfig) -> HaConfig:
    d = HaConfig()
    role = t.get("role", str, d.role)
    t.check("role", role == "auto", f'must be "auto", not {role!r}')
    lease = _positive(t, "lease_seconds", d.lease_seconds)
    t.check("lease_seconds", 0.5 <= lease <= 60, f"must be 0.5 to 60, not {lease}")
    key = t.get("lock_key", int, d.lock_key)
    t.check("lock_key", -(2**63) <= key < 2**63, f"must fit in 64 bits, not {key}")
    # The apps share the database and the Asterisk: neither may be the child of one of them.
    t.check("role", not database.embedded, "needs [database] embedded = false (a shared one)")
    t.check("role", not asterisk.embedded, "needs [asterisk] embedded = false (a shared one)")
    result = HaConfig(role=role, lease_seconds=lease, lock_key=key)
    t.finish()
    return result


def _sip_tls(t: _Table) -> dict[str, Any]:
    """The SIP TLS keys of [asterisk]: the port (0 = off), certificate, key and SRTP."""
    port = t.get("sip_tls_port", int, 0)
    t.check("sip_tls_port", 0 <= port <= 65535, f"must be 0 (off) or a port, not {port}")
    cert, key = _cert_and_key(t, "sip_tls_cert", "sip_tls_key")
    if port:
        t.check("sip_tls_cert", bool(cert), "missing: sip_tls_port needs a certificate")
    srtp = t.get("srtp", bool, False)
    t.check("srtp", not srtp or port != 0, "needs sip_tls_port: SRTP keys sent over UDP are open")
    return {"sip_tls_port": port, "sip_tls_cert": cert, "sip_tls_key": key, "srtp": srtp}


def _cert_and_key(t: _Table, cert_name: str, key_name: str) -> tuple[str, str]:
    """A certificate and its key: both or neither, relative paths from siaga.toml's folder.
    Whether the files can be read and belong together: siaga/tls.py."""
    cert = t.get(cert_name, str, "")
    key = t.get(key_name, str, "")
    t.check(key_name, bool(key) or not cert, f"missing: {cert_name} needs its private key")
    t.check(cert_name, bool(cert) or not key, f"missing: {key_name} needs its certificate")
    return _beside(t.path, cert), _beside(t.path, key)


def _beside(config_path: Path, name: str) -> str:
    return str(config_path.parent / name) if name else ""


def _database(t: _Table) -> DatabaseConfig:
    d = DatabaseConfig()
    url = _env("SIAGA_DATABASE_URL", t.get("url", str, d.url))
    t.check(
        "url",
        urlsplit(url).scheme in ("postgresql", "postgres"),
        "must be a postgresql:// URL",
    )
    hosts = database_hosts(url)
    t.check("url", all(hosts), "an empty host in the host list")
    t.check("url", all(_host_port_ok(host) for host in hosts), "a host's port must be 1-65535")
    embedded = t.get("embedded", bool, d.embedded)
    if len(hosts) > 1:
        # Without it libpq (and asyncpg) would take the first host that answers, a read-only
        # standby as readily as the primary, and every record commit there would fail.
        attrs = parse_qs(urlsplit(url).query).get("target_session_attrs", [""])[-1]
        t.check(
            "url",
            attrs in ("read-write", "primary"),
            "names several hosts (a primary and its standby): add"
            " ?target_session_attrs=read-write so the app writes to whichever is the primary",
        )
        t.check(
            "embedded",
            not embedded,
            "must be false when url names several hosts (a replicated PostgreSQL, docs/ha.md)",
        )
    password = _env("SIAGA_DATABASE_PASSWORD", t.get("password", str, ""))
    if password:
        url = with_password(url, password)
    result = DatabaseConfig(embedded=embedded, url=url, port=_port(t, "port", d.port))
    t.finish()
    return result


def database_hosts(url: str) -> list[str]:
    """The `host[:port]` items of a postgresql:// URL: one, or several (libpq's multi-host URL,
    tried in order)."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    return netloc.split(",")


def host_dsns(url: str) -> list[str]:
    """One single-host DSN per host of `url`, in order (with the same user, password, database
    and options): a client that must give each host its own connect timeout tries them in
    turn, as libpq does and asyncpg does not (its timeout covers the whole list, so a host that
    swallows packets would take it all)."""
    hosts = database_hosts(url)
    if len(hosts) == 1:
        return [url]  # as it is: a URL without a host (a unix socket) must keep its form
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    return [urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}")) for host in hosts]


def _host_port_ok(host: str) -> bool:
    _, colon, port = host.rpartition(":")
    if not colon or port.endswith("]"):  # no port, or a bare [IPv6] address
        return True
    return port.isdigit() and 1 <= int(port) <= 65535


def with_password(url: str, password: str) -> str:
    """`url` with `password` for its user (a password already in `url` is replaced)."""
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def url_password(url: str) -> str:
    password = urlsplit(url).password
    return unquote(password) if password else ""


def redacted_url(url: str) -> str:
    """`url` fit for a log line or a banner: its password replaced by ***."""
    return with_password(url, "***").replace("%2A%2A%2A", "***") if url_password(url) else url


def _listen(t: _Table, default_port: int) -> ListenConfig:
    result = ListenConfig(host=t.get("host", str, "127.0.0.1"), port=_port(t, "port", default_port))
    t.finish()
    return result


def _web(t: _Table) -> WebConfig:
    d = WebConfig()
    cert, key = _cert_and_key(t, "tls_cert", "tls_key")
    result = WebConfig(
        host=t.get("host", str, d.host),
        port=_port(t, "port", d.port),
        tls_cert=cert,
        tls_key=key,
        behind_tls_proxy=t.get("behind_tls_proxy", bool, d.behind_tls_proxy),
    )
    t.check(
        "behind_tls_proxy",
        not (result.tls and result.behind_tls_proxy),
        "give either tls_cert/tls_key (HTTPS here) or behind_tls_proxy (HTTPS at a proxy)",
    )
    t.finish()
    return result


def _agi(t: _Table) -> tuple[ListenConfig, str]:
    secret = _env("SIAGA_AGI_SECRET", t.get("secret", str, DEV_AGI_SECRET))
    t.check("secret", _AGI_SECRET_RE.match(secret) is not None, "must be 1-128 of A-Z a-z 0-9 - _")
    return _listen(t, 4573), secret


def _acd(t: _Table) -> AcdSettings:
    d = AcdSettings()
    t.check(
        "escalation_after_seconds",
        "escalation_after_seconds" not in t.data,
        "replaced by secondary_after_seconds in each [[categories]]: how long a call waits "
        "before operators with its skill at level 2 may take it (0 = at once)",
    )
    strategy = t.get("strategy", str, d.strategy)
    t.check("strategy", strategy in STRATEGIES, f"must be one of {', '.join(STRATEGIES)}")
    misses = t.get("max_consecutive_misses", int, d.max_consecutive_misses)
    t.check("max_consecutive_misses", misses >= 1, "must be at least 1")
    result = AcdSettings(
        strategy=strategy,
        ring_timeout_seconds=_positive(t, "ring_timeout_seconds", d.ring_timeout_seconds),
        max_consecutive_misses=misses,
        retry_after_busy_seconds=_positive(
            t, "retry_after_busy_seconds", d.retry_after_busy_seconds
        ),
        announce_interval_seconds=_positive(
            t, "announce_interval_seconds", d.announce_interval_seconds
        ),
        login_on_start=t.get("login_on_start", bool, d.login_on_start),
        overflow_dial=t.get("overflow_dial", str, d.overflow_dial),
        pause_reasons=_pause_reasons(t.table("pause_reasons"), d.pause_reasons),
        disposition_block_after_seconds=_at_least_zero(
            t, "disposition_block_after_seconds", d.disposition_block_after_seconds
        ),
    )
    t.finish()
    return result


def _pause_reasons(t: _Table, default: Mapping[str, str]) -> Mapping[str, str]:
    if not t.data:
        return default
    reasons: dict[str, str] = {}
    for digit in sorted(t.data):
        code = t.get(digit, str)
        t.check(digit, len(digit) == 1 and digit in "0123456789", "must be one digit 0-9")
        t.check(digit, _CODE_RE.match(code) is not None, "must be lower-case letters, digits, _")
        t.check(digit, code not in SYSTEM_PAUSE_REASONS, f"{code!r} is the system's own reason")
        t.check(digit, code not in reasons.values(), f"{code!r} has another digit already")
        reasons[digit] = code
    t.finish()
    return reasons


def _screening(t: _Table) -> ScreeningConfig:
    d = ScreeningConfig()
    auto = t.get("auto_block_pranks", int, d.auto_block_pranks)
    t.check("auto_block_pranks", auto >= 0, "must be 0 (off) or more")
    days = t.get("history_days", int, d.history_days)
    t.check("history_days", 1 <= days <= 366, "must be between 1 and 366")
    hours = _positive(t, "block_hours", d.block_hours)
    t.check("block_hours", hours <= 24 * 366, "must be at most 8784 (a year)")
    result = ScreeningConfig(block_hours=hours, auto_block_pranks=auto, history_days=days)
    t.finish()
    return result


def _disk(t: _Table) -> DiskConfig:
    d = DiskConfig()
    percent = _at_least_zero(t, "min_free_percent", d.min_free_percent)
    t.check("min_free_percent", percent < 100, f"must be below 100, not {percent}")
    result = DiskConfig(
        min_free_percent=percent,
        min_free_mib=_at_least_zero(t, "min_free_mib", d.min_free_mib),
        check_interval_seconds=_positive(t, "check_interval_seconds", d.check_interval_seconds),
    )
    t.finish()
    return result


def _alerts(t: _Table) -> AlertsConfig:
    d = AlertsConfig()
    priority = t.get("emergency_max_priority", int, d.emergency_max_priority)
    t.check("emergency_max_priority", priority >= 0, f"must be 0 or more, not {priority}")
    min_calls = t.get("service_level_min_calls", int, d.service_level_min_calls)
    t.check("service_level_min_calls", min_calls >= 1, f"must be 1 or more, not {min_calls}")
    result = AlertsConfig(
        emergency_max_priority=priority,
        no_ready_after_seconds=_at_least_zero(
            t, "no_ready_after_seconds", d.no_ready_after_seconds
        ),
        service_level_min_calls=min_calls,
        sound=t.get("sound", bool, d.sound),
    )
    t.finish()
    return result


def _callbacks(t: _Table) -> CallbacksConfig:
    d = CallbacksConfig()
    result = CallbacksConfig(
        min_hangup_seconds=_at_least_zero(t, "min_hangup_seconds", d.min_hangup_seconds),
    )
    t.finish()
    return result


def _recordings(t: _Table, categories: set[str]) -> RecordingsConfig:
    days = t.get("retention_days", int, 0)
    t.check("retention_days", days >= 0, f"must be 0 (for ever) or more, not {days}")
    per = t.table("by_category")
    by_category: dict[str, int] = {}
    for code in list(per.data):
        per.check(code, code in categories, f"unknown category (known: {sorted(categories)})")
        value = per.get(code, int)
        per.check(code, value >= 0, f"must be 0 (for ever) or more, not {value}")
        by_category[code] = value
    per.finish()
    t.finish()
    return RecordingsConfig(days, by_category)


def _operator(t: _Table) -> OperatorConfig:
    op_id = t.get("id", str)
    t.check("id", _SIP_USER_RE.match(op_id) is not None, _SIP_USER_RULE)
    sip_user = t.get("sip_user", str, op_id)
    t.check("sip_user", _SIP_USER_RE.match(sip_user) is not None, _SIP_USER_RULE)
    password = t.get("sip_password", str)
    password = _env(operator_password_env(op_id), password)
    t.check("sip_password", len(password) >= 8, "must be at least 8 characters")
    skills_table = t.table("skills", required=True)
    skills: dict[str, int] = {}
    for skill in list(skills_table.data):
        level = skills_table.get(skill, int)
        skills_table.check(skill, level in (1, 2), "must be 1 (primary) or 2 (secondary)")
        skills[skill] = level
    t.check("skills", bool(skills), "an operator needs at least one skill")
    result = OperatorConfig(
        id=op_id,
        name=t.get("name", str, op_id),
        sip_user=sip_user,
        sip_password=password,
        skills=skills,
        dial=t.get("dial", str, ""),
        webrtc=t.get("webrtc", bool, False),
    )
    t.check(
        "dial",
        not result.dial or "/" in result.dial,
        "must be a dial string like PJSIP/1001 or Local/answer@siaga-test",
    )
    # The browser phone: the ACD rings PJSIP/<sip_user>, which the page registers.
    t.check(
        "webrtc",
        not (result.webrtc and result.dial),
        "a browser phone is rung at PJSIP/<sip_user>: remove `dial` or set webrtc = false",
    )
    t.finish()
    return result


def _category(t: _Table) -> Category:
    code = t.get("code", str)
    t.check("code", _CODE_RE.match(code) is not None, "must be lower-case letters, digits, _")
    priority = t.get("priority", int)
    t.check("priority", 0 <= priority <= 99, "must be between 0 (most urgent) and 99")
    skill = t.get("skill", str, code)
    t.check("skill", bool(skill), "must not be empty")
    result = Category(
        code=code,
        label_id=t.get("label_id", str),
        label_en=t.get("label_en", str),
        priority=priority,
        skill=skill,
        target_answer_seconds=_positive(t, "target_answer_seconds", 10.0),
        wrap_up_seconds=_at_least_zero(t, "wrap_up_seconds", 30.0),
        secondary_after_seconds=_at_least_zero(t, "secondary_after_seconds", 0.0),
    )
    t.finish()
    return result


def _ivr(t: _Table, categories: set[str]) -> IvrConfig:
    menus_table = t.table("menus", required=True)
    menus: dict[str, MenuConfig] = {}
    for name in list(menus_table.data):
        m = menus_table.table(name)
        choices_table = m.table("choices", required=True)
        choices: dict[str, str] = {}
        for digit in list(choices_table.data):
            target = choices_table.get(digit, str)
            choices_table.check(digit, len(digit) == 1 and digit in _DIGITS, "must be one digit")
            choices[digit] = target
        menus[name] = MenuConfig(name=name, prompt=m.get("prompt", str, name), choices=choices)
        m.finish()
    menus_table.check("main", "main" in menus, "an [ivr.menus.main] menu is required")
    for menu in menus.values():
        for digit, target in menu.choices.items():
            where = f"menus.{menu.name}.choices.{digit}"
            if target.startswith("menu:"):
                t.check(where, target[5:] in menus, f"no menu named {target[5:]!r}")
            else:
                t.check(where, target in categories, f"no category named {target!r}")
    no_input = t.get("no_input", str, "general")
    t.check("no_input", no_input in categories, f"no category named {no_input!r}")
    language_digit = t.get("language_digit", str, "9")
    t.check("language_digit", language_digit in _DIGITS, "must be one digit")
    t.check(
        "language_digit",
        language_digit not in menus["main"].choices,
        f"digit {language_digit} is already a choice of the main menu",
    )
    retries = t.get("invalid_retries", int, 1)
    t.check("invalid_retries", 0 <= retries <= 3, "must be between 0 and 3")
    result = IvrConfig(
        timeout_seconds=_positive(t, "timeout_seconds", 5.0),
        no_input=no_input,
        invalid_retries=retries,
        language_digit=language_digit,
        menus=menus,
        queue_after_seconds=_positive(t, "queue_after_seconds", 6.0),
    )
    t.finish()
    return result


def _agency(t: _Table) -> AgencyConfig:
    digit = t.get("digit", str)
    t.check("digit", len(digit) == 1 and digit.isdigit(), "must be one digit")
    result = AgencyConfig(
        code=t.get("code", str), name=t.get("name", str), digit=digit, dial=t.get("dial", str)
    )
    t.finish()
    return result


_CONDITIONS = ", ".join(OverflowCondition)


def _overflow_rule(t: _Table, categories: set[str]) -> OverflowRule:
    """One `[[overflow]]`: when a category's calls go elsewhere (the ACD's conditions, see
    queues/config.py), to another category or to a partner centre's dial string."""
    category = t.get("category", str)
    t.check("category", category in categories, f"no category named {category!r}")
    condition = t.get("condition", str)
    t.check("condition", condition in set(OverflowCondition), f"must be one of {_CONDITIONS}")
    if condition == OverflowCondition.NO_OPERATOR:
        t.check("threshold", "threshold" not in t.data, "no_operator takes no threshold")
        threshold = 0.0
    else:
        t.check("threshold", "threshold" in t.data, f"missing (required for {condition})")
        threshold = _positive(t, "threshold", 0.0)
    to_category = t.get("to_category", str, "")
    dial = t.get("dial", str, "")
    t.check(
        "to_category" if to_category else "dial",
        bool(to_category) != bool(dial),
        "give exactly one target: to_category (another category) or dial (a partner "
        "centre's dial string, e.g. PJSIP/112@partner)",
    )
    if to_category:
        t.check("to_category", to_category in categories, f"no category named {to_category!r}")
        t.check("to_category", to_category != category, "a category cannot overflow to itself")
        target = OverflowTarget(TargetKind.CATEGORY, to_category)
    else:
        t.check("dial", "/" in dial, "must be a dial string like PJSIP/112@partner")
        target = OverflowTarget(TargetKind.NUMBER, dial)
    try:
        rule = OverflowRule(category, OverflowCondition(condition), target, threshold)
    except InvalidConfig as exc:
        raise ConfigError(t.path, t.prefix, str(exc)) from None
    t.finish()
    return rule


def _overflow_rules(tables: list[_Table], categories: set[str]) -> tuple[OverflowRule, ...]:
    rules = [_overflow_rule(t, categories) for t in tables]
    seen: set[tuple[str, str]] = set()
    for rule, table in zip(rules, tables, strict=True):
        key = (rule.category, rule.condition.value)
        table.check("condition", key not in seen, f"a second {key[1]} rule for {key[0]!r}")
        seen.add(key)
    return tuple(rules)


def _unique(items: list[T], tables: list[_Table], key: Callable[[T], str], name: str) -> None:
    seen: set[str] = set()
    for item, table in zip(items, tables, strict=True):
        value = key(item)
        table.check(name, value not in seen, f"duplicate {name} {value!r}")
        seen.add(value)


def parse_config(data: Mapping[str, Any], path: Path | str = "<config>") -> Config:
    """Validate already-parsed TOML data."""
    path = Path(path)
    root = _Table(path, "", dict(data))
    category_tables = root.array_of_tables("categories")
    categories = [_category(t) for t in category_tables]
    _unique(categories, category_tables, lambda c: c.code, "code")
    root.check("categories", bool(categories), "at least one [[categories]] is required")
    operator_tables = root.array_of_tables("operators")
    operators = [_operator(t) for t in operator_tables]
    _unique(operators, operator_tables, lambda o: o.id, "id")
    _unique(operators, operator_tables, lambda o: o.sip_user, "sip_user")
    agency_tables = root.array_of_tables("agencies")
    agencies = [_agency(t) for t in agency_tables]
    _unique(agencies, agency_tables, lambda a: a.digit, "digit")
    # Read by load_config, which merges the secrets file into `data` before this.
    root.get("secrets_file", str, "")
    agi, agi_secret = _agi(root.table("agi"))
    asterisk = _asterisk(root.table("asterisk"))
    edge = _edge(root.table("edge"), asterisk.nodes) if "edge" in root.data else None
    root.check(
        "asterisk",
        edge is not None or not asterisk.nodes,
        "[[asterisk.nodes]] need an [edge] in front of them",
    )
    database = _database(root.table("database"))
    ha = _ha(root.table("ha"), asterisk, database) if "ha" in root.data else None
    config = Config(
        path=path,
        centre=_centre(root.table("centre")),
        asterisk=asterisk,
        database=database,
        web=_web(root.table("web")),
        agi=agi,
        acd=_acd(root.table("acd")),
        operators=tuple(operators),
        categories=tuple(categories),
        ivr=_ivr(root.table("ivr", required=True), {c.code for c in categories}),
        agencies=tuple(agencies),
        screening=_screening(root.table("screening")),
        agi_secret=agi_secret,
        overflow=_overflow_rules(root.array_of_tables("overflow"), {c.code for c in categories}),
        disk=_disk(root.table("disk")),
        recordings=_recordings(root.table("recordings"), {c.code for c in categories}),
        alerts=_alerts(root.table("alerts")),
        callbacks=_callbacks(root.table("callbacks")),
        edge=edge,
        ha=ha,
    )
    root.finish()
    return config


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None


def load_config(path: Path | str, *, with_secrets_file: bool = True) -> Config:
    """Read and validate a `siaga.toml` and the secrets file it names; raise ConfigError naming
    file, key and reason. `with_secrets_file=False` reads siaga.toml alone (for `siaga
    provision --secrets`, which writes that file)."""
    path = Path(path)
    data = read_toml(path)
    secrets_path = secrets_file_of(path, data)
    origins: dict[str, tuple[str, str]] = {}
    if secrets_path is not None and with_secrets_file:
        origins = _merge_secrets(data, secrets_path)
    config = parse_config(data, path)
    return dataclasses.replace(config, secret_origins=_with_environment(config, origins))


# -- secrets ---------------------------------------------------------------------------------

# The secrets file's keys: [table] -> key -> environment variable that overrides it.
_SECRET_KEYS: Mapping[str, Mapping[str, str]] = {
    "asterisk": {"ari_password": "SIAGA_ARI_PASSWORD", "ami_password": "SIAGA_AMI_PASSWORD"},
    "agi": {"secret": "SIAGA_AGI_SECRET"},
    "database": {"password": "SIAGA_DATABASE_PASSWORD"},
}


def operator_password_env(operator_id: str) -> str:
    return f"SIAGA_OPERATOR_{operator_id.upper().replace('-', '_')}_PASSWORD"


def secrets_file_of(config_path: Path, data: Mapping[str, Any]) -> Path | None:
    """The secrets file siaga.toml names (relative to siaga.toml's folder), or None."""
    name = data.get("secrets_file", "")
    if not isinstance(name, str):
        raise ConfigError(config_path, "secrets_file", "must be a string (a file path)")
    if not name:
        return None
    return config_path.parent / name


def read_secrets_file(path: Path) -> dict[str, Any]:
    """The secrets file's TOML; refused unless only its owner may read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(path, "", "missing: `siaga provision --secrets` writes it") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            path, "", f"others may read it (mode {stat.S_IMODE(mode):o}): chmod 600 {path}"
        )
    return read_toml(path)


def _merge_secrets(data: dict[str, Any], path: Path) -> dict[str, tuple[str, str]]:
    """Put the secrets file's values into siaga.toml's `data`; return where each came from."""
    secrets = _Table(path, "", read_secrets_file(path))
    origins: dict[str, tuple[str, str]] = {}
    for table_name, keys in _SECRET_KEYS.items():
        table = secrets.table(table_name)
        table.read.update(keys)  # known, so that a misspelt one gets a suggestion
        for key in keys:
            if key in table.data:
                data.setdefault(table_name, {})[key] = table.get(key, str)
                origins[f"{table_name}.{key}"] = (str(path), table.key(key))
        table.finish()
    operators = secrets.table("operators")
    by_id = {op.get("id"): op for op in data.get("operators", []) if isinstance(op, dict)}
    for op_id in list(operators.data):
        entry = operators.table(op_id)
        operators.check(op_id, op_id in by_id, "no [[operators]] with this id in siaga.toml")
        by_id[op_id]["sip_password"] = entry.get("sip_password", str)
        origins[f"operators.{op_id}.sip_password"] = (str(path), entry.key("sip_password"))
        entry.finish()
    secrets.finish()
    return origins


def _with_environment(
    config: Config, origins: dict[str, tuple[str, str]]
) -> dict[str, tuple[str, str]]:
    result = dict(origins)
    for table_name, keys in _SECRET_KEYS.items():
        for key, env in keys.items():
            if env in os.environ:
                result[f"{table_name}.{key}"] = ("environment", env)
    if "SIAGA_DATABASE_URL" in os.environ and "SIAGA_DATABASE_PASSWORD" not in os.environ:
        result["database.password"] = ("environment", "SIAGA_DATABASE_URL")
    for op in config.operators:
        env = operator_password_env(op.id)
        if env in os.environ:
            result[f"operators.{op.id}.sip_password"] = ("environment", env)
    return result


def secrets_of(config: Config) -> list[tuple[str, str, int]]:
    """Every secret of `config`: (name, value, shortest length production accepts). The
    embedded database's password is generated with its cluster and is not among them unless
    the URL names one."""
    found = [
        ("asterisk.ari_password", config.asterisk.ari_password, MIN_SECRET_LENGTH),
        ("asterisk.ami_password", config.asterisk.ami_password, MIN_SECRET_LENGTH),
        ("agi.secret", config.agi_secret, MIN_SECRET_LENGTH),
    ]
    password = url_password(config.database.url)
    if password or not config.database.embedded:
        found.append(("database.password", password, MIN_SECRET_LENGTH))
    found += [
        (f"operators.{op.id}.sip_password", op.sip_password, MIN_SIP_PASSWORD_LENGTH)
        for op in config.operators
    ]
    return found


def weak_secret_reason(value: str, minimum: int) -> str | None:
    """Why production refuses `value` as a secret, or None when it may be used."""
    if not value:
        return "is missing"
    if value.startswith(SHIPPED_SECRET_PREFIX):
        return "is a development secret shipped with Siaga 112"
    if len(value) < minimum:
        return f"is too short ({len(value)} characters; production needs {minimum} or more)"
    return None


def refuse_weak_secrets(config: Config) -> None:
    """In production (`development = false`), refuse any shipped or short secret, naming the
    file (or environment variable) and key it came from."""
    if config.centre.development:
        return
    for name, value, minimum in secrets_of(config):
        reason = weak_secret_reason(value, minimum)
        if reason is None:
            continue
        where, key = config.secret_origins.get(name, (str(config.path), _toml_key(config, name)))
        raise ConfigError(
            where,
            key,
            f"{reason}; production (development = false) needs a strong secret of its own: "
            "`siaga provision --secrets` generates them into the secrets file",
        )


def _toml_key(config: Config, name: str) -> str:
    """How siaga.toml spells a secret's key: operators are an array of tables."""
    if name.startswith("operators."):
        op_id = name.split(".")[1]
        index = next(i for i, op in enumerate(config.operators) if op.id == op_id)
        return f"operators[{index}].sip_password"
    if name == "database.password":
        return "database.url"
    return name


# -- transport security ----------------------------------------------------------------------


def refuse_plain_http(config: Config) -> None:
    """In production (`development = false`), refuse a console served over plain HTTP: its
    session cookies and passwords would cross the centre's network in the clear. A console
    behind a proxy that terminates TLS says so with `behind_tls_proxy = true`."""
    if config.centre.development or config.web.https:
        return
    raise ConfigError(
        config.path,
        "web.tls_cert",
        "missing: production (development = false) serves the console over HTTPS only; give "
        "tls_cert and tls_key (`siaga provision --tls` makes a self-signed pair to try it), or "
        "set behind_tls_proxy = true when a proxy in front of it terminates TLS",
    )


def plain_sip_warning(config: Config) -> str | None:
    """What production without SIP TLS is told: a warning, not a refusal, since many of the
    regencies' desk phones speak SIP over UDP only; their calls then cross the LAN in clear."""
    if config.centre.development or config.asterisk.sip_tls_port:
        return None
    return (
        f"{config.path}: asterisk.sip_tls_port: 0 (off): operators' phones register and talk "
        "unencrypted (SIP over UDP, plain RTP); set sip_tls_port, sip_tls_cert, sip_tls_key "
        "and srtp = true when their phones can"
    )
