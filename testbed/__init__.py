"""Test and development tooling: SIPp peers, throwaway PostgreSQL clusters, private stacks
on free ports, and `siaga simulate`. Of the product, only the root (`stack`) imports it: the
embedded PostgreSQL of `make run` and `siaga simulate`."""
