"""Siaga 112's configuration (`siaga.toml`) and logging: the leaf every package may import;
it imports none of them."""
