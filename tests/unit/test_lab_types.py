# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Types of a lab's variables (module_utils/lab_types.py): the cases are data, in data/lab_types_cases.yml."""
import pathlib

import pytest
import yaml

from ansible_collections.cka.lab.plugins.module_utils import lab_schema
from ansible_collections.cka.lab.plugins.module_utils.lab_types import TypeSpecError, check_types

CASES = yaml.safe_load((pathlib.Path(__file__).parent / 'data' / 'lab_types_cases.yml').read_text(encoding='utf-8'))
LABS = sorted((pathlib.Path(__file__).resolve().parents[2] / 'labs').glob('*.yml'))


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_case(case):
    errors = check_types(case['types'], case['values'], case.get('hosts', []), case.get('examples'))

    rules = {name: getattr(lab_schema, name) for name in ('IFNAME_RULE', 'NETNS_RULE', 'SLUG_RULE', 'PATH_RULE')}
    assert errors == [message.format(**rules) for message in case['errors']]


@pytest.mark.parametrize('spec, message', [
    pytest.param({'x': 'ipv4'}, "types.x: 'ipv4' is not a type", id='an unknown name'),
    pytest.param({'x': {'list': 'address', 'fields': {}}}, None, id='fields beside list: fields wins, no error'),
    pytest.param({'x': {'lsit': 'address'}}, "types.x: {'lsit': 'address'} is not a type", id='a misspelt key'),
    pytest.param({'y': 'address'}, 'types.y: not a variable of the lab', id='a type for no variable'),
])
def test_a_types_block_that_is_not_made_of_types_is_a_mistake_in_the_lab_file(spec, message):
    if message is None:
        check_types(spec, {'x': {}})
        return
    with pytest.raises(TypeSpecError, match=message.replace('(', r'\(').replace('[', r'\[').replace('{', r'\{')):
        check_types(spec, {'x': '10.0.0.1'})


@pytest.mark.parametrize('path', LABS, ids=[path.stem for path in LABS])
def test_each_lab_types_its_defaults_and_they_fit(path):
    """Every variable of every lab has a type, and the lesson's own values pass it."""
    lab = yaml.safe_load(path.read_text(encoding='utf-8'))
    variables = lab.get('variables') or {}
    types = lab.get('types') or {}
    assert sorted(set(variables) - set(types)) == [], '%s: variables without a type' % path.name
    hosts = sorted({node['host'] for node in variables.get('cni_lab_nodes', [])})
    assert check_types(types, variables, hosts) == []
