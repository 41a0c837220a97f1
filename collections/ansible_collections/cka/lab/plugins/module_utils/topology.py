# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The lab engine's network topology: namespaces, bridges, veth pairs, VXLAN links, addresses, routes.

The lab engine (lab_engine.py, run by the cka.lab.lab_state module) converges
and removes a lab's topology with these. Everything here is plain Python that
never touches the machine by itself:

* ``parse_topology()`` turns the parameters (as ``Engine.topology_params()``
  gives them) into a ``Topology`` and reports every invalid value at once
  (``TopologyError``); names follow the lab declaration's rules
  (lab_schema.py: ``NETNS``, ``IFNAME``, ``LINK_NAME``);
* ``read_state()`` reads what exists with ``ip -j ...`` through a ``run``
  callable ``run(argv) -> (rc, stdout, stderr)``, skipping stale entries of
  ``ip netns list`` (see ``netns_mounted()``);
* ``plan_present()`` / ``plan_absent()`` return the ``ip`` commands that
  converge that state, together with the state they are expected to leave.

Commands are argv lists whose first item is the word ``ip``, or ``bridge``
for the flood lists of VXLAN links (``bridge [-n NS] fdb ...``, iproute2
too); the caller swaps in the real binary path when it runs them.  The
planner keeps a small model of the kernel up to date while it emits commands
(a deleted veth end takes its peer with it, a deleted link the vxlans over
it, an address on an up link brings its connected route), so that later
steps, and a plan made on from ``planner.model`` (the engine builds a stage
after removing what the last one had), see the state the earlier commands
will have left.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import shlex
from dataclasses import dataclass, field

from ansible_collections.cka.lab.plugins.module_utils.lab_schema import (
    IFNAME,
    IFNAME_RULE,
    LINK_NAME,
    LINK_NAME_RULE,
    NETNS,
    NETNS_RULE,
)

ROOT = None  # the machine's own (root) network namespace
LINK_LOCAL_V6 = ipaddress.ip_network('fe80::/10')
DEFAULT_METRIC = {4: 0, 6: 1024}  # what the kernel uses when none is given
CONNECTED_METRIC = {4: 0, 6: 256}  # metric of the kernel's prefix routes
NETNS_RUN_DIR = '/run/netns'  # where `ip netns add` bind-mounts each named namespace
MAC_RE = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$')
VNI_MAX = 0xFFFFFF  # a VXLAN Network Identifier is 24 bits (RFC 7348)
VXLAN_PORT = 4789  # VXLAN's UDP port, assigned by IANA (RFC 7348); the kernel's own default is 8472
MTU_MIN, MTU_MAX = 68, 65535
ZERO_MAC = '00:00:00:00:00:00'  # the FDB entry a vxlan floods by (head-end replication)


class TopologyError(Exception):
    """The declared topology is invalid; ``errors`` lists every problem."""

    def __init__(self, errors):
        super().__init__('; '.join(errors))
        self.errors = errors


class IpCommandError(Exception):
    """An ``ip`` command failed (or printed something unreadable)."""

    def __init__(self, argv, rc, stdout, stderr):
        super().__init__('%s failed with rc %s: %s' % (command_string(argv), rc, stderr.strip()))
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def command_string(argv):
    """How a command is shown to people: ``ip -n red link set lo up``, ``bridge fdb append ...``."""
    program = 'bridge' if os.path.basename(argv[0]) == 'bridge' else 'ip'
    return shlex.join([program] + list(argv[1:]))


def ns_label(ns):
    return 'the root namespace' if ns is ROOT else "namespace '%s'" % ns


def is_link_local(addr):
    return addr.version == 6 and addr.ip in LINK_LOCAL_V6


# --------------------------------------------------------------------------
# The declared topology
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class VxlanConfig:
    """What `ip link add NAME type vxlan ...` sets for good: a vxlan that differs is deleted and made again."""
    vni: int  # iproute2's `id`
    dev: str | None  # the underlay link
    local: object | None  # ipaddress address, the source of the encapsulated packets
    dstport: int
    learning: bool

    @property
    def family(self):
        """The family it sends over: an IPv6 local address makes it an IPv6 vxlan."""
        return self.local.version if self.local is not None else 4


@dataclass
class DeclaredLink:
    path: str  # argument path, e.g. "veth_pairs[0].peer"
    kind: str  # 'bridge', 'veth' or 'vxlan'
    name: str
    namespace: str | None
    addresses: list = field(default_factory=list)  # ipaddress interfaces
    master: str | None = None
    peer: DeclaredLink | None = None  # the other end of a veth pair
    mac: str | None = None  # lower-case; given only when the plan creates the link
    vxlan: VxlanConfig | None = None  # a vxlan's fixed settings (None when removing without them)
    remotes: list = field(default_factory=list)  # a vxlan's flood list: ipaddress addresses of the remote VTEPs
    mtu: int | None = None  # a vxlan's MTU; None leaves the kernel's choice alone


@dataclass
class DeclaredRoute:
    path: str
    namespace: str | None
    family: int
    dst: object  # ipaddress network; 0.0.0.0/0 or ::/0 for "default"
    via: object | None  # ipaddress address
    dev: str | None
    metric: int | None  # as declared; None lets the kernel pick
    onlink: bool = False  # the gateway is taken as directly reachable on dev (iproute2's `onlink`)

    @property
    def effective_metric(self):
        return DEFAULT_METRIC[self.family] if self.metric is None else self.metric

    @property
    def dst_text(self):
        return 'default' if self.dst.prefixlen == 0 else str(self.dst)


@dataclass
class Topology:
    state: str
    namespaces: list
    bridges: list
    veth_pairs: list  # (end, peer) tuples of DeclaredLink
    routes: list
    owned: set = field(default_factory=set)  # (namespace, name) of links the caller made earlier
    # The caller keeps a record of what it made (it passed `owned`, maybe empty):
    # a root bridge it did not make is not taken over when it holds other addresses.
    tracks_ownership: bool = False
    vxlans: list = field(default_factory=list)  # DeclaredLink of kind 'vxlan'

    @property
    def veth_ends(self):
        return [end for pair in self.veth_pairs for end in pair]

    @property
    def links(self):
        return self.bridges + self.veth_ends + self.vxlans

    def declares_link(self, namespace, name):
        return any(link.namespace == namespace and link.name == name for link in self.links)

    def owns(self, namespace, name):
        """The caller made this link earlier (option ``owned``): it may be replaced."""
        return (namespace, name) in self.owned


def _name_problem(pattern, name, what, rule):
    """A name checked against one of the lab declaration's patterns: None, or what is wrong and the rule."""
    if isinstance(name, str) and re.match(pattern, name):
        return None
    return "'%s' is not a valid %s; %s" % (name, what, rule)


def _link_name_problem(name):
    """The name of a link the plan makes (a bridge, a veth end, a vxlan): never 'lo'."""
    return _name_problem(LINK_NAME, name, 'link name', LINK_NAME_RULE)


def _ifname_problem(name):
    """The name of any interface, 'lo' included (a route's dev, a vxlan's underlay)."""
    return _name_problem(IFNAME, name, 'interface name', IFNAME_RULE)


def _netns_name_problem(name):
    return _name_problem(NETNS, name, 'namespace name', NETNS_RULE)


MAC_RULE = ('use a unicast MAC address of six colon-separated hexadecimal octets, the first one even, '
            'such as 02:42:ac:11:00:02')


def _mac_problem(text):
    if not isinstance(text, str) or not MAC_RE.match(text.strip()):
        return "'%s' is not a MAC address" % text
    first = int(text.strip()[:2], 16)
    if first & 1:
        return "'%s' is a multicast address (the first octet is odd)" % text
    if int(text.strip().replace(':', ''), 16) == 0:
        return "'%s' is the all-zero address" % text
    return None


def _parse_interface(text):
    """'192.168.15.1/24' -> IPv4Interface; None when it is not that form."""
    if not isinstance(text, str) or text.count('/') != 1:
        return None
    try:
        return ipaddress.ip_interface(text.strip())
    except ValueError:
        return None


def _declared(names):
    return ', '.join(names) if names else 'none'


def parse_topology(params):
    """Build a Topology from its parameters, or raise TopologyError listing every problem."""
    errors = []
    namespaces = []
    for i, item in enumerate(params.get('namespaces') or []):
        path = 'namespaces[%d].name' % i
        name = item['name']
        problem = _netns_name_problem(name)
        if problem:
            errors.append('%s: %s' % (path, problem))
        elif name in namespaces:
            errors.append("%s: '%s' is declared twice (also namespaces[%d].name); namespace names must be unique"
                          % (path, name, namespaces.index(name)))
        namespaces.append(name)

    # Removing may name a namespace it does not remove itself (a pair inside a
    # namespace that stays); building needs every namespace declared.
    removing = params.get('state') == 'absent'

    def check_namespace(path, value):
        if value is None:
            return
        if removing:
            problem = _netns_name_problem(value)
            if problem:
                errors.append('%s: %s' % (path, problem))
        elif value not in namespaces:
            errors.append("%s: '%s' is not a namespace declared in namespaces (declared: %s); "
                          "use null for the root namespace" % (path, value, _declared(namespaces)))

    def make_link(path, kind, item):
        link = DeclaredLink(path=path, kind=kind, name=item['name'], namespace=item.get('namespace'),
                            master=item.get('master'))
        problem = _link_name_problem(link.name)
        if problem:
            errors.append('%s.name: %s' % (path, problem))
        check_namespace(path + '.namespace', link.namespace)
        mac = item.get('mac')
        if mac is not None:
            problem = _mac_problem(mac)
            if problem:
                errors.append('%s.mac: %s; %s' % (path, problem, MAC_RULE))
            else:
                link.mac = mac.strip().lower()
        for k, text in enumerate(item.get('addresses') or []):
            addr = _parse_interface(text)
            if addr is None:
                errors.append("%s.addresses[%d]: '%s' is not an interface address in CIDR form; "
                              "use ADDRESS/PREFIXLEN such as 192.168.15.1/24 or fd00::1/64" % (path, k, text))
            else:
                link.addresses.append(addr)
        return link

    bridges = [make_link('bridges[%d]' % i, 'bridge', item)
               for i, item in enumerate(params.get('bridges') or [])]
    veth_pairs = []
    for i, item in enumerate(params.get('veth_pairs') or []):
        end = make_link('veth_pairs[%d]' % i, 'veth', item)
        peer = make_link('veth_pairs[%d].peer' % i, 'veth', item['peer'])
        end.peer, peer.peer = peer, end
        veth_pairs.append((end, peer))
    vxlans = [_parse_vxlan('vxlans[%d]' % i, item, make_link, errors, removing)
              for i, item in enumerate(params.get('vxlans') or [])]
    links = bridges + [end for pair in veth_pairs for end in pair] + vxlans

    # Interface names are unique per namespace, across bridges, veth ends and vxlans.
    seen = {}
    for link in links:
        key = (link.namespace, link.name)
        if key in seen:
            errors.append("%s.name: '%s' is already declared in %s by %s.name; "
                          "interface names must be unique within a namespace"
                          % (link.path, link.name, ns_label(link.namespace), seen[key]))
        else:
            seen[key] = link.path

    # A MAC address is declared once: two links with one address confuse
    # every switch and ARP cache that sees both.
    macs = {}
    for link in links:
        if link.mac is None:
            continue
        if link.mac in macs:
            errors.append("%s.mac: '%s' is already declared at %s.mac; each MAC address may be declared once"
                          % (link.path, link.mac, macs[link.mac]))
        else:
            macs[link.mac] = link.path

    # A master must be a bridge declared in the same namespace as the end.
    for link in links:
        if link.master is None:
            continue
        there = [b.name for b in bridges if b.namespace == link.namespace]
        if link.master not in there:
            errors.append("%s.master: '%s' is not a bridge declared in %s (declared there: %s)"
                          % (link.path, link.master, ns_label(link.namespace), _declared(there)))

    # The kernel takes one vxlan per VNI, UDP port and address family in a namespace
    # ("A VXLAN device with the specified VNI already exists"), whatever their underlays.
    used = {}
    for link in vxlans:
        if link.vxlan is None:
            continue
        key = (link.namespace, link.vxlan.vni, link.vxlan.dstport, link.vxlan.family)
        if key in used:
            errors.append('%s.vni: %d with dstport %d is already declared in %s by %s; the kernel takes one '
                          'vxlan per VNI and UDP port (and address family) in a namespace'
                          % (link.path, link.vxlan.vni, link.vxlan.dstport, ns_label(link.namespace), used[key]))
        else:
            used[key] = link.path

    # Each IP once; subnets of different links in one namespace must not overlap.
    placed = []  # (path, link, address)
    for link in links:
        for k, addr in enumerate(link.addresses):
            path = '%s.addresses[%d]' % (link.path, k)
            for other_path, other_link, other in placed:
                if other.ip == addr.ip:
                    errors.append('%s: IP %s is already declared at %s; each IP may be declared once'
                                  % (path, addr.ip, other_path))
                elif (other_link is not link and other_link.namespace == link.namespace
                      and other.version == addr.version and not is_link_local(addr)
                      and other.network.overlaps(addr.network)):
                    errors.append('%s: subnet %s overlaps %s of %s on another link in %s; '
                                  'links in one namespace need separate subnets'
                                  % (path, addr.network, other.network, other_path, ns_label(link.namespace)))
            placed.append((path, link, addr))

    routes = []
    for i, item in enumerate(params.get('routes') or []):
        route = _parse_route('routes[%d]' % i, item, errors, check_namespace)
        if route is None:
            continue
        for other in routes:
            if (other.namespace, other.family, other.dst, other.effective_metric) == \
                    (route.namespace, route.family, route.dst, route.effective_metric):
                errors.append('%s: duplicates %s (same namespace, dst and metric); '
                              'the kernel keeps one route per destination and metric' % (route.path, other.path))
                break
        if route.namespace is not ROOT and route.namespace in namespaces:
            _check_route_in_namespace(route, links, errors)
        routes.append(route)

    owned = set()
    for i, item in enumerate(params.get('owned') or []):
        path = 'owned[%d]' % i
        name, namespace = item['name'], item.get('namespace')
        problem = _link_name_problem(name)
        if problem:
            errors.append('%s.name: %s' % (path, problem))
        problem = _netns_name_problem(namespace) if namespace is not None else None
        if problem:
            errors.append('%s.namespace: %s' % (path, problem))
        owned.add((namespace, name))

    if errors:
        raise TopologyError(errors)
    return Topology(state=params.get('state') or 'present', namespaces=namespaces, bridges=bridges,
                    veth_pairs=veth_pairs, routes=routes, owned=owned,
                    tracks_ownership=params.get('owned') is not None, vxlans=vxlans)


VNI_RULE = 'a VXLAN Network Identifier (VNI) is an integer 1-%d (24 bits, RFC 7348)' % VNI_MAX
DSTPORT_RULE = 'a UDP port is an integer 1-65535 (VXLAN\'s is %d, assigned by IANA, RFC 7348)' % VXLAN_PORT
MTU_RULE = ('an MTU is an integer %d-%d, and a vxlan\'s at most its underlay\'s less 50 (IPv4) or 70 (IPv6)'
            % (MTU_MIN, MTU_MAX))


def _int_problem(value, low, high):
    if isinstance(value, bool) or not isinstance(value, int):
        return "'%s' is not an integer" % value
    if not low <= value <= high:
        return '%d is out of range' % value
    return None


def _parse_address(text):
    """'10.89.0.30' -> IPv4Address; None when it is not an IP address."""
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _parse_vxlan(path, item, make_link, errors, removing):
    """A DeclaredLink of kind 'vxlan'. Removing needs only its name (and namespace)."""
    link = make_link(path, 'vxlan', item)
    count = len(errors)
    vni, dev, dstport, learning, mtu = (item.get(k) for k in ('vni', 'dev', 'dstport', 'learning', 'mtu'))
    if vni is None:
        if not removing:
            errors.append('%s.vni: missing; %s' % (path, VNI_RULE))
    else:
        problem = _int_problem(vni, 1, VNI_MAX)
        if problem:
            errors.append('%s.vni: %s; %s' % (path, problem, VNI_RULE))
    if dev is None:
        if not removing:
            errors.append('%s.dev: missing; name the underlay link the encapsulated packets go out by, such as eth0'
                          % path)
    else:
        problem = _ifname_problem(dev)
        if problem:
            errors.append('%s.dev: %s' % (path, problem))
        elif dev == link.name:
            errors.append("%s.dev: '%s' is the vxlan itself; the underlay is another link, such as eth0" % (path, dev))
    dstport = VXLAN_PORT if dstport is None else dstport
    problem = _int_problem(dstport, 1, 65535)
    if problem:
        errors.append('%s.dstport: %s; %s' % (path, problem, DSTPORT_RULE))
    learning = True if learning is None else learning
    if not isinstance(learning, bool):
        errors.append("%s.learning: '%s' is not a boolean; use true (learn the remote MAC addresses from the "
                      "packets received) or false (iproute2's nolearning)" % (path, learning))
    if mtu is not None:
        problem = _int_problem(mtu, MTU_MIN, MTU_MAX)
        if problem:
            errors.append('%s.mtu: %s; %s' % (path, problem, MTU_RULE))
        else:
            link.mtu = mtu

    local = None
    if item.get('local') is not None:
        local = _parse_address(item['local'])
        if local is None:
            errors.append("%s.local: '%s' is not an IP address; use this machine's address on the underlay, "
                          "such as 10.89.0.31" % (path, item['local']))
        elif local.is_multicast or local.is_unspecified:
            errors.append('%s.local: %s is not a unicast address; use this machine\'s address on the underlay, '
                          'such as 10.89.0.31' % (path, local))
            local = None
    # The flood list: one family (the local address's when given), each remote once, never the local address.
    listed = {}  # address -> path
    first = ('%s.local' % path, local) if local is not None else None
    for k, text in enumerate(item.get('remotes') or []):
        where = '%s.remotes[%d]' % (path, k)
        addr = _parse_address(text)
        if addr is None:
            errors.append("%s: '%s' is not an IP address; list the underlay addresses of the other VTEPs, "
                          "such as 10.89.0.30" % (where, text))
        elif addr.is_unspecified:
            errors.append('%s: %s is the unspecified address; list the underlay addresses of the other VTEPs, '
                          'such as 10.89.0.30' % (where, addr))
        elif addr in listed:
            errors.append('%s: %s is already listed at %s; each remote VTEP is listed once'
                          % (where, addr, listed[addr]))
        elif local is not None and addr == local:
            errors.append('%s: %s is the local address (%s.local); a VTEP does not flood to itself'
                          % (where, addr, path))
        elif first is not None and addr.version != first[1].version:
            errors.append('%s: %s is IPv%d but %s is IPv%d (%s); a vxlan sends over one address family, so its '
                          'local address and remotes are all IPv4 or all IPv6'
                          % (where, addr, addr.version, first[0], first[1].version, first[1]))
        else:
            listed[addr] = where
            link.remotes.append(addr)
            first = first or (where, addr)
    if local is None and item.get('local') is None and any(a.version == 6 for a in link.remotes):
        errors.append('%s.local: missing while the remotes are IPv6; a vxlan without a local address sends over '
                      'IPv4, so give its IPv6 source address on the underlay' % path)
    if len(errors) == count and vni is not None and dev is not None:
        link.vxlan = VxlanConfig(vni=vni, dev=dev, local=local, dstport=dstport, learning=learning)
    return link


def _parse_route(path, item, errors, check_namespace):
    namespace, dst_text, via_text, dev, metric = (item.get(k) for k in ('namespace', 'dst', 'via', 'dev', 'metric'))
    onlink = item.get('onlink') or False
    count = len(errors)
    if not isinstance(onlink, bool):
        errors.append("%s.onlink: '%s' is not a boolean; use true (the gateway is reached on dev without a "
                      "covering subnet) or false" % (path, onlink))
    elif onlink and (via_text is None or dev is None):
        errors.append('%s.onlink: needs both via and dev (it has %s); an onlink route names its gateway and the link '
                      'it is reached on, such as 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink'
                      % (path, ' and '.join(k for k in ('via', 'dev') if item.get(k) is not None) or 'neither'))
    check_namespace(path + '.namespace', namespace)
    via = None
    if via_text is not None:
        try:
            via = ipaddress.ip_address(via_text.strip())
        except ValueError:
            errors.append("%s.via: '%s' is not an IP address; use a gateway address such as 192.168.15.5"
                          % (path, via_text))
    if via_text is None and dev is None:
        errors.append('%s: has neither via nor dev; give a gateway (via), an output link (dev), or both' % path)
    if dev is not None:
        problem = _ifname_problem(dev)
        if problem:
            errors.append('%s.dev: %s' % (path, problem))
    if metric is not None and not 0 <= metric <= 0xFFFFFFFF:
        errors.append('%s.metric: %d is out of range; a metric is 0-4294967295' % (path, metric))

    dst = None
    if dst_text.strip() == 'default':
        family = via.version if via is not None else 4
        dst = ipaddress.ip_network('0.0.0.0/0' if family == 4 else '::/0')
    else:
        try:
            dst = ipaddress.ip_network(dst_text.strip())
        except ValueError:
            try:
                network = ipaddress.ip_network(dst_text.strip(), strict=False)
                errors.append("%s.dst: '%s' is not a network address (host bits set; the network is %s); "
                              "use a network such as 192.168.1.0/24 or the word 'default'" % (path, dst_text, network))
            except ValueError:
                errors.append("%s.dst: '%s' is not a network in CIDR form; "
                              "use a network such as 192.168.1.0/24 or the word 'default'" % (path, dst_text))
    if dst is not None and via is not None and dst.version != via.version:
        errors.append('%s.via: %s is IPv%d but dst %s is IPv%d; a gateway must be of the family of its destination'
                      % (path, via, via.version, dst_text, dst.version))
    if len(errors) != count or dst is None:
        return None
    return DeclaredRoute(path=path, namespace=namespace, family=dst.version, dst=dst, via=via, dev=dev,
                         metric=metric, onlink=onlink)


def _check_route_in_namespace(route, links, errors):
    """In a namespace the topology builds, it knows every link: check what the kernel would refuse."""
    here = [link for link in links if link.namespace == route.namespace]
    if route.dev is not None and route.dev != 'lo' and route.dev not in [link.name for link in here]:
        errors.append("%s.dev: '%s' is not a link declared in %s (declared there: %s)"
                      % (route.path, route.dev, ns_label(route.namespace), _declared([link.name for link in here])))
        return
    if route.via is None or (route.via.version == 6 and route.via.is_link_local) or route.onlink:
        return  # an onlink gateway needs no subnet: it is taken as reachable on dev
    if route.dev is not None:
        here = [link for link in here if link.name == route.dev]
    subnets = [addr.network for link in here for addr in link.addresses if addr.version == route.via.version]
    if not any(route.via in subnet for subnet in subnets):
        where = "link '%s'" % route.dev if route.dev else 'the links of %s' % ns_label(route.namespace)
        errors.append('%s.via: %s is not inside any subnet declared on %s (declared: %s); '
                      'the kernel would refuse this gateway'
                      % (route.path, route.via, where, _declared([str(s) for s in subnets])))


# --------------------------------------------------------------------------
# The state as found (and as the planner expects it to become)
# --------------------------------------------------------------------------

@dataclass
class Link:
    name: str
    ifindex: int | None = None
    kind: str | None = None  # linkinfo.info_kind; None for lo and plain devices
    up: bool = False
    master: str | None = None
    addresses: list = field(default_factory=list)
    peer: tuple | None = None  # (namespace, name) of the veth peer when it is known
    mac: str | None = None  # link-layer address, lower-case
    # raw peer fields from `ip -j -d link show`, used to find the peer
    peer_name: str | None = None  # "link": the peer is in the same namespace
    peer_index: int | None = None  # "link_index": the peer's ifindex in its namespace
    peer_netnsid: int | None = None  # "link_netnsid": that namespace's id as seen from here
    mtu: int | None = None  # None: not known (a link the plan makes, until it sets one)
    vxlan: VxlanConfig | None = None  # a vxlan's settings, from linkinfo.info_data
    remotes: list = field(default_factory=list)  # a vxlan's flood list (read for declared vxlans only)
    stp: bool = False  # a bridge's spanning tree (info_data.stp_state != 0)


@dataclass
class Route:
    family: int
    dst: object
    gateway: object | None
    dev: str | None
    metric: int
    type: str = 'unicast'
    certain: bool = True  # False once a planned address change may have removed it
    onlink: bool = False  # "flags": ["onlink"]


@dataclass
class NetState:
    namespaces: set  # named namespaces that exist (as listed by `ip netns list`, stale ones included)
    links: dict  # namespace -> {name: Link}, for each namespace read
    routes: dict  # namespace -> [Route]
    stale: set = field(default_factory=set)  # listed names that are no namespace any more (never read)

    def link(self, namespace, name):
        return self.links.get(namespace, {}).get(name)


def run_json(run, argv):
    rc, out, err = run(argv)
    if rc != 0:
        raise IpCommandError(argv, rc, out, err)
    if not out.strip():  # `ip -j netns list` prints nothing when there is no namespace
        return []
    try:
        return json.loads(out)
    except ValueError as exc:
        raise IpCommandError(argv, rc, out, 'cannot parse the JSON output: %s' % exc)


def ip_argv(namespace, *args):
    return ['ip'] + (['-n', namespace] if namespace is not ROOT else []) + list(args)


def bridge_argv(namespace, *args):
    """iproute2's bridge command, which takes -n NS as ip does."""
    return ['bridge'] + (['-n', namespace] if namespace is not ROOT else []) + list(args)


def _read_links(run, namespace):
    """Links with their kind, master, peer and addresses: `ip -j -d addr show`
    prints all of it in one read."""
    links = {}
    for item in run_json(run, ip_argv(namespace, '-j', '-d', 'addr', 'show')):
        linkinfo = item.get('linkinfo') or {}
        links[item['ifname']] = Link(
            name=item['ifname'], ifindex=item.get('ifindex'), kind=linkinfo.get('info_kind'),
            up='UP' in item.get('flags', []), master=item.get('master'), peer_name=item.get('link'),
            peer_index=item.get('link_index'), peer_netnsid=item.get('link_netnsid'),
            mac=(item.get('address') or '').lower() or None, mtu=item.get('mtu'),
            vxlan=_vxlan_found(linkinfo) if linkinfo.get('info_kind') == 'vxlan' else None,
            stp=bool((linkinfo.get('info_data') or {}).get('stp_state', 0)) if linkinfo.get('info_kind') == 'bridge'
            else False)
        links[item['ifname']].addresses = [
            ipaddress.ip_interface('%s/%s' % (a['local'], a['prefixlen']))
            for a in item.get('addr_info', []) if a.get('family') in ('inet', 'inet6')]
    return links


def _vxlan_found(linkinfo):
    """A vxlan's settings from `ip -d -j` ("info_data": id, local or local6, link, port, learning)."""
    data = linkinfo.get('info_data') or {}
    local = data.get('local') or data.get('local6')
    return VxlanConfig(vni=data.get('id'), dev=data.get('link'), local=ipaddress.ip_address(local) if local else None,
                       dstport=data.get('port'), learning=data.get('learning', True))


def _read_flood_list(run, namespace, name):
    """The remote VTEPs of a vxlan: the `dst` of its all-zeros FDB entries (`bridge -j fdb show dev NAME`)."""
    remotes = []
    for entry in run_json(run, bridge_argv(namespace, '-j', 'fdb', 'show', 'dev', name)):
        if entry.get('mac') == ZERO_MAC and entry.get('dst'):
            addr = ipaddress.ip_address(entry['dst'])
            if addr not in remotes:
                remotes.append(addr)
    return remotes


def _parse_route_entry(family, item):
    dst = item['dst']
    if dst == 'default':
        dst = '0.0.0.0/0' if family == 4 else '::/0'
    gateway = item.get('gateway')
    return Route(family=family, dst=ipaddress.ip_network(dst, strict=False),
                 gateway=ipaddress.ip_address(gateway) if gateway else None, dev=item.get('dev'),
                 metric=item.get('metric', 0), type=item.get('type', 'unicast'),
                 onlink='onlink' in item.get('flags', []))


def netns_mounted(name):
    """Whether the entry NAME of `ip netns list` is still a namespace.

    `ip netns add` bind-mounts the namespace on /run/netns/NAME. Once that
    mount is gone (`umount /run/netns/NAME`) the empty file stays listed, and
    every `ip -n NAME ...` fails with "Invalid argument". A name whose file
    has gone too (deleted since it was listed) is not called stale here.
    """
    path = os.path.join(NETNS_RUN_DIR, name)
    return os.path.ismount(path) or not os.path.lexists(path)


def read_state(run, topology, is_mounted=None):
    """Read the namespaces, links, addresses and routes that matter to `topology`, and the
    flood lists of its vxlans (with ``bridge -j fdb show``).

    `is_mounted(name) -> bool` tells a listed namespace from a stale entry
    (default: ``netns_mounted``). Stale entries are recorded in ``state.stale``
    and not read.
    """
    if is_mounted is None:
        is_mounted = netns_mounted
    listed = run_json(run, ['ip', '-j', 'netns', 'list'])
    existing = {item['name'] for item in listed}
    stale = {name for name in existing if not is_mounted(name)}
    nsid_names = {ROOT: {item['id']: item['name'] for item in listed if 'id' in item}}
    state = NetState(namespaces=existing, links={}, routes={}, stale=stale)
    involved = list(topology.namespaces)
    for namespace in [link.namespace for link in topology.links] + [route.namespace for route in topology.routes]:
        if namespace is not ROOT and namespace not in involved:
            involved.append(namespace)
    if topology.state == 'absent':
        # Removing a pair must know where each end's peer is, wherever it is.
        involved += sorted(existing.difference(involved))
    for namespace in [ROOT] + [ns for ns in involved if ns in existing and ns not in stale]:
        state.links[namespace] = _read_links(run, namespace)
        if namespace is not ROOT:  # ids as seen from this namespace, read after the links that use them
            nsid_names[namespace] = {item['id']: item['name'] for item in
                                     run_json(run, ip_argv(namespace, '-j', 'netns', 'list')) if 'id' in item}
        state.routes[namespace] = [_parse_route_entry(4, item) for item in
                                   run_json(run, ip_argv(namespace, '-j', 'route', 'show'))]
        if any(r.namespace == namespace and r.family == 6 for r in topology.routes):
            state.routes[namespace] += [_parse_route_entry(6, item) for item in
                                        run_json(run, ip_argv(namespace, '-6', '-j', 'route', 'show'))]
    for namespace, links in state.links.items():
        for link in links.values():
            link.peer = _find_peer(state, nsid_names, namespace, link)
    for vxlan in topology.vxlans:
        found = state.link(vxlan.namespace, vxlan.name)
        if found is not None and found.kind == 'vxlan':
            found.remotes = _read_flood_list(run, vxlan.namespace, vxlan.name)
    return state


def _find_peer(state, nsid_names, namespace, link):
    """Where the veth peer of `link` is, or None when it cannot be told.

    iproute2 prints "link": NAME when the peer is in the same namespace, and
    "link_index" (the peer's ifindex, which is only unique inside the peer's
    namespace) plus "link_netnsid" when it is in another one.  A peer in
    another namespace must point back at us and be in the namespace that
    link_netnsid names (as listed by `ip -n NS netns list`); an id without a
    name there can only be the root namespace among those read.
    """
    if link.kind != 'veth':
        return None
    if link.peer_name is not None:
        return (namespace, link.peer_name) if link.peer_name in state.links[namespace] else None
    if link.peer_index is None:
        return None
    names = nsid_names.get(namespace, {})
    found = []
    for other_ns, others in state.links.items():
        if other_ns == namespace:
            continue
        if link.peer_netnsid is not None and names.get(link.peer_netnsid) != other_ns:
            continue  # an unnamed id can only be the root namespace among those read
        for other in others.values():
            if other.kind == 'veth' and other.ifindex == link.peer_index and other.peer_index == link.ifindex:
                found.append((other_ns, other.name))
    return found[0] if len(found) == 1 else None


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------

class Planner:
    """Emits ip (and bridge) commands and applies their expected effect to a model of the state."""

    def __init__(self, state):
        self.model = copy.deepcopy(state)
        self.commands = []

    def _emit(self, namespace, *args):
        self.commands.append(ip_argv(namespace, *args))

    def _emit_bridge(self, namespace, *args):
        self.commands.append(bridge_argv(namespace, *args))

    # -- namespaces --------------------------------------------------------
    def netns_add(self, name):
        self._emit(ROOT, 'netns', 'add', name)
        self.model.namespaces.add(name)
        self.model.links[name] = {'lo': Link(name='lo', ifindex=1)}
        self.model.routes[name] = []

    def netns_del(self, name):
        self._emit(ROOT, 'netns', 'del', name)
        for link_name in list(self.model.links.get(name, {})):
            self._forget_link(name, link_name)
        self.model.namespaces.discard(name)
        self.model.stale.discard(name)
        self.model.links.pop(name, None)
        self.model.routes.pop(name, None)

    # -- links -------------------------------------------------------------
    def bridge_add(self, namespace, name, mac=None):
        self._emit(namespace, 'link', 'add', name, *_address_args(mac), 'type', 'bridge')
        self.model.links[namespace][name] = Link(name=name, kind='bridge', mac=mac)

    def bridge_stp_off(self, namespace, name):
        self._emit(namespace, 'link', 'set', 'dev', name, 'type', 'bridge', 'stp_state', '0')
        self.model.links[namespace][name].stp = False

    def veth_add(self, end, peer):
        args = ['link', 'add', end.name] + _address_args(end.mac)
        if end.namespace is not ROOT:
            args += ['netns', end.namespace]
        args += ['type', 'veth', 'peer', 'name', peer.name] + _address_args(peer.mac)
        if peer.namespace is not ROOT:
            args += ['netns', peer.namespace]
        self._emit(ROOT, *args)
        self.model.links[end.namespace][end.name] = Link(name=end.name, kind='veth', mac=end.mac,
                                                         peer=(peer.namespace, peer.name))
        self.model.links[peer.namespace][peer.name] = Link(name=peer.name, kind='veth', mac=peer.mac,
                                                           peer=(end.namespace, end.name))

    def vxlan_add(self, vxlan):
        config = vxlan.vxlan
        args = ['link', 'add', vxlan.name] + _address_args(vxlan.mac)
        args += ['type', 'vxlan', 'id', str(config.vni), 'dev', config.dev]
        if config.local is not None:
            args += ['local', str(config.local)]
        args += ['dstport', str(config.dstport)]
        if not config.learning:
            args.append('nolearning')
        self._emit(vxlan.namespace, *args)
        self.model.links[vxlan.namespace][vxlan.name] = Link(name=vxlan.name, kind='vxlan', mac=vxlan.mac,
                                                             vxlan=config)

    def flood_add(self, namespace, name, remote):
        self._emit_bridge(namespace, 'fdb', 'append', ZERO_MAC, 'dev', name, 'dst', str(remote))
        self.model.links[namespace][name].remotes.append(remote)

    def flood_del(self, namespace, name, remote):
        self._emit_bridge(namespace, 'fdb', 'del', ZERO_MAC, 'dev', name, 'dst', str(remote))
        self.model.links[namespace][name].remotes.remove(remote)

    def set_mtu(self, namespace, name, mtu):
        self._emit(namespace, 'link', 'set', name, 'mtu', str(mtu))
        self.model.links[namespace][name].mtu = mtu

    def link_del(self, namespace, name):
        self._emit(namespace, 'link', 'del', name)
        self._forget_link(namespace, name)

    def _forget_link(self, namespace, name):
        """The kernel side effects of a link going away."""
        link = self.model.links[namespace].pop(name, None)
        if link is None:
            return
        self.model.routes[namespace] = [r for r in self.model.routes[namespace] if r.dev != name]
        for port in self.model.links[namespace].values():
            if port.master == name:
                port.master = None
        # The kernel deletes the vxlans whose underlay this was.
        for other in list(self.model.links[namespace].values()):
            if other.kind == 'vxlan' and other.vxlan is not None and other.vxlan.dev == name:
                self._forget_link(namespace, other.name)
        if link.peer is not None:
            peer = self.model.link(*link.peer)
            if peer is not None and peer.peer == (namespace, name):
                self._forget_link(*link.peer)

    def set_master(self, namespace, name, master):
        if master is None:
            self._emit(namespace, 'link', 'set', name, 'nomaster')
        else:
            self._emit(namespace, 'link', 'set', name, 'master', master)
        self.model.links[namespace][name].master = master

    def link_up(self, namespace, name):
        self._emit(namespace, 'link', 'set', name, 'up')
        link = self.model.links[namespace][name]
        link.up = True
        for addr in link.addresses:
            self._add_connected_route(namespace, link, addr)

    # -- addresses ---------------------------------------------------------
    def addr_add(self, namespace, name, addr):
        self._emit(namespace, 'addr', 'add', str(addr), 'dev', name)
        link = self.model.links[namespace][name]
        link.addresses.append(addr)
        if link.up:
            self._add_connected_route(namespace, link, addr)

    def addr_del(self, namespace, name, addr):
        self._emit(namespace, 'addr', 'del', str(addr), 'dev', name)
        self.model.links[namespace][name].addresses.remove(addr)
        # Depending on what is left on the link (and on sysctls such as
        # promote_secondaries), the kernel may drop routes through it.
        for route in self.model.routes[namespace]:
            if route.dev == name:
                route.certain = False

    def _add_connected_route(self, namespace, link, addr):
        if is_link_local(addr) or (addr.version == 4 and addr.network.prefixlen == 32):
            return  # the kernel makes no prefix route for an IPv4 /32 (10.244.1.0/32 on a vxlan)
        for route in self.model.routes[namespace]:
            if route.dst == addr.network and route.dev == link.name and route.gateway is None:
                route.certain = True
                return
        self.model.routes[namespace].append(Route(family=addr.version, dst=addr.network, gateway=None,
                                                  dev=link.name, metric=CONNECTED_METRIC[addr.version]))

    # -- routes ------------------------------------------------------------
    def route_set(self, route, verb):
        self._emit(route.namespace, *_route_args(route, verb))
        routes = self.model.routes[route.namespace]
        found = find_route(self.model, route)
        if found is not None:
            routes.remove(found)
        dev = route.dev
        if dev is None:  # the kernel picks the link whose subnet holds the gateway
            dev = next((r.dev for r in routes if r.gateway is None and r.family == route.family
                        and route.via in r.dst), None)
        routes.append(Route(family=route.family, dst=route.dst, gateway=route.via, dev=dev,
                            metric=route.effective_metric, onlink=route.onlink))

    def route_del(self, route, found):
        self._emit(route.namespace, *_route_args(route, 'del'))
        self.model.routes[route.namespace].remove(found)


def _address_args(mac):
    return ['address', mac] if mac is not None else []


def _route_args(route, verb):
    args = ['-6'] if route.family == 6 else []
    args += ['route', verb, route.dst_text]
    if route.via is not None:
        args += ['via', str(route.via)]
    if route.dev is not None:
        args += ['dev', route.dev]
    if route.metric is not None:
        args += ['metric', str(route.metric)]
    if route.onlink:
        args.append('onlink')
    return args


def find_route(state, route):
    """The main-table route with the declared route's destination and metric.

    Destinations are compared as networks: "default" is read and declared as
    0.0.0.0/0 (or ::/0), so the three spellings are one route. Several routes
    can share them (IPv6 keeps one per link); prefer the one that already
    matches the declaration.
    """
    candidates = [r for r in state.routes.get(route.namespace, [])
                  if r.family == route.family and r.dst == route.dst and r.metric == route.effective_metric]
    for candidate in candidates:
        if route_matches(candidate, route):
            return candidate
    return candidates[0] if candidates else None


def route_matches(found, route):
    return (found.type == 'unicast' and found.gateway == route.via and found.onlink == route.onlink
            and (route.dev is None or found.dev == route.dev))


def pair_ok(state, end, peer):
    """Both ends exist where declared, are veths, and are each other's peer."""
    a = state.link(end.namespace, end.name)
    b = state.link(peer.namespace, peer.name)
    return (a is not None and b is not None and a.kind == 'veth' and b.kind == 'veth'
            and a.peer == (peer.namespace, peer.name) and b.peer == (end.namespace, end.name))


def _undeclared_addresses_kept(link, current):
    """IPv6 link-local addresses the kernel made are left alone."""
    return [a for a in current if not (is_link_local(a) and a not in link.addresses)]


def _is_pair_end(found, other_name, topology):
    """A veth the topology may take over: paired with `other_name`, or with an
    interface inside one of the topology's own namespaces."""
    return (found is not None and found.kind == 'veth' and found.peer is not None
            and (found.peer[1] == other_name or found.peer[0] in topology.namespaces))


def foreign_root_links(topology, state):
    """Declared root-namespace links whose name an interface the lab cannot own already has.

    Links inside a declared namespace belong to the topology and may be
    replaced. In the root namespace a name clash is refused instead: the
    interface may be the one Ansible reaches the machine through (a container's
    eth0 is a veth whose peer sits on the host), or a bridge another program
    made and addressed (docker0, a CNI bridge). A bridge whose addresses are
    all declared (one built by hand, as a lesson does) is taken over. Links
    the caller made earlier (``topology.owned``) are never refused.
    """
    errors = []
    for bridge in topology.bridges:
        if bridge.namespace is not ROOT or topology.owns(ROOT, bridge.name):
            continue
        found = state.link(ROOT, bridge.name)
        if found is None:
            continue
        if found.kind != 'bridge':
            errors.append("%s.name: '%s' already exists in the root namespace as a %s; choose another name "
                          "(the lab replaces only its own bridges there)" % (bridge.path, bridge.name, found.kind))
            continue
        if not topology.tracks_ownership:
            continue  # no record of what the caller made: the declared addresses are made exact
        present = [a for a in found.addresses if not is_link_local(a)]
        undeclared = [a for a in present if a not in bridge.addresses]
        if undeclared:
            which = ('which this topology does not declare' if len(undeclared) == len(present) else
                     'of which this topology does not declare %s' % ', '.join(str(a) for a in undeclared))
            errors.append("%s.name: '%s' already exists in the root namespace with %s, %s; it was not made here: "
                          "remove it (ip link del %s) or choose another name"
                          % (bridge.path, bridge.name, ', '.join(str(a) for a in present), which, bridge.name))
    for vxlan in topology.vxlans:
        if vxlan.namespace is not ROOT or topology.owns(ROOT, vxlan.name):
            continue
        found = state.link(ROOT, vxlan.name)
        if found is None:
            continue
        if found.kind != 'vxlan':
            errors.append("%s.name: '%s' already exists in the root namespace as a %s; choose another name "
                          "(the lab replaces only its own vxlans there)"
                          % (vxlan.path, vxlan.name, found.kind or 'device without a kind (physical or loopback)'))
            continue
        if not topology.tracks_ownership:
            continue  # no record of what the caller made: the vxlan is made as declared
        present = [a for a in found.addresses if not is_link_local(a)]
        undeclared = [a for a in present if a not in vxlan.addresses]
        if undeclared or (vxlan.vxlan is not None and found.vxlan != vxlan.vxlan):
            what = ('with %s, not declared here' % ', '.join(str(a) for a in undeclared) if undeclared
                    else 'with other settings (%s)' % _vxlan_text(found.vxlan))
            errors.append("%s.name: '%s' already exists in the root namespace %s; it was not made here: "
                          "remove it (ip link del %s) or choose another name"
                          % (vxlan.path, vxlan.name, what, vxlan.name))
    for end, peer in topology.veth_pairs:
        for link, other in ((end, peer), (peer, end)):
            found = state.link(ROOT, link.name) if link.namespace is ROOT else None
            if found is not None and not topology.owns(ROOT, link.name) \
                    and not _is_pair_end(found, other.name, topology):
                errors.append("%s.name: '%s' already exists in the root namespace and is not a veth paired with "
                              "'%s'; choose another name (the lab replaces only its own pairs there)"
                              % (link.path, link.name, other.name))
    return errors


def plan_present(topology, state):
    errors = foreign_root_links(topology, state)
    if errors:
        raise TopologyError(errors)
    planner = Planner(state)
    model = planner.model

    for name in topology.namespaces:
        if name in model.stale:  # listed, but no namespace is mounted there any more
            planner.netns_del(name)
        if name not in model.namespaces:
            planner.netns_add(name)
    for name in topology.namespaces:
        lo = model.link(name, 'lo')
        if lo is None or not lo.up:
            planner.link_up(name, 'lo')

    for bridge in topology.bridges:
        found = model.link(bridge.namespace, bridge.name)
        if found is not None and found.kind != 'bridge':
            planner.link_del(bridge.namespace, bridge.name)
        if found is None or found.kind != 'bridge':
            planner.bridge_add(bridge.namespace, bridge.name, bridge.mac)
        elif found.stp:
            # A bridge made with STP on holds each new port in listening and learning for about 30 s
            # (2 x forward_delay, 15 s by default): the lessons' bridges have it off, as `ip link add` makes them.
            planner.bridge_stp_off(bridge.namespace, bridge.name)

    for end, peer in topology.veth_pairs:
        if pair_ok(model, end, peer):
            continue
        # Repair: remove whatever ends of these names exist where they are
        # declared (in the root namespace, only what foreign_root_links let
        # through: ends of this pair, or links in topology.owned), and halves
        # of this very pair left in the root namespace (created there by hand
        # and never moved), unless something else declares them. Any other
        # root interface of that name is not ours.
        for link, other in ((end, peer), (peer, end)):
            if model.link(link.namespace, link.name) is not None:
                planner.link_del(link.namespace, link.name)
            stray = model.link(ROOT, link.name)
            if (link.namespace is not ROOT and _is_pair_end(stray, other.name, topology)
                    and not topology.declares_link(ROOT, link.name)):
                planner.link_del(ROOT, link.name)
        planner.veth_add(end, peer)

    for link in topology.veth_ends:
        found = model.link(link.namespace, link.name)
        if found.master != link.master:
            planner.set_master(link.namespace, link.name, link.master)

    _plan_vxlans(topology, planner)

    for link in topology.links:
        found = model.link(link.namespace, link.name)
        current = _undeclared_addresses_kept(link, found.addresses)
        remove = [a for a in current if a not in link.addresses]
        # Deleting a primary IPv4 address (the first of its subnet) also
        # deletes the secondaries of that subnet unless promote_secondaries
        # is set: delete those explicitly too, secondaries first, and add
        # them back.
        primaries = [a for a in remove if a.version == 4
                     and next(c for c in current if c.version == 4 and c.network == a.network) == a]
        at_risk = [a for a in current if a in link.addresses and a.version == 4
                   and any(p.network == a.network for p in primaries)]
        remove += at_risk
        for addr in sorted(remove, key=current.index, reverse=True):
            planner.addr_del(link.namespace, link.name, addr)
        for addr in link.addresses:
            if addr not in found.addresses:
                planner.addr_add(link.namespace, link.name, addr)

    for link in topology.links:
        if not model.link(link.namespace, link.name).up:
            planner.link_up(link.namespace, link.name)

    # Validation could not check gateways of root-namespace routes (the root
    # namespace has links the topology does not declare); now that the
    # addresses the plan leaves are known, refuse a gateway the kernel would
    # reject, before any command runs.
    errors = []
    for route in topology.routes:
        if route.namespace is ROOT and route.via is not None and route.dev is None:
            subnets = [a.network for link in model.links.get(ROOT, {}).values() for a in link.addresses
                       if a.version == route.via.version]
            if not any(route.via in subnet for subnet in subnets):
                errors.append("%s.via: %s is in no subnet of the root namespace (%s); the gateway must be on a "
                              "connected network" % (route.path, route.via,
                                                     ', '.join(sorted({str(n) for n in subnets})) or 'none'))
    if errors:
        raise TopologyError(errors)

    for route in topology.routes:
        found = find_route(model, route)
        if found is None:
            planner.route_set(route, 'add')
        elif not found.certain or not route_matches(found, route):
            planner.route_set(route, 'replace')
    return planner


def _vxlan_text(config):
    """A vxlan's settings as iproute2 spells them: 'id 42 dev eth0 local 10.89.0.31 dstport 4789'."""
    text = 'id %s dev %s' % (config.vni, config.dev)
    if config.local is not None:
        text += ' local %s' % config.local
    return text + ' dstport %s%s' % (config.dstport, '' if config.learning else ' nolearning')


def _plan_vxlans(topology, planner):
    """Make each vxlan as declared (after the links it may lie over), with its flood list and MTU.

    Its settings cannot be changed in place: a vxlan that differs is deleted and
    made again. Its underlay must exist by now (made by hand, or declared here).
    """
    model = planner.model
    errors = []
    for vxlan in topology.vxlans:
        dev = vxlan.vxlan.dev
        if model.link(vxlan.namespace, dev) is None:
            there = sorted(model.links.get(vxlan.namespace, {}))
            errors.append("%s.dev: '%s' does not exist in %s (links there: %s); the underlay link must exist "
                          "before its vxlan is made: create it, or declare it in this topology"
                          % (vxlan.path, dev, ns_label(vxlan.namespace), _declared(there)))
    if errors:
        raise TopologyError(errors)
    for vxlan in topology.vxlans:
        found = model.link(vxlan.namespace, vxlan.name)
        # The MAC too: the other tunnel ends learn it, and one shared by two nodes loses their traffic.
        if found is not None and (found.kind != 'vxlan' or found.vxlan != vxlan.vxlan
                                  or (vxlan.mac is not None and found.mac != vxlan.mac)):
            planner.link_del(vxlan.namespace, vxlan.name)
            found = None
        if found is None:
            planner.vxlan_add(vxlan)
            found = model.link(vxlan.namespace, vxlan.name)
        for remote in list(found.remotes):
            if remote not in vxlan.remotes:
                planner.flood_del(vxlan.namespace, vxlan.name, remote)
        for remote in vxlan.remotes:
            if remote not in found.remotes:
                planner.flood_add(vxlan.namespace, vxlan.name, remote)
        if vxlan.mtu is not None and found.mtu != vxlan.mtu:
            planner.set_mtu(vxlan.namespace, vxlan.name, vxlan.mtu)


def plan_absent(topology, state):
    planner = Planner(state)
    model = planner.model

    for route in topology.routes:
        found = find_route(model, route)
        if found is not None and route_matches(found, route):
            planner.route_del(route, found)
    # A vxlan goes before the links it may lie over (which would take it along).
    for vxlan in topology.vxlans:
        found = model.link(vxlan.namespace, vxlan.name)
        if found is not None and found.kind == 'vxlan':
            planner.link_del(vxlan.namespace, vxlan.name)
    # Deleting one end takes its peer along. An end whose peer has another name,
    # or sits in an unnamed namespace (a container's), belongs to another pair and
    # stays, unless the caller made it (topology.owned) and its peer cannot be
    # found (its namespace was deleted while a process still held it). The
    # peer's namespace is not compared, so a pair left half-moved by hand is
    # still removed.
    for link in topology.veth_ends:
        found = model.link(link.namespace, link.name)
        if found is None or found.kind != 'veth':
            continue
        if (found.peer is not None and found.peer[1] == link.peer.name) or \
                (found.peer is None and topology.owns(link.namespace, link.name)):
            planner.link_del(link.namespace, link.name)
    for bridge in topology.bridges:
        found = model.link(bridge.namespace, bridge.name)
        if found is not None and found.kind == 'bridge':
            planner.link_del(bridge.namespace, bridge.name)
    for name in topology.namespaces:
        if name in model.namespaces:  # stale entries too
            planner.netns_del(name)
    return planner
