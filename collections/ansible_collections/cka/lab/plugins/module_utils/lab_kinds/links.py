# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Kinds `namespaces`, `bridges`, `vxlans`, `veth_pairs` and `routes`: the lab's network topology.

Planned together (module_utils/topology.py reads the machine with ``ip -j`` and
plans the ``ip`` commands: namespaces before the links in them, links before
their addresses and routes), built in one pass, removed in layers (routes first,
then veth pairs that share no end, then bridges, VXLAN devices and namespaces).
A lab network that overlaps one of the machine's own networks is refused
before any change. A namespace or root-namespace link the machine had before
the lab's first build is never removed.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shlex

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import EngineError, other_labs, strip, write_record
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import (
    check_link,
    fail,
    ip,
    links_in,
    namespace_words,
    need,
    route_found,
)
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.picture import link_lines
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.pods import cni_bridges
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import (
    ADDRESSES_SCHEMA,
    IFNAME_SCHEMA,
    LINK_NAME_SCHEMA,
    MAC_SCHEMA,
    NETNS,
    NETNS_SCHEMA,
    PORT_SCHEMA,
    check_address,
    item_schema,
    path_of,
)
from ansible_collections.cka.lab.plugins.module_utils.topology import (
    ROOT,
    Topology,
    TopologyError,
    parse_topology,
    plan_present,
)

KEYS = ('namespaces', 'bridges', 'vxlans', 'veth_pairs', 'routes')
# The record (lab_record.py): this kind's keys, their type and value in a new record (the topology the lab
# owns; whether /run/netns was there), and what it notes of the machine before the lab's first build.
RECORD = {'topology': ('object', {kind: [] for kind in KEYS}), 'run_netns_existed': ('boolean', True)}
NOTED = {'namespaces': 'list', 'links': 'list', 'routes': 'list'}

_END = {'name': LINK_NAME_SCHEMA, 'namespace': NETNS_SCHEMA, 'addresses': ADDRESSES_SCHEMA,
        'master': {'type': ['string', 'null']}, 'mac': MAC_SCHEMA}
SCHEMA = {
    'namespaces': item_schema(['name'], {'name': {'type': 'string', 'pattern': NETNS}}),
    'bridges': item_schema(['name'], {'name': LINK_NAME_SCHEMA, 'namespace': NETNS_SCHEMA,
                                      'addresses': ADDRESSES_SCHEMA, 'mac': MAC_SCHEMA}),
    'vxlans': item_schema(['name', 'vni', 'dev'], {
        'name': LINK_NAME_SCHEMA, 'namespace': NETNS_SCHEMA, 'addresses': ADDRESSES_SCHEMA, 'mac': MAC_SCHEMA,
        'vni': {'type': 'integer', 'minimum': 1, 'maximum': 16777215}, 'dev': IFNAME_SCHEMA,
        'local': {'type': 'string'}, 'dstport': PORT_SCHEMA, 'learning': {'type': 'boolean'},
        'remotes': {'type': 'array', 'items': {'type': 'string'}, 'uniqueItems': True},
        'mtu': {'type': 'integer', 'minimum': 68, 'maximum': 65535}}),
    'veth_pairs': item_schema(['name', 'peer'], dict(_END, peer={
        'type': 'object', 'required': ['name'], 'additionalProperties': False, 'properties': _END})),
    'routes': item_schema(['dst'], {
        'namespace': NETNS_SCHEMA, 'dst': {'type': 'string'}, 'via': {'type': 'string'},
        'dev': IFNAME_SCHEMA, 'metric': {'type': 'integer', 'minimum': 0}, 'onlink': {'type': 'boolean'}}),
}


def stage_errors(machine, context):
    """Names once per namespace, masters that are declared bridges, addresses a host may hold, each once, in
    the subnet of the bridge they are plugged into, one subnet per network; routes with a gateway on a
    connected network; VXLAN tunnel ends of one family. Fills context.addresses and context.refused."""
    errors = []
    where_stage = context.where_stage
    namespaces = [ns['name'] for ns in machine.get('namespaces', [])]
    for name in sorted({n for n in namespaces if namespaces.count(n) > 1}):
        errors.append("machine.namespaces: '%s' is declared twice%s; each namespace once" % (name, where_stage))
    links, segments, addresses, refused = {}, {}, context.addresses, context.refused
    bridges = {(b.get('namespace'), b['name']) for b in machine.get('bridges', [])}
    for where, ns, end, kind in _ends(machine):
        errors += context.namespace_errors(where, ns)
        key = (ns, end['name'])
        if key in links:
            errors.append("%s.name: '%s' is declared twice in %s%s"
                          % (where, end['name'], ns or 'the root namespace', where_stage))
        links[key] = where
        master = end.get('master')
        if master is not None and (ns, master) not in bridges:
            errors.append("%s.master: '%s' is not a bridge declared in %s%s"
                          % (where, master, ns or 'the root namespace', where_stage))
        for j, text in enumerate(end.get('addresses', [])):
            iface = check_address(errors, '%s.addresses[%d]' % (where, j), text)
            if iface is not None:
                addresses.append(('%s.addresses[%d]' % (where, j), ns, end['name'], iface))
            else:
                refused.add(ns)
    # Which links share a layer-2 segment: a bridge with its ports and their
    # peers; a veth pair without a bridge on its own.
    for i, pair in enumerate(machine.get('veth_pairs', [])):
        pair_ends = [(pair.get('namespace'), pair['name'], pair.get('master')),
                     (pair['peer'].get('namespace'), pair['peer']['name'], pair['peer'].get('master'))]
        masters = [(ns, m) for ns, _, m in pair_ends if m is not None]
        segment = ('bridge',) + masters[0] if masters else ('pair', i)
        for ns, name, _ in pair_ends:
            segments[(ns, name)] = segment
    for b in machine.get('bridges', []):
        segments[(b.get('namespace'), b['name'])] = ('bridge', b.get('namespace'), b['name'])
    for v in machine.get('vxlans', []):
        segments[(v.get('namespace'), v['name'])] = ('vxlan', v.get('namespace'), v['name'])
    # On a bridge that has addresses, every address of its segment is in one of
    # its subnets: a namespace plugged into v-net-0 lives on 192.168.15.0/24.
    for b in machine.get('bridges', []):
        segment = ('bridge', b.get('namespace'), b['name'])
        nets = [i.network for w, n, name, i in addresses if (n, name) == (b.get('namespace'), b['name'])]
        if not nets:
            continue
        for where, ns, name, iface in addresses:
            if segments.get((ns, name)) == segment and not any(iface.ip in net for net in nets):
                errors.append("%s: %s is outside %s, the subnet of the bridge %s it is plugged into%s"
                              % (where, iface, ', '.join(map(str, nets)), b['name'], where_stage))
                refused.add(ns)
    seen = {}
    for where, ns, name, iface in addresses:
        if iface.ip in seen:
            errors.append("%s: %s is already held by %s%s; each address once"
                          % (where, iface.ip, seen[iface.ip], where_stage))
        seen[iface.ip] = where
    for a, (where_a, ns_a, name_a, iface_a) in enumerate(addresses):
        for where_b, ns_b, name_b, iface_b in addresses[a + 1:]:
            if segments.get((ns_a, name_a)) != segments.get((ns_b, name_b)) \
                    and iface_a.network.overlaps(iface_b.network):
                errors.append("%s: %s overlaps %s of %s, which is on another network%s; separate networks "
                              "need separate subnets" % (where_b, iface_b.network, iface_a.network, where_a,
                                                         where_stage))
    for i, route in enumerate(machine.get('routes', [])):
        where = path_of(route, 'routes', i)
        errors += context.namespace_errors(where, route.get('namespace'))
        dst = route['dst']
        if dst != 'default':
            try:
                ipaddress.ip_network(dst)
            except ValueError:
                errors.append("%s.dst: '%s' must be 'default' or a network with its host bits zero, like "
                              "192.168.1.0/24" % (where, dst))
        if 'via' not in route and 'dev' not in route:
            errors.append('%s: needs via (a gateway) or dev (a link)' % where)
        if 'via' in route:
            try:
                via = ipaddress.ip_address(route['via'])
            except ValueError:
                errors.append("%s.via: '%s' is not an IP address" % (where, route['via']))
                continue
            ns = route.get('namespace')
            connected = [iface.network for _, n, _, iface in addresses if n == ns]
            if ns is not None and ns not in refused and not any(via in net for net in connected):
                errors.append("%s.via: %s is in no subnet of namespace %s (%s)%s; a gateway must be on a "
                              "connected network" % (where, via, ns, ', '.join(map(str, connected)) or 'none',
                                                     where_stage))
    return errors + _vxlan_errors(machine, where_stage)


def _ends(machine):
    """(path, namespace, end) of every link end: bridges, VXLAN devices and both ends of each veth pair."""
    for i, bridge in enumerate(machine.get('bridges', [])):
        yield bridge.get('__path', 'machine.bridges[%d]' % i), bridge.get('namespace'), bridge, 'bridge'
    for i, vxlan in enumerate(machine.get('vxlans', [])):
        yield vxlan.get('__path', 'machine.vxlans[%d]' % i), vxlan.get('namespace'), vxlan, 'vxlan'
    for i, pair in enumerate(machine.get('veth_pairs', [])):
        where = pair.get('__path', 'machine.veth_pairs[%d]' % i)
        yield where, pair.get('namespace'), pair, 'veth'
        yield where + '.peer', pair['peer'].get('namespace'), pair['peer'], 'veth'


def _vxlan_errors(machine, where_stage):
    errors = []
    for i, vxlan in enumerate(machine.get('vxlans', [])):
        where = vxlan.get('__path', 'machine.vxlans[%d]' % i)
        family = set()
        for key, values in (('local', [vxlan['local']] if 'local' in vxlan else []),
                            ('remotes', vxlan.get('remotes', []))):
            for j, text in enumerate(values):
                try:
                    family.add(ipaddress.ip_address(text).version)
                except ValueError:
                    errors.append("%s.%s: '%s' is not an IP address (a VXLAN tunnel end point, RFC 7348)%s"
                                  % (where, key if key == 'local' else '%s[%d]' % (key, j), text, where_stage))
        if len(family) > 1:
            errors.append("%s: local and remotes mix IPv4 and IPv6%s; one family" % (where, where_stage))
        if vxlan.get('local') in vxlan.get('remotes', []):
            errors.append("%s.remotes: holds the local address %s%s; remotes are the other nodes"
                          % (where, vxlan['local'], where_stage))
    return errors


def initial(engine):
    return {'run_netns_existed': os.path.isdir(engine.netns_dir)}


def tools(machine):
    needed = {'ip': 'the topology'}
    if any(v.get('remotes') for v in machine.get('vxlans', [])):
        needed['bridge'] = 'the VXLAN flood lists'
    return needed


def snapshot(engine, every_stage):
    """The namespaces, root-namespace links and root-namespace routes the machine had."""
    _, out, _ = engine.read(['ip', '-j', 'netns', 'list'])
    namespaces = sorted(item['name'] for item in json.loads(out or '[]'))
    _, out, _ = engine.read(['ip', '-j', 'link', 'show'])
    links = sorted(item['ifname'] for item in json.loads(out or '[]'))
    _, out, _ = engine.read(['ip', '-j', 'route', 'show'])
    routes = sorted({route_words(item.get('dst'), item.get('gateway')) for item in json.loads(out or '[]')})
    return {'namespaces': namespaces, 'links': links, 'routes': routes}


def plan(engine, machine, record):
    """The commands that remove what the lab owned and no longer declares, then those that build the stage
    (planned on from the first's result), before any change."""
    declared = {kind: machine.get(kind, []) for kind in KEYS}
    leftover = {kind: [item for item in record['topology'].get(kind, [])
                       if _key(kind, item) not in {_key(kind, d) for d in declared[kind]}]
                for kind in KEYS}
    owned = set(links_of(record['topology']))
    errors = []
    # This machine's own networks (the one Ansible comes in on) must not be reused by the lab.
    root_owned = {name for ns, name in owned | set(links_of(declared)) if ns is None}
    # The bridges the pods' CNI networks make (and the links the plugins reported) are the lab's too.
    root_owned |= set(cni_bridges(machine)) | set(record['cni_links'])
    own = engine.own_networks(root_owned)
    for where, ns, item in _addressed(machine):
        for text in item.get('addresses', []):
            net = ipaddress.ip_interface(text).network
            for mine, ifname in own.items():
                if net.overlaps(mine):
                    errors.append("%s %s: %s overlaps %s of %s, a network this machine already has; the lab's "
                                  "networks must be separate from the machine's own (see: ip addr show %s)"
                                  % (where, item['name'], text, mine, ifname, ifname))
    present = engine.topology_params(declared, owned=[{'namespace': ns, 'name': name}
                                                      for ns, name in sorted(owned, key=str)])
    removal = building = None
    try:
        removal = engine.topology(engine.topology_params(leftover, state='absent')) \
            if any(leftover.values()) else None
        topology = parse_topology(present)
        state = removal.model if removal is not None else engine.read_topology(topology)
        building = plan_present(topology, state)
    except TopologyError as exc:
        errors += exc.errors
    except EngineError as exc:
        errors += exc.errors
    return {'declared': declared, 'removal': removal, 'building': building}, errors


def note(engine, machine, record, plan):
    """What the lab is about to own, recorded before the machine changes: a run that fails half-way can be
    reset."""
    merged = {kind: list(record['topology'].get(kind, [])) for kind in KEYS}
    for kind in KEYS:
        keys = {_key(kind, i) for i in merged[kind]}
        merged[kind] += [strip(i) for i in plan['declared'][kind] if _key(kind, i) not in keys]
    record['topology'] = merged


def withdraw(engine, machine, record, plan):
    if plan['removal'] is not None:
        engine.apply_planner(plan['removal'])


def build(engine, machine, record, plan):
    engine.apply_planner(plan['building'])
    _forget_stale_neighbours(engine, plan['building'], plan['declared']['namespaces'])


def done(engine, machine, record, plan):
    record['topology'] = {kind: [strip(i) for i in plan['declared'][kind]] for kind in KEYS}


def remove(engine, record, also):
    for topology in _removal_layers(_made_by_the_lab(record), _hand_made(record, also)):
        if any(topology.get(kind) for kind in KEYS):
            # Root-namespace ends are the lab's: one whose peer is gone with a
            # namespace a process still holds is deleted all the same.
            owned = [{'namespace': None, 'name': name} for ns, name in links_of(topology) if ns is None]
            engine.apply_planner(engine.topology(engine.topology_params(topology, state='absent', owned=owned)))
    if not record['run_netns_existed'] and os.path.isdir(engine.netns_dir) \
            and os.listdir(engine.netns_dir):
        # Another lab's namespaces are still there: the directory goes with the last of them.
        for lab, other, path in other_labs(engine):
            if other['run_netns_existed']:
                other['run_netns_existed'] = False
                engine.commands.append('leave %s to lab %s' % (engine.netns_dir, lab))
                if not engine.check_mode:
                    write_record(path, other)
    if not record['run_netns_existed'] and os.path.isdir(engine.netns_dir) \
            and not os.listdir(engine.netns_dir):
        engine.commands.append('umount %s; rmdir %s' % (engine.netns_dir, engine.netns_dir))
        if not engine.check_mode:
            # `ip netns add` bind-mounts the directory on itself (same device:
            # os.path.ismount cannot tell), sometimes more than once.
            while engine.read(['mountpoint', '-q', engine.netns_dir], ok=(0, 1, 32))[0] == 0:
                engine.read(['umount', engine.netns_dir])
            os.rmdir(engine.netns_dir)


def names(machine):
    """The namespaces and root-namespace links a machine part declares (or a record's topology holds)."""
    namespaces = {ns['name'] for ns in machine.get('namespaces', [])} | {p['name'] for p in machine.get('pods', [])}
    links = {b['name'] for b in machine.get('bridges', []) + machine.get('vxlans', []) if b.get('namespace') is None}
    for pair in machine.get('veth_pairs', []):
        links |= {end['name'] for end in (pair, pair['peer']) if end.get('namespace') is None}
    return namespaces, links


_VXLAN_KEYS = ('name', 'vni', 'dev', 'local', 'dstport', 'learning', 'remotes', 'mtu')


def _key(kind, item):
    if kind == 'namespaces':
        return item['name']
    if kind == 'routes':
        dst = item['dst']
        return (item.get('namespace'), 'default' if dst in ('0.0.0.0/0', '::/0') else dst, item.get('metric'))
    if kind == 'veth_pairs':
        return (item.get('namespace'), item['name'], item['peer'].get('namespace'), item['peer']['name'])
    return (item.get('namespace'), item['name'])


def links_of(topology):
    """(namespace, name) of every link end in a topology record."""
    out = [(b.get('namespace'), b['name']) for b in topology.get('bridges', []) + topology.get('vxlans', [])]
    for pair in topology.get('veth_pairs', []):
        out += [(pair.get('namespace'), pair['name']), (pair['peer'].get('namespace'), pair['peer']['name'])]
    return out


def route_words(dst, via):
    """A root-namespace route as `DST via GATEWAY`, `default` for 0.0.0.0/0, for comparing with the snapshot."""
    dst = 'default' if dst in (None, 'default', '0.0.0.0/0', '::/0') else dst
    return '%s via %s' % (dst, via) if via else dst


def _hand_made(record, also):
    """The objects of `also` (every stage of the lab) that were not on the machine
    before the lab: the lab's names, made by hand by a student."""
    before = record['preexisting']
    if before['links'] is None or not also:
        return {kind: [] for kind in KEYS}
    namespaces = [ns for ns in also.get('namespaces', []) if ns['name'] not in before['namespaces']]
    ns_names = {ns['name'] for ns in also.get('namespaces', [])}
    bridges = [b for b in also.get('bridges', [])
               if b.get('namespace') is None and b['name'] not in before['links']]
    vxlans = [v for v in also.get('vxlans', [])
              if v.get('namespace') is None and v['name'] not in before['links']]
    pairs = []
    for pair in also.get('veth_pairs', []):
        ends = [pair, pair['peer']]
        # A pair is the lab's when each end is in one of its namespaces or is a
        # root-namespace name that was not there before.
        if all((e.get('namespace') in ns_names) or (e.get('namespace') is None and e['name'] not in before['links'])
               for e in ends):
            pairs.append(pair)
    # Root-namespace routes a stage declares that the machine did not have (records older than
    # `preexisting.routes` leave them alone).
    routes = [r for r in also.get('routes', []) if r.get('namespace') is None and 'routes' in before
              and route_words(r['dst'], r.get('via')) not in before['routes']]
    return {'namespaces': namespaces, 'bridges': bridges, 'vxlans': vxlans, 'veth_pairs': pairs,
            'routes': routes}


def _addressed(machine):
    for b in machine.get('bridges', []):
        yield 'bridge', b.get('namespace'), b
    for p in machine.get('veth_pairs', []):
        yield 'veth', p.get('namespace'), p
        yield 'veth', p['peer'].get('namespace'), p['peer']


def _forget_stale_neighbours(engine, planner, namespaces):
    """An address given to a link just made (a bridge renamed, a pair made
    again) may sit in neighbours' ARP caches with the old link's MAC, and stay
    unreachable for up to a minute: those entries are flushed (ip-neighbour(8)),
    so the lab works at once. Nothing is flushed when no address was added."""
    added = []
    for argv in planner.commands:
        for i in range(len(argv) - 2):
            if argv[i:i + 2] == ['addr', 'add']:
                added.append(argv[i + 2].split('/')[0])
    if not added or engine.check_mode:
        return
    for namespace in [None] + [ns['name'] for ns in namespaces]:
        if namespace is not None and engine.netns_inode(namespace) is None:
            continue
        _, out, _ = engine.read(['ip'] + (['-n', namespace] if namespace else []) + ['-j', 'neigh', 'show'])
        cached = {entry.get('dst') for entry in json.loads(out or '[]')}
        for address in added:
            if address in cached:
                engine.change(['ip'] + (['-n', namespace] if namespace else []) + ['neigh', 'flush', 'to', address])


def _made_by_the_lab(record):
    """The record's topology without what the machine had before the lab's first
    build (a namespace or bridge the lab took over stays; the links the lab made
    inside such a namespace go)."""
    topology = record['topology']
    before = record['preexisting']
    if before['links'] is None:
        return topology
    had_ns, had_links = set(before['namespaces']), set(before['links'])

    def made(namespace, name):
        return not (namespace is None and name in had_links)

    return {
        'namespaces': [ns for ns in topology.get('namespaces', []) if ns['name'] not in had_ns],
        'bridges': [b for b in topology.get('bridges', []) if made(b.get('namespace'), b['name'])],
        'vxlans': [v for v in topology.get('vxlans', []) if made(v.get('namespace'), v['name'])],
        'veth_pairs': [p for p in topology.get('veth_pairs', [])
                       if made(p.get('namespace'), p['name']) and made(p['peer'].get('namespace'), p['peer']['name'])],
        'routes': list(topology.get('routes', [])),
    }


def _removal_layers(*topologies):
    """Topologies to remove one after the other, from several that may name the
    same objects: stages can pair one link with different peers (lesson 202's
    veth-red goes to blue in one stage and to the bridge in another), and one
    topology may declare each link once. The veth pairs come in layers of pairs
    that share no end, routes first; bridges and namespaces in the last layer.
    Addresses are left out: removal does not need them."""
    pairs, namespaces, bridges, vxlans, routes, seen = [], [], [], [], [], set()
    for topology in topologies:
        for pair in topology.get('veth_pairs', []):
            item = {'name': pair['name'], 'namespace': pair.get('namespace'),
                    'peer': {'name': pair['peer']['name'], 'namespace': pair['peer'].get('namespace')}}
            if item not in pairs:
                pairs.append(item)
        for ns in topology.get('namespaces', []):
            if {'name': ns['name']} not in namespaces:
                namespaces.append({'name': ns['name']})
        for bridge in topology.get('bridges', []):
            item = {'name': bridge['name'], 'namespace': bridge.get('namespace')}
            if item not in bridges:
                bridges.append(item)
        for vxlan in topology.get('vxlans', []):
            item = {k: v for k, v in vxlan.items() if k in _VXLAN_KEYS + ('namespace',)}
            if item['name'] not in [v['name'] for v in vxlans if v.get('namespace') == item.get('namespace')]:
                vxlans.append(item)
        for route in topology.get('routes', []):
            if _key('routes', route) not in seen:
                seen.add(_key('routes', route))
                routes.append(strip(route))
    layers = []
    for pair in pairs:
        ends = {(pair['namespace'], pair['name']), (pair['peer']['namespace'], pair['peer']['name'])}
        for layer in layers:
            if not layer['ends'] & ends:
                layer['ends'] |= ends
                layer['veth_pairs'].append(pair)
                break
        else:
            layers.append({'ends': set(ends), 'veth_pairs': [pair]})
    empty = {'namespaces': [], 'bridges': [], 'vxlans': [], 'veth_pairs': [], 'routes': []}
    out = [dict(empty, veth_pairs=layer['veth_pairs']) for layer in layers]
    if not out:
        out.append(dict(empty))
    if routes:
        # A layer of their own, first: beside a namespace it removes, the
        # topology would check each gateway against addresses left out here.
        out.insert(0, dict(empty, routes=routes))
    out[-1]['namespaces'], out[-1]['bridges'], out[-1]['vxlans'] = namespaces, bridges, vxlans
    return out


# -- what the machine has now, in the declaration's shape (lab_state state=observed; the picture beside the lab) --

def observe(engine):
    """The machine's namespaces, bridges, VXLAN devices, veth pairs (both ends seen) and routes with a gateway
    or default, as a `machine:` of a declaration would declare them. Reads only. `lo` and a veth end whose
    peer is not in a namespace of the machine (the machine's own link) are left out."""
    state = engine.read_topology(Topology(state='absent', namespaces=[], bridges=[], veth_pairs=[], routes=[]))
    out = {key: [] for key in KEYS}
    out['namespaces'] = [{'name': name} for name in sorted(state.namespaces - state.stale)]

    def end(namespace, link):
        found = {'name': link.name, 'addresses': sorted(str(a) for a in link.addresses
                                                        if not (a.version == 6 and a.is_link_local))}
        if namespace is not ROOT:
            found['namespace'] = namespace
        if link.master:
            found['master'] = link.master
        return found

    paired = set()
    for namespace in sorted(state.links, key=lambda n: n or ''):
        for name, link in sorted(state.links[namespace].items()):
            if link.kind == 'bridge':
                out['bridges'].append(end(namespace, link))
            elif link.kind == 'vxlan' and link.vxlan is not None:
                out['vxlans'].append(dict(end(namespace, link), vni=link.vxlan.vni, dev=link.vxlan.dev,
                                          dstport=link.vxlan.dstport))
            elif link.kind == 'veth' and link.peer is not None and (namespace, name) not in paired:
                peer = state.link(*link.peer)
                if peer is not None:
                    paired.update({(namespace, name), link.peer})
                    out['veth_pairs'].append(dict(end(namespace, link), peer=end(link.peer[0], peer)))
    for namespace in sorted(state.routes, key=lambda n: n or ''):
        for route in state.routes[namespace]:
            if route.gateway is None and route.dst.prefixlen:
                continue  # a connected network, there because of an address
            # As a lab declares them: `via` alone (the kernel picks the device), `dev` for an on-link route.
            found = {'dst': 'default' if not route.dst.prefixlen else str(route.dst)}
            if route.gateway is not None:
                found['via'] = str(route.gateway)
            else:
                found['dev'] = route.dev
            if namespace is not ROOT:
                found['namespace'] = namespace
            out['routes'].append(found)
    return out


# -- the picture (lab_drawing.py lays it out) --

def draw(machine, picture):
    """Each namespace a box; bridges, VXLAN devices and veth ends in their namespace's box; a line for each
    veth pair and a dashed one from each bridge port to its bridge; the routes under the namespace's name."""
    for namespace in machine.get('namespaces', []):
        picture.namespace(namespace['name'])
    for bridge in machine.get('bridges', []):
        picture.interface(bridge.get('namespace'), bridge['name'], 'bridge', link_lines(bridge, 'bridge'))
        picture.segment(('bridge', bridge.get('namespace') or '', bridge['name']), {bridge.get('namespace')})
    for vxlan in machine.get('vxlans', []):
        about = ['vxlan, VNI %s, UDP %s over %s' % (vxlan.get('vni'), vxlan.get('dstport', 4789), vxlan.get('dev'))]
        about += ['to %s' % remote for remote in vxlan.get('remotes') or []]
        picture.interface(vxlan.get('namespace'), vxlan['name'], 'vxlan', link_lines(vxlan, *about))
    for pair in machine.get('veth_pairs', []):
        ends = (pair, pair['peer'])
        for end in ends:
            picture.interface(end.get('namespace'), end['name'], 'veth', link_lines(end))
            if end.get('master') is not None:
                picture.port(end.get('namespace'), end['name'], end['master'])
        picture.pair((pair.get('namespace'), pair['name']), (pair['peer'].get('namespace'), pair['peer']['name']))
        masters = [('bridge', end.get('namespace') or '', end['master']) for end in ends
                   if end.get('master') is not None]
        picture.segment(masters[0] if masters else ('pair', pair.get('namespace') or '', pair['name']),
                        {end.get('namespace') for end in ends})
    routes = {}
    for route in machine.get('routes', []):
        routes.setdefault(route.get('namespace'), []).append(_route_text(route))
    for namespace, lines in routes.items():
        picture.section(namespace, 'routes:', lines)


def _route_text(route):
    """A route as `ip route` takes it: `DST via GATEWAY dev DEV metric N onlink`, what is declared."""
    text = str(route['dst'])
    for key in ('via', 'dev', 'metric'):
        if route.get(key) is not None:
            text += ' %s %s' % (key, route[key])
    return text + (' onlink' if route.get('onlink') else '')


# -- checks: the lesson's objects, as a student looks at them (checks/lab/test_lab.py) --

def check_namespace(lab, item):
    listed = {ns["name"] for ns in lab.json("ip -j netns list")}
    if item["name"] not in listed:
        fail("there is no network namespace %s - see `ip netns`" % item["name"])


def check_bridge(lab, item):
    check_link(lab, item, "bridge")
    namespace, name = item.get("namespace"), item["name"]
    data = links_in(lab, namespace)[name].get("linkinfo", {}).get("info_data", {})
    if data.get("stp_state", 0):
        fail("the bridge %s has STP on (stp_state %s): each port it gets waits about %d s (listening, then learning) "
             "before it forwards; the lesson's bridge has it off: `%s` - see `%s`"
             % (name, data["stp_state"], 2 * int(data.get("forward_delay", 1500)) // 100,
                ip(namespace, "link", "set", "dev", name, "type", "bridge", "stp_state", "0"),
                ip(namespace, "-d", "link", "show", name)))


def check_vxlan(lab, item):
    check_link(lab, item, "vxlan")
    namespace, name = item.get("namespace"), item["name"]
    found = links_in(lab, namespace)[name]
    data = found.get("linkinfo", {}).get("info_data", {})
    look = ip(namespace, "-d", "link", "show", name)
    wanted = {"id": item["vni"], "port": item.get("dstport", 4789), "link": item["dev"]}
    if item.get("local"):
        wanted["local"] = item["local"]
    for key, value in wanted.items():
        if str(data.get(key)) != str(value):
            fail("%s in %s has %s %s; the lesson gives it %s %s - see `%s`"
                 % (name, namespace_words(namespace), VXLAN_WORDS[key], data.get(key, "none"), VXLAN_WORDS[key], value, look))
    need(lab, "bridge", "reading the VXLAN flood list")
    fdb = "bridge%s fdb show dev %s" % (" -n %s" % shlex.quote(namespace) if namespace else "", shlex.quote(name))
    listing = lab.run(fdb).stdout
    flood = {line.split(" dst ")[1].split()[0] for line in listing.splitlines()
             if line.startswith("00:00:00:00:00:00") and " dst " in line}
    missing = sorted(set(item.get("remotes", [])) - flood)
    if missing:
        fail("%s does not send to the other nodes %s (no all-zeros forwarding entry with that dst) - see `%s`; add "
             "one with `bridge fdb append 00:00:00:00:00:00 dev %s dst %s`"
             % (name, ", ".join(missing), fdb, name, missing[0]))


VXLAN_WORDS = {"id": "VNI (id)", "port": "UDP port (dstport)", "link": "underlay link (dev)", "local": "local address"}


def check_veth_pair(lab, item):
    check_link(lab, item, "veth")
    check_link(lab, item["peer"], "veth")
    end = links_in(lab, item.get("namespace"))[item["name"]]
    peer = links_in(lab, item["peer"].get("namespace"))[item["peer"]["name"]]
    # Each end's peer index is the other's own index (ip -d link shows it as NAME@ifN).
    if end.get("link_index", peer["ifindex"]) != peer["ifindex"] or peer.get("link_index", end["ifindex"]) != end["ifindex"]:
        fail("%s and %s are not the two ends of one veth pair - see `%s` and `%s`"
             % (item["name"], item["peer"]["name"], ip(item.get("namespace"), "link", "show", item["name"]),
                ip(item["peer"].get("namespace"), "link", "show", item["peer"]["name"])))


def check_route(lab, item):
    namespace = item.get("namespace")
    family = ["-6"] if ":" in item.get("via", "") or ":" in item["dst"] else []
    routes = lab.json(ip(namespace, *family, "-j", "route", "show"))
    if not route_found(routes, item):
        wanted = "%s%s%s" % (item["dst"], " via %s" % item["via"] if item.get("via") else "",
                             " dev %s" % item["dev"] if item.get("dev") else "")
        fail("%s has no route %s - see `%s`" % (namespace_words(namespace), wanted, ip(namespace, *family, "route")))
