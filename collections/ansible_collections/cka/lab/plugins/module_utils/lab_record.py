# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The record a lab keeps on each machine it is built on: its shape, its versions and their migration.

The record (``/var/lib/cka-lab/<lab>.json``, written by lab_engine) is a JSON object:

- ``version`` (int): :data:`RECORD_VERSION` when this checkout wrote it;
- ``lab`` (str), ``name`` (str: the lab's mark, in its rules' comments and units'
  names), ``stage`` (str: the stage last built);
- ``preexisting`` (object): what the machine had before the lab's first build, one
  key per thing a kind notes (each kind's ``NOTED``, {key: JSON type}); ``null``
  for a key the build that wrote the record did not note (a record of an earlier
  version): a reset then removes nothing of that kind that a student made by hand;
- each kind's own keys (each kind's ``RECORD``, {key: (JSON type, value in a new
  record)}; a key whose value in a new record is ``null`` may be ``null``).

:func:`load` brings a record of any earlier version to the current one, one step
per version, and checks its shape; a record of a later version (written by a newer
checkout) or one of the wrong shape is refused with what to do.

Versions:

1. the first: ``topology``, ``sysctls``, ``files``, ``services``, ``chains``,
   ``tables``, and of the machine before the lab ``preexisting.rules``;
2. ``iptables`` (the backend the lab's rules went into) and ``adopted`` (a
   student's rules the lab took over);
3. every kind's keys are in every record, and ``preexisting`` has every noted key.
"""
from __future__ import annotations

import copy

RECORD_VERSION = 3
_TYPES = {'list': list, 'object': dict, 'string': str, 'boolean': bool}
_JSON_NAMES = {python_type: name for name, python_type in _TYPES.items()}


class RecordError(Exception):
    """A record this checkout cannot use; `errors` are the lines saying why and what to do."""

    def __init__(self, errors):
        super().__init__('; '.join(errors))
        self.errors = errors


def new(lab, name, stage, preexisting, kinds):
    """A record of a first build: every kind's keys with their value in a new record (deep copies)."""
    record = {'version': RECORD_VERSION, 'lab': lab, 'name': name, 'stage': stage,
              'preexisting': dict(_noted(kinds), **preexisting)}
    for kind in kinds:
        record.update({key: copy.deepcopy(value) for key, (_, value) in getattr(kind, 'RECORD', {}).items()})
    return record


def _noted(kinds):
    """{key: None} for every key some kind notes in ``preexisting``."""
    return {key: None for kind in kinds for key in getattr(kind, 'NOTED', {})}


def _to_2(record, kinds):
    # The backend is the `iptables` of the time (found again when the record is used: null), and nothing
    # was taken over.
    record.setdefault('adopted', [])
    record.setdefault('iptables', None)


def _to_3(record, kinds):
    for kind in kinds:
        for key, (_, value) in getattr(kind, 'RECORD', {}).items():
            record.setdefault(key, copy.deepcopy(value))
    noted = record.get('preexisting')
    record['preexisting'] = dict(_noted(kinds), **(noted if isinstance(noted, dict) else {}))


# One step per version: _STEPS[n] brings a record of version n + 1 to version n + 2.
_STEPS = (_to_2, _to_3)


def load(record, kinds, path='the record'):
    """`record` (as read from JSON) in the current shape, migrated step by step and checked.

    Raises RecordError naming `path`, what is wrong and what to do."""
    if not isinstance(record, dict) or not isinstance(record.get('version', 1), int) \
            or isinstance(record.get('version', 1), bool) or record.get('version', 1) < 1:
        raise RecordError(['%s is not a lab record; remove it and clean the machine by hand, or recreate the '
                           'machine' % path])
    version = record.get('version', 1)
    if version > RECORD_VERSION:
        raise RecordError(['%s was written by a newer version of the project (record version %d; this one reads '
                           'up to %d): build or reset this lab from that checkout' % (path, version, RECORD_VERSION)])
    for step in _STEPS[version - 1:]:
        step(record, kinds)
    record['version'] = RECORD_VERSION
    problems = shape_problems(record, kinds)
    if problems:
        raise RecordError(['%s is not a lab record of version %d (%s); remove it and clean the machine by hand, '
                           'or recreate the machine' % (path, RECORD_VERSION, '; '.join(problems))])
    return record


def shape_problems(record, kinds):
    """What in `record` is not of the current shape: ['files: a list was expected, found a string', ...]."""
    problems = []

    def check(where, value, expected, nullable):
        if value is None and nullable:
            return
        if not _is(value, expected):
            found = 'nothing' if value is None else _a(_json_type(value))
            problems.append('%s: %s was expected, found %s' % (where, _a(_json_name(expected)), found))

    for key, expected in (('lab', str), ('name', str), ('stage', str), ('preexisting', dict)):
        check(key, record.get(key), expected, False)
    for kind in kinds:
        for key, (name, value) in getattr(kind, 'RECORD', {}).items():
            check(key, record.get(key), _TYPES[name], value is None)
        if isinstance(record.get('preexisting'), dict):
            for key, name in getattr(kind, 'NOTED', {}).items():
                check('preexisting.' + key, record['preexisting'].get(key), _TYPES[name], True)
    return problems


def _a(word):
    return ('an ' if word[0] in 'aeiou' else 'a ') + word


def _is(value, python_type):
    """Whether `value` is of the JSON type `python_type` stands for (a boolean is no other type's)."""
    return isinstance(value, python_type) and (python_type is bool or not isinstance(value, bool))


def _json_name(python_type):
    return _JSON_NAMES.get(python_type, python_type.__name__)


def _json_type(value):
    for name, python_type in _TYPES.items():
        if _is(value, python_type):
            return name
    return 'number' if isinstance(value, (int, float)) else type(value).__name__
