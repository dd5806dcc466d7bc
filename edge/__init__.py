"""The SIP edge of the high-availability topology: Kamailio rendered from `siaga.toml`
(docs/ha.md)."""
