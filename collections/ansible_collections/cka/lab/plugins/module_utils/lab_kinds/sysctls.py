# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Kind `sysctls`: kernel settings (`sysctl -w`), in the root namespace or in a lab's namespace.

The value found before the lab's first build is recorded and put back on reset; a
root-namespace setting another lab on the machine also sets is left to that lab
(the value from before either lab goes to that lab's record). Reading and writing
go through the engine (Engine.sysctl_get/sysctl_set: /proc/sys, `sysctl -q -w`).
"""
from __future__ import annotations

import shlex

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import (
    EngineError,
    held_by_other_labs,
    ns_words,
    write_record,
)
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import fail, in_ns, namespace_words
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import NETNS_SCHEMA, item_schema, path_of

KEYS = ('sysctls',)
# The record (lab_record.py): this kind's keys, their type and value in a new record (each setting with its value
# before), and what it notes of the machine before the lab's first build (the root namespace's settings).
RECORD = {'sysctls': ('list', [])}
NOTED = {'sysctls': 'list'}

SCHEMA = {'sysctls': item_schema(['name', 'value'], {
    'name': {'type': 'string', 'pattern': r'^[a-z0-9_]+(\.[a-z0-9_-]+)+\Z'},
    'value': {'type': 'string'}, 'namespace': NETNS_SCHEMA, 'if_exists': {'type': 'boolean'}})}


def stage_errors(machine, context):
    errors = []
    for i, sysctl in enumerate(machine.get('sysctls', [])):
        errors += context.namespace_errors(path_of(sysctl, 'sysctls', i), sysctl.get('namespace'))
    return errors


def tools(machine):
    return {'sysctl': 'the settings'}


def snapshot(engine, every_stage):
    """The root-namespace settings any stage declares, as they were: a reset puts back what a student changed
    by hand too (namespaced ones go with their namespaces)."""
    sysctls = []
    for item in every_stage.get('sysctls', []):
        if item.get('namespace') is None and item['name'] not in [s['name'] for s in sysctls]:
            value = engine.sysctl_get(None, item['name'])
            if value is not None:
                sysctls.append({'namespace': None, 'name': item['name'], 'before': value})
    return {'sysctls': sysctls}


def _sorted(recorded):
    return sorted(recorded.values(), key=lambda s: (s['namespace'] or '', s['name']))


def withdraw(engine, machine, record, plan):
    """Put back the settings the lab set and the stage no longer declares."""
    wanted = {(i.get('namespace'), i['name']) for i in machine.get('sysctls', [])}
    recorded = {(s['namespace'], s['name']): s for s in record['sysctls']}
    for key, entry in list(recorded.items()):
        if key not in wanted:
            restore(engine, entry)
            del recorded[key]
    record['sysctls'] = _sorted(recorded)


def build(engine, machine, record, plan):
    """Set each declared value, noting the value before first."""
    recorded = {(s['namespace'], s['name']): s for s in record['sysctls']}
    for item in machine.get('sysctls', []):
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
                               % (item['name'], ns_words(item.get('namespace')), item['name'].split('.')[-1])])
        if key not in recorded:
            recorded[key] = {'namespace': key[0], 'name': key[1], 'before': current}
        recorded[key]['value'] = str(item['value'])  # what this lab sets: another lab on the machine compares
        record['sysctls'] = _sorted(recorded)
        if current.split() != str(item['value']).split():
            engine.sysctl_set(item.get('namespace'), item['name'], item['value'])


def remove(engine, record, also):
    """What the machine had before the lab's first build comes first: a value noted later may be one a
    student set by hand in between."""
    restored = set()
    values = {(e['namespace'], e['name']): e.get('value') for e in record['sysctls']}
    for entry in (record['preexisting']['sysctls'] or []) + record['sysctls']:
        if (entry['namespace'], entry['name']) not in restored:
            restored.add((entry['namespace'], entry['name']))
            # What this lab sets now, to tell whether another lab noted this lab's value as its `before`.
            restore(engine, dict(entry, value=values.get((entry['namespace'], entry['name']))))


def restore(engine, entry):
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
            noted = [other for other in record['sysctls'] + (record['preexisting']['sysctls'] or [])
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


# -- the picture (lab_drawing.py lays it out) --

def draw(machine, picture):
    """The settings the lesson makes, under their namespace's name (those for the machine, `environment`,
    are left out)."""
    lines = {}
    for item in machine.get('sysctls', []):
        if not item.get('environment'):
            lines.setdefault(item.get('namespace'), []).append('%s = %s' % (item['name'], item['value']))
    for namespace, found in lines.items():
        picture.section(namespace, 'sysctls:', found)


# -- checks: the lesson's objects, as a student looks at them (checks/lab/test_lab.py) --

def check_sysctl(lab, item):
    namespace = item.get("namespace")
    command = in_ns(namespace, "sysctl -n %s" % shlex.quote(item["name"]))
    result = lab.run(command)
    if result.rc != 0:
        fail("%s has no setting %s - see `%s`" % (namespace_words(namespace), item["name"], command))
    if result.stdout.split() != str(item["value"]).split():
        fail("%s is %s in %s; the lesson sets it to %s - see `%s`"
             % (item["name"], result.stdout.strip(), namespace_words(namespace), item["value"], command))
