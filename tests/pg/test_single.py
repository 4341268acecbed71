"""One runtime per PostgreSQL database until replicas exist (``pg.single``): a second store on
the same database is refused with a clear error, and the lock goes with its holder."""

from __future__ import annotations

import psycopg
import pytest

from mchat_actors.config import ChatConfig, Config, MattermostConfig
from mchat_actors.pg.single import DatabaseInUse
from mchat_actors.pg.url import parse_database_url
from mchat_actors.storage_backend import open_runtime_store

pytestmark = pytest.mark.pg


def config_for(url: str) -> Config:
    return Config(mattermost=MattermostConfig(url="http://mm.test", token="t"),
                  chat=ChatConfig(backend="remote"), database_url=parse_database_url(url))


async def test_a_second_runtime_on_one_database_is_refused(pg_url: str, pg_server) -> None:
    config = config_for(pg_url)
    password = pg_url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
    async with open_runtime_store(config) as first:
        assert await first.is_writable()
        with pytest.raises(DatabaseInUse) as caught:
            async with open_runtime_store(config):
                pytest.fail("a second runtime opened the database")
        text = str(caught.value)
        assert "another mchat-actors process" in text and "[redacted]" in text
        assert password not in text
        # another database of the same server is another runtime's
        with psycopg.connect(pg_server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE single_other")
        try:
            async with open_runtime_store(config_for(pg_server.url("single_other"))) as other:
                assert await other.is_writable()
        finally:
            with psycopg.connect(pg_server.url(), autocommit=True) as admin:
                admin.execute("DROP DATABASE single_other WITH (FORCE)")
    async with open_runtime_store(config) as again:  # the first one's stop freed it
        assert await again.is_writable()
