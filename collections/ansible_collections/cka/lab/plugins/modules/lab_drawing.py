#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
# The documentation of the action plugin of the same name (plugins/action/lab_drawing.py),
# which does all the work on the Ansible computer; nothing of this file runs.

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_drawing
short_description: Draw the topology of each stage of a lab as an SVG picture with Graphviz
description:
  - For each stage of the lab, selects what the stage declares and draws it (see module_utils/lab_drawing.py for the
    shapes) with Graphviz's C(dot), writing C(DEST/LAB-STAGE.svg).
  - A picture is written only when its content differs from the file's (changed); in check mode nothing is written.
  - Runs on the Ansible computer only. Needs the C(graphviz) Python package and the C(dot) program (Debian package
    C(graphviz)).
options:
  declaration:
    description: The whole rendered declaration of the lab, every stage, as C(cka.lab.lab_declaration) returns it in
      C(whole).
    type: dict
    required: true
  dest:
    description: The directory to write the pictures to; created when missing.
    type: path
    required: true
  observed:
    description: >-
      What a machine has now (the C(observed) that C(cka.lab.lab_state) returns with C(state=observed)); with it,
      only O(stage) is drawn, beside what the machine has, into C(DEST/LAB-NODE-now.svg): red and dashed what the stage
      declares and the machine lacks, orange what the machine has and the stage does not declare (or with other
      addresses). Needs O(node) and O(stage).
    type: dict
  stage:
    description: The stage to draw beside O(observed).
    type: str
  node:
    description:
      - For a lab whose machines are nodes with declarations of their own (C(nodes) in the lab file), the
        machine drawn; the files are then C(LAB-NODE-STAGE.svg) and the title names it.
    type: str
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
- name: Draw every stage of lesson 202
  cka.lab.lab_drawing:
    declaration: "{{ lab.whole }}"
    dest: "{{ playbook_dir }}/../docs/labs"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
files:
  description: The picture of each stage, in the order of the lab's stages.
  returned: success
  type: list
  elements: str
changed_files:
  description: The pictures that were (or in check mode would be) written.
  returned: success
  type: list
  elements: str
"""
