"""`python3 -m edge SIAGA_TOML FOLDER [--own ADDRESS --interface NAME]`: render the Kamailio
edge's files into FOLDER, to run with `kamailio -f FOLDER/kamailio.cfg` (docs/ha.md).

A pair of edges ([edge] hosts): `--own` is this edge's own address (one of the hosts) and
`--interface` the network interface the shared address goes on; FOLDER then also holds the
keepalived.conf to run with `keepalived -f FOLDER/keepalived.conf`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge import render
from edge.kamailio import EdgeError
from edge.vrrp import keepalived_conf
from siaga.config import ConfigError, load_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m edge", description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="siaga.toml, with an [edge] section")
    p.add_argument("folder", help="where the rendered files go")
    p.add_argument("--own", help="a pair of edges: this edge's own address (one of [edge] hosts)")
    p.add_argument("--interface", help="a pair of edges: the interface for the shared address")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    edge = config.edge
    if edge is None:
        print(f"{args.config}: no [edge] section: nothing to render", file=sys.stderr)
        return 1
    if bool(edge.hosts) != (args.own is not None and args.interface is not None):
        print(
            f"{args.config}: [edge] hosts {list(edge.hosts)}: --own and --interface are "
            "given for a pair of edges, and only then",
            file=sys.stderr,
        )
        return 1
    if edge.hosts and args.own not in edge.hosts:
        print(f"--own {args.own}: not one of [edge] hosts {list(edge.hosts)}", file=sys.stderr)
        return 1
    layout = render.EdgeLayout(Path(args.folder).resolve())
    render.write(config, layout, own_host=args.own)
    print(layout.config_file)
    if edge.hosts:
        try:
            text = keepalived_conf(edge, args.own, args.interface, layout)
        except EdgeError as exc:
            print(exc, file=sys.stderr)
            return 1
        layout.keepalived_config.write_text(text, encoding="utf-8")
        print(layout.keepalived_config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
