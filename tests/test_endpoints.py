"""experiments.lab.endpoints: external endpoints are validated, namespaced, never flushed, never broken."""

from __future__ import annotations

import pytest

from experiments.errors import EndpointError
from experiments.lab.endpoints import open_memcached, open_redis, parse_memcached_servers, parse_redis_url
from experiments.lab.spawner import free_port


@pytest.mark.parametrize("url", ["localhost:6379", "http://host:6379", "redis://", "redis://host",
                                 "redis://host:port", "redis://host:6379/zero", "redis://host:99999"])
def test_malformed_redis_url_is_one_clear_line(url):
    with pytest.raises(EndpointError) as excinfo:
        parse_redis_url(url)
    assert "redis://" in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_good_redis_url_is_parsed():
    options = parse_redis_url("rediss://:pw@10.0.0.5:6380/2")
    assert options == dict(host="10.0.0.5", port=6380, username=None, password="pw", db=2, ssl=True)


def test_unreachable_redis_says_what_to_do():
    with pytest.raises(EndpointError) as excinfo:
        open_redis(f"redis://127.0.0.1:{free_port()}/0")
    message = str(excinfo.value)
    assert "cannot reach Redis" in message and "leave it empty" in message and "\n" not in message


def test_wrong_password_is_reported(redis_server):
    with pytest.raises(EndpointError, match="refused the credentials"):
        open_redis(f"redis://:wrong@127.0.0.1:{redis_server.port}/0")


def test_environment_variable_is_used(redis_server, monkeypatch):
    monkeypatch.setenv("CACHE_BOOK_REDIS_URL", redis_server.url)
    target = open_redis()
    assert not target.owned and target.address == f"127.0.0.1:{redis_server.port}"
    target.close()


def test_external_redis_is_namespaced_and_never_flushed(redis_server):
    theirs = redis_server.client()
    theirs.set("their:key", b"keep me")
    target = open_redis(redis_server.url)
    target.client.set(target.key("product:B1"), b"ours")
    assert target.client.get(target.namespace + "product:B1") == b"ours"
    target.close()
    assert theirs.get("their:key") == b"keep me"
    assert not list(theirs.scan_iter(match=target.namespace + "*"))


def test_destructive_experiments_refuse_external_endpoints(redis_server):
    target = open_redis(redis_server.url)
    with pytest.raises(EndpointError, match="only runs on servers the book starts itself"):
        target.require_owned("the failover experiment")
    target.close()


def test_owned_endpoint_allows_destructive_experiments():
    target = open_redis("")
    target.require_owned("the failover experiment")
    assert target.owned
    pid = target.server.pid
    target.close()
    from experiments.lab.processes import running
    assert not running(pid)


@pytest.mark.parametrize("spec", ["", "host", "host:", "host:abc", "host:70000", "a:1,,b:2", "a b:1"])
def test_malformed_memcached_servers(spec):
    with pytest.raises(EndpointError, match="is not host:port"):
        parse_memcached_servers(spec)


def test_unreachable_memcached_says_what_to_do():
    with pytest.raises(EndpointError, match="cannot reach memcached"):
        open_memcached(f"127.0.0.1:{free_port()}")


def test_external_memcached_deletes_only_its_keys(memcached_server):
    theirs = memcached_server.client()
    theirs.set("their-key", b"keep me")
    target = open_memcached(memcached_server.address)
    target.client.set(target.key("promo:manga-home"), b"ours", noreply=False)
    target.close()
    assert theirs.get("their-key") == b"keep me"
    assert theirs.get(target.namespace + "promo:manga-home") is None


@pytest.mark.holds_no_lock
def test_chapter_runs_on_external_endpoints_and_leaves_them_as_found(redis_server, memcached_server, tmp_path):
    """Chapter 1 with redis_url / memcached_servers: it uses them, and deletes only its own keys. The test holds
    no section itself (`holds_no_lock`): the chapter's kernel takes its own, so its timings wait for a quiet
    machine as they do in a book build — under the test's hold they could not exclude anything."""
    import nbformat

    from experiments.bookkit import runner as book

    theirs = redis_server.client()
    theirs.set("their:key", b"keep me")
    keys_before = sorted(theirs.keys("*"))
    out = tmp_path / "economics.ipynb"
    book._execute_here(book.Path("book/economics.ipynb"), out,
                       {"redis_url": redis_server.url, "memcached_servers": memcached_server.address})
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells
                   if c.cell_type == "code" for o in c.outputs)
    assert f"Redis at 127.0.0.1:{redis_server.port} (given as a parameter)" in text
    assert f"memcached at {memcached_server.address} (given as a parameter)" in text
    assert sorted(theirs.keys("*")) == keys_before
