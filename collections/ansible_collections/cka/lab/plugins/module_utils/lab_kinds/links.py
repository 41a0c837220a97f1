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

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import EngineError, other_labs, strip, write_record
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.pods import cni_bridges
from ansible_collections.cka.lab.plugins.module_utils.topology import TopologyError, parse_topology, plan_present

KEYS = ('namespaces', 'bridges', 'vxlans', 'veth_pairs', 'routes')


def initial(engine):
    return {'topology': {kind: [] for kind in KEYS}, 'run_netns_existed': os.path.isdir(engine.netns_dir)}


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
    root_owned |= set(cni_bridges(machine)) | set(record.get('cni_links', []))
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
    if not record.get('run_netns_existed', True) and os.path.isdir(engine.netns_dir) \
            and os.listdir(engine.netns_dir):
        # Another lab's namespaces are still there: the directory goes with the last of them.
        for lab, other, path in other_labs(engine):
            if other.get('run_netns_existed', True):
                other['run_netns_existed'] = False
                engine.commands.append('leave %s to lab %s' % (engine.netns_dir, lab))
                if not engine.check_mode:
                    write_record(path, other)
    if not record.get('run_netns_existed', True) and os.path.isdir(engine.netns_dir) \
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
    before = record.get('preexisting')
    if before is None or not also:
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
    topology = record.get('topology', {})
    before = record.get('preexisting')
    if before is None:
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
