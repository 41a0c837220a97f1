# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Kind `pods`: network namespaces attached by executing the CNI plugins, as a container runtime does.

The CNI specification (SPEC.md 1.0.0; module_utils/cni.py runs the plugins): the
runtime makes the namespace, attaches `lo` with the loopback plugin (as
containerd does), then runs each plugin of the pod's network configuration list
with CNI_COMMAND=ADD; a later run calls CHECK (0.4.0 and later), and DEL then ADD
when it fails or the configuration changed. A pod no longer declared, and every
pod on reset, gets DEL before its namespace is deleted; after the last pod the
links the plugins made and the state directories they made go too.
"""
from __future__ import annotations

import ipaddress
import json
import os
import posixpath

from ansible_collections.cka.lab.plugins.module_utils.cni import (
    CniError,
    conflist_of,
    parse_conflist,
    plugin_types,
    result_addresses,
    version_tuple,
)
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import EngineError
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.files import read_file
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import fail, ip, links_in, route_found
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.picture import ROOT, link_lines
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.rules import delete_rules
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import (
    IFNAME_SCHEMA,
    NETNS,
    PORT_SCHEMA,
    item_schema,
    path_of,
)

KEYS = ('pods',)
# The record (lab_record.py): this kind's keys, their type and value in a new record (the pods attached,
# the links the plugins made, the directories made for them: null until the first build with pods notes
# them), and what it notes of the machine before the lab's first build.
RECORD = {'pods': ('list', []), 'cni_links': ('list', []), 'cni_dirs': ('list', None)}
NOTED = {'paths': 'object'}

SCHEMA = {'pods': item_schema(['name', 'network'], {
    'name': {'type': 'string', 'pattern': NETNS}, 'network': {'type': 'string'},
    'ifname': IFNAME_SCHEMA, 'subnet': {'type': 'string'},
    'cni_path': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1},
    'port_mappings': {'type': 'array', 'items': {
        'type': 'object', 'required': ['hostPort', 'containerPort'], 'additionalProperties': False,
        'properties': {'hostPort': PORT_SCHEMA, 'containerPort': PORT_SCHEMA,
                       'protocol': {'enum': ['tcp', 'udp', 'sctp']},
                       'hostIP': {'type': 'string'}}}}})}


def stage_errors(machine, context):
    """A pod's name is its namespace and container ID: once, and not also in machine.namespaces; its network
    a declared configuration list whose plugins the stage installs; its published ports once per node."""
    errors = []
    namespaces = [ns['name'] for ns in machine.get('namespaces', [])]
    pods = [pod['name'] for pod in machine.get('pods', [])]
    for i, pod in enumerate(machine.get('pods', [])):
        where = path_of(pod, 'pods', i)
        if pod['name'] in namespaces:
            errors.append("%s.name: '%s' is also declared in machine.namespaces%s; a pod's namespace is made by "
                          "its runtime, declare it once, as a pod" % (where, pod['name'], context.where_stage))
        elif pods.count(pod['name']) > 1 and pods.index(pod['name']) != i:
            errors.append("%s.name: '%s' is declared twice%s; each pod once (its name is its namespace and "
                          "container ID)" % (where, pod['name'], context.where_stage))
    return errors + _network_errors(machine, context.where_stage)


def _json_file(machine, path):
    """The parsed content of a declared file, or None when it is not declared or not JSON."""
    for item in machine.get('files', []):
        if item['path'] == path and 'content' in item:
            try:
                return json.loads(item['content'])
            except ValueError:
                return None
    return None


def _network_errors(machine, where_stage):
    """Pods: their network a declared configuration list whose plugins the stage installs, their slice a
    network, their published ports once per node."""
    errors = []
    files = {f['path']: f for f in machine.get('files', [])}
    published = {}
    for i, pod in enumerate(machine.get('pods', [])):
        where = pod.get('__path', 'machine.pods[%d]' % i)
        network = pod['network']
        conflist = _json_file(machine, network)
        if network not in files:
            errors.append("%s.network: '%s' is not a file declared in machine.files%s; a pod is attached to a "
                          "network configuration list the lab writes" % (where, network, where_stage))
        elif conflist is None or not isinstance(conflist, dict) or not isinstance(conflist.get('plugins'), list) \
                or not all(isinstance(p, dict) and isinstance(p.get('type'), str) for p in conflist['plugins']) \
                or not isinstance(conflist.get('name'), str) or not isinstance(conflist.get('cniVersion'), str):
            errors.append("%s.network: %s is not a network configuration list (JSON with cniVersion, name and "
                          "plugins, each with a type; CNI SPEC.md)%s" % (where, network, where_stage))
        else:
            cni_path = pod.get('cni_path') or ['/opt/cni/bin']
            installed = {posixpath.basename(path) for path in files
                         if posixpath.dirname(path) in cni_path}
            if installed:
                for plugin in plugin_types(conflist):
                    if plugin not in installed:
                        errors.append("%s.network: %s runs the plugin %s, which the lab does not install in %s "
                                      "(installed there: %s)%s" % (where, network, plugin, ':'.join(cni_path),
                                                                   ', '.join(sorted(installed)), where_stage))
        if 'subnet' in pod:
            try:
                ipaddress.ip_network(pod['subnet'])
            except ValueError:
                errors.append("%s.subnet: '%s' is not a network in CIDR form with its host bits zero, like "
                              "10.244.1.0/24" % (where, pod['subnet']))
        for j, mapping in enumerate(pod.get('port_mappings', [])):
            key = (mapping['hostPort'], mapping.get('protocol', 'tcp'))
            if key in published:
                errors.append("%s.port_mappings[%d].hostPort: %d/%s is already published for %s%s; a node port "
                              "once" % (where, j, key[0], key[1], published[key], where_stage))
            published.setdefault(key, pod['name'])
    return errors
# Where libcni (containerd, CRI-O) keeps each attachment's result, and where
# host-local keeps its leases by default (plugins/ipam/host-local README).
CNI_CACHE_DIR = '/var/lib/cni/results'
CNI_STATE_DIR = '/var/lib/cni'
DEFAULT_CNI_PATH = ('/opt/cni/bin',)
# The loopback attachment a runtime gives every pod (containerd's CRI plugin
# attaches `lo` with the loopback plugin before the pod's network).
LOOPBACK_NETWORK = 'cni-loopback'


def snapshot(engine, every_stage):
    """Whether the CNI state directories existed: a reset removes only those the plugins made."""
    if not every_stage.get('pods'):
        return {}
    return {'paths': {path: os.path.lexists(path) for path in (CNI_STATE_DIR, engine.cni_cache_dir)}}


def plan(engine, machine, record):
    return None, _preflight(engine, machine)


def remove(engine, record, also):
    for entry in record['pods']:
        _remove_pod(engine, record, entry)
    _remove_hand_made(engine, record, also)
    _remove_cni_leftovers(engine, record, also)


def conflist_of_machine(machine, path):
    for item in machine.get('files', []):
        if item['path'] == path and 'content' in item:
            return item['content']
    return read_file(path)


def cni_bridges(machine):
    """The bridges the pods' networks make on the node (the bridge plugin's `bridge`, default cni0)."""
    names = []
    for pod in machine.get('pods', []):
        try:
            conflist = json.loads(conflist_of_machine(machine, pod['network']) or '{}')
        except ValueError:
            continue
        for plugin in conflist.get('plugins', []) if isinstance(conflist, dict) else []:
            if isinstance(plugin, dict) and plugin.get('type') == 'bridge':
                name = plugin.get('bridge') or 'cni0'
                if name not in names:
                    names.append(name)
    return names


def _preflight(engine, machine):
    """Every plugin a pod's network runs, and loopback, is installed or declared with the stage's files."""
    errors = []
    declared = {item['path'] for item in machine.get('files', [])}
    for pod in machine.get('pods', []):
        text = conflist_of_machine(machine, pod['network'])
        if text is None:
            errors.append("pod %s: its network configuration list %s does not exist (see: ls %s)"
                          % (pod['name'], pod['network'], os.path.dirname(pod['network'])))
            continue
        try:
            conflist = parse_conflist(text, pod['network'])
        except CniError as exc:
            errors.append('pod %s: %s' % (pod['name'], exc))
            continue
        cni_path = pod.get('cni_path') or list(DEFAULT_CNI_PATH)
        runtime = engine.cni(cni_path)
        supported = {}
        links = {item['path']: item['link'] for item in machine.get('files', []) if 'link' in item}
        for plugin in plugin_types(conflist) + ['loopback']:
            # The plugin as it will be: the stage's own link to it first, else what is installed.
            path = next((links[os.path.join(d, plugin)] for d in cni_path if os.path.join(d, plugin) in links),
                        None) or runtime.find_plugin(plugin)
            if path is None or not os.path.exists(path):
                if not any(os.path.join(d, plugin) in declared for d in cni_path):
                    errors.append("pod %s: the plugin %s (run by %s) is not installed in %s (see: ls %s)"
                                  % (pod['name'], plugin,
                                     pod['network'] if plugin != 'loopback' else 'the runtime for lo',
                                     ':'.join(cni_path), ' '.join(cni_path)))
                continue
            versions = runtime.supported_versions(plugin, path)
            if versions is not None:
                supported[plugin] = versions
        version = conflist['cniVersion']
        if version_tuple(version) < (0, 3, 0) and len(conflist['plugins']) > 1:
            errors.append("pod %s: %s has cniVersion %s and chains %d plugins (%s); a plugin gets the one before's "
                          "result (prevResult) from cniVersion 0.3.0 on; allowed: 0.3.0 or later, or one plugin"
                          % (pod['name'], pod['network'], version, len(conflist['plugins']),
                             ', '.join(_plugin_names(conflist))))
        refusing = sorted(p for p, versions in supported.items() if version not in versions)
        if refusing:
            common = [v for v in next(iter(supported.values()))
                      if all(v in versions for versions in supported.values())]
            errors.append("pod %s: %s has cniVersion %s, which the plugin%s %s do%s not support (CNI_COMMAND=VERSION "
                          "answers %s); allowed: a cniVersion every plugin of the list supports: %s"
                          % (pod['name'], pod['network'], version, 's' if len(refusing) > 1 else '',
                             ', '.join(refusing), '' if len(refusing) > 1 else 'es',
                             '; '.join('%s: %s' % (p, ', '.join(supported[p])) for p in refusing),
                             ', '.join(common) or 'none'))
    return errors


def _loopback_conflist(version):
    return {'cniVersion': version, 'name': LOOPBACK_NETWORK, 'plugins': [{'type': 'loopback'}]}


def _capability_args(pod):
    return {'portMappings': list(pod['port_mappings'])} if pod.get('port_mappings') else {}


def _attach(engine, runtime, conflist, pod, ifname, capability_args):
    """ADD unless the cached attachment is for this configuration and CHECK passes; returns the result."""
    netns = os.path.join(engine.netns_dir, pod['name'])
    cached = runtime.cached(conflist['name'], pod['name'], ifname)
    if cached is not None:
        same = (_cached_conflist(cached) == conflist
                and (cached.get('capabilityArgs') or {}) == (capability_args or {}))
        try:
            if same and version_tuple(conflist['cniVersion']) < (0, 4, 0):
                # No CHECK before 0.4.0 (spec): a runtime takes the attachment as it is while the pod's
                # interface is there.
                if engine.read(['ip', '-n', pod['name'], 'link', 'show', ifname], ok=(0, 1, 255))[0] == 0:
                    return cached.get('result')
            elif same:
                runtime.check(conflist, pod['name'], netns, ifname, capability_args)
                return cached.get('result')
        except CniError as exc:
            if _portmap_ipv6_bug(exc, cached):
                return cached.get('result')
        _detach(engine, dict(cached, cni_path=list(runtime.bin_dirs)), netns)
    elif ifname != 'lo' and engine.netns_inode(pod['name']) is not None \
            and engine.read(['ip', '-n', pod['name'], 'link', 'show', ifname], ok=(0, 1, 255))[0] == 0:
        # Attached by hand (no cache entry): DEL it as a runtime that lost its cache would, the plugins
        # cleaning up what they find, so that the ADD below does not meet an interface of that name.
        engine.commands.append('CNI DEL %s %s (attached by hand): CNI_CONTAINERID=%s CNI_IFNAME=%s %s'
                               % (conflist['name'], pod['name'], pod['name'], ifname,
                                  ' | '.join(reversed(_plugin_names(conflist)))))
        runtime.delete(conflist, pod['name'], netns, ifname, capability_args or None)
    engine.commands.append('CNI ADD %s %s: CNI_CONTAINERID=%s CNI_NETNS=%s CNI_IFNAME=%s CNI_PATH=%s %s'
                           % (conflist['name'], pod['name'], pod['name'], netns, ifname,
                              ':'.join(runtime.bin_dirs), ' | '.join(_plugin_names(conflist))))
    return runtime.add(conflist, pod['name'], netns, ifname, capability_args)


def _portmap_ipv6_bug(exc, cached):
    """portmap 1.1.1 (Debian 12) fails CHECK for a pod with port mappings and no IPv6 address, looking for
    an IPv6 DNAT chain it never made, after its IPv4 checks passed (containernetworking/plugins issue #819,
    fixed in later releases): that failure alone is not a broken attachment."""
    ips = (cached.get('result') or {}).get('ips', [])
    return (exc.plugin == 'portmap' and str(exc.msg).startswith('could not check ipv6 dnat')
            and not any(':' in ip.get('address', '') for ip in ips))


def _plugin_names(conflist):
    return [plugin['type'] for plugin in conflist['plugins']]


def _cached_conflist(entry):
    """The list a cache entry was made with, or None when the entry's copy is unreadable."""
    try:
        return conflist_of(entry)
    except CniError:
        return None


def _detach(engine, entry, netns):
    """DEL an attachment with the configuration it was made with (from the cache)."""
    conflist = _cached_conflist(entry) or {'cniVersion': '1.0.0', 'name': entry['networkName'], 'plugins': []}
    runtime = engine.cni(entry.get('cni_path'))
    engine.commands.append('CNI DEL %s %s: CNI_CONTAINERID=%s CNI_NETNS=%s CNI_IFNAME=%s %s'
                           % (entry['networkName'], entry['containerId'], entry['containerId'], netns,
                              entry['ifName'], ' | '.join(reversed(_plugin_names(conflist)))))
    runtime.delete(conflist, entry['containerId'], netns, entry['ifName'], entry.get('capabilityArgs') or None)


def withdraw(engine, machine, record, plan):
    """DEL the recorded pods the stage no longer declares, and delete their namespaces."""
    wanted = {pod['name'] for pod in machine.get('pods', [])}
    recorded = {entry['name']: entry for entry in record['pods']}
    for name in [n for n in recorded if n not in wanted]:
        _remove_pod(engine, record, recorded.pop(name))
        record['pods'] = sorted(recorded.values(), key=lambda e: e['name'])


def build(engine, machine, record, plan):
    pods = machine.get('pods', [])
    recorded = {entry['name']: entry for entry in record['pods']}
    if pods and record['cni_dirs'] is None:
        # What the plugins and the cache will make, noted before the first ADD.
        record['cni_dirs'] = [d for d in (CNI_STATE_DIR, engine.cni_cache_dir) if not os.path.exists(d)]
    if pods:
        # The bridges the plugins will make (the host ends of the pods' pairs go with their namespaces).
        record['cni_links'] = sorted(set(record['cni_links']) | set(cni_bridges(machine)))
    for pod in pods:
        conflist = parse_conflist(conflist_of_machine(machine, pod['network']), pod['network'])
        cni_path = list(pod.get('cni_path') or DEFAULT_CNI_PATH)
        runtime = engine.cni(cni_path)
        ifname = pod.get('ifname') or 'eth0'
        entry = recorded.get(pod['name'])
        if entry is not None and (entry['network_name'], entry['ifname']) != (conflist['name'], ifname):
            # Attached to another network (or interface) before: that attachment goes first.
            _detach_recorded(engine, entry)
        recorded[pod['name']] = {'name': pod['name'], 'network': pod['network'], 'network_name': conflist['name'],
                                 'ifname': ifname, 'cni_path': cni_path, 'cni_version': conflist['cniVersion']}
        record['pods'] = sorted(recorded.values(), key=lambda e: e['name'])
        if engine.netns_inode(pod['name']) is None:
            engine.change(['ip', 'netns', 'add', pod['name']])
        _attach(engine, runtime, _loopback_conflist(conflist['cniVersion']), pod, 'lo', {})
        result = _attach(engine, runtime, conflist, pod, ifname, _capability_args(pod))
        if result is None:  # check mode
            continue
        if pod.get('subnet'):
            got = result_addresses(result)
            if not any(i.ip in ipaddress.ip_network(pod['subnet']) for i in got):
                raise EngineError(['pod %s: the network %s gave it %s, outside its slice %s (see: cat %s)'
                                   % (pod['name'], conflist['name'], ', '.join(map(str, got)) or 'no address',
                                      pod['subnet'], pod['network'])])
    record['pods'] = sorted(recorded.values(), key=lambda e: e['name'])
    if not pods and (record['cni_links'] or record['cni_dirs']):
        _remove_cni_leftovers(engine, record)
        record['cni_links'], record['cni_dirs'] = [], None


def _detach_recorded(engine, entry):
    netns = os.path.join(engine.netns_dir, entry['name'])
    runtime = engine.cni(entry.get('cni_path'))
    for network, ifname in ((entry['network_name'], entry['ifname']), (LOOPBACK_NETWORK, 'lo')):
        cached = runtime.cached(network, entry['name'], ifname)
        if cached is not None:
            _detach(engine, dict(cached, cni_path=entry.get('cni_path')), netns)


def _remove_pod(engine, record, entry):
    """DEL the pod's attachments (its address goes back to the pool), then stop what still runs in its
    namespace and delete it, unless the machine had that namespace before the lab's first build."""
    _detach_recorded(engine, entry)
    if entry['name'] not in (record['preexisting']['namespaces'] or []) \
            and engine.netns_inode(entry['name']) is not None:
        _stop_processes_in(engine, entry['name'])
        engine.change(['ip', 'netns', 'del', entry['name']])


def _remove_hand_made(engine, record, also):
    """Pods of the lab's names a student attached by hand (not in the record, not on the machine before the
    lab): the processes in each stopped, the pod deleted with CNI DEL through the network the lab declares
    (without a cache entry, as a runtime that lost it: the plugins clean up what they find), its namespace
    deleted."""
    before = record['preexisting']
    if before['namespaces'] is None:
        return
    ours = {entry['name'] for entry in record['pods']}
    files = {item['path']: item for item in also.get('files', [])}
    for pod in also.get('pods', []):
        name = pod['name']
        if name in ours or name in before['namespaces'] or engine.netns_inode(name) is None:
            continue
        _stop_processes_in(engine, name)
        try:
            conflist = parse_conflist(files.get(pod['network'], {}).get('content') or '', pod['network'])
            runtime = engine.cni(pod.get('cni_path'))
            netns = os.path.join(engine.netns_dir, name)
            for network, ifname in ((conflist, pod.get('ifname') or 'eth0'),
                                    (_loopback_conflist(conflist['cniVersion']), 'lo')):
                if not runtime.missing_plugins(network):
                    engine.commands.append('CNI DEL %s %s (made by hand): CNI_CONTAINERID=%s CNI_IFNAME=%s %s'
                                           % (network['name'], name, name, ifname,
                                              ' | '.join(reversed(_plugin_names(network)))))
                    runtime.delete(network, name, netns, ifname)
        except CniError:
            pass  # its namespace goes all the same, and with it the pod's end of the pair
        engine.change(['ip', 'netns', 'del', name])


def _stop_processes_in(engine, namespace):
    """Stop what runs in a namespace the lab removes (a server a student started there): SIGTERM, then
    SIGKILL for what is still there after a second (ip-netns(8): `ip netns pids`)."""
    for signal in ('TERM', 'KILL'):
        _, out, _ = engine.read(['ip', 'netns', 'pids', namespace], ok=(0, 1, 255))
        pids = out.split()
        if not pids:
            return
        engine.change(['kill', '-' + signal] + pids)
        if engine.check_mode:
            return
        for _ in range(10):
            if not engine.read(['ip', 'netns', 'pids', namespace], ok=(0, 1, 255))[1].split():
                return
            engine.sleep(0.1)


def _remove_cni_leftovers(engine, record, also=None):
    """After the last pod: the links the plugins made (the bridge) and the state directories they made."""
    had = set(record['preexisting']['links'] or [])
    _, out, _ = engine.read(['ip', '-j', 'link', 'show'])
    present = {item['ifname'] for item in json.loads(out or '[]')}
    # The bridges of the networks a stage declares, made by a student's pods too.
    for name in sorted(set(record['cni_links']) | set(cni_bridges(also or {}))):
        if name in present and name not in had:
            engine.change(['ip', 'link', 'del', name])
    # portmap's chains are shared by every pod of the node and stay after each DEL (the
    # plugins name their chains CNI-...): those that were not there before the lab go.
    before = record['preexisting']
    for table in ('nat', 'filter'):
        rules, chains, _ = engine.iptables_listing(table)
        made = [c for c in chains if c.startswith('CNI-') and c not in (before['chains'] or {}).get(table, [])]
        if not made:
            continue
        kept = (before['rules'] or {}).get(table, [])
        doomed = [r for r in rules if (r.chain in made or r.target in made) and r.text not in kept]
        delete_rules(engine, table, rules, doomed)
        for chain in made:
            engine.change([engine.iptables, '-w', '-t', table, '-X', chain])
    before_paths = record['preexisting']['paths'] or {}
    made = set(record['cni_dirs'] or []) | {d for d in (CNI_STATE_DIR, engine.cni_cache_dir)
                                              if before_paths.get(d) is False}
    if engine.cni_cache_dir.startswith(CNI_STATE_DIR + '/') and CNI_STATE_DIR in made:
        made.discard(engine.cni_cache_dir)
    for directory in sorted(made, key=lambda d: -d.count('/')):
        if os.path.isdir(directory):
            engine.change(['rm', '-rf', '--one-file-system', directory])


# -- the picture (lab_drawing.py lays it out) --

def draw(machine, picture):
    """Each pod a box with the interface CNI ADD gives it (its network, its slice), joined to the bridge
    its network's bridge plugin makes in the host (named with the gateway of its host-local range)."""
    for pod, network, bridge in _networks(machine):
        ifname = pod.get('ifname') or 'eth0'
        picture.namespace(pod['name'], 'pod')
        about = ['(CNI ADD, network %s)' % network] + (['an address of %s' % pod['subnet']] if pod.get('subnet')
                                                       else [])
        picture.interface(pod['name'], ifname, 'veth', [ifname] + about)
        if bridge is not None:
            picture.interface(ROOT, bridge['name'], 'bridge', link_lines(bridge, 'bridge'))
            picture.pair((pod['name'], ifname), (ROOT, bridge['name']))
        picture.segment(('bridge', '', bridge['name'] if bridge else '?'), {ROOT, pod['name']})


def _networks(machine):
    """(pod, network name, the bridge its network's bridge plugin makes or None) for each pod; the bridge as
    a link: its name, and the gateway of its host-local range (CNI SPEC.md, plugins' README)."""
    files = {item['path']: item for item in machine.get('files') or []}
    out = []
    for pod in machine.get('pods') or []:
        try:
            conflist = json.loads(files.get(pod['network'], {}).get('content') or '{}')
        except ValueError:
            conflist = {}
        bridge = None
        for plugin in conflist.get('plugins') or []:
            if isinstance(plugin, dict) and plugin.get('type') == 'bridge':
                addresses = []
                for ranges in (plugin.get('ipam') or {}).get('ranges') or []:
                    for item in ranges:
                        if item.get('gateway') and item.get('subnet'):
                            addresses.append('%s/%s' % (item['gateway'], item['subnet'].split('/')[1]))
                bridge = {'name': plugin.get('bridge') or 'cni0', 'addresses': addresses}
        out.append((pod, conflist.get('name', pod['network']), bridge))
    return out


# -- checks: the lesson's objects, as a student looks at them (checks/lab/test_lab.py) --

def check_pod(lab, item):
    name, ifname = item["name"], item.get("ifname", "eth0")
    listed = {ns["name"] for ns in lab.json("ip -j netns list")}
    if name not in listed:
        fail("there is no pod %s: no network namespace of that name - see `ip netns`" % name)
    found = links_in(lab, name).get(ifname)
    if found is None:
        fail("pod %s has no %s: the network was not attached (CNI ADD) - see `%s`" % (name, ifname, ip(name, "link")))
    if "UP" not in found.get("flags", []):
        fail("%s of pod %s is down - see `%s`" % (ifname, name, ip(name, "addr", "show", ifname)))
    have = [a["local"] for a in found.get("addr_info", []) if a.get("family") == "inet"]
    if not have:
        fail("%s of pod %s has no IPv4 address - see `%s`" % (ifname, name, ip(name, "addr", "show", ifname)))
    if item.get("subnet") and not any(ipaddress.ip_address(a) in ipaddress.ip_network(item["subnet"]) for a in have):
        fail("pod %s has %s, outside its node's slice %s - see `%s` and the ranges in `cat %s`"
             % (name, ", ".join(have), item["subnet"], ip(name, "addr", "show", ifname), item["network"]))
    if not route_found(lab.json(ip(name, "-j", "route", "show")), {"dst": "default"}):
        fail("pod %s has no default route - see `%s`" % (name, ip(name, "route")))
