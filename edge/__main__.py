"""`python3 -m edge SIAGA_TOML FOLDER`: render the Kamailio edge's files into FOLDER, to run
with `kamailio -f FOLDER/kamailio.cfg` (docs/ha.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from edge import render
from siaga.config import ConfigError, load_config


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        config = load_config(argv[0])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if config.edge is None:
        print(f"{argv[0]}: no [edge] section: nothing to render", file=sys.stderr)
        return 1
    layout = render.EdgeLayout(Path(argv[1]).resolve())
    render.write(config, layout)
    print(layout.config_file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
