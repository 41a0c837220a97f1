# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Check local lab machines' declarations and find which of them are missing, stopped or another checkout's.

Runs on the Ansible computer only (the local lab machines are Podman containers there); documented in
plugins/modules/local_machines.py. It replaced three tasks of roles/lab_machines whose Jinja loops cost about
0.3 s of every lab playbook's run (benchmarks/labs.py).
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

# The label roles/lab_machines/tasks/create.yml gives every machine, and the one naming the public key it accepts.
MACHINE_LABEL = 'io.github.cka-lab.machine'
KEY_LABEL = 'io.github.cka-lab.authorized-key'


SUBNET_RULE = 'an IPv4 network address with a prefix length of at most 30, such as 10.213.0.0/24'


def subnet_problem(subnet):
    """Why `subnet` cannot be the internal Podman network's, or None."""
    try:
        network = ipaddress.IPv4Network(subnet)
    except (ValueError, TypeError):
        return "lab_machines_network_subnet: '%s' is not usable; allowed: %s" % (subnet, SUBNET_RULE)
    if network.prefixlen > 30:
        return ("lab_machines_network_subnet: '%s' has no room for the gateway and a machine; allowed: %s"
                % (subnet, SUBNET_RULE))
    return None


def declaration_problems(machines, subnet):
    """Every problem of the machines' declarations, one sentence each; [] when all are usable.

    machines: [(name, ansible_host or None, ansible_ssh_private_key_file or None)]; subnet: an IPv4 network
    that subnet_problem accepts, such as '10.213.0.0/24', whose first address is the Podman gateway.
    An ansible_host given as a problem already (an AnsibleError's text) is passed as ('!', text).
    """
    network = ipaddress.IPv4Network(subnet)
    gateway = network.network_address + 1
    problems = []
    for name, address, key in machines:
        if isinstance(address, tuple):
            problems.append('ansible_host of %s cannot be rendered: %s' % (name, address[1]))
        else:
            try:
                ip = ipaddress.IPv4Address(address)
                usable = ip in network and ip not in (network.network_address, network.broadcast_address, gateway)
            except (ipaddress.AddressValueError, ValueError, TypeError):
                usable = False
            if not usable:
                problems.append("ansible_host of %s: '%s' is not usable; allowed: an IPv4 address inside "
                                "lab_machines_network_subnet (%s) other than its first address, which is the "
                                "Podman gateway, and its network and broadcast addresses."
                                % (name, address or '(unset)', subnet))
        if isinstance(key, tuple):
            problems.append('ansible_ssh_private_key_file of %s cannot be rendered: %s' % (name, key[1]))
        elif not key:
            problems.append("ansible_ssh_private_key_file of %s is not set; allowed: a path where the project keeps "
                            "(or creates) the key the machines accept for root." % name)
    sharing = {}
    for name, address, _ in machines:
        if isinstance(address, str) and address:
            sharing.setdefault(address, []).append(name)
    for address, names in sharing.items():
        if len(names) > 1:
            problems.append("ansible_host: %s share the address %s; allowed: one distinct address per machine."
                            % (' and '.join(names), address))
    return problems


def sort_machines(listed, machines):
    """Which of `machines` ([(name, public key path)]) are missing, stopped, or made with another key.

    listed: `podman ps --all --format json`, a list of {Names: [...], State: ..., Labels: {...}}.
    Returns {missing: [names not running], stopped: [names that exist but do not run],
    foreign: ['name (made with KEY)']}, each in the order of `machines`.
    """
    found = {}
    for container in listed:
        for name in container.get('Names') or []:
            found[name] = container
    missing, stopped, foreign = [], [], []
    for name, key in machines:
        container = found.get(name)
        if container is None or container.get('State') != 'running':
            missing.append(name)
        if container is not None and container.get('State') != 'running':
            stopped.append(name)
        if container is not None:
            made_with = (container.get('Labels') or {}).get(KEY_LABEL) or ''
            if made_with != key:
                foreign.append('%s (made with %s)' % (name, made_with or 'an unrecorded key'))
    return dict(missing=missing, stopped=stopped, foreign=foreign)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        names = list(args.get('hosts') or [])
        subnet = args.get('subnet')
        state = args.get('state', 'present')
        problem = subnet_problem(subnet)
        if problem:
            return dict(result, failed=True, msg=problem)
        hostvars = task_vars.get('hostvars') or {}
        declared = []
        for name in names:
            host = hostvars.get(name) or {}
            declared.append((name, self._value(host, 'ansible_host'),
                             self._value(host, 'ansible_ssh_private_key_file')))
        problems = declaration_problems(declared, subnet)
        if problems:
            return dict(result, failed=True, msg=' '.join(problems), problems=problems)
        if not names:
            return dict(result, changed=False, missing=[], stopped=[], foreign=[])

        argv = ['podman', 'ps', '--all', '--filter', 'label=%s=true' % MACHINE_LABEL, '--format', 'json']
        try:
            listing = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as exc:
            return dict(result, failed=True, msg='%s: %s; the local lab machines need Podman on this computer'
                                                 % (' '.join(argv), exc))
        try:
            listed = json.loads(listing.stdout or '[]') if listing.returncode == 0 else None
        except ValueError:
            listed = None
        if listed is None:
            return dict(result, failed=True, msg='%s failed (exit %d): %s'
                                                 % (' '.join(argv), listing.returncode,
                                                    (listing.stderr or listing.stdout).strip()))
        keys = [(name, os.path.realpath(key) + '.pub') for name, _, key in declared]
        found = sort_machines(listed, keys)
        if found['foreign']:
            own = sorted({key for _, key in keys})
            return dict(result, failed=True, **found, msg=(
                'Lab machines %s already run on this computer with another SSH key than this checkout\'s (%s): they '
                'were made by another checkout (or with another key), and hold whatever was built there, so this '
                'run %s. Run from the checkout that made them. Nothing was changed; if you are sure those machines '
                'are no longer needed, `podman rm -f %s` removes them (and only them).'
                % (', '.join(found['foreign']), ', '.join(own),
                   'cannot reach them' if state == 'present' else 'does not remove them',
                   ' '.join(item.split(' ')[0] for item in found['foreign']))))
        return dict(result, changed=False, **found)

    def _value(self, host, name):
        """A host variable as a string, rendered; None when unset or empty; ('!', why) when it cannot be
        rendered."""
        try:
            value = host.get(name) if hasattr(host, 'get') else None
            value = self._templar.template(value) if value is not None else None
        except AnsibleError as exc:
            return ('!', ' '.join(str(exc.message).split()))
        return str(value) if value not in (None, '') else None
