# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A classroom of local lab machines: N students, each with the machines of the labs asked, nothing typed."""
from __future__ import annotations

DOCUMENTATION = r"""
name: classroom
short_description: A classroom of local lab machines, N students each with their own machines for each lab
description:
  - Makes an inventory of local lab machines for C(students) students, for rehearsing a class and for tests, from
    a config file whose name ends in C(classroom.yml) or C(classroom.yaml).
  - For each lab of C(labs), each student gets a copy of the machines the template inventory (the embedded default,
    C(inventory/local/hosts.yml)) gives that lab's group, named C(STUDENT-MACHINE) (C(student07-cni-node01)), in
    the lab's group and its subgroups and in the student's group C(STUDENT), a child of C(students); every machine
    is in C(local_lab_machines).
  - Addresses are given in order from C(first_address) of C(network) (the internal Podman network of the local lab
    machines), students first; a room that does not fit is refused naming what it needs.
  - A lab variable whose value in the lab's file (C(labs/LAB.yml), C(variables)) names template machines (the CNI
    lab's C(cni_lab_nodes) and C(cni_lab_pods)) is set on each student's machines of that lab with the student's
    machine names, so each student's lab is their own.
  - A lab variable C(LAB_nodes) whose default is an empty list (the weave lab's C(weave_lab_nodes), where empty
    means every machine of the group, one cluster per inventory) is set on each student's machines of that lab to
    that student's machines of the lab, so each student gets a kubeadm cluster of their own.
options:
  plugin:
    description: The name of this plugin.
    required: true
    choices: [cka.lab.classroom]
  students:
    description: How many students (1-200); they are C(student01), C(student02), ...
    type: int
    required: true
  labs:
    description: The labs each student gets (ids of C(labs/*.yml) that the lab engine builds).
    type: list
    elements: str
    required: true
  template:
    description: The inventory whose lab groups give the machines of one student (relative to the config file).
    type: str
    default: ../local/hosts.yml
  labs_dir:
    description: The folder of the lab files (relative to the config file).
    type: str
    default: ../../labs
  network:
    description: The network the machines' addresses are taken from (the lab machines' Podman network).
    type: str
    default: 10.213.0.0/24
  first_address:
    description: The host number, in C(network), of the first machine's address.
    type: int
    default: 100
"""

EXAMPLES = r"""
# inventory/rehearsal/classroom.yml: three students, each with lesson 202's machine and the CNI lab's three nodes
plugin: cka.lab.classroom
students: 3
labs: [netns_lab, cni_lab]
"""

import ipaddress
import os
import re

import yaml
from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

_LAB_ID = re.compile(r'^[a-z][a-z0-9_]*\Z')


def _groups(tree, name, parents=()):
    """{group: (parents, {host: vars})} of a YAML inventory's tree, from group `name` down."""
    out = {name: (list(parents), dict((tree or {}).get('hosts') or {}))}
    for child, subtree in ((tree or {}).get('children') or {}).items():
        out.update(_groups(subtree, child, parents + (name,)))
    return out


def _find(tree, name):
    """Every subtree of group `name` in a YAML inventory (a group may be written in several places)."""
    found = []
    for child, subtree in ((tree or {}).get('children') or {}).items():
        if child == name:
            found.append(subtree or {})
        found += _find(subtree, name)
    return found


def _renamed(value, names):
    """`value` with every string that is a template machine's name replaced by the student's machine's."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    return value


def _names_a_machine(value, names):
    if isinstance(value, str):
        return value in names
    if isinstance(value, list):
        return any(_names_a_machine(v, names) for v in value)
    if isinstance(value, dict):
        return any(_names_a_machine(v, names) for v in value.values())
    return False


def plan(students, labs, template, lab_files, network='10.213.0.0/24', first_address=100):
    """The classroom as data: ([(host, student, [groups], {vars})], error or None).

    `template` is the template inventory (parsed YAML), `lab_files` {lab: parsed labs/LAB.yml}."""
    if not isinstance(students, int) or isinstance(students, bool) or not 1 <= students <= 200:
        return [], 'students: %r is not usable; allowed: a whole number 1-200' % (students,)
    unknown = [lab for lab in labs if lab not in lab_files]
    if unknown:
        return [], 'labs: %s is not a lab of labs/; allowed: %s' % (', '.join(unknown), ', '.join(sorted(lab_files)))
    per_lab = {}
    for lab in labs:
        groups = {}
        for subtree in _find(template.get('all') or {}, lab):
            for group, (parents, hosts) in _groups(subtree, lab).items():
                groups.setdefault(group, (parents, {}))[1].update(hosts)
        machines = [h for _, (_, hosts) in groups.items() for h in hosts]
        if not machines:
            return [], 'labs: %s has no machine in the template inventory (its group %s)' % (lab, lab)
        per_lab[lab] = groups
    width = max(2, len(str(students)))
    out, index = [], 0
    net = ipaddress.ip_network(network)
    for n in range(1, students + 1):
        student = 'student%0*d' % (width, n)
        for lab in labs:
            groups = per_lab[lab]
            template_hosts = sorted({h for _, (_, hosts) in groups.items() for h in hosts})
            names = {h: '%s-%s' % (student, h) for h in template_hosts}
            variables = lab_files[lab].get('variables') or {}
            shared = {name: _renamed(value, names) for name, value in variables.items()
                      if _names_a_machine(value, names)}
            if variables.get(lab + '_nodes', None) == []:
                shared[lab + '_nodes'] = [names[h] for h in template_hosts]
            for host in template_hosts:
                member_of = sorted({group for group, (_, hosts) in groups.items() if host in hosts}
                                   | {parent for group, (parents, hosts) in groups.items() if host in hosts
                                      for parent in parents})
                host_vars = {k: v for group, (_, hosts) in groups.items() if host in hosts
                             for k, v in (hosts[host] or {}).items() if k != 'ansible_host'}
                address = net.network_address + first_address + index
                if address not in net or address == net.broadcast_address:
                    need = students * sum(len({h for _, (_, hs) in per_lab[lb].items() for h in hs}) for lb in labs)
                    return [], ('the classroom needs %d addresses from .%d of %s and they do not fit; allowed: fewer '
                                'students or labs, or a lower first_address' % (need, first_address, network))
                index += 1
                out.append((names[host], student, member_of, dict(_renamed(host_vars, names), ansible_host=str(address),
                                                                   **shared)))
    return out, None


class InventoryModule(BaseInventoryPlugin):
    NAME = 'cka.lab.classroom'

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(('classroom.yml', 'classroom.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        here = os.path.dirname(os.path.abspath(path))
        template_path = os.path.join(here, self.get_option('template'))
        labs_dir = os.path.join(here, self.get_option('labs_dir'))
        labs = self.get_option('labs')
        bad = [lab for lab in labs if not isinstance(lab, str) or not _LAB_ID.match(lab)]
        if bad:
            raise AnsibleParserError('%s: labs: %s is not a lab id' % (path, ', '.join(map(str, bad))))
        try:
            with open(template_path, encoding='utf-8') as handle:
                template = yaml.safe_load(handle) or {}
            lab_files = {}
            for name in sorted(os.listdir(labs_dir)):
                if name.endswith('.yml'):
                    with open(os.path.join(labs_dir, name), encoding='utf-8') as handle:
                        lab_files[name[:-4]] = yaml.safe_load(handle) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AnsibleParserError('%s: cannot read the template inventory or the labs: %s' % (path, exc))
        machines, error = plan(self.get_option('students'), labs, template, lab_files, self.get_option('network'),
                               self.get_option('first_address'))
        if error:
            raise AnsibleParserError('%s: %s' % (path, error))
        inventory.add_group('local_lab_machines')
        inventory.add_group('students')
        for host, student, groups, host_vars in machines:
            inventory.add_group(student)
            inventory.add_child('students', student)
            inventory.add_host(host, group=student)
            inventory.add_host(host, group='local_lab_machines')
            for group in groups:
                inventory.add_group(group)
                inventory.add_host(host, group=group)
            for key, value in host_vars.items():
                inventory.set_variable(host, key, value)
