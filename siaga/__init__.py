"""Siaga 112: provisioning, configuration and the `siaga` command line."""
