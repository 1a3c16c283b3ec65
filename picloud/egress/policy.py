"""Where scripts may send requests: public addresses, the operator's allowances, the app's hosts.

Pure functions, no network: ``EgressAllow.parse`` reads ``PICLOUD_EGRESS_ALLOW``,
``is_public`` tells a globally routable address from every other kind (its IPv4-mapped,
NAT64 and 6to4 spellings included), ``host_permitted`` applies an app's
``egress_hosts``. Spellings of an address (``127.1``, ``2130706433``, ``0x7f.1``...) are
not judged here: the destination is always the address the name resolved to, so
every spelling meets the same check (picloud/egress/client.py).
"""
import ipaddress
from dataclasses import dataclass

# Prefixes that carry an IPv4 address inside an IPv6 one, and where it sits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class InvalidAllowEntry(ValueError):
    """An entry of PICLOUD_EGRESS_ALLOW is neither a CIDR nor host[:port]."""


@dataclass(frozen=True)
class HostEntry:
    """An allowance by name (or address literal), optionally for one port only."""

    host: str
    port: int | None


@dataclass(frozen=True)
class EgressAllow:
    """The non-public destinations the operator allows (docs/api.md §11)."""

    networks: tuple = ()
    hosts: tuple = ()

    @classmethod
    def parse(cls, raw):
        """Parse a comma list of CIDRs, bare addresses and host[:port] entries."""
        networks, hosts = [], []
        for entry in (part.strip() for part in (raw or "").split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            hosts.append(_host_entry(entry))
        return cls(tuple(networks), tuple(hosts))

    def allows(self, hostname, address, port):
        """Tell whether a non-public ``address`` (resolved from ``hostname``) may be called."""
        if any(address in network for network in self.networks):
            return True
        for entry in self.hosts:
            if entry.port is not None and entry.port != port:
                continue
            if entry.host == hostname or entry.host == str(address):
                return True
        return False


def _host_entry(entry):
    host, port = entry, None
    if entry.startswith("["):
        inside, bracket, rest = entry[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise InvalidAllowEntry(f"invalid entry {entry!r}")
        host, port = inside, rest[1:] or None
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidAllowEntry(f"invalid port in {entry!r}")
        port = int(port)
    host = host.strip().lower().rstrip(".")
    if not host or any(c in host for c in "/ @?#"):
        raise InvalidAllowEntry(f"invalid entry {entry!r}")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return HostEntry(host, port)


def is_public(address):
    """Tell whether an address is globally routable, looking inside IPv6 forms of IPv4."""
    if address.version == 6:
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_private
    )


def _embedded_ipv4(address):
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def host_permitted(hostname, egress_hosts):
    """Tell whether an app's ``egress_hosts`` (None: any host) lets it call ``hostname``."""
    if egress_hosts is None:
        return True
    for pattern in egress_hosts:
        if pattern.startswith("*."):
            if hostname.endswith(pattern[1:]) and len(hostname) > len(pattern) - 1:
                return True
        elif hostname == pattern:
            return True
    return False
