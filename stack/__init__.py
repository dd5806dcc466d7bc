"""The `siaga` command line and the running stack: the root that wires every package together."""
