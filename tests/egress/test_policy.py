"""Destination rules, pure: PICLOUD_EGRESS_ALLOW parsing, public addresses, egress_hosts."""
import ipaddress

import pytest

from picloud.config import ConfigError, load_settings
from picloud.egress.policy import EgressAllow, HostEntry, host_permitted, is_public

ip = ipaddress.ip_address


def test_allow_list_takes_cidrs_bare_addresses_and_hosts_with_ports():
    allow = EgressAllow.parse(" 10.0.0.0/8, 192.168.1.5 ,fd00::/8, db.internal, api.local:8443, [::1]:9000, 127.0.0.1:80,")
    assert [str(n) for n in allow.networks] == ["10.0.0.0/8", "192.168.1.5/32", "fd00::/8"]
    assert allow.hosts == (
        HostEntry("db.internal", None), HostEntry("api.local", 8443), HostEntry("::1", 9000), HostEntry("127.0.0.1", 80),
    )
    assert allow.allows("anything", ip("10.9.8.7"), 1)
    assert allow.allows("db.internal", ip("172.20.0.5"), 5432)
    assert allow.allows("api.local", ip("172.20.0.6"), 8443)
    assert not allow.allows("api.local", ip("172.20.0.6"), 443)
    assert allow.allows("127.1", ip("127.0.0.1"), 80)
    assert not allow.allows("127.0.0.1", ip("127.0.0.1"), 81)
    assert not allow.allows("other", ip("192.168.1.6"), 80)


@pytest.mark.parametrize("raw", ["host:port", "host:0", "host:70000", "[::1", "a b", "http://x/", "user@host"])
def test_invalid_entries_stop_the_server_naming_the_variable(raw):
    with pytest.raises(ConfigError, match="PICLOUD_EGRESS_ALLOW"):
        load_settings({"PICLOUD_EGRESS_ALLOW": raw})


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2606:4700::1111"])
def test_public_addresses(address):
    assert is_public(ip(address))


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254",
    "100.64.0.1", "100.127.255.255", "0.0.0.0", "0.1.2.3", "224.0.0.251", "239.255.255.250", "255.255.255.255",
    "192.0.2.1", "198.18.0.1", "240.0.0.1",
    "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1",
])
def test_non_public_addresses(address):
    assert not is_public(ip(address))


def test_egress_hosts_narrow_by_exact_name_and_wildcard():
    assert host_permitted("anything.example", None)
    hosts = ("api.example.com", "*.hooks.test")
    assert host_permitted("api.example.com", hosts)
    assert host_permitted("a.hooks.test", hosts) and host_permitted("a.b.hooks.test", hosts)
    assert not host_permitted("hooks.test", hosts)
    assert not host_permitted("evilhooks.test", hosts)
    assert not host_permitted("example.com", hosts)
    assert not host_permitted("x", ())
