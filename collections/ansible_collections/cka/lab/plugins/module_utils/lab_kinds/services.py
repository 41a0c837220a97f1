# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Kind `services`: programs run as transient systemd units (`systemd-run`), each in its network namespace.

A unit is named after the lab's mark (``cka-lab-MARK-NAME.service``) and its
description carries a digest of what it runs, so a changed declaration restarts
it. A service is up when its main process, in the service's namespace, listens on
every address it declares (ss(8)); a port another program holds is refused
before any change, naming the program and its pid.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import EngineError, ns_words
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import (
    fail,
    in_ns,
    namespace_words,
    need,
    sockets_listening,
)
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import NETNS_SCHEMA, PORT_SCHEMA, item_schema, path_of

KEYS = ('services',)
# The record (lab_record.py): this kind's keys, their type and value in a new record (the units started).
RECORD = {'services': ('list', [])}

SCHEMA = {'services': item_schema(['name', 'command', 'listen'], {
    'name': {'type': 'string', 'pattern': r'^[a-z][a-z0-9-]{0,23}\Z'},
    'description': {'type': 'string'},
    'namespace': NETNS_SCHEMA,
    'command': {'type': 'array', 'items': {'type': 'string', 'minLength': 1}, 'minItems': 1},
    'listen': {'type': 'array', 'minItems': 1, 'items': {
        'type': 'object', 'required': ['protocol', 'address', 'port'], 'additionalProperties': False,
        'properties': {'protocol': {'enum': ['tcp', 'udp']}, 'address': {'type': 'string'},
                       'port': PORT_SCHEMA}}}})}


def stage_errors(machine, context):
    """A service runs in a namespace of the lab and listens on one of that namespace's addresses."""
    errors = []
    for i, service in enumerate(machine.get('services', [])):
        where = path_of(service, 'services', i)
        errors += context.namespace_errors(where, service.get('namespace'))
        own = {iface.ip for _, n, _, iface in context.addresses if n == service.get('namespace')}
        for j, listen in enumerate(service['listen']):
            try:
                address = ipaddress.ip_address(listen['address'])
            except ValueError:
                errors.append("%s.listen[%d].address: '%s' is not an IP address" % (where, j, listen['address']))
                continue
            if not (address.is_unspecified or address.is_loopback or address in own
                    or service.get('namespace') is None or service.get('namespace') in context.refused):
                errors.append("%s.listen[%d].address: %s is not an address of namespace %s (%s)%s"
                              % (where, j, address, service.get('namespace'),
                                 ', '.join(sorted(map(str, own))) or 'none', context.where_stage))
    return errors


def tools(machine):
    needed = {}
    if machine.get('services'):
        needed.update({'systemd-run': 'the services', 'ss': 'the services'})
    for service in machine.get('services', []):
        if not service['command'][0].startswith('/'):
            needed.setdefault(service['command'][0], 'service %s' % service['name'])
    return needed


def unit_name(mark, service):
    return 'cka-lab-%s-%s.service' % (mark, service)


def service_description(service):
    """The unit's description carries a digest of what it runs, so a changed declaration restarts it."""
    digest = hashlib.sha256(json.dumps([service.get('namespace'), service['command'], service['listen']],
                                       sort_keys=True).encode()).hexdigest()[:12]
    return '%s [%s]' % (service.get('description') or service['name'], digest)


def plan(engine, machine, record):
    """[(service, unit, props, healthy)]; a port another program holds is an error. The lab's own units
    (this one, or one of an earlier declaration or name, stopped before anything starts) may hold it."""
    errors, plans = [], []
    lab_pids = {int(engine.unit_show(unit).get('MainPID') or 0) for unit in record['services']}
    for service in machine.get('services', []):
        unit = unit_name(engine.mark, service['name'])
        props = engine.unit_show(unit)
        ok = healthy(engine, service, props)
        if not ok:
            ours = lab_pids | {int(props.get('MainPID') or 0)}
            for listen in service['listen']:
                taken = [(prog, pid) for prog, pid in engine.holders(service.get('namespace'), listen)
                         if pid not in ours]
                for prog, pid in taken:
                    errors.append("service %s: %s:%s/%s in %s is already taken by %s (pid %d: %s); stop it "
                                  "(kill %d), then run again (see: %sss -lnp%s)"
                                  % (service['name'], listen['address'], listen['port'], listen['protocol'],
                                     ns_words(service.get('namespace')), prog, pid, engine.cmdline(pid), pid,
                                     'ip netns exec %s ' % service['namespace'] if service.get('namespace') else '',
                                     't' if listen['protocol'] == 'tcp' else 'u'))
        plans.append((service, unit, props, ok))
    return plans, errors


def note(engine, machine, record, plan):
    record['services'] = sorted(set(record['services']) | {unit for _, unit, _, _ in plan})


def withdraw(engine, machine, record, plan):
    """The lab's units the stage no longer declares stop."""
    for unit in [u for u in record['services'] if u not in {p[1] for p in plan}]:
        stop_unit(engine, unit)


def build(engine, machine, record, plan):
    for service, unit, props, ok in plan:
        if not ok:
            _start(engine, service, unit, props)


def done(engine, machine, record, plan):
    record['services'] = sorted(p[1] for p in plan)


def remove(engine, record, also):
    for unit in record['services']:
        stop_unit(engine, unit)


def healthy(engine, service, props):
    if props.get('ActiveState') != 'active' or props.get('Description') != service_description(service):
        return False
    pid = int(props.get('MainPID') or 0)
    if pid == 0 or engine.pid_netns_inode(pid) != engine.netns_inode(service.get('namespace')):
        return False
    return all(any(p == pid for _, p in engine.holders(service.get('namespace'), listen))
               for listen in service['listen'])


def stop_unit(engine, unit):
    props = engine.unit_show(unit)
    if props.get('LoadState') == 'loaded' or props.get('ActiveState') not in (None, '', 'inactive'):
        _stop_loaded(engine, unit)


def _stop_loaded(engine, unit):
    """Stop a transient unit; one that failed stays loaded until its failure is reset."""
    engine.change(['systemctl', 'stop', unit])
    if not engine.check_mode and engine.unit_show(unit).get('LoadState') == 'loaded':
        engine.change(['systemctl', 'reset-failed', unit])


def _start(engine, service, unit, props):
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
        if healthy(engine, service, now):
            return
        engine.sleep(0.1)
    _, log, _ = engine.read(['journalctl', '-u', unit, '-n', '15', '--no-pager', '-o', 'cat'], ok=(0, 1))
    raise EngineError(['service %s (unit %s) did not come up listening on %s within 10 s (%s); its log: %s'
                       % (service['name'], unit, ', '.join('%s:%s/%s' % (l['address'], l['port'], l['protocol'])
                                                          for l in service['listen']),
                          _state(engine, service, now),
                          ' | '.join(log.strip().splitlines()[-15:]) or 'empty')])


def _state(engine, service, props):
    """What the unit looks like, for a message: its state, main process and who listens."""
    pid = int(props.get('MainPID') or 0)
    found = ['%s, main pid %d' % (props.get('ActiveState'), pid)]
    if pid and engine.pid_netns_inode(pid) != engine.netns_inode(service.get('namespace')):
        found.append('not in %s' % ns_words(service.get('namespace')))
    for listen in service['listen']:
        held = engine.holders(service.get('namespace'), listen)
        found.append('%s:%s/%s held by %s' % (listen['address'], listen['port'], listen['protocol'],
                                              ', '.join('%s (pid %d)' % h for h in held) or 'nobody'))
    return '; '.join(found)


# -- the picture (lab_drawing.py lays it out) --

def draw(machine, picture):
    """Each service a note in its namespace's box, with what it listens on (`tcp ADDRESS:PORT`)."""
    for service in sorted(machine.get('services', []), key=lambda s: s['name']):
        listening = ['%s %s:%s' % (listen.get('protocol', 'tcp'), listen['address'], listen['port'])
                     for listen in service.get('listen') or []]
        picture.note(service.get('namespace'), 'service.' + service['name'],
                     ['service %s' % service['name']] + listening)


# -- checks: the lesson's objects, as a student looks at them (checks/lab/test_lab.py) --

def check_service(lab, item):
    need(lab, "ss", "listing listening sockets")
    namespace = item.get("namespace")
    for listen in item["listen"]:
        flag = "-ltn" if listen["protocol"] == "tcp" else "-lun"
        listing = lab.run(in_ns(namespace, "ss -H %s" % flag)).stdout
        if not sockets_listening(listing, listen["address"], listen["port"]):
            fail("nothing listens on %s port %s/%s in %s - see `%s`"
                 % (listen["address"], listen["port"], listen["protocol"], namespace_words(namespace),
                    in_ns(namespace, "ss %sp" % flag)))
