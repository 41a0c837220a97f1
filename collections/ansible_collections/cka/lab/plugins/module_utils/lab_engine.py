# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The lab engine's work on a lab machine: build one stage of a lab, or remove it.

What a lab declares on a machine (see lab_declaration.py) is converged in one
pass over the kinds of object, one module each in lab_kinds/ (the topology,
sysctls, iptables chains and rules, files, pods, services), in their build
order: every kind plans first (reading only: every problem is reported before
anything changes); the engine then writes a record of what the lab owns on the
machine (``/var/lib/cka-lab/<lab>.json``); each kind withdraws what the stage no
longer declares (in reverse order), then builds (in order). A reset is each
kind's removal, in reverse order, of exactly what the record names, whatever
variables it is run with.

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

# The engine's tests reach the CNI runtime through this module.
from ansible_collections.cka.lab.plugins.module_utils.cni import Runtime  # noqa: F401
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import KINDS, links
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import EngineError, other_labs, write_record
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import TOOL_PACKAGES
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.pods import CNI_CACHE_DIR, DEFAULT_CNI_PATH
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.rules import remove_marked
from ansible_collections.cka.lab.plugins.module_utils.lab_record import RecordError
from ansible_collections.cka.lab.plugins.module_utils.lab_record import load as load_record_data
from ansible_collections.cka.lab.plugins.module_utils.lab_record import new as new_record_data
from ansible_collections.cka.lab.plugins.module_utils.lab_rules import default_backend
from ansible_collections.cka.lab.plugins.module_utils.netfilter import parse_listing
from ansible_collections.cka.lab.plugins.module_utils.topology import (
    IpCommandError,
    TopologyError,
    command_string,
    parse_topology,
    plan_absent,
    plan_present,
    read_state,
)

NETNS_DIR = '/run/netns'


def stable_mac(mark, namespace, name):
    """A locally administered unicast MAC for a link, the same each time it is made.

    Derived from the lab's mark, the namespace and the interface name, so a link
    re-created by a repair comes back with its old address and the neighbours'
    ARP caches stay right (RFC 7042, section 2.1: the U/L bit set, I/G clear)."""
    digest = hashlib.sha256(('%s/%s/%s' % (mark, namespace or '', name)).encode()).digest()
    octets = [0x02 | (digest[0] & 0xfc)] + list(digest[1:6])
    return ':'.join('%02x' % o for o in octets)


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
        # The comment of the lab's rules under its previous mark, while a build renames the lab.
        self.old_comment = None

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
        """This lab's record on the machine, in the current shape (lab_record.load), or None."""
        try:
            return self.read_record(self.record_path)
        except FileNotFoundError:
            return None

    def read_record(self, path):
        """A lab's record read from `path`, migrated and checked; EngineError when it cannot be used."""
        with open(path, encoding='utf-8') as handle:
            try:
                record = json.load(handle)
            except ValueError as exc:
                raise EngineError(['%s is not readable JSON (%s); remove it and clean the machine by hand, or '
                                   'recreate the machine' % (path, exc)]) from None
        try:
            return load_record_data(record, KINDS, path)
        except RecordError as exc:
            raise EngineError(exc.errors) from None

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
            'vxlans': [dict({k: v for k, v in x.items() if k in links._VXLAN_KEYS}, namespace=x.get('namespace'),
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


# --------------------------------------------------------------------------
# Build and remove: a loop over the kinds
# --------------------------------------------------------------------------

def _each(name, *args):
    """Call hook `name` of every kind that has it, in build order; returns {kind: result}."""
    return {kind: getattr(kind, name)(*args) for kind in KINDS if hasattr(kind, name)}


def new_record(engine, stage, every_stage=None):
    """The record of a first build, with what the machine had before it.

    `preexisting` lists what the machine had before the lab (each kind's
    snapshot: namespaces, root-namespace links and routes, iptables rules and
    NAT, settings, paths): a reset may also remove objects a student made by
    hand with the lab's names, but never one of these."""
    preexisting = {}
    for part in _each('snapshot', engine, every_stage or {}).values():
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(preexisting.get(key), dict):
                preexisting[key].update(value)
            else:
                preexisting[key] = value
    record = new_record_data(engine.lab, engine.mark, stage, preexisting, KINDS)
    for part in _each('initial', engine).values():
        record.update(part)
    return record


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
    if old is not None and old['name'] != engine.mark:
        # The mark names the lab's rules and units: the old ones go once the
        # checks below have passed; its topology, files and settings are the
        # lab's as before.
        engine.old_comment = 'cka-lab:%s' % old['name']
    record = copy.deepcopy(old) if old is not None else new_record(engine, stage, every_stage)
    record['name'] = engine.mark
    if record['iptables'] is None:
        # A record older than version 2: its rules were made by the `iptables` of the time.
        record['iptables'] = default_backend(engine)
    engine.iptables = record['iptables']

    plans, errors = {}, []
    for kind in KINDS:
        if hasattr(kind, 'plan'):
            plans[kind], found = kind.plan(engine, machine, record)
            errors += found
    if errors:
        raise EngineError(errors)

    # From here on the machine changes. Record first what the lab is about to
    # own, so that a run that fails half-way can be reset.
    record['stage'] = stage
    for kind in KINDS:
        if hasattr(kind, 'note'):
            kind.note(engine, machine, record, plans.get(kind))
    if old != record:
        engine.save_record(record)
    try:
        for kind in reversed(KINDS):
            if hasattr(kind, 'withdraw'):
                kind.withdraw(engine, machine, record, plans.get(kind))
        for kind in KINDS:
            kind.build(engine, machine, record, plans.get(kind))
    except Exception:
        # What was noted before each change (settings as they were, files and
        # chains made) is kept, so that a reset removes what this run did.
        if not engine.check_mode:
            engine.save_record(record)
        raise
    for kind in KINDS:
        if hasattr(kind, 'done'):
            kind.done(engine, machine, record, plans.get(kind))
    if old is None or old != record:
        engine.save_record(record)
    return record


def observe(engine):
    """What the machine has now, in a declaration's `machine:` shape: each kind's `observe` (reads only)."""
    observed = {}
    for part in _each('observe', engine).values():
        observed.update(part)
    return observed


def remove(engine, record=None, also=None):
    """Remove what the record says the lab owns, and put back what it changed.

    The record's own mark is used, so a reset run without the build's
    variables still finds the lab's rules and units. `also` (what every stage
    of the lab declares) adds what a student made by hand with the lab's names
    after the lab's first build: namespaces, links and rules that do exactly
    what a declared rule does; nothing the machine had before the lab."""
    record = record if record is not None else engine.load_record()
    if record is None:
        remove_marked(engine, 'cka-lab:%s' % engine.mark)
        return None
    engine.iptables = record['iptables'] or default_backend(engine)
    for kind in reversed(KINDS):
        kind.remove(engine, record, also or {})
    engine.drop_record()
    return record


# --------------------------------------------------------------------------
# Before any change: the tools, and the other labs on the machine
# --------------------------------------------------------------------------

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


def _shared_machine_problems(engine, machine):
    """Another lab built on this machine: the two must not share names, files or a setting with two values.
    What they share with one value (ip_forward on) works: a reset of one leaves it to the other."""
    problems = []
    mine_ns, mine_links = links.names(machine)
    mine_files = {f['path'] for f in machine.get('files', [])}
    mine_sysctls = {(s.get('namespace'), s['name']): str(s['value']) for s in machine.get('sysctls', [])
                    if s.get('namespace') is None}
    for lab, other, path in other_labs(engine):
        their_ns, their_links = links.names(other['topology'])
        their_ns |= {p['name'] for p in other['pods']}
        clashes = ['namespace %s' % n for n in sorted(mine_ns & their_ns)]
        clashes += ['link %s' % n for n in sorted(mine_links & their_links)]
        clashes += ['file %s' % n for n in sorted(mine_files & {f['path'] for f in other['files']})]
        for entry in other['sysctls']:
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


def tools_needed(machine):
    """{command: why} of what building `machine` runs on the machine, from each kind."""
    needed = {}
    for part in _each('tools', machine).values():
        for command, why in part.items():
            needed.setdefault(command, why)
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
