# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The kinds of object a lab declares on a machine, one module each, and the order the engine takes them in.

Every kind module has ``KEYS`` (the keys of a declaration's ``machine:`` it
owns) and these functions, each optional but ``KEYS``; ``engine`` is a
lab_engine.Engine (the machine: commands, settings, iptables, units), ``machine``
what the stage declares, ``record`` what the lab owns on the machine, ``also``
what every stage declares:

- ``tools(machine) -> {command: why}``: the commands its build runs on the machine;
- ``RECORD`` ({key: (JSON type, value in a new record)}; a value of None makes
  the key nullable): the kind's keys of the lab's record, and ``NOTED`` ({key:
  JSON type}): the keys of its ``snapshot`` (lab_record.py adds them to a record
  of an earlier version and checks them on load);
- ``snapshot(engine, every_stage) -> dict``: what the machine had before the lab's
  first build (merged into the record's ``preexisting``);
- ``initial(engine) -> dict``: values of ``RECORD`` keys that a new record takes
  from the machine;
- ``plan(engine, machine, record) -> (plan, errors)``: reads only; every error is
  reported before anything changes;
- ``note(engine, machine, record, plan)``: what the lab is about to own, recorded
  before the machine changes;
- ``withdraw(engine, machine, record, plan)``: remove what the lab owns and the
  stage no longer declares (kinds in reverse order);
- ``build(engine, machine, record, plan)``: make the stage (kinds in order);
- ``done(engine, machine, record, plan)``: the record after a build that succeeded;
- ``remove(engine, record, also)``: the reset (kinds in reverse order);
- ``SCHEMA`` ({key: JSON schema of one item}, lab_declaration.SCHEMA is built from
  them) and ``stage_errors(machine, context)`` (its cross-field rules, on the Ansible
  computer; ``context`` is a lab_schema.StageContext);
- ``draw(machine, picture)``: its part of the stage's picture (picture.Picture),
  laid out by lab_drawing.py;
- ``check_*(lab, item)``: its checks of a student's machine (look.py), called by
  the grader, checks/lab/test_lab.py, one test per key.

A new kind is a new module here, added to ``KINDS`` where its build belongs (after
what it needs), and a test per key in checks/lab/test_lab.py calling its check.
"""
from __future__ import annotations

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import files, links, pods, rules, services, sysctls

# The build order: the topology before the settings and rules that name its links, files before the pods
# whose networks they hold (and the plugins' links), services last (they may run in a pod's namespace).
KINDS = (links, sysctls, rules, files, pods, services)


def keys():
    """Every key of ``machine:`` some kind owns."""
    return [key for kind in KINDS for key in kind.KEYS]
