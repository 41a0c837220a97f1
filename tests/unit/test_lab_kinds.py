# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Each kind of lab object is one module of module_utils/lab_kinds/, behind one interface.

The declaration's schema, its cross-field rules, the engine's build and its reset
all come from lab_kinds.KINDS: a kind is added there and nowhere else in the
collection (labs/README.md, "Adding a kind").
"""
import inspect
import pathlib
import re

import pytest

from ansible_collections.cka.lab.plugins.module_utils import lab_declaration, lab_drawing, lab_engine, lab_record
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import KINDS, keys

NEEDED = ('KEYS', 'SCHEMA', 'stage_errors', 'build', 'remove')
HOOKS = {'tools': 1, 'snapshot': 2, 'initial': 1, 'plan': 3, 'note': 4, 'withdraw': 4, 'build': 4, 'done': 4,
         'remove': 3, 'stage_errors': 2, 'draw': 2, 'observe': 1}


@pytest.mark.parametrize('kind', KINDS, ids=[kind.__name__.rsplit('.', 1)[1] for kind in KINDS])
def test_kind_has_the_interface(kind):
    assert [name for name in NEEDED if not hasattr(kind, name)] == []
    assert sorted(kind.SCHEMA) == sorted(kind.KEYS), 'SCHEMA must describe exactly the keys the kind owns'
    for hook, arity in HOOKS.items():
        if hasattr(kind, hook):
            params = [p for p in inspect.signature(getattr(kind, hook)).parameters.values()
                      if p.default is inspect.Parameter.empty]
            assert len(params) == arity, '%s.%s takes %d arguments' % (kind.__name__, hook, arity)


def test_each_key_belongs_to_one_kind():
    assert len(keys()) == len(set(keys()))


def test_the_declaration_schema_is_the_kinds():
    machine = lab_declaration.SCHEMA['properties']['machine']['properties']
    assert sorted(machine) == sorted(keys())
    for kind in KINDS:
        for key in kind.KEYS:
            assert machine[key]['items'] is kind.SCHEMA[key]


def test_the_engine_and_the_drawing_take_every_kind():
    assert lab_engine.KINDS is KINDS
    assert lab_drawing.KINDS is KINDS


@pytest.mark.parametrize('kind', KINDS, ids=[kind.__name__.rsplit('.', 1)[1] for kind in KINDS])
def test_kind_describes_its_record_keys_with_json_types(kind):
    """RECORD: {key: (JSON type, value in a new record, of that type or None)}; NOTED: {key: JSON type}."""
    for key, (name, value) in getattr(kind, 'RECORD', {}).items():
        assert name in lab_record._TYPES, '%s: %s is not a JSON type of lab_record' % (key, name)
        assert value is None or type(value) is lab_record._TYPES[name], key
    assert set(getattr(kind, 'NOTED', {}).values()) <= set(lab_record._TYPES)


def test_no_two_kinds_keep_the_same_record_key():
    owned = [key for kind in KINDS for key in getattr(kind, 'RECORD', {})]
    assert len(owned) == len(set(owned))


def test_the_grader_checks_every_key_with_its_kind():
    """checks/lab/test_lab.py has one check per `machine:` key, and it is the kind's own (check_*)."""
    grader = (pathlib.Path(__file__).resolve().parents[2] / 'checks' / 'lab' / 'test_lab.py').read_text()
    graded = re.findall(r'@pytest\.mark\.each\("machine\.(\w+)"\)\ndef test_\w+\(lab, item\):\n    (\w+)\.check_\w+\(',
                        grader)
    assert sorted(key for key, _ in graded) == sorted(keys())
    owner = {key: kind.__name__.rsplit('.', 1)[1] for kind in KINDS for key in kind.KEYS}
    assert all(owner[key] == module for key, module in graded)
