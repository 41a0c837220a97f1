#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
# The documentation of the action plugin of the same name (plugins/action/lab_practice.py),
# which does all the work on the Ansible computer; nothing of this file runs.

from __future__ import annotations

DOCUMENTATION = r"""
module: lab_practice
short_description: Read a lesson's practice test and render its questions for one machine
description:
  - Reads C(PRACTICE_DIR/PRACTICE.yml), checks it against the practice schema (module_utils/lab_practice.py;
    the format is in labs/README.md, "Practice tests") and renders every string of its C(ready) commands and
    questions with the machine's variables and the lab's (C(variables)).
  - Runs on the Ansible computer only; changes nothing. C(playbooks/practice.yml) runs it on each machine of the
    lab, then the commands of the questions asked on that machine (C(mine)), and C(cka-lab practice) reads the
    answers from their output.
options:
  practice:
    description: The practice test's id, its file's name without C(.yml) (a lesson number, C(209)).
    type: str
    required: true
  practice_dir:
    description: The directory of the practice files (C(labs/practice)).
    type: path
    required: true
  variables:
    description: The lab's variables with their values for this machine, as C(cka.lab.lab_declaration) returns
      them in C(variables); the questions may name them.
    type: dict
    default: {}
author:
  - CKA networking labs maintainers
"""

EXAMPLES = r"""
- name: Read practice test 202
  cka.lab.lab_practice:
    practice: "202"
    practice_dir: "{{ playbook_dir }}/../labs/practice"
    variables: "{{ __lab.variables }}"
  register: __practice
"""

RETURN = r"""
practice:
  description: The whole practice test, every string rendered; each question and ready command has C(host), the
    machine it runs on (default this one).
  returned: success
  type: dict
mine:
  description: The ids of the questions asked on this machine.
  returned: success
  type: list
  elements: str
ready:
  description: The ready commands to run on this machine.
  returned: success
  type: list
  elements: dict
"""
