"""[database] url may name a primary and its standby (libpq's multi-host URL, docs/ha.md); a
list the app could not use safely is refused with file, key and reason."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from siaga.config import ConfigError, database_hosts, host_dsns, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "siaga.toml"
TWO_HOSTS = "postgresql://siaga@10.9.0.11:5432,10.9.0.12:5432/siaga"


def with_database(**database: object) -> dict:
    data = tomllib.loads(EXAMPLE.read_text())
    data["database"] = database
    return data


def refused(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "centre.toml")
    return str(info.value)


def test_a_primary_and_its_standby_are_accepted():
    url = TWO_HOSTS + "?target_session_attrs=read-write"
    config = parse_config(with_database(embedded=False, url=url), "centre.toml")
    assert config.database.url == url
    assert database_hosts(config.database.url) == ["10.9.0.11:5432", "10.9.0.12:5432"]


def test_the_password_goes_to_the_user_of_every_host():
    url = TWO_HOSTS + "?target_session_attrs=primary"
    data = with_database(embedded=False, url=url, password="a long database password")
    config = parse_config(data, "centre.toml")
    assert config.database.url == (
        "postgresql://siaga:a%20long%20database%20password@10.9.0.11:5432,10.9.0.12:5432/siaga"
        "?target_session_attrs=primary"
    )


def test_several_hosts_without_target_session_attrs_are_refused():
    message = refused(with_database(embedded=False, url=TWO_HOSTS))
    assert "centre.toml" in message and "database.url" in message
    assert "target_session_attrs=read-write" in message


def test_several_hosts_that_accept_a_standby_are_refused():
    url = TWO_HOSTS + "?target_session_attrs=any"
    assert "target_session_attrs=read-write" in refused(with_database(embedded=False, url=url))


def test_several_hosts_with_the_embedded_cluster_are_refused():
    url = TWO_HOSTS + "?target_session_attrs=read-write"
    message = refused(with_database(embedded=True, url=url))
    assert "database.embedded" in message and "several hosts" in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://siaga@10.9.0.11:5432,,10.9.0.12/siaga?target_session_attrs=read-write",
        "postgresql://siaga@10.9.0.11:99999,10.9.0.12/siaga?target_session_attrs=read-write",
        "postgresql://siaga@10.9.0.11:pg/siaga",
    ],
)
def test_a_bad_host_list_is_refused(url):
    assert "database.url" in refused(with_database(embedded=False, url=url))


def test_one_host_is_unchanged():
    config = parse_config(with_database(embedded=False, url="postgresql://u@db:5432/s"), "c.toml")
    assert database_hosts(config.database.url) == ["db:5432"]


def test_host_dsns_gives_each_host_its_own_dsn():
    url = "postgresql://siaga:p%40ss@10.9.0.11:5432,10.9.0.12/siaga?target_session_attrs=read-write"
    assert host_dsns(url) == [
        "postgresql://siaga:p%40ss@10.9.0.11:5432/siaga?target_session_attrs=read-write",
        "postgresql://siaga:p%40ss@10.9.0.12/siaga?target_session_attrs=read-write",
    ]
    assert host_dsns("postgresql:///siaga?host=/run/postgresql") == [
        "postgresql:///siaga?host=/run/postgresql"
    ]
