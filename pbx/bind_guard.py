"""The kernel binds to loopback what Asterisk binds to a wildcard address on an ephemeral port.

res_pjsip creates pjproject's DNS resolver from the nameservers of the root's /etc/resolv.conf,
and pjproject binds its two query sockets to 0.0.0.0:0 and [::]:0 (pjlib-util's resolver.c):
reachable from every network, on no port we chose, and no Asterisk or pjproject setting names
another address. glibc always reports a nameserver (127.0.0.1 when resolv.conf names none), so
no resolv.conf keeps res_pjsip from creating it. Nor may its creation fail: pjproject's clean-up
of a half-made resolver closes file descriptor 0, which by then may be the SIP socket.

res_pjsip resolves names through Asterisk's own DNS core (its external resolver), not through
that resolver, which only ever reads what others send to its sockets. So Asterisk runs in a
cgroup (v2) carrying two cgroup/bind programs, one per address family, that turn a bind to the
unspecified address with port 0 into a bind to 127.0.0.1 or ::1: the resolver is made, and is
out of the network's reach. Every socket Asterisk opens from the configuration names its
address or its port, so nothing else is touched; glibc's own DNS queries connect, not bind.

systemd's SocketBindDeny= could only refuse such a bind (with the clean-up above), and Debian
12's systemd is built without its BPF framework anyway (`systemd --version`: -BPF_FRAMEWORK), so
it ignores it; these programs are small enough to load by hand, as plain instructions over the
bpf(2) system call.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct
from pathlib import Path

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_LOAD = 5
_BPF_PROG_ATTACH = 8
_BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18
_BPF_CGROUP_INET4_BIND = 8
_BPF_CGROUP_INET6_BIND = 9
_BPF_F_ALLOW_MULTI = 2  # beside the programs others attach to this cgroup or its parents

# struct bpf_sock_addr: the offsets the programs read and write.
_USER_IP4 = 4
_USER_IP6 = 8
_USER_PORT = 24


class BindGuardError(Exception):
    """The programs could not be attached here (no cgroup v2, no bpf(2), not root)."""


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _load_word(dst: int, offset: int) -> bytes:
    return _insn(0x61, dst, 1, offset)  # dst = *(u32 *)(ctx + offset)


def _loopback_for_wildcard(address_words: list[int], loopback_last_word: int) -> bytes:
    """When the port is 0 and every word of the address is 0, set the address's last word, so
    the address becomes loopback; then let the bind go on (r0 = 1)."""
    ored = [_load_word(3, offset) + _insn(0x4F, 2, 3) for offset in address_words[1:]]  # r2 |= r3
    checks = _load_word(2, address_words[0]) + b"".join(ored)
    check_len = len(checks) // 8
    return (
        _load_word(2, _USER_PORT)
        + _insn(0x55, 2, off=check_len + 3)  # port != 0: leave it
        + checks
        + _insn(0x55, 2, off=2)  # address != 0: leave it
        + _insn(0xB7, 3, imm=loopback_last_word)  # r3 = the loopback address's last word
        + _insn(0x63, 1, 3, address_words[-1])  # *(u32 *)(ctx + last word) = r3
        + _insn(0xB7, 0, imm=1)
        + _insn(0x95)
    )


# The address words as the kernel stores them (network order), read as little-endian u32.
_IP4_LOOPBACK = 0x0100007F  # 127.0.0.1
_IP6_LOOPBACK_LAST_WORD = 0x01000000  # ::1 (its first three words are 0, as in ::)

PROGRAMS = {
    _BPF_CGROUP_INET4_BIND: _loopback_for_wildcard([_USER_IP4], _IP4_LOOPBACK),
    _BPF_CGROUP_INET6_BIND: _loopback_for_wildcard(
        [_USER_IP6 + 4 * i for i in range(4)], _IP6_LOOPBACK_LAST_WORD
    ),
}


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise BindGuardError(f"bpf(2) number unknown on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    result = int(libc.syscall(number, command, attr, len(attr)))
    if result < 0:
        errno = ctypes.get_errno()
        raise BindGuardError(f"bpf({command}): {os.strerror(errno)}")
    return result


def _load(attach_type: int, program: bytes) -> int:
    insns = ctypes.create_string_buffer(program, len(program))
    licence = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into(
        "<IIQQ", attr, 0, _BPF_PROG_TYPE_CGROUP_SOCK_ADDR, len(program) // 8,
        ctypes.addressof(insns), ctypes.addressof(licence),
    )  # fmt: skip
    struct.pack_into("<16s", attr, 48, b"siaga_loopback")  # prog_name, for bpftool
    struct.pack_into("<I", attr, 68, attach_type)  # expected_attach_type
    return _bpf(_BPF_PROG_LOAD, attr)


def guard(cgroup: Path) -> None:
    """Attach both programs to `cgroup` (a folder of the cgroup v2 hierarchy): they hold for
    every process in it and below it until the cgroup is removed."""
    folder = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for attach_type, program in PROGRAMS.items():
            prog = _load(attach_type, program)
            try:
                attr = ctypes.create_string_buffer(struct.pack(
                    "<IIII", folder, prog, attach_type, _BPF_F_ALLOW_MULTI
                ))  # fmt: skip
                _bpf(_BPF_PROG_ATTACH, attr)
            finally:
                os.close(prog)  # the attachment keeps the program
    finally:
        os.close(folder)


def unified_mount() -> Path:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified when hybrid)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        if after.split()[0] == "cgroup2":
            return Path(before.split()[4])
    raise BindGuardError("no cgroup v2 hierarchy is mounted")


def own_cgroup() -> Path:
    """This process's cgroup v2 folder."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return unified_mount() / line[3:].lstrip("/")
    raise BindGuardError("this process is in no cgroup v2")


def guarded_cgroup(name: str) -> Path | None:
    """Guard the cgroup Asterisk is to run in; return it when Asterisk must be moved there.

    Under systemd ($INVOCATION_ID) that is the service's own cgroup, which holds this unit
    alone, and where Asterisk starts anyway: None (the cgroup file system is read-only there).
    Elsewhere (`make run`, the tests) it is a child of this process's cgroup made for the
    instance: move Asterisk there with `join`, and remove it with `release` once it is gone."""
    if os.environ.get("INVOCATION_ID"):
        cgroup = own_cgroup()
        if cgroup == unified_mount():
            raise BindGuardError("refusing to guard the root cgroup")
        guard(cgroup)
        return None
    cgroup = own_cgroup() / f"siaga-asterisk-{name}"
    try:
        cgroup.mkdir(exist_ok=True)
    except OSError as exc:
        raise BindGuardError(f"cannot make {cgroup}: {exc}") from exc
    guard(cgroup)
    return cgroup


def join(cgroup: Path) -> None:
    """Move the calling process into `cgroup` (in a child before exec)."""
    (cgroup / "cgroup.procs").write_text("0")


def release(cgroup: Path) -> None:
    """Remove a child cgroup made by `guarded_cgroup` once it is empty."""
    with contextlib.suppress(OSError):  # still in use, or gone already
        cgroup.rmdir()
