"""PICLOUD_MAX_VALUE_BYTES: values and documents are measured as compact UTF-8 JSON."""
import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.data.conftest import add_trigger, docs_url, kv_url, lua_json, wait_for
from tests.support.apps import new_site
from tests.support.databases import temporary_database
from tests.support.live import LiveServer, login

LIMIT = 1000


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    """A server of its own (its own database, so its own dispatcher runs its events)
    with a 1000-byte value limit."""
    data_dir = tmp_path_factory.mktemp("small-values")
    with temporary_database(data_dir) as url:
        live = LiveServer(
            {
                "DATABASE_URL": url,
                "PICLOUD_DATA_DIR": str(data_dir),
                "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "PICLOUD_EXECUTOR_PROCESSES": "1",
                "PICLOUD_MAX_VALUE_BYTES": str(LIMIT),
            },
            data_dir / "server.log",
        ).start()
        yield live
        live.stop()


@pytest.fixture
def small_site(small_server):
    return new_site(login(small_server.url, "admin", ADMIN_PASSWORD), small_server.url, "small")


def test_kv_values_up_to_the_limit_in_encoded_bytes(small_site):
    at_limit = "é" * 499  # 998 bytes of UTF-8 and two quotes
    assert small_site.api.put(kv_url(small_site, "k"), json=at_limit).status_code == 200
    over = small_site.api.put(kv_url(small_site, "k"), json="é" * 500)
    assert over.status_code == 413
    error = over.json()["error"]
    assert error["code"] == "payload_too_large" and "1000" in error["message"]
    assert small_site.api.get(kv_url(small_site, "k")).json()["value"] == at_limit


def test_documents_over_the_limit_are_413_and_change_nothing(small_site):
    inserted = small_site.api.post(docs_url(small_site, "c"), json={"_id": "d", "text": "x" * 900})
    assert inserted.status_code == 201
    too_big = small_site.api.post(docs_url(small_site, "c"), json={"_id": "e", "text": "x" * 1000})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "payload_too_large"
    replaced = small_site.api.put(docs_url(small_site, "c", "d"), json={"text": "y" * 1000})
    assert replaced.status_code == 413
    assert small_site.api.get(docs_url(small_site, "c", "d")).json()["text"] == "x" * 900
    assert small_site.api.get(docs_url(small_site, "c", "e")).status_code == 404


def test_a_script_gets_a_catchable_error(small_site):
    result = lua_json(
        small_site,
        """
        local ok, err = pcall(kv.set, "k", string.rep("x", 2000))
        local ok2, err2 = pcall(docs.insert, "c", {_id = "big", text = string.rep("x", 2000)})
        kv.set("small", string.rep("x", 100))
        return {ok = ok, err = err, ok2 = ok2, err2 = err2, big = kv.get("k") == nil, doc = docs.get("c", "big") == nil}
        """,
    )
    assert result["ok"] is False and "kv.set" in result["err"] and "limit is 1000" in result["err"]
    assert result["ok2"] is False and "docs.insert" in result["err2"] and "limit is 1000" in result["err2"]
    assert result["big"] is True and result["doc"] is True
    assert small_site.api.get(kv_url(small_site, "small")).json()["value"] == "x" * 100


def test_a_triggered_run_has_the_same_limit(small_site):
    script = small_site.script(
        'local ok, err = pcall(kv.set, "big", string.rep("x", 2000))\n'
        'kv.set("result", {ok = ok, err = err})\n'
    )
    add_trigger(small_site, "kv", script, key_glob="go")
    assert small_site.api.put(kv_url(small_site, "go"), json=1).status_code == 200
    result = wait_for(
        lambda: small_site.api.get(kv_url(small_site, "result")).json().get("value"), what="the triggered run"
    )
    assert result["ok"] is False and "limit is 1000" in result["err"]
    assert small_site.api.get(kv_url(small_site, "big")).status_code == 404
