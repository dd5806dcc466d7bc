"""The `siaga` command line. `make` only calls this."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agi.cli import register as register_block_commands
from db.cli import register as register_db_commands
from db.command import EXIT_FAILED, CommandError
from db.migrate import MigrationError
from pbx.provision import ProvisionError
from siaga.config import (
    Config,
    ConfigError,
    load_config,
    node_config,
    plain_sip_warning,
    redacted_url,
    refuse_plain_http,
    refuse_weak_secrets,
    this_node,
)
from siaga.logging import configure_logging
from stack.install import DEFAULT_DATABASE_URL
from supervisor.cli import register as register_user_commands
from supervisor.console import InsecureConsoleError

# EXIT_FAILED (1): a command that could not be carried out (db/command.py).
EXIT_USAGE = 2  # as argparse's own
EXIT_CONFIG = 2
EXIT_PROVISION = 3
EXIT_INTERRUPTED = 130  # as a shell reports SIGINT


def _config(args: argparse.Namespace) -> Config:
    """The configuration every command but `provision` runs on: production refuses weak
    secrets and a console over plain HTTP here, before anything starts; certificates that
    cannot be read or do not match their keys are refused everywhere."""
    from siaga.tls import check_certificates

    cached: Config | None = getattr(args, "_config", None)
    if cached is None:
        cached = load_config(args.config)
        refuse_weak_secrets(cached)
        refuse_plain_http(cached)
        check_certificates(cached)
        args._config = cached
    return cached


def _dsn(args: argparse.Namespace) -> str:
    from stack.run import database_url

    return database_url(_config(args))


def cmd_backup(args: argparse.Namespace) -> int:
    from stack.backup import backup
    from stack.run import asterisk_recordings_dir

    report = backup(_dsn(args), asterisk_recordings_dir(_config(args)), Path(args.to))
    print(
        f"{report.folder}: database and {report.recordings} recordings"
        f" ({report.linked} unchanged since the last backup, {report.bytes_copied} bytes copied)"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from stack.backup import restore
    from stack.run import asterisk_recordings_dir

    folder = Path(args.backup)
    report = asyncio.run(
        restore(_dsn(args), asterisk_recordings_dir(_config(args)), folder, replace=args.replace)
    )
    print(
        f"restored {folder}: the database, {report.recordings_restored} recordings"
        f" ({report.recordings_present} already there)"
    )
    for name in report.recordings_differing:
        print(f"  kept, differs from the backup: {name}", file=sys.stderr)
    return 0


def cmd_recordings(args: argparse.Namespace) -> int:
    from stack.retention import purge, set_hold
    from stack.run import asterisk_recordings_dir

    config = _config(args)
    if args.action == "purge":
        folder = asterisk_recordings_dir(config)
        if folder is None:
            raise CommandError("where are the recordings? set [asterisk] recordings_dir")
        report = asyncio.run(purge(_dsn(args), folder, config.recordings))
        print(
            f"{report.deleted} of {report.examined} recordings deleted"
            f" ({report.bytes_freed} bytes); {report.held} under legal hold"
        )
        return 0
    if not args.call_id:
        raise CommandError(f"siaga recordings {args.action}: which call? (its call id)")
    held = args.action == "hold"
    asyncio.run(set_hold(_dsn(args), args.call_id, held=held, by=args.by, reason=args.reason))
    print(f"{args.call_id}: recording {'held' if held else 'released'}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    warning = plain_sip_warning(config)
    if warning:
        print(f"siaga: warning: {warning}", file=sys.stderr)
    print(
        f"{config.path}: ok ({len(config.operators)} operators, "
        f"{len(config.categories)} categories, {len(config.ivr.menus)} menus)"
    )
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from pbx.provision import ensure_asterisk_root, render_prompts

    if args.secrets:
        from stack.secrets import write_secrets

        print(write_secrets(args.config))
        return 0
    if args.tls:
        return _provision_tls(args)
    root = ensure_asterisk_root()
    prompts = render_prompts()
    print(f"Asterisk root: {root}\nPrompts: {prompts}")
    return 0


def _provision_tls(args: argparse.Namespace) -> int:
    from pbx.provision import state_dir
    from stack.certificate import write_self_signed

    config = load_config(args.config, with_secrets_file=False)
    hosts = [config.web.host, config.asterisk.sip_host, "localhost", "127.0.0.1"]
    folder = args.tls_dir or state_dir() / "tls"
    hosts = list(dict.fromkeys(h for h in hosts if h not in ("0.0.0.0", "::")))
    pair, made = write_self_signed(folder, hosts)
    lines = [
        f"{'Made' if made else 'Kept'} a self-signed certificate for {', '.join(hosts)} "
        "(development and tests: browsers and phones trust it only once told to).",
        "In siaga.toml:",
        "  [web]",
        f'  tls_cert = "{pair.cert}"',
        f'  tls_key = "{pair.key}"',
        "  [asterisk]",
        "  sip_tls_port = 5061",
        f'  sip_tls_cert = "{pair.cert}"',
        f'  sip_tls_key = "{pair.key}"',
        "  srtp = true",
    ]
    print("\n".join(lines))
    return 0


def add_node_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node",
        default=os.environ.get("SIAGA_NODE", ""),
        help="with [[asterisk.nodes]]: the node this machine is (docs/ha.md; or SIAGA_NODE)",
    )


def cmd_asterisk(args: argparse.Namespace) -> int:
    from pbx.provision import render_prompts
    from stack.run import dev_asterisk

    config = _config(args)
    if (node := this_node(config, args.node)) is not None:
        config = node_config(config, node)  # this machine's node: its addresses, its systemname
    instance = dev_asterisk(config)
    if args.action == "run":
        from stack.systemd import run_asterisk

        return run_asterisk(instance, render_prompts())
    if args.action == "start":
        instance.prepare(render_prompts())
        instance.start(die_with_us=False)
        print(f"Asterisk running (pid {instance.running_pid()}), log: {instance.log_file}")
    elif args.action == "stop":
        instance.stop()
    elif args.action == "cli":
        print(instance.cli(" ".join(args.command)), end="")
    else:
        pid = instance.running_pid()
        print(f"running, pid {pid}" if pid else "stopped")
        return 0 if pid else 1
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from stack.install import Layout, install

    for line in install(Layout(args.root, args.python_env), args.database_url):
        print(line)
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from stack.install import Layout, uninstall

    for line in uninstall(Layout(args.root, args.python_env)):
        print(line)
    return 0


def cmd_postgres(args: argparse.Namespace) -> int:
    from stack.run import dev_postgres

    cluster = dev_postgres(_config(args))
    if args.action == "start":
        cluster.init()
        cluster.start()
        print(f"PostgreSQL running: {redacted_url(cluster.dsn)}")
    elif args.action == "stop":
        cluster.stop()
    else:
        running = cluster.is_running()
        print("running" if running else "stopped")
        return 0 if running else 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from stack.run import run_stack

    config = _config(args)
    return asyncio.run(run_stack(config, node=this_node(config, args.node)))


def cmd_simulate(args: argparse.Namespace) -> int:
    from testbed.simulate import run

    return run(
        _config(args),
        callers=args.callers,
        operators=args.operators,
        talk=args.talk,
        rate=args.rate,
        patience=args.patience,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siaga", description="Siaga 112 call distributor")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("SIAGA_CONFIG", "siaga.toml")),
        help="path of siaga.toml (default: ./siaga.toml or $SIAGA_CONFIG)",
    )
    parser.add_argument("--log-format", choices=("console", "json"), default="console")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("check-config", help="validate siaga.toml").set_defaults(func=cmd_check_config)
    provision = sub.add_parser(
        "provision", help="build or reuse the Asterisk root and render the voice prompts"
    )
    provision.add_argument(
        "--secrets",
        action="store_true",
        help="instead: generate strong secrets into the secrets_file siaga.toml names "
        "(mode 0600; strong secrets already there are kept)",
    )
    provision.add_argument(
        "--tls",
        action="store_true",
        help="instead: make a self-signed certificate and key for HTTPS and SIP over TLS "
        "(development and tests; kept if already there)",
    )
    provision.add_argument(
        "--tls-dir", type=Path, help="where --tls writes them (default: the state folder's tls/)"
    )
    provision.set_defaults(func=cmd_provision)
    run = sub.add_parser(
        "run", help="start Asterisk, PostgreSQL and the app; Ctrl-C stops them all"
    )
    add_node_argument(run)
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser(
        "simulate", help="simulated callers and operators on a private stack; prints JSON"
    )
    sim.add_argument("--callers", type=int, default=20)
    sim.add_argument("--operators", type=int, default=5)
    sim.add_argument(
        "--talk",
        type=int,
        default=3,
        help="seconds each operator talks (under 2 s counts as a phone answering and hanging up)",
    )
    sim.add_argument("--rate", type=float, default=5.0, help="new callers per second")
    sim.add_argument(
        "--patience", type=float, default=60.0, help="seconds a caller waits before hanging up"
    )
    sim.set_defaults(func=cmd_simulate)

    ast = sub.add_parser("asterisk", help="the embedded Asterisk instance of `make run`")
    ast.add_argument(
        "action",
        choices=("start", "stop", "status", "cli", "run"),
        help="run: in the foreground until SIGTERM (the siaga112-asterisk unit)",
    )
    ast.add_argument("command", nargs="*", help="for `cli`: an Asterisk CLI command")
    add_node_argument(ast)
    ast.set_defaults(func=cmd_asterisk)

    inst = sub.add_parser(
        "install", help="install as systemd services on this Debian 12 machine (root)"
    )
    uninst = sub.add_parser(
        "uninstall", help="remove the services and the code; keep configuration and records"
    )
    for command in (inst, uninst):
        command.add_argument(
            "--root", type=Path, default=Path("/"), help="install under this folder (tests)"
        )
        command.add_argument(
            "--python-env",
            type=Path,
            help="an environment with Siaga 112 installed, used instead of /opt/siaga112",
        )
    inst.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the app's role and database in the system PostgreSQL, made if missing "
        f"(default {DEFAULT_DATABASE_URL}; the password goes into the secrets file)",
    )
    inst.set_defaults(func=cmd_install)
    uninst.set_defaults(func=cmd_uninstall)

    pg = sub.add_parser("postgres", help="the embedded PostgreSQL cluster of `make run`")
    pg.add_argument("action", choices=("start", "stop", "status"))
    pg.set_defaults(func=cmd_postgres)

    back = sub.add_parser("backup", help="the records database and the recordings, to a folder")
    back.add_argument("--to", required=True, help="folder that keeps the backups")
    back.set_defaults(func=cmd_backup)
    rest = sub.add_parser("restore", help="a backup made by `siaga backup`, checked first")
    rest.add_argument("backup", help="the backup's folder (<to>/<time>)")
    rest.add_argument(
        "--replace", action="store_true", help="even if the database already holds records"
    )
    rest.set_defaults(func=cmd_restore)

    recs = sub.add_parser(
        "recordings", help="retention ([recordings] in siaga.toml) and legal holds"
    )
    recs.add_argument("action", choices=("purge", "hold", "release"))
    recs.add_argument("call_id", nargs="?", help="for hold and release")
    recs.add_argument("--reason", default="", help="why (required for hold and release)")
    recs.add_argument("--by", default=os.environ.get("SUDO_USER") or os.environ.get("USER", "?"))
    recs.set_defaults(func=cmd_recordings)

    register_db_commands(sub, _dsn)
    register_block_commands(
        sub, _dsn, default_hours=lambda args: _config(args).screening.block_hours
    )
    register_user_commands(sub, _dsn, _config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format)
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command. The errors a person can act on become one line on stderr and
    an exit code; any other error is a bug and keeps its traceback."""
    try:
        result: int = args.func(args)
        return result
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        message, code = f"configuration error: {exc}", EXIT_CONFIG
    except InsecureConsoleError as exc:
        message, code = str(exc), EXIT_CONFIG
    except ProvisionError as exc:
        message, code = str(exc), EXIT_PROVISION
    except argparse.ArgumentTypeError as exc:
        message, code = str(exc), EXIT_USAGE
    except (CommandError, MigrationError) as exc:
        message, code = str(exc), EXIT_FAILED
    print(f"siaga: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
