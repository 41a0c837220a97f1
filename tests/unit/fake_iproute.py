# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A TEST DOUBLE of iproute2's ``ip`` command, for unit tests only.

``FakeIproute`` is not iproute2 and changes nothing on the machine.  It is an
in-memory model of a few kernel objects (named network namespaces, links with
kind/ifindex/master/flags/veth peer, addresses, main-table routes) that
answers, as ``fake(argv) -> (rc, stdout, stderr)``, exactly the argv forms
module_utils/topology.py reads and plans for namespaces, bridges, veth pairs,
addresses and routes (VXLAN links and their flood lists are not modelled:
test_vxlan_topology.py answers those reads from canned output):

    ip [-n NS] [-6] -j [-d] link|addr|route show     ip [-n NS] -j netns list
    ip netns add|del NAME
    ip [-n NS] link add NAME type bridge|dummy
    ip [-n NS] link add NAME [netns NS] type veth peer name PEER [netns NS]
    ip [-n NS] link del NAME
    ip [-n NS] link set DEV up|down|nomaster|master BR
    ip [-n NS] addr add|del CIDR dev DEV
    ip [-n NS] [-6] route add|replace|del DST [via GW] [dev DEV] [metric N]

JSON output has the shapes iproute2 6.x prints (``ifname``, ``ifindex``,
``flags``, ``master``, ``link`` for a veth peer in the same namespace and
``link_index`` + ``link_netnsid`` for one in another, ``linkinfo.info_kind``;
``addr_info`` entries; route ``dst``/``gateway``/``dev``/``metric``);
``ip -j netns list`` prints nothing at all when there is no namespace.

Kernel side effects it models: ifindexes are allocated per namespace (so
ends in different namespaces often share one); deleting a veth end deletes
its peer; ``ip netns del`` destroys the links inside (and their peers);
deleting a link drops its routes and detaches its bridge ports; an address
on an UP link gets its connected route (and bringing a link up adds them);
bringing a link up adds an IPv6 link-local address; deleting a primary IPv4
address deletes the secondaries of its subnet (promote_secondaries=0), and
deleting the last IPv4 address of a link flushes the IPv4 routes through it;
``route add`` with a gateway outside every connected subnet fails with rc 2
and "Nexthop has invalid gateway".

Every call is kept in ``calls`` and every mutating command, as the string a
person would type, in ``mutations``.  Anything else raises
``UnsupportedCommand`` so that a test fails loudly.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass, field

ROOT = None
FOREVER = 4294967295


class UnsupportedCommand(AssertionError):
    pass


class IpError(Exception):
    def __init__(self, rc, message):
        super().__init__(message)
        self.rc = rc
        self.message = message


@dataclass
class FakeLink:
    name: str
    ifindex: int
    kind: str | None  # 'veth', 'bridge', 'dummy'; None for lo
    mac: str
    up: bool = False
    master: str | None = None
    peer: tuple | None = None  # (namespace, name)
    addresses: list = field(default_factory=list)  # ipaddress interfaces, in kernel order


@dataclass
class FakeRoute:
    family: int
    dst: object
    dev: str
    metric: int
    gateway: object | None = None
    protocol: str | None = None  # None = "boot", which iproute2 does not print
    scope: str | None = None
    prefsrc: object | None = None


@dataclass
class FakeNetns:
    links: dict = field(default_factory=dict)
    routes: list = field(default_factory=list)
    nsids: dict = field(default_factory=dict)  # other namespace -> id, as seen from here
    next_ifindex: int = 1


def _not_found(name):
    return IpError(1, 'Cannot find device "%s"' % name)


FILE_EXISTS = IpError(2, 'RTNETLINK answers: File exists')


class FakeIproute:
    """In-memory stand-in for the ``ip`` binary; call it with an argv list."""

    def __init__(self, uplink=True):
        self.netns = {ROOT: FakeNetns()}
        self.named = []  # named namespaces, in creation order
        self.calls = []
        self.mutations = []
        self._macs = 0
        self._new_link(ROOT, 'lo', None)
        self._set_up(ROOT, 'lo')
        if uplink:  # the machine's own uplink, which no lab declares
            self.setup('link add eth0 type dummy', 'addr add 10.0.2.15/24 dev eth0', 'link set eth0 up',
                       'route add default via 10.0.2.2')

    # ------------------------------------------------------------------
    # Helpers for tests
    # ------------------------------------------------------------------
    def setup(self, *lines):
        """Run command lines ("netns add red", ...) that must succeed, without recording them."""
        for line in lines:
            saved = (list(self.calls), list(self.mutations))
            rc, _out, err = self(['ip'] + shlex.split(line))
            self.calls, self.mutations = saved
            assert rc == 0, 'setup command %r failed: %s' % (line, err)

    def snapshot(self):
        """The whole modelled state as plain data (IPv6 link-local addresses left out)."""
        result = {}
        for ns_name in [ROOT] + self.named:
            ns = self.netns[ns_name]
            links = {}
            for link in ns.links.values():
                links[link.name] = {
                    'kind': link.kind,
                    'up': link.up,
                    'master': link.master,
                    'peer': None if link.peer is None else '%s/%s' % (link.peer[0] or 'root', link.peer[1]),
                    'addresses': [str(a) for a in link.addresses if not (a.version == 6 and a.is_link_local)],
                }
            routes = [self._route_text(r) for r in self._sorted_routes(ns)
                      if not (r.family == 6 and r.dst.is_link_local)]
            result[ns_name] = {'links': links, 'routes': routes}
        return result

    @staticmethod
    def _route_text(route):
        text = 'default' if route.dst.prefixlen == 0 else str(route.dst)
        if route.gateway is not None:
            text += ' via %s' % route.gateway
        text += ' dev %s' % route.dev
        default = 0 if route.family == 4 else 256 if route.protocol == 'kernel' else 1024
        if route.metric != default:
            text += ' metric %d' % route.metric
        return text

    # ------------------------------------------------------------------
    # The command line
    # ------------------------------------------------------------------
    def __call__(self, argv):
        if not isinstance(argv, list):
            raise UnsupportedCommand('argv must be a list, not %r' % (argv,))
        if argv[0].rsplit('/', 1)[-1] != 'ip':
            raise UnsupportedCommand('not an ip command: %r' % (argv,))
        self.calls.append(list(argv))
        args = list(argv[1:])
        ns, want_json, details, family = ROOT, False, False, None
        while args and args[0].startswith('-'):
            opt = args.pop(0)
            if opt == '-n':
                ns = args.pop(0)
            elif opt == '-j':
                want_json = True
            elif opt == '-d':
                details = True
            elif opt in ('-4', '-6'):
                family = int(opt[1])
            else:
                raise UnsupportedCommand('option %s in %r' % (opt, argv))
        if len(args) < 2:
            raise UnsupportedCommand(repr(argv))
        obj, verb, rest = args[0], args[1], args[2:]
        verb = 'del' if verb == 'delete' else verb
        reading = verb in ('show', 'list')
        if reading and not want_json:
            raise UnsupportedCommand('only JSON output (-j) is modelled: %r' % (argv,))
        if not reading:
            self.mutations.append(shlex.join(['ip'] + argv[1:]))
        if ns not in self.netns:
            return 255, '', 'Cannot open network namespace "%s": No such file or directory\n' % ns
        try:
            out = self._dispatch(ns, family, details, obj, verb, rest, argv)
        except IpError as exc:
            return exc.rc, '', exc.message + '\n'
        return 0, out, ''

    def _dispatch(self, ns, family, details, obj, verb, rest, argv):
        if obj == 'netns' and verb == 'list' and not rest:
            return self._show_netns(ns)
        if obj == 'netns' and verb in ('add', 'del') and len(rest) == 1:
            if ns is not ROOT:
                raise UnsupportedCommand(repr(argv))
            return self._netns_add(rest[0]) if verb == 'add' else self._netns_del(rest[0])
        if obj == 'link' and verb == 'show' and not rest:
            return self._show_links(ns, details=details, addresses=False)
        if obj == 'addr' and verb == 'show' and not rest:
            return self._show_links(ns, details=details, addresses=True)
        if obj == 'route' and verb == 'show' and not rest:
            return self._show_routes(ns, family or 4)
        if obj == 'link' and verb == 'add':
            return self._link_add(ns, rest, argv)
        if obj == 'link' and verb == 'del' and len(rest) == 1:
            self._get(ns, rest[0])
            self._destroy(ns, rest[0])
            return ''
        if obj == 'link' and verb == 'set' and len(rest) >= 2:
            return self._link_set(ns, rest, argv)
        if obj == 'addr' and verb in ('add', 'del') and len(rest) == 3 and rest[1] == 'dev':
            addr = ipaddress.ip_interface(rest[0])
            return self._addr_add(ns, rest[2], addr) if verb == 'add' else self._addr_del(ns, rest[2], addr)
        if obj == 'route' and verb in ('add', 'replace', 'del') and rest:
            return self._route_change(ns, family, verb, rest, argv)
        raise UnsupportedCommand(repr(argv))

    # ------------------------------------------------------------------
    # Namespaces
    # ------------------------------------------------------------------
    def _netns_add(self, name):
        if name in self.netns:
            raise IpError(1, 'Cannot create namespace file "/var/run/netns/%s": File exists' % name)
        self.netns[name] = FakeNetns()
        self.named.append(name)
        self._new_link(name, 'lo', None)
        return ''

    def _netns_del(self, name):
        if name not in self.netns:
            raise IpError(1, 'Cannot remove namespace file "/var/run/netns/%s": No such file or directory' % name)
        for link_name in list(self.netns[name].links):
            self._destroy(name, link_name)
        del self.netns[name]
        self.named.remove(name)
        for other in self.netns.values():
            other.nsids.pop(name, None)
        return ''

    def unname(self, name):
        """Keep namespace `name` but drop its name, as a container runtime's
        namespaces are: it no longer shows in `ip netns list`."""
        self.named.remove(name)

    def _nsid(self, viewer, target):
        ids = self.netns[viewer].nsids
        if target not in ids:
            ids[target] = max(ids.values(), default=-1) + 1
        return ids[target]

    def _show_netns(self, viewer):
        if not self.named:
            return ''  # iproute2 prints nothing at all, not even "[]"
        entries = []
        for name in self.named:
            entry = {'name': name}
            if name in self.netns[viewer].nsids:
                entry['id'] = self.netns[viewer].nsids[name]
            entries.append(entry)
        return json.dumps(entries) + '\n'

    # ------------------------------------------------------------------
    # Links
    # ------------------------------------------------------------------
    def _get(self, ns, name):
        link = self.netns[ns].links.get(name)
        if link is None:
            raise _not_found(name)
        return link

    def _new_link(self, ns, name, kind):
        if len(name.encode()) > 15 or not name or '/' in name or ':' in name or any(c.isspace() for c in name):
            raise IpError(1, 'Error: argument "%s" is wrong: "name" not a valid ifname' % name)
        space = self.netns[ns]
        if name in space.links:
            raise FILE_EXISTS
        self._macs += 1
        mac = '02:00:00:00:%02x:%02x' % (self._macs >> 8, self._macs & 0xff)
        link = FakeLink(name=name, ifindex=space.next_ifindex, kind=kind, mac=mac)
        space.next_ifindex += 1
        space.links[name] = link
        return link

    def _link_add(self, ns, rest, argv):
        name, rest = rest[0], rest[1:]
        target = ns
        if rest[:1] == ['netns']:
            target, rest = rest[1], rest[2:]
        if rest[:1] != ['type'] or len(rest) < 2:
            raise UnsupportedCommand(repr(argv))
        kind, rest = rest[1], rest[2:]
        if kind in ('bridge', 'dummy') and not rest:
            self._check_netns(target)
            self._new_link(target, name, kind)
            return ''
        if kind != 'veth' or rest[:2] != ['peer', 'name'] or len(rest) not in (3, 5):
            raise UnsupportedCommand(repr(argv))
        peer_name, peer_ns = rest[2], ns
        if len(rest) == 5:
            if rest[3] != 'netns':
                raise UnsupportedCommand(repr(argv))
            peer_ns = rest[4]
        self._check_netns(target)
        self._check_netns(peer_ns)
        if name in self.netns[target].links or peer_name in self.netns[peer_ns].links:
            raise FILE_EXISTS
        if target == peer_ns and name == peer_name:
            raise FILE_EXISTS
        end = self._new_link(target, name, 'veth')
        peer = self._new_link(peer_ns, peer_name, 'veth')
        end.peer, peer.peer = (peer_ns, peer_name), (target, name)
        if target != peer_ns:
            self._nsid(target, peer_ns)
            self._nsid(peer_ns, target)
        return ''

    def _check_netns(self, name):
        if name not in self.netns:
            raise IpError(1, 'Invalid "netns" value "%s"' % name)

    def _destroy(self, ns, name):
        space = self.netns.get(ns)
        link = space.links.pop(name, None) if space else None
        if link is None:
            return
        space.routes = [r for r in space.routes if r.dev != name]
        for port in space.links.values():
            if port.master == name:
                port.master = None
        if link.peer is not None:
            self._destroy(*link.peer)

    def _link_set(self, ns, rest, argv):
        link = self._get(ns, rest[0])
        action = rest[1:]
        if action == ['up']:
            self._set_up(ns, link.name)
        elif action == ['down']:
            link.up = False
            space = self.netns[ns]
            space.routes = [r for r in space.routes if r.dev != link.name]
        elif action == ['nomaster']:
            link.master = None
        elif len(action) == 2 and action[0] == 'master':
            master = self.netns[ns].links.get(action[1])
            if master is None:
                raise IpError(2, 'Error: Device does not exist.')
            if master.kind != 'bridge' or master is link:
                raise IpError(2, 'RTNETLINK answers: Operation not supported')
            link.master = master.name
        else:
            raise UnsupportedCommand(repr(argv))
        return ''

    def _set_up(self, ns, name):
        link = self.netns[ns].links[name]
        if link.up:
            return
        link.up = True
        if link.kind is None and name == 'lo':
            if not link.addresses:
                link.addresses = [ipaddress.ip_interface('127.0.0.1/8'), ipaddress.ip_interface('::1/128')]
            return
        if not any(a.version == 6 and a.is_link_local for a in link.addresses):
            octets = link.mac.split(':')
            link.addresses.append(ipaddress.ip_interface('fe80::ff:fe%s:%s%s/64' % (octets[3], octets[4], octets[5])))
        for addr in link.addresses:
            self._add_connected_route(ns, link, addr)

    def _carrier(self, ns, link):
        if not link.up:
            return False
        if link.kind == 'veth':
            peer = self.netns[link.peer[0]].links.get(link.peer[1])
            return peer is not None and peer.up
        if link.kind == 'bridge':
            return any(p.master == link.name and self._carrier(ns, p) for p in self.netns[ns].links.values())
        return True

    def _show_links(self, ns, details, addresses):
        entries = []
        for link in sorted(self.netns[ns].links.values(), key=lambda lk: lk.ifindex):
            entries.append(self._link_json(ns, link, details, addresses))
        return json.dumps(entries) + '\n'

    def _link_json(self, ns, link, details, addresses):
        carrier = self._carrier(ns, link)
        loopback = link.kind is None and link.name == 'lo'
        entry = {'ifindex': link.ifindex}
        peer = None
        if link.peer is not None:
            peer = self.netns[link.peer[0]].links[link.peer[1]]
            if link.peer[0] == ns:
                entry['link'] = peer.name
            else:
                entry['link_index'] = peer.ifindex
        entry['ifname'] = link.name
        if loopback:
            flags = ['LOOPBACK']
        else:
            flags = (['NO-CARRIER'] if link.up and not carrier else []) + ['BROADCAST', 'MULTICAST']
        flags += (['UP'] if link.up else []) + (['LOWER_UP'] if carrier else [])
        entry['flags'] = flags
        entry['mtu'] = 65536 if loopback else 1500
        entry['qdisc'] = 'noqueue' if link.up or link.kind in ('veth', 'bridge') else 'noop'
        if link.master:
            entry['master'] = link.master
        entry['operstate'] = ('UNKNOWN' if loopback and link.up else 'UP' if carrier else
                              'LOWERLAYERDOWN' if link.up and link.kind == 'veth' else 'DOWN')
        if not addresses:
            entry['linkmode'] = 'DEFAULT'
        entry['group'] = 'default'
        entry['txqlen'] = 1000
        entry['link_type'] = 'loopback' if loopback else 'ether'
        entry['address'] = '00:00:00:00:00:00' if loopback else link.mac
        entry['broadcast'] = '00:00:00:00:00:00' if loopback else 'ff:ff:ff:ff:ff:ff'
        if peer is not None and link.peer[0] != ns:
            entry['link_netnsid'] = self.netns[ns].nsids[link.peer[0]]
        if details:
            entry['promiscuity'] = 0
            entry['allmulti'] = 0
            entry['min_mtu'] = 0 if loopback else 68
            entry['max_mtu'] = 0 if loopback else 65535
            if link.kind is not None:
                entry['linkinfo'] = {'info_kind': link.kind}
                if link.kind == 'bridge':
                    entry['linkinfo']['info_data'] = {'forward_delay': 1500, 'stp_state': 0, 'vlan_filtering': 0}
                if link.master:
                    entry['linkinfo']['info_slave_kind'] = 'bridge'
            entry['inet6_addr_gen_mode'] = 'eui64'
            entry['num_tx_queues'] = 1
            entry['num_rx_queues'] = 1
        if addresses:
            entry['addr_info'] = [self._addr_json(link, a) for a in link.addresses]
        return entry

    # ------------------------------------------------------------------
    # Addresses
    # ------------------------------------------------------------------
    @staticmethod
    def _is_secondary(link, addr):
        if addr.version != 4:
            return False
        for other in link.addresses:
            if other == addr:
                return False
            if other.version == 4 and other.network == addr.network:
                return True
        return False

    def _addr_json(self, link, addr):
        entry = {'family': 'inet' if addr.version == 4 else 'inet6', 'local': str(addr.ip),
                 'prefixlen': addr.network.prefixlen}
        if addr.version == 4 and addr.network.prefixlen < 31 and not addr.ip.is_loopback:
            entry['broadcast'] = str(addr.network.broadcast_address)
        entry['scope'] = 'host' if addr.ip.is_loopback else 'link' if addr.ip.is_link_local else 'global'
        if self._is_secondary(link, addr):
            entry['secondary'] = True
        if addr.version == 4:
            entry['label'] = link.name
        entry['valid_life_time'] = FOREVER
        entry['preferred_life_time'] = FOREVER
        return entry

    def _addr_add(self, ns, dev, addr):
        link = self._get(ns, dev)
        for other in link.addresses:
            if other == addr or (addr.version == 6 and other.ip == addr.ip):
                raise FILE_EXISTS
        link.addresses.append(addr)
        if link.up:
            self._add_connected_route(ns, link, addr)
        return ''

    def _addr_del(self, ns, dev, addr):
        link = self._get(ns, dev)
        if addr not in link.addresses:
            raise IpError(2, 'RTNETLINK answers: Cannot assign requested address')
        gone = [addr]
        if addr.version == 4 and not self._is_secondary(link, addr):
            gone += [a for a in link.addresses if a != addr and a.version == 4 and a.network == addr.network]
        link.addresses = [a for a in link.addresses if a not in gone]
        space = self.netns[ns]
        remaining = [a.network for a in link.addresses]
        space.routes = [r for r in space.routes
                        if not (r.dev == dev and r.protocol == 'kernel' and r.dst not in remaining)]
        if addr.version == 4 and not any(a.version == 4 for a in link.addresses):
            space.routes = [r for r in space.routes if not (r.dev == dev and r.family == 4)]
        return ''

    def _add_connected_route(self, ns, link, addr):
        if addr.ip.is_loopback:
            return
        space = self.netns[ns]
        for route in space.routes:
            if route.dst == addr.network and route.dev == link.name and route.protocol == 'kernel':
                return
        if addr.version == 4:
            route = FakeRoute(family=4, dst=addr.network, dev=link.name, metric=0, protocol='kernel',
                              scope='link', prefsrc=addr.ip)
        else:
            route = FakeRoute(family=6, dst=addr.network, dev=link.name, metric=256, protocol='kernel')
        space.routes.append(route)

    # ------------------------------------------------------------------
    # Routes
    # ------------------------------------------------------------------
    @staticmethod
    def _sorted_routes(space):
        return sorted(space.routes, key=lambda r: (r.family, r.dst.prefixlen != 0, int(r.dst.network_address),
                                                   r.dst.prefixlen, r.metric))

    def _show_routes(self, ns, family):
        entries = []
        for route in self._sorted_routes(self.netns[ns]):
            if route.family != family:
                continue
            if route.dst.prefixlen == 0:
                dst = 'default'
            elif route.dst.prefixlen == route.dst.max_prefixlen:
                dst = str(route.dst.network_address)
            else:
                dst = str(route.dst)
            entry = {'dst': dst}
            if route.gateway is not None:
                entry['gateway'] = str(route.gateway)
            entry['dev'] = route.dev
            if route.protocol:
                entry['protocol'] = route.protocol
            if route.scope:
                entry['scope'] = route.scope
            if route.prefsrc is not None:
                entry['prefsrc'] = str(route.prefsrc)
            if route.metric or family == 6:
                entry['metric'] = route.metric
            link = self.netns[ns].links[route.dev]
            entry['flags'] = [] if self._carrier(ns, link) else ['linkdown']
            if family == 6:
                entry['pref'] = 'medium'
            entries.append(entry)
        return json.dumps(entries) + '\n'

    def _route_change(self, ns, family, verb, rest, argv):
        dst_text, rest = rest[0], rest[1:]
        options = {}
        while rest:
            if len(rest) < 2 or rest[0] not in ('via', 'dev', 'metric') or rest[0] in options:
                raise UnsupportedCommand(repr(argv))
            options[rest[0]] = rest[1]
            rest = rest[2:]
        via = ipaddress.ip_address(options['via']) if 'via' in options else None
        dev = options.get('dev')
        metric = int(options['metric']) if 'metric' in options else None
        if dst_text == 'default':
            family = family or (via.version if via is not None else 4)
            dst = ipaddress.ip_network('0.0.0.0/0' if family == 4 else '::/0')
        else:
            try:
                dst = ipaddress.ip_network(dst_text)
            except ValueError:
                raise IpError(2, 'Error: Invalid prefix for given prefix length.') from None
            family = dst.version
        space = self.netns[ns]
        if dev is not None:
            self._get(ns, dev)

        if verb == 'del':
            for route in self._sorted_routes(space):
                if (route.family == family and route.dst == dst and metric in (None, route.metric)
                        and via in (None, route.gateway) and dev in (None, route.dev)):
                    space.routes.remove(route)
                    return ''
            raise IpError(2, 'RTNETLINK answers: No such process')

        if via is not None:
            if via.version != family:
                raise IpError(2, 'Error: Gateway is not the family of the destination.')
            connected = [r for r in space.routes if r.family == family and r.gateway is None
                         and r.dst.prefixlen > 0 and via in r.dst and dev in (None, r.dev)]
            if not connected and not (via.version == 6 and via.is_link_local and dev is not None):
                raise IpError(2, 'Error: Nexthop has invalid gateway.')
            dev = dev or connected[0].dev
        elif dev is None:
            raise UnsupportedCommand(repr(argv))
        elif not space.links[dev].up:
            raise IpError(2, 'Error: Device for nexthop is not up.')
        if metric is None:
            metric = 0 if family == 4 else 1024
        same = [r for r in space.routes if r.family == family and r.dst == dst and r.metric == metric]
        if same and verb == 'add':
            raise FILE_EXISTS
        if same:
            space.routes.remove(same[0])
        space.routes.append(FakeRoute(family=family, dst=dst, dev=dev, metric=metric, gateway=via,
                                      scope='link' if via is None else None))
        return ''
