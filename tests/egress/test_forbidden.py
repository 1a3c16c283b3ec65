"""docs/api.md §11 on a server without PICLOUD_EGRESS_ALLOW: every spelling of a non-public
address is refused as a catchable error, recorded, and never reaches the local server."""
import pytest

from tests.egress.conftest import last_execution, run

# Each spells an address of this machine, or one that is not globally routable.
FORBIDDEN_HOSTS = [
    "127.0.0.1",
    "127.1",  # short form
    "127.0.1",
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0x7f.0.0.1",
    "0177.0.0.1",  # octal
    "017700000001",
    "127.000.000.001",
    "0",  # 0.0.0.0: unspecified, reaches this machine on Linux
    "0.0.0.0",
    "localhost",
    "LOCALHOST.",
    "vm",  # a name that resolves to loopback (/etc/hosts)
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",  # IPv4-compatible IPv6
    "[64:ff9b::7f00:1]",  # NAT64
    "[2002:7f00:1::]",  # 6to4
]
# Not this machine, but not public either: refused before any connection is tried.
OTHER_NON_PUBLIC = [
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "224.0.0.1",
    "255.255.255.255", "[fd00::1]", "[fe80::1]", "[ff02::1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]",
]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_every_spelling_of_this_machine_is_refused_and_never_reaches_it(site, upstream, host):
    before = len(upstream.seen)
    url = f"http://{host}:{upstream.port}/forbidden"
    response = run(site, f'local ok, err = pcall(http.get, "{url}?q=1") return {{ok, err}}')
    assert response.status_code == 200, response.text
    ok, message = response.json()
    assert ok is False and "refused" in message, message
    assert len(upstream.seen) == before
    [call] = last_execution(site)["http_calls"]
    assert call["status"] is None and call["error"].startswith("refused")
    assert "?" not in call["url"]


@pytest.mark.parametrize("host", OTHER_NON_PUBLIC)
def test_private_link_local_cgnat_multicast_and_ula_are_refused(site, host):
    response = run(site, f'local ok, err = pcall(http.get, "http://{host}/") return {{ok, err}}')
    ok, message = response.json()
    assert ok is False and "not a public address" in message


def test_an_uncaught_refusal_fails_the_run_with_422(site, upstream):
    response = run(site, f'return http.get("http://127.0.0.1:{upstream.port}/").status')
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "script_error"
    assert "refused" in last_execution(site)["error"]["message"]


def test_https_to_a_forbidden_address_is_refused_too(site, upstream):
    response = run(site, f'local ok, err = pcall(http.get, "https://localhost:{upstream.port}/") return {{ok, err}}')
    assert response.json()[0] is False
