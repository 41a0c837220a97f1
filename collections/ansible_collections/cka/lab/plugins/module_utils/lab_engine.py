# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The lab engine's work on a lab machine: build one stage of a lab, or remove it.

What a lab declares on a machine (see lab_declaration.py) is converged in one
pass: the topology through topology.py (ip netns, ip link, ip addr, ip route),
sysctls, iptables chains and rules (netfilter.py, rules compared by what they
do), files, and services run as transient systemd units, each in its network
namespace. Before anything changes, the engine writes a record of what the lab
owns on the machine (``/var/lib/cka-lab/<lab>.json``); a reset removes exactly
what the record names, whatever variables it is run with, and a later build
removes what the lab owned and no longer declares.

Every action is an argv list run with LC_ALL=C; each one is returned, so the
result reads as the equivalent manual steps. In check mode nothing runs and the
same list says what would.
"""
from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import time

from ansible_collections.cka.lab.plugins.module_utils.cni import (
    CniError,
    Runtime,
    conflist_of,
    parse_conflist,
    plugin_types,
    result_addresses,
    version_tuple,
)
from ansible_collections.cka.lab.plugins.module_utils import lab_rules
from ansible_collections.cka.lab.plugins.module_utils.lab_rules import RuleConflict, delete_rule
from ansible_collections.cka.lab.plugins.module_utils.nat import NatError
from ansible_collections.cka.lab.plugins.module_utils.netfilter import parse_listing, parse_rule, plan_rules
from ansible_collections.cka.lab.plugins.module_utils.topology import (
    IpCommandError,
    TopologyError,
    command_string,
    parse_topology,
    plan_absent,
    plan_present,
    read_state,
)

# 2: the record names the iptables backend the lab's rules are in (`iptables`), the rules a build
# took over (`adopted`) and what NAT the machine had before (`preexisting.nat`, `preexisting.nft_chains`).
RECORD_VERSION = 2
NETNS_DIR = '/run/netns'
# Where libcni (containerd, CRI-O) keeps each attachment's result, and where
# host-local keeps its leases by default (plugins/ipam/host-local README).
CNI_CACHE_DIR = '/var/lib/cni/results'
CNI_STATE_DIR = '/var/lib/cni'
DEFAULT_CNI_PATH = ('/opt/cni/bin',)
# The loopback attachment a runtime gives every pod (containerd's CRI plugin
# attaches `lo` with the loopback plugin before the pod's network).
LOOPBACK_NETWORK = 'cni-loopback'


def write_record(path, record):
    """Write a lab's record whole: aside first, then renamed over the old one."""
    with open(path + '.tmp', 'w', encoding='utf-8') as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.replace(path + '.tmp', path)


def migrate_record(record, path='the record'):
    """A record of any earlier version in the current shape, one step per version; a record of a later
    version (a newer checkout built the lab) or not a record at all is refused with what to do."""
    version = record.get('version', 1) if isinstance(record, dict) else None
    if not isinstance(version, int) or version < 1 or not isinstance(record.get('topology', {}), dict):
        raise EngineError(['%s is not a lab record; remove it and clean the machine by hand, or recreate the machine'
                           % path])
    if version > RECORD_VERSION:
        raise EngineError(['%s was written by a newer version of the project (record version %d; this one reads up '
                           'to %d): build or reset this lab from that checkout' % (path, version, RECORD_VERSION)])
    if version < 2:
        # 1 -> 2: the backend is the `iptables` of the time (found again when the record is used), nothing
        # was taken over, and the machine's NAT before the lab was noted only as `preexisting.rules`.
        record.setdefault('adopted', [])
        record['version'] = 2
    return record


class EngineError(Exception):
    """A problem the engine can explain; `errors` are the lines of the explanation."""

    def __init__(self, errors):
        super().__init__('; '.join(errors))
        self.errors = errors


def stable_mac(mark, namespace, name):
    """A locally administered unicast MAC for a link, the same each time it is made.

    Derived from the lab's mark, the namespace and the interface name, so a link
    re-created by a repair comes back with its old address and the neighbours'
    ARP caches stay right (RFC 7042, section 2.1: the U/L bit set, I/G clear)."""
    digest = hashlib.sha256(('%s/%s/%s' % (mark, namespace or '', name)).encode()).digest()
    octets = [0x02 | (digest[0] & 0xfc)] + list(digest[1:6])
    return ':'.join('%02x' % o for o in octets)


def unit_name(mark, service):
    return 'cka-lab-%s-%s.service' % (mark, service)


class Engine:
    """Runs or plans the commands of one lab on one machine.

    `run(argv) -> (rc, stdout, stderr)` runs a command; `check_mode` only plans.
    """

    def __init__(self, run, lab, mark, record_dir, check_mode=False, sleep=time.sleep, netns_dir=NETNS_DIR,
                 run_plugin=None, cni_cache_dir=CNI_CACHE_DIR, which=shutil.which):
        self._run = run
        self.which = which
        # The iptables command the lab's rules are made with: the record's, once there is one.
        self.iptables = 'iptables'
        self.run_plugin = run_plugin
        self._machine_id = None
        self.cni_cache_dir = cni_cache_dir
        self.lab = lab
        self.mark = mark
        self.comment = 'cka-lab:%s' % mark
        self.record_path = os.path.join(record_dir, lab + '.json')
        self.record_dir = record_dir
        self.check_mode = check_mode
        self.sleep = sleep
        self.netns_dir = netns_dir
        self.commands = []
        # The lab's variables ({name: value}), only to name the one to change in a message.
        self.variables = {}

    # -- running ----------------------------------------------------------
    def read(self, argv, ok=(0,)):
        """A command that only looks; runs in check mode too."""
        rc, out, err = self._run(argv)
        if rc not in ok:
            raise IpCommandError(argv, rc, out, err)
        return rc, out, err

    def change(self, argv, what=None):
        """A command that changes the machine; planned only in check mode."""
        self.commands.append(what or shlex.join(argv))
        if self.check_mode:
            return 0, '', ''
        rc, out, err = self._run(argv)
        if rc != 0:
            raise IpCommandError(argv, rc, out, err)
        return rc, out, err

    def in_ns(self, namespace, argv):
        return argv if namespace is None else ['ip', 'netns', 'exec', namespace] + argv

    # -- record -----------------------------------------------------------
    def load_record(self):
        try:
            with open(self.record_path, encoding='utf-8') as handle:
                record = json.load(handle)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise EngineError(['%s is not readable JSON (%s); remove it and clean the machine by hand, or recreate '
                               'the machine' % (self.record_path, exc)])
        return migrate_record(record, self.record_path)

    def save_record(self, record):
        self.commands.append('record what the lab owns in %s' % self.record_path)
        if self.check_mode:
            return
        os.makedirs(self.record_dir, mode=0o755, exist_ok=True)
        write_record(self.record_path, record)

    def drop_record(self):
        if os.path.exists(self.record_path):
            self.commands.append('rm %s' % self.record_path)
            if not self.check_mode:
                os.unlink(self.record_path)
                if not os.listdir(self.record_dir):
                    os.rmdir(self.record_dir)

    # -- topology ---------------------------------------------------------
    def topology_params(self, machine, state='present', owned=()):
        removing = state == 'absent'

        def end(item):
            # Removal needs no master: a leftover port of a bridge that stays
            # is removed without it. Addresses stay, for the routes' gateways.
            return {'name': item['name'], 'namespace': item.get('namespace'),
                    'addresses': list(item.get('addresses', [])),
                    'master': None if removing else item.get('master'),
                    'mac': item.get('mac') or stable_mac(self.mark, item.get('namespace'), item['name'])}

        return {
            'state': state,
            'namespaces': [{'name': ns['name']} for ns in machine.get('namespaces', [])],
            'bridges': [{'name': b['name'], 'namespace': b.get('namespace'),
                         'addresses': list(b.get('addresses', [])),
                         'mac': b.get('mac') or stable_mac(self.mark, b.get('namespace'), b['name'])}
                        for b in machine.get('bridges', [])],
            'veth_pairs': [dict(end(p), peer=end(p['peer'])) for p in machine.get('veth_pairs', [])],
            'vxlans': [dict({k: v for k, v in x.items() if k in _VXLAN_KEYS}, namespace=x.get('namespace'),
                            addresses=list(x.get('addresses', [])),
                            mac=x.get('mac') or stable_mac('%s@%s' % (self.mark, self.machine_id()),
                                                           x.get('namespace'), x['name']))
                       for x in machine.get('vxlans', [])],
            'routes': [{'namespace': r.get('namespace'), 'dst': r['dst'], 'via': r.get('via'), 'dev': r.get('dev'),
                        'metric': r.get('metric'), 'onlink': bool(r.get('onlink'))}
                       for r in machine.get('routes', [])],
            'owned': list(owned),
        }

    def machine_id(self):
        """This machine's identity (machine-id(5), else its host name): a VXLAN device's MAC is seen by the
        other nodes, so unlike a link inside one machine it must differ from node to node."""
        if self._machine_id is None:
            try:
                with open('/etc/machine-id', encoding='ascii') as handle:
                    self._machine_id = handle.read().strip()
            except (OSError, ValueError):
                self._machine_id = ''
            self._machine_id = self._machine_id or socket.gethostname()
        return self._machine_id

    def read_topology(self, topology):
        """What the machine has of `topology` (topology.read_state), read in any mode."""
        return read_state(self._run, topology)

    def topology(self, params):
        """Plan the topology; returns (topology, planner)."""
        try:
            topology = parse_topology(params)
        except TopologyError as exc:
            raise EngineError(['the topology is not valid: ' + e for e in exc.errors])
        state = self.read_topology(topology)
        try:
            planner = plan_present(topology, state) if params['state'] == 'present' else plan_absent(topology, state)
        except TopologyError as exc:
            raise EngineError(exc.errors)
        return planner

    def cni(self, cni_path=None):
        """A CNI runtime over the plugins in `cni_path` (CNI_PATH), keeping results in the cache."""
        return Runtime(self.run_plugin, bin_dirs=tuple(cni_path or DEFAULT_CNI_PATH), cache_dir=self.cni_cache_dir,
                       check_mode=self.check_mode)

    def apply_planner(self, planner):
        for argv in planner.commands:
            try:
                self.change(argv, command_string(argv))
            except IpCommandError as exc:
                # A veth end whose peer's namespace was just released goes with it, a moment after it was
                # read: gone is what the deletion wanted.
                if argv[-3:-1] == ['link', 'del'] and 'Cannot find device' in (exc.stderr or ''):
                    continue
                raise

    # -- the machine's own networks ----------------------------------------
    def own_networks(self, owned_links):
        """{network: interface} of the root namespace's addresses on links the lab does not own."""
        _, out, _ = self.read(['ip', '-j', 'addr', 'show'])
        found = {}
        for link in json.loads(out or '[]'):
            if link.get('ifname') in owned_links or link.get('ifname') == 'lo':
                continue
            for addr in link.get('addr_info', []):
                if addr.get('scope') == 'link':
                    continue
                net = ipaddress.ip_interface('%s/%s' % (addr['local'], addr['prefixlen'])).network
                found[net] = link['ifname']
        return found

    # -- sysctls ----------------------------------------------------------
    def sysctl_path(self, name):
        return '/proc/sys/' + name.replace('.', '/')

    def sysctl_get(self, namespace, name):
        """The value, or None where the setting or the namespace does not exist."""
        if namespace is not None and self.netns_inode(namespace) is None:
            return None
        rc, out, _ = self.read(self.in_ns(namespace, ['cat', self.sysctl_path(name)]), ok=(0, 1))
        return out.strip() if rc == 0 else None

    def sysctl_set(self, namespace, name, value):
        self.change(self.in_ns(namespace, ['sysctl', '-q', '-w', '%s=%s' % (name, value)]))

    # -- iptables ---------------------------------------------------------
    def iptables_listing(self, table, backend=None):
        """(rules, chains, policies) of `table`, from the lab's iptables backend or `backend`."""
        _, out, _ = self.read([backend or self.iptables, '-w', '-t', table, '-S'])
        return parse_listing(table, out)

    # -- services ---------------------------------------------------------
    def unit_show(self, unit):
        _, out, _ = self.read(['systemctl', 'show', '-p', 'ActiveState,MainPID,Description,LoadState', unit])
        props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        return props

    def netns_inode(self, namespace):
        path = os.path.join(self.netns_dir, namespace) if namespace else '/proc/1/ns/net'
        try:
            return os.stat(path).st_ino
        except OSError:
            return None

    def pid_netns_inode(self, pid):
        try:
            return os.stat('/proc/%d/ns/net' % pid).st_ino
        except (OSError, ValueError):
            return None

    def sockets(self, namespace, protocol):
        """[(address, port, [(program, pid)])] of listening sockets in a namespace, from ss(8)."""
        if namespace is not None and self.netns_inode(namespace) is None:
            return []
        flag = '-t' if protocol == 'tcp' else '-u'
        rc, out, _ = self.read(self.in_ns(namespace, ['ss', '-H', '-l', '-n', '-p', flag]), ok=(0, 1))
        found = []
        for line in out.splitlines():
            fields = line.split()
            local = next((f for f in fields if re.match(r'^(\[.*\]|[^\s\[\]]+):(\d+|\*)$', f)), None)
            if local is None:
                continue
            address, port = local.rsplit(':', 1)
            address = address.strip('[]').split('%')[0]
            users = re.findall(r'\("([^"]*)",pid=(\d+)', line)
            found.append((address, port, [(name, int(pid)) for name, pid in users]))
        return found

    def holders(self, namespace, listen):
        """Who listens where `listen` wants to: [(program, pid)]."""
        wanted = ipaddress.ip_address(listen['address'])
        out = []
        for address, port, users in self.sockets(namespace, listen['protocol']):
            if port != str(listen['port']):
                continue
            try:
                found = ipaddress.ip_address(address if address not in ('*', '') else '0.0.0.0')
            except ValueError:
                continue
            if found == wanted or found.is_unspecified or wanted.is_unspecified:
                out += users or [('unknown', 0)]
        return out

    def cmdline(self, pid):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as handle:
                return handle.read().replace(b'\0', b' ').decode(errors='replace').strip()
        except OSError:
            return '?'


def service_description(service):
    """The unit's description carries a digest of what it runs, so a changed declaration restarts it."""
    digest = hashlib.sha256(json.dumps([service.get('namespace'), service['command'], service['listen']],
                                       sort_keys=True).encode()).hexdigest()[:12]
    return '%s [%s]' % (service.get('description') or service['name'], digest)


# --------------------------------------------------------------------------
# Build and remove
# --------------------------------------------------------------------------

_TOPOLOGY_KINDS = ('namespaces', 'bridges', 'vxlans', 'veth_pairs', 'routes')
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


def _links(topology):
    """(namespace, name) of every link end in a topology record."""
    out = [(b.get('namespace'), b['name']) for b in topology.get('bridges', []) + topology.get('vxlans', [])]
    for pair in topology.get('veth_pairs', []):
        out += [(pair.get('namespace'), pair['name']), (pair['peer'].get('namespace'), pair['peer']['name'])]
    return out


def new_record(engine, stage, every_stage=None):
    """The record of a first build, with what the machine had before it.

    `preexisting` lists the namespaces, root-namespace links and iptables rules
    there were before the lab: a reset may also remove objects a student made
    by hand with the lab's names, but never one of these."""
    _, out, _ = engine.read(['ip', '-j', 'netns', 'list'])
    namespaces = sorted(item['name'] for item in json.loads(out or '[]'))
    _, out, _ = engine.read(['ip', '-j', 'link', 'show'])
    links = sorted(item['ifname'] for item in json.loads(out or '[]'))
    engine.iptables = lab_rules.default_backend(engine)
    rules, chains = {}, {}
    for table in ('nat', 'filter'):
        listing = engine.iptables_listing(table)
        rules[table] = [rule.text for rule in listing[0]]
        chains[table] = listing[1]
    # Root-namespace settings any stage declares, as they were: a reset puts
    # back what a student changed by hand too (namespaced ones go with their
    # namespaces).
    sysctls = []
    for item in (every_stage or {}).get('sysctls', []):
        if item.get('namespace') is None and item['name'] not in [s['name'] for s in sysctls]:
            value = engine.sysctl_get(None, item['name'])
            if value is not None:
                sysctls.append({'namespace': None, 'name': item['name'], 'before': value})
    # The root namespace's routes, and which of the paths any stage declares (files, their directories,
    # the CNI plugins' state) existed: a reset may remove a student's route or file, never the machine's.
    _, out, _ = engine.read(['ip', '-j', 'route', 'show'])
    routes = sorted({_route_words(item.get('dst'), item.get('gateway')) for item in json.loads(out or '[]')})
    paths = {}
    for item in (every_stage or {}).get('files', []):
        path = item['path']
        while path not in ('/', '') and path not in paths:
            paths[path] = os.path.lexists(path)
            path = os.path.dirname(path)
    if (every_stage or {}).get('pods'):
        for path in (CNI_STATE_DIR, engine.cni_cache_dir):
            paths[path] = os.path.lexists(path)
    try:
        nat_rules, nft_chains = lab_rules.snapshot(engine)
    except RuleConflict as exc:
        if lab_rules.traffic_rules(every_stage or {}):
            raise EngineError(exc.errors) from None
        nat_rules, nft_chains = [], []  # a lab with no rule judged by its traffic does not need them
    return {'version': RECORD_VERSION, 'lab': engine.lab, 'name': engine.mark, 'stage': stage,
            'run_netns_existed': os.path.isdir(engine.netns_dir), 'iptables': engine.iptables, 'adopted': [],
            'preexisting': {'namespaces': namespaces, 'links': links, 'rules': rules, 'chains': chains,
                            'sysctls': sysctls, 'routes': routes, 'paths': paths, 'nat': nat_rules,
                            'nft_chains': nft_chains},
            'topology': {kind: [] for kind in _TOPOLOGY_KINDS},
            'sysctls': [], 'chains': [], 'tables': [], 'files': [], 'services': []}


def _route_words(dst, via):
    """A root-namespace route as `DST via GATEWAY`, `default` for 0.0.0.0/0, for comparing with the snapshot."""
    dst = 'default' if dst in (None, 'default', '0.0.0.0/0', '::/0') else dst
    return '%s via %s' % (dst, via) if via else dst


def _hand_made(record, also):
    """The objects of `also` (every stage of the lab) that were not on the machine
    before the lab: the lab's names, made by hand by a student."""
    before = record.get('preexisting')
    if before is None or not also:
        return {kind: [] for kind in _TOPOLOGY_KINDS}, []
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
    rules = []
    for item in also.get('rules', []):
        rule = parse_rule(item['table'], item['rule'])
        if not any(parse_rule(item['table'], text) == rule for text in before['rules'].get(item['table'], [])):
            rules.append(rule)
    # Root-namespace routes a stage declares that the machine did not have (records older than
    # `preexisting.routes` leave them alone).
    routes = [r for r in also.get('routes', []) if r.get('namespace') is None and 'routes' in before
              and _route_words(r['dst'], r.get('via')) not in before['routes']]
    return {'namespaces': namespaces, 'bridges': bridges, 'vxlans': vxlans, 'veth_pairs': pairs,
            'routes': routes}, rules


def converge(engine, machine, stage, every_stage=None):
    """Build `machine` (one stage of a lab) on this machine; `every_stage`, what
    all stages declare, tells the first build which settings to note as they
    were. Returns the record of what the lab owns."""
    missing = _preflight_tools(engine, machine)
    if missing:
        raise EngineError(missing)  # nothing else can be looked at without them
    shared = _shared_machine_problems(engine, machine)
    if shared:
        raise EngineError(shared)  # what follows from a clash with another lab would only repeat it
    old = engine.load_record()
    previous_links = set()
    old_comment = None
    if old is not None and old.get('name') != engine.mark:
        # The mark names the lab's rules and units: the old ones go once the
        # checks below have passed; its topology, files and settings are the
        # lab's as before.
        previous_links = set(_links(old.get('topology', {})))
        old_comment = 'cka-lab:%s' % old.get('name')
    record = copy.deepcopy(old) if old is not None else new_record(engine, stage, every_stage)
    record['name'] = engine.mark
    # A record older than version 2: its rules were made by the `iptables` of the time.
    record.setdefault('iptables', lab_rules.default_backend(engine))
    record.setdefault('adopted', [])
    record['version'] = RECORD_VERSION
    engine.iptables = record['iptables']
    declared_topology = {kind: machine.get(kind, []) for kind in _TOPOLOGY_KINDS}
    leftover = {kind: [item for item in record['topology'].get(kind, [])
                       if _key(kind, item) not in {_key(kind, d) for d in declared_topology[kind]}]
                for kind in _TOPOLOGY_KINDS}
    owned = set(_links(record['topology']))
    declared_links = _links(declared_topology)

    errors = []
    # This machine's own networks (the one Ansible comes in on) must not be reused by the lab.
    root_owned = {name for ns, name in owned | set(declared_links) | previous_links if ns is None}
    # The bridges the pods' CNI networks make (and the links the plugins reported) are the lab's too.
    root_owned |= set(_cni_bridges(machine)) | set(record.get('cni_links', []))
    own = engine.own_networks(root_owned)
    for where, ns, item in _addressed(machine):
        for text in item.get('addresses', []):
            net = ipaddress.ip_interface(text).network
            for mine, ifname in own.items():
                if net.overlaps(mine):
                    errors.append("%s %s: %s overlaps %s of %s, a network this machine already has; the lab's "
                                  "networks must be separate from the machine's own (see: ip addr show %s)"
                                  % (where, item['name'], text, mine, ifname, ifname))

    leftover_params = engine.topology_params(leftover, state='absent')
    present_params = engine.topology_params(declared_topology, owned=[{'namespace': ns, 'name': name}
                                                                      for ns, name in sorted(owned, key=str)])
    try:
        removal = engine.topology(leftover_params) if any(leftover.values()) else None
        topology = parse_topology(present_params)
        state = removal.model if removal is not None else engine.read_topology(topology)
        building = plan_present(topology, state)
    except TopologyError as exc:
        errors += exc.errors
        building = None
    except EngineError as exc:
        errors += exc.errors
        building = None

    errors += _preflight_files(machine.get('files', []))
    errors += _preflight_pods(engine, machine)
    traffic_plan = ([], [], set())
    try:
        traffic_plan = lab_rules.plan_traffic(engine, machine, engine.iptables,
                                              {engine.comment} | ({old_comment} if old_comment else set()),
                                              record.get('preexisting'))
    except (RuleConflict, NatError) as exc:
        errors += getattr(exc, 'errors', [str(exc)])

    services = machine.get('services', [])
    service_plans = []
    # The lab's own units (this one, or one of an earlier declaration or name,
    # stopped below before anything starts) may hold the ports.
    lab_pids = {int(engine.unit_show(unit).get('MainPID') or 0) for unit in record['services']}
    for service in services:
        unit = unit_name(engine.mark, service['name'])
        props = engine.unit_show(unit)
        healthy = _service_healthy(engine, service, props)
        if not healthy:
            ours = lab_pids | {int(props.get('MainPID') or 0)}
            for listen in service['listen']:
                taken = [(prog, pid) for prog, pid in engine.holders(service.get('namespace'), listen)
                         if pid not in ours]
                for prog, pid in taken:
                    errors.append("service %s: %s:%s/%s in %s is already taken by %s (pid %d: %s); stop it "
                                  "(kill %d), then run again (see: %sss -lnp%s)"
                                  % (service['name'], listen['address'], listen['port'], listen['protocol'],
                                     _ns_words(service.get('namespace')), prog, pid, engine.cmdline(pid), pid,
                                     'ip netns exec %s ' % service['namespace'] if service.get('namespace') else '',
                                     't' if listen['protocol'] == 'tcp' else 'u'))
        service_plans.append((service, unit, props, healthy))
    if errors:
        raise EngineError(errors)

    # From here on the machine changes. Record first what the lab is about to
    # own, so that a run that fails half-way can be reset.
    merged = {kind: list(record['topology'].get(kind, [])) for kind in _TOPOLOGY_KINDS}
    for kind in _TOPOLOGY_KINDS:
        keys = {_key(kind, i) for i in merged[kind]}
        merged[kind] += [_strip(i) for i in declared_topology[kind] if _key(kind, i) not in keys]
    record['topology'] = merged
    record['stage'] = stage
    record['services'] = sorted(set(record['services']) | {unit for _, unit, _, _ in service_plans})
    record['tables'] = sorted(set(record['tables']) | {r['table'] for r in machine.get('rules', [])}
                              | {c['table'] for c in machine.get('chains', [])})
    if old != record:
        engine.save_record(record)

    try:
        if old_comment is not None:
            for table in sorted(set(record['tables']) | {'nat', 'filter'}):
                lab_rules.delete_marked(engine, table, old_comment)
        if removal is not None:
            engine.apply_planner(removal)
        engine.apply_planner(building)
        _forget_stale_neighbours(engine, building, declared_topology['namespaces'])

        _converge_sysctls(engine, machine.get('sysctls', []), record)
        _converge_netfilter(engine, machine, record, traffic_plan)
        # Pods no longer declared go while the plugins their DEL needs are still there.
        _detach_undeclared_pods(engine, machine, record)
        _converge_files(engine, machine.get('files', []), record)
        _converge_pods(engine, machine, record)
        for unit in [u for u in record['services'] if u not in {p[1] for p in service_plans}]:
            _stop_unit(engine, unit)
        for service, unit, props, healthy in service_plans:
            if not healthy:
                _start_service(engine, service, unit, props)
    except Exception:
        # What was noted before each change (settings as they were, files and
        # chains made) is kept, so that a reset removes what this run did.
        if not engine.check_mode:
            engine.save_record(record)
        raise
    record['services'] = sorted(p[1] for p in service_plans)
    record['topology'] = {kind: [_strip(i) for i in declared_topology[kind]] for kind in _TOPOLOGY_KINDS}
    if old is None or old != record:
        engine.save_record(record)
    return record


# --------------------------------------------------------------------------
# Pods: network namespaces attached by the CNI plugins, as a runtime does
# --------------------------------------------------------------------------

def _conflist_of(machine, path):
    for item in machine.get('files', []):
        if item['path'] == path and 'content' in item:
            return item['content']
    return _read_file(path)


def _cni_bridges(machine):
    """The bridges the pods' networks make on the node (the bridge plugin's `bridge`, default cni0)."""
    names = []
    for pod in machine.get('pods', []):
        try:
            conflist = json.loads(_conflist_of(machine, pod['network']) or '{}')
        except ValueError:
            continue
        for plugin in conflist.get('plugins', []) if isinstance(conflist, dict) else []:
            if isinstance(plugin, dict) and plugin.get('type') == 'bridge':
                name = plugin.get('bridge') or 'cni0'
                if name not in names:
                    names.append(name)
    return names


def other_labs(engine):
    """[(lab, record, path)] of the other labs built on this machine (their records beside this lab's)."""
    out = []
    if not os.path.isdir(engine.record_dir):
        return out
    for name in sorted(os.listdir(engine.record_dir)):
        path = os.path.join(engine.record_dir, name)
        if not name.endswith('.json') or name == engine.lab + '.json':
            continue
        try:
            with open(path, encoding='utf-8') as handle:
                out.append((name[:-5], json.load(handle), path))
        except (OSError, ValueError):
            continue
    return out


def _set_by(engine, value):
    """Which of the lab's variables give `value`: 'netns_lab_lan_interface', 'netns_lab_namespaces[0].name'."""
    found = []

    def walk(path, item):
        if isinstance(item, dict):
            for key, sub in item.items():
                walk('%s.%s' % (path, key), sub)
        elif isinstance(item, list):
            for i, sub in enumerate(item):
                walk('%s[%d]' % (path, i), sub)
        elif str(item) == str(value):
            found.append(path)

    for name, item in (engine.variables or {}).items():
        walk(name, item)
    return found


def _names(machine):
    """The namespaces, root-namespace links and file paths a machine part declares (or a record holds)."""
    namespaces = {ns['name'] for ns in machine.get('namespaces', [])} | {p['name'] for p in machine.get('pods', [])}
    links = {b['name'] for b in machine.get('bridges', []) + machine.get('vxlans', []) if b.get('namespace') is None}
    for pair in machine.get('veth_pairs', []):
        links |= {end['name'] for end in (pair, pair['peer']) if end.get('namespace') is None}
    return namespaces, links


def _shared_machine_problems(engine, machine):
    """Another lab built on this machine: the two must not share names, files or a setting with two values.
    What they share with one value (ip_forward on) works: a reset of one leaves it to the other."""
    problems = []
    mine_ns, mine_links = _names(machine)
    mine_files = {f['path'] for f in machine.get('files', [])}
    mine_sysctls = {(s.get('namespace'), s['name']): str(s['value']) for s in machine.get('sysctls', [])
                    if s.get('namespace') is None}
    for lab, other, path in other_labs(engine):
        their_ns, their_links = _names(other.get('topology', {}))
        their_ns |= {p['name'] for p in other.get('pods', []) if isinstance(p, dict) and 'name' in p}
        clashes = ['namespace %s' % n for n in sorted(mine_ns & their_ns)]
        clashes += ['link %s' % n for n in sorted(mine_links & their_links)]
        clashes += ['file %s' % n for n in sorted(mine_files & {f['path'] for f in other.get('files', [])})]
        for entry in other.get('sysctls', []):
            key = (entry.get('namespace'), entry['name'])
            if key in mine_sysctls and 'value' in entry and str(entry['value']) != mine_sysctls[key]:
                clashes.append('setting %s (this lab: %s, lab %s: %s)' % (entry['name'], mine_sysctls[key], lab,
                                                                         entry['value']))
        if not clashes:
            continue
        variables = sorted({v for c in clashes for v in _set_by(engine, c.split()[1])})
        problems.append("lab %s is built on this machine too (%s) and holds the same %s; two labs share a machine "
                        "only with their own names and networks: change %s, or reset lab %s first "
                        "(ansible-playbook playbooks/%s.yml -e %s_state=absent)"
                        % (lab, path, ', '.join(clashes),
                           'the variable%s %s' % ('s' if len(variables) > 1 else '', ', '.join(variables))
                           if variables else "this lab's names", lab, lab.replace('_', '-'), lab))
    return problems


def held_by_other_labs(engine, namespace, name):
    """The other labs' records that hold a setting (namespace, name) on this machine."""
    return [(lab, record, path) for lab, record, path in other_labs(engine)
            if any((e.get('namespace'), e['name']) == (namespace, name) for e in record.get('sysctls', []))]


# The Debian package of each command a lab's build runs, for the message when one is missing.
TOOL_PACKAGES = {'ip': 'iproute2', 'bridge': 'iproute2', 'ss': 'iproute2', 'iptables': 'iptables',
                 'iptables-nft': 'iptables', 'iptables-legacy': 'iptables', 'nft': 'nftables',
                 'python3': 'python3', 'socat': 'socat', 'curl': 'curl', 'systemd-run': 'systemd',
                 'journalctl': 'systemd', 'sysctl': 'procps', 'conntrack': 'conntrack', 'tcpdump': 'tcpdump',
                 'dig': 'dnsutils', 'ping': 'iputils-ping', 'coredns': 'the lab (playbooks/dns-lab.yml builds it)'}


def tools_needed(machine):
    """{command: why} of what building `machine` runs on the machine."""
    needed = {'ip': 'the topology', 'sysctl': 'the settings'}
    if machine.get('rules') or machine.get('chains'):
        needed['iptables'] = 'the iptables rules'
    if machine.get('services'):
        needed.update({'systemd-run': 'the services', 'ss': 'the services'})
    if any(v.get('remotes') for v in machine.get('vxlans', [])):
        needed['bridge'] = 'the VXLAN flood lists'
    for service in machine.get('services', []):
        if not service['command'][0].startswith('/'):
            needed.setdefault(service['command'][0], 'service %s' % service['name'])
    return needed


def _preflight_tools(engine, machine):
    """Every command the build runs is there, named with its package when it is not."""
    missing = []
    for command, why in tools_needed(machine).items():
        if not engine.which(command):
            missing.append('%s (for %s; Debian package %s)' % (command, why, TOOL_PACKAGES.get(command, command)))
    if missing:
        return ['this machine lacks %s; install %s first (apt-get install %s), then run again'
                % (', '.join(missing), 'it' if len(missing) == 1 else 'them',
                   ' '.join(sorted({TOOL_PACKAGES.get(m.split()[0], m.split()[0]) for m in missing
                                    if not TOOL_PACKAGES.get(m.split()[0], '').startswith('the lab')})))]
    return []


def _preflight_files(files):
    errors = []
    for item in files:
        if 'link' in item and not os.path.exists(item['link']):
            errors.append("file %s: links to %s, which this machine does not have (see: ls -l %s)"
                          % (item['path'], item['link'], os.path.dirname(item['link'])))
    return errors


def _preflight_pods(engine, machine):
    """Every plugin a pod's network runs, and loopback, is installed or declared with the stage's files."""
    errors = []
    declared = {item['path'] for item in machine.get('files', [])}
    for pod in machine.get('pods', []):
        text = _conflist_of(machine, pod['network'])
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


def _detach_undeclared_pods(engine, machine, record):
    """DEL the recorded pods the stage no longer declares, and delete their namespaces."""
    wanted = {pod['name'] for pod in machine.get('pods', [])}
    recorded = {entry['name']: entry for entry in record.get('pods', [])}
    for name in [n for n in recorded if n not in wanted]:
        _remove_pod(engine, record, recorded.pop(name))
        record['pods'] = sorted(recorded.values(), key=lambda e: e['name'])


def _converge_pods(engine, machine, record):
    pods = machine.get('pods', [])
    recorded = {entry['name']: entry for entry in record.get('pods', [])}
    if pods and 'cni_dirs' not in record:
        # What the plugins and the cache will make, noted before the first ADD.
        record['cni_dirs'] = [d for d in (CNI_STATE_DIR, engine.cni_cache_dir) if not os.path.exists(d)]
    if pods:
        # The bridges the plugins will make (the host ends of the pods' pairs go with their namespaces).
        record['cni_links'] = sorted(set(record.get('cni_links', [])) | set(_cni_bridges(machine)))
    for pod in pods:
        conflist = parse_conflist(_conflist_of(machine, pod['network']), pod['network'])
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
    if not pods and (record.get('cni_links') or record.get('cni_dirs')):
        _remove_cni_leftovers(engine, record)
        record.pop('cni_links', None)
        record.pop('cni_dirs', None)


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
    if entry['name'] not in record.get('preexisting', {}).get('namespaces', []) \
            and engine.netns_inode(entry['name']) is not None:
        _stop_processes_in(engine, entry['name'])
        engine.change(['ip', 'netns', 'del', entry['name']])


def _remove_hand_made_pods(engine, record, also):
    """Pods of the lab's names a student attached by hand (not in the record, not on the machine before the
    lab): the processes in each stopped, the pod deleted with CNI DEL through the network the lab declares
    (without a cache entry, as a runtime that lost it: the plugins clean up what they find), its namespace
    deleted."""
    before = record.get('preexisting')
    if before is None:
        return
    ours = {entry['name'] for entry in record.get('pods', [])}
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


def _remove_hand_made_files(engine, record, also):
    """Files and links at paths the lab declares that a student made by hand (not written by the lab, not
    on the machine before it), then the directories made for them, deepest first, once empty."""
    before = record.get('preexisting', {}).get('paths')
    if before is None:
        return
    recorded = {entry['path'] for entry in record.get('files', [])}
    for item in also.get('files', []):
        path = item['path']
        if path not in recorded and before.get(path) is False and os.path.lexists(path):
            engine.commands.append('rm %s' % path)
            if not engine.check_mode:
                os.unlink(path)
    for directory in sorted((p for p, existed in before.items() if not existed), key=lambda p: -p.count('/')):
        if os.path.isdir(directory) and not os.path.islink(directory) and not os.listdir(directory):
            engine.commands.append('rmdir %s' % directory)
            if not engine.check_mode:
                os.rmdir(directory)


def _remove_cni_leftovers(engine, record, also=None):
    """After the last pod: the links the plugins made (the bridge) and the state directories they made."""
    had = set(record.get('preexisting', {}).get('links', []))
    _, out, _ = engine.read(['ip', '-j', 'link', 'show'])
    present = {item['ifname'] for item in json.loads(out or '[]')}
    # The bridges of the networks a stage declares, made by a student's pods too.
    for name in sorted(set(record.get('cni_links', [])) | set(_cni_bridges(also or {}))):
        if name in present and name not in had:
            engine.change(['ip', 'link', 'del', name])
    # portmap's chains are shared by every pod of the node and stay after each DEL (the
    # plugins name their chains CNI-...): those that were not there before the lab go.
    before = record.get('preexisting', {})
    for table in ('nat', 'filter'):
        rules, chains, _ = engine.iptables_listing(table)
        made = [c for c in chains if c.startswith('CNI-') and c not in before.get('chains', {}).get(table, [])]
        if not made:
            continue
        kept = before.get('rules', {}).get(table, [])
        doomed = [r for r in rules if (r.chain in made or r.target in made) and r.text not in kept]
        _delete_rules(engine, table, rules, doomed)
        for chain in made:
            engine.change([engine.iptables, '-w', '-t', table, '-X', chain])
    before_paths = record.get('preexisting', {}).get('paths', {})
    made = set(record.get('cni_dirs', [])) | {d for d in (CNI_STATE_DIR, engine.cni_cache_dir)
                                              if before_paths.get(d) is False}
    if engine.cni_cache_dir.startswith(CNI_STATE_DIR + '/') and CNI_STATE_DIR in made:
        made.discard(engine.cni_cache_dir)
    for directory in sorted(made, key=lambda d: -d.count('/')):
        if os.path.isdir(directory):
            engine.change(['rm', '-rf', '--one-file-system', directory])


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


def _strip(item):
    return {k: v for k, v in item.items() if not k.startswith('__') and k != 'environment'}


def _ns_words(namespace):
    return 'namespace %s' % namespace if namespace else 'the root namespace'


def _addressed(machine):
    for b in machine.get('bridges', []):
        yield 'bridge', b.get('namespace'), b
    for p in machine.get('veth_pairs', []):
        yield 'veth', p.get('namespace'), p
        yield 'veth', p['peer'].get('namespace'), p['peer']


def _converge_sysctls(engine, sysctls, record):
    recorded = {(s['namespace'], s['name']): s for s in record['sysctls']}
    for item in sysctls:
        key = (item.get('namespace'), item['name'])
        current = engine.sysctl_get(item.get('namespace'), item['name'])
        if current is None and engine.check_mode and item.get('namespace') is not None \
                and engine.netns_inode(item['namespace']) is None:
            # A namespace this check run only planned: a real run sets the value in it.
            engine.sysctl_set(item.get('namespace'), item['name'], item['value'])
            continue
        if current is None:
            if item.get('if_exists'):
                continue
            raise EngineError(['sysctl %s does not exist in %s (see: sysctl -a | grep %s)'
                               % (item['name'], _ns_words(item.get('namespace')), item['name'].split('.')[-1])])
        if key not in recorded:
            recorded[key] = {'namespace': key[0], 'name': key[1], 'before': current}
        recorded[key]['value'] = str(item['value'])  # what this lab sets: another lab on the machine compares
        record['sysctls'] = sorted(recorded.values(), key=lambda s: (s['namespace'] or '', s['name']))
        if current.split() != str(item['value']).split():
            engine.sysctl_set(item.get('namespace'), item['name'], item['value'])
    wanted = {(i.get('namespace'), i['name']) for i in sysctls}
    for key, entry in list(recorded.items()):
        if key not in wanted:
            _restore_sysctl(engine, entry)
            del recorded[key]
    record['sysctls'] = sorted(recorded.values(), key=lambda s: (s['namespace'] or '', s['name']))


def _restore_sysctl(engine, entry):
    if entry['namespace'] is not None and engine.netns_inode(entry['namespace']) is None:
        return
    if entry['namespace'] is None:
        holders = held_by_other_labs(engine, None, entry['name'])
        if holders:
            # Another lab on this machine still sets it: it stays, and the value from before this lab's build
            # goes to that lab's record, to be put back when the last of them is reset.
            lab, record, path = holders[0]
            # The other lab noted this lab's value as what was there before it: that goes back to what
            # this lab found. A value the other lab found otherwise stays its own.
            noted = [other for other in record['sysctls'] + record.get('preexisting', {}).get('sysctls', [])
                     if (other.get('namespace'), other['name']) == (None, entry['name'])
                     and entry.get('value') is not None and str(other['before']) == str(entry['value'])
                     and str(entry['before']) != str(entry['value'])]
            for other in noted:
                other['before'] = entry['before']
            engine.commands.append('leave %s to lab %s%s' % (entry['name'], lab, ' (its value before, %s, noted in %s)'
                                                               % (entry['before'], path) if noted else ''))
            if noted and not engine.check_mode:
                write_record(path, record)
            return
    current = engine.sysctl_get(entry['namespace'], entry['name'])
    if current is not None and current.split() != str(entry['before']).split():
        engine.sysctl_set(entry['namespace'], entry['name'], entry['before'])


def _converge_netfilter(engine, machine, record, traffic_plan=([], [], set())):
    adopted, inserts, skip = traffic_plan
    chains = machine.get('chains', [])
    # A rule whose traffic a student's rule already handles is not added (nor kept twice), and one that
    # goes before another rule is inserted below.
    rules = [parse_rule(r['table'], r['rule']) for r in machine.get('rules', []) if r['rule'] not in skip]
    record['adopted'] = adopted
    created = {(c['table'], c['chain']) for c in record['chains']}
    listings = {table: engine.iptables_listing(table) for table in record['tables']}
    for item in chains:
        table, chain = item['table'], item['chain']
        if chain not in listings[table][1]:
            created.add((table, chain))
            record['chains'] = [{'table': t, 'chain': c} for t, c in sorted(created)]  # noted before it is made
            engine.change([engine.iptables, '-w', '-t', table, '-N', chain])
    for table in record['tables']:
        found = listings[table][0]
        before = [parse_rule(table, text) for text in record.get('preexisting', {}).get('rules', {}).get(table, [])]
        adopt, add, delete = plan_rules([r for r in rules if r.table == table], found, engine.comment, before)
        for found_rule, number, rule in adopt:
            argv = rule.argv(engine.comment)
            engine.change([engine.iptables, '-w'] + argv[:2] + ['-R', rule.chain, str(number)] + argv[4:])
        _delete_rules(engine, table, found, delete)
        for rule in add:
            engine.change([engine.iptables, '-w'] + rule.argv(engine.comment))
    for declared, other in inserts:
        lab_rules.insert_before(engine, engine.iptables, declared, other, engine.comment)
    wanted = {(c['table'], c['chain']) for c in chains}
    for table, chain in sorted(created - wanted):
        _drop_chain(engine, table, chain, engine.comment)
    record['chains'] = [{'table': t, 'chain': c} for t, c in sorted(created & wanted)]


def _delete_rules(engine, table, found, doomed):
    """Delete rules of `found` (a table's listing); see lab_rules.delete_rules."""
    lab_rules.delete_rules(engine, engine.iptables, table, found, doomed)


def _drop_chain(engine, table, chain, comment):
    """Remove a chain the lab created, once nothing but the lab's rules use it."""
    rules, chains, _ = engine.iptables_listing(table)
    if chain not in chains:
        return
    _delete_rules(engine, table, rules, [r for r in rules if r.comment == comment
                                         and (r.chain == chain or r.target == chain)])
    others = [r for r in rules if r.comment != comment and (r.chain == chain or r.target == chain)]
    if not others:
        engine.change([engine.iptables, '-w', '-t', table, '-X', chain])


def _read_file(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='surrogateescape')
    except FileNotFoundError:
        return None


def _converge_link(engine, item, recorded, record):
    """A symbolic link `path` -> `link` (ln -sfn); what was at `path` before is noted first."""
    path, target = item['path'], item['link']
    current = os.readlink(path) if os.path.islink(path) else None
    if path not in recorded:
        recorded[path] = {'path': path, 'before': None if current is not None else _read_file(path),
                          'before_link': current, 'dirs': _missing_dirs(path)}
        record['files'] = sorted(recorded.values(), key=lambda f: f['path'])  # noted before it is made
    if current != target:
        engine.commands.append('ln -sfn %s %s' % (target, path))
        if not engine.check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + '.cka-lab-new'
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, path)


def _missing_dirs(path):
    missing = []
    parent = os.path.dirname(path)
    while parent != '/' and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing


def _converge_files(engine, files, record):
    recorded = {f['path']: f for f in record['files']}
    for item in files:
        if 'link' in item:
            _converge_link(engine, item, recorded, record)
            continue
        path, content = item['path'], item['content']
        mode = int(item.get('mode', '0644'), 8)
        current = None if os.path.islink(path) else _read_file(path)
        if path not in recorded:
            recorded[path] = {'path': path, 'before': current, 'dirs': _missing_dirs(path),
                              'before_link': os.readlink(path) if os.path.islink(path) else None}
            record['files'] = sorted(recorded.values(), key=lambda f: f['path'])  # noted before it is written
        if current != content or (os.path.exists(path) and (os.stat(path).st_mode & 0o7777) != mode):
            engine.commands.append('write %s (mode %04o)' % (path, mode))
            if not engine.check_mode:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if os.path.islink(path):
                    os.unlink(path)
                with open(path, 'w', encoding='utf-8') as handle:
                    handle.write(content)
                os.chmod(path, mode)
    wanted = {f['path'] for f in files}
    gone = [entry for path, entry in sorted(recorded.items()) if path not in wanted]
    for entry in gone:
        del recorded[entry['path']]
    _restore_files(engine, gone, keep=list(recorded.values()))
    record['files'] = sorted(recorded.values(), key=lambda f: f['path'])


def _restore_files(engine, entries, keep=()):
    """Put back `entries`, then remove the directories they made, deepest first, once empty.

    A directory made for one file is recorded with that file only, and may hold
    other files of the lab (/etc/netns/NS/hosts and resolv.conf): it is removed
    after all of them. One still holding a file the lab keeps (`keep`) passes
    to that file's entry, to go with it."""
    for entry in entries:
        _restore_file(engine, entry)
    for directory in sorted({d for e in entries for d in e.get('dirs', [])}, key=lambda d: (-d.count('/'), d)):
        if os.path.isdir(directory) and not os.listdir(directory):
            engine.commands.append('rmdir %s' % directory)
            if not engine.check_mode:
                os.rmdir(directory)
            continue
        heir = next((e for e in keep if e['path'].startswith(directory + '/')), None)
        if heir is not None and directory not in heir.setdefault('dirs', []):
            heir['dirs'].append(directory)


def _restore_file(engine, entry):
    """Put one file back as it was; the directories made for it are left to _restore_files."""
    path, before, before_link = entry['path'], entry['before'], entry.get('before_link')
    current_link = os.readlink(path) if os.path.islink(path) else None
    current = None if current_link is not None else _read_file(path)
    if before_link is not None:
        if current_link != before_link:
            engine.commands.append('ln -sfn %s %s' % (before_link, path))
            if not engine.check_mode:
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(before_link, path)
    elif before is None:
        if os.path.lexists(path):
            engine.commands.append('rm %s' % path)
            if not engine.check_mode:
                os.unlink(path)
    elif current != before:
        engine.commands.append('restore %s' % path)
        if not engine.check_mode:
            if current_link is not None:
                os.unlink(path)
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(before)


def _service_healthy(engine, service, props):
    if props.get('ActiveState') != 'active' or props.get('Description') != service_description(service):
        return False
    pid = int(props.get('MainPID') or 0)
    if pid == 0 or engine.pid_netns_inode(pid) != engine.netns_inode(service.get('namespace')):
        return False
    return all(any(p == pid for _, p in engine.holders(service.get('namespace'), listen))
               for listen in service['listen'])


def _stop_unit(engine, unit):
    props = engine.unit_show(unit)
    if props.get('LoadState') == 'loaded' or props.get('ActiveState') not in (None, '', 'inactive'):
        _stop_loaded(engine, unit)


def _stop_loaded(engine, unit):
    """Stop a transient unit; one that failed stays loaded until its failure is reset."""
    engine.change(['systemctl', 'stop', unit])
    if not engine.check_mode and engine.unit_show(unit).get('LoadState') == 'loaded':
        engine.change(['systemctl', 'reset-failed', unit])


def _start_service(engine, service, unit, props):
    if props.get('LoadState') == 'loaded':
        _stop_loaded(engine, unit)
    argv = ['systemd-run', '--quiet', '--unit', unit, '--description', service_description(service),
            '--property', 'Restart=on-failure', '--property', 'RestartSec=1', '--']
    argv += engine.in_ns(service.get('namespace'), list(service['command']))
    engine.change(argv)
    if engine.check_mode:
        return
    deadline = 100
    for _ in range(deadline):
        now = engine.unit_show(unit)
        if _service_healthy(engine, service, now):
            return
        engine.sleep(0.1)
    _, log, _ = engine.read(['journalctl', '-u', unit, '-n', '15', '--no-pager', '-o', 'cat'], ok=(0, 1))
    raise EngineError(['service %s (unit %s) did not come up listening on %s within 10 s (%s); its log: %s'
                       % (service['name'], unit, ', '.join('%s:%s/%s' % (l['address'], l['port'], l['protocol'])
                                                          for l in service['listen']),
                          _service_state(engine, service, now),
                          ' | '.join(log.strip().splitlines()[-15:]) or 'empty')])


def _service_state(engine, service, props):
    """What the unit looks like, for a message: its state, main process and who listens."""
    pid = int(props.get('MainPID') or 0)
    found = ['%s, main pid %d' % (props.get('ActiveState'), pid)]
    if pid and engine.pid_netns_inode(pid) != engine.netns_inode(service.get('namespace')):
        found.append('not in %s' % _ns_words(service.get('namespace')))
    for listen in service['listen']:
        held = engine.holders(service.get('namespace'), listen)
        found.append('%s:%s/%s held by %s' % (listen['address'], listen['port'], listen['protocol'],
                                              ', '.join('%s (pid %d)' % h for h in held) or 'nobody'))
    return '; '.join(found)


def remove(engine, record=None, also=None):
    """Remove what the record says the lab owns, and put back what it changed.

    The record's own mark is used, so a reset run without the build's
    variables still finds the lab's rules and units. `also` (what every stage
    of the lab declares) adds what a student made by hand with the lab's names
    after the lab's first build: namespaces, links and rules that do exactly
    what a declared rule does; nothing the machine had before the lab."""
    record = record if record is not None else engine.load_record()
    comment = 'cka-lab:%s' % (record or {}).get('name', engine.mark)
    if record is None:
        # Nothing recorded: the lab's marked rules are still found by their comment.
        for table in ('nat', 'filter'):
            lab_rules.delete_marked(engine, table, comment)
        return None
    engine.iptables = record.get('iptables') or lab_rules.default_backend(engine)
    for unit in record.get('services', []):
        _stop_unit(engine, unit)
    for entry in record.get('pods', []):
        _remove_pod(engine, record, entry)
    _remove_hand_made_pods(engine, record, also or {})
    _remove_cni_leftovers(engine, record, also or {})
    # The lab's marked rules in every iptables backend: the machine's `iptables` may have been switched since.
    for table in sorted(set(record.get('tables', [])) | {'nat', 'filter'}):
        lab_rules.delete_marked(engine, table, comment)
    try:
        lab_rules.remove_nat(engine, record.get('adopted', []), also, record.get('preexisting', {}))
    except RuleConflict as exc:
        raise EngineError(exc.errors) from None
    extra_topology, extra_rules = _hand_made(record, also)
    for rule in extra_rules:
        # In the lab's own backend, where its first build noted what the machine had (every copy goes).
        for found in engine.iptables_listing(rule.table)[0]:
            if found.comment is None and found == rule:
                delete_rule(engine, engine.iptables, rule.table, found)
    # Chains of the lab's names a student made by hand after the first build
    # (not in a record older than `preexisting.chains`: those are left alone).
    before_chains = record.get('preexisting', {}).get('chains')
    hand_chains = [{'table': c['table'], 'chain': c['chain']} for c in (also or {}).get('chains', [])
                   if before_chains is not None and c['table'] in before_chains
                   and c['chain'] not in before_chains[c['table']]]
    for chain in record.get('chains', []) + [c for c in hand_chains if c not in record.get('chains', [])]:
        _drop_chain(engine, chain['table'], chain['chain'], comment)
    _restore_files(engine, record.get('files', []))
    _remove_hand_made_files(engine, record, also or {})
    restored = set()
    # What the machine had before the lab's first build comes first: a value
    # noted later may be one a student set by hand in between.
    values = {(e['namespace'], e['name']): e.get('value') for e in record.get('sysctls', [])}
    for entry in record.get('preexisting', {}).get('sysctls', []) + record.get('sysctls', []):
        if (entry['namespace'], entry['name']) not in restored:
            restored.add((entry['namespace'], entry['name']))
            # What this lab sets now, to tell whether another lab noted this lab's value as its `before`.
            _restore_sysctl(engine, dict(entry, value=values.get((entry['namespace'], entry['name']))))
    for topology in _removal_layers(_made_by_the_lab(record), extra_topology):
        if any(topology.get(kind) for kind in _TOPOLOGY_KINDS):
            # Root-namespace ends are the lab's: one whose peer is gone with a
            # namespace a process still holds is deleted all the same.
            owned = [{'namespace': None, 'name': name} for ns, name in _links(topology) if ns is None]
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
    engine.drop_record()
    return record


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
                routes.append(_strip(route))
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


