#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
# The documentation of the action plugin of the same name (plugins/action/lab_declaration.py),
# which does all the work on the Ansible computer; nothing of this file runs.

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_declaration
short_description: Render a lab declaration (labs/<lab>.yml) with its variables and validate it as a whole
description:
  - Reads C(labs/LAB.yml), takes each of its C(variables) from the host's variables (inventory, C(-e)) when set there and
    from the file's default otherwise, renders C(let), C(machine) and C(probes) with them (a list element with a C(loop)
    key is repeated once per item, as C(item)), then validates the result with a JSON schema (jsonschema) and the lab
    engine's cross-field rules, for every stage of the lab.
  - Every problem is reported at once, each naming its path in the declaration, the value, what is allowed, and the
    template it was rendered from. Runs on the Ansible computer only; it never changes anything.
options:
  lab:
    description: The lab's id, the name of its file in O(labs_dir) without C(.yml).
    type: str
    required: true
  labs_dir:
    description: The directory of lab files.
    type: path
    required: true
  stage:
    description: The stage to select; default the variable C(LAB_stage), else the lab's last stage.
    type: str
  build:
    description: The declaration is read to build the lab; a lab built by a playbook of its own (C(playbook) in its
      file, the weave lab) is then refused with the playbook to run, unless its state is absent.
    type: bool
    default: false
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
- name: Read and validate lesson 202's declaration for this machine
  cka.lab.lab_declaration:
    lab: netns_lab
    labs_dir: "{{ playbook_dir }}/../labs"
  register: lab

- name: Show the stage it selected
  ansible.builtin.debug:
    msg: "{{ lab.declaration.stage }} of {{ lab.declaration.stages }}"
"""

RETURN = r"""
declaration:
  description: The rendered declaration with only what the selected stage declares (keys lab, lesson, title, group,
    guide, name, stages, stage, machine, probes, and roles, the roles the lab runs in this stage, each with
    C(name), C(vars), C(export) and C(reset); C(playbook) and C(checks) when the lab has them).
  returned: success
  type: dict
whole:
  description: The rendered declaration with every stage (objects keep their C(stages) lists).
  returned: success
  type: dict
variables:
  description: The lab's own variables (those of its C(variables) block) with the values used.
  returned: success
  type: dict
"""
