#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
# The documentation of the action plugin of the same name (plugins/action/local_machines.py),
# which does all the work on the Ansible computer; nothing of this file runs.

from __future__ import annotations

DOCUMENTATION = r"""
module: local_machines
short_description: Check the local lab machines' declarations and find which are missing, stopped or another checkout's
description:
  - Checks each machine's C(ansible_host) (an IPv4 address inside O(subnet), not its first address, which is the Podman
    gateway; no two machines alike) and C(ansible_ssh_private_key_file) (set). Every problem is reported at once, naming
    the machine, the variable, the value and what is allowed, before Podman is asked anything.
  - Then lists the containers labelled C(io.github.cka-lab.machine=true) with one C(podman ps --all --format json) and
    sorts the machines into missing (not running), stopped, and foreign (a container of that name made with another
    SSH key than the machine's C(ansible_ssh_private_key_file) + C(.pub), from its C(io.github.cka-lab.authorized-key)
    label). Foreign machines fail the task, with the C(podman rm -f) that would remove them.
  - Runs on the Ansible computer only, as an action plugin; it never changes anything. Used by the role
    C(lab_machines).
options:
  hosts:
    description: Inventory hostnames of the local lab machines.
    type: list
    elements: str
    required: true
  subnet:
    description: The internal Podman network's IPv4 subnet (C(lab_machines_network_subnet)).
    type: str
    required: true
  state:
    description: What the run is about to do with the machines; only changes the wording of the foreign-machine error.
    type: str
    choices: [present, absent]
    default: present
attributes:
  action:
    support: full
    description: Runs on the Ansible computer only, as an action plugin; nothing runs on the managed host.
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: all
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
"""

EXAMPLES = r"""
- name: Find which of lesson 202's local lab machines must be created
  cka.lab.local_machines:
    hosts: "{{ groups['netns_lab'] }}"
    subnet: 10.213.0.0/24
  register: found

- name: Show them
  ansible.builtin.debug:
    msg: "missing: {{ found.missing }}, stopped: {{ found.stopped }}"
"""

RETURN = r"""
missing:
  description: Machines that do not run (stopped ones included), in the order of O(hosts).
  returned: always
  type: list
  elements: str
stopped:
  description: Machines whose container exists but does not run.
  returned: always
  type: list
  elements: str
foreign:
  description: Machines made with another SSH key, each as C(NAME (made with KEY)); the task fails when there is one.
  returned: always
  type: list
  elements: str
problems:
  description: The declaration problems, one sentence each, when the task failed for them.
  returned: failure
  type: list
  elements: str
"""
