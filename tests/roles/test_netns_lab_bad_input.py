# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Bad input to lesson 202 (roles/netns_lab) is refused before anything on a machine changes.

Each test runs playbooks/netns-lab.yml as a user would, with one bad value given
with -e, against an inventory of one host in group netns_lab that is not a local
lab machine (so the playbook's first play creates no container) and whose address
nothing listens on (127.0.0.1, port 9): any task that reached for that host would
end UNREACHABLE. A run that stops in a validation task, names the variable and
what it allows, and never reached for the host, is the proof that nothing on a
machine was touched. The last test gives valid input and sees the host reached
for, so these tests can fail.
"""

import copy
import re

import pytest
import yaml

from playbook_run import ROOT, role_task_names

PLAYBOOK = 'playbooks/netns-lab.yml'
HOST = 'netns-unreachable'
INVENTORY = {'all': {'children': {'netns_lab': {'hosts': {HOST: {
    'ansible_host': '127.0.0.1',
    'ansible_port': 9,  # discard: nothing listens here
    'ansible_connection': 'ssh',
    'ansible_user': 'nobody',
    'ansible_timeout': 5,
    'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null',
}}}}}}

# The task ansible-core adds in front of a role with meta/argument_specs.yml.
ARGUMENT_SPEC_TASK = "Validating arguments against arg spec 'main'"
VALIDATE_TASK = 'Validate the lab variables'
VALIDATION_TASKS = [re.escape(ARGUMENT_SPEC_TASK) + '.*'] + role_task_names('netns_lab', 'validate.yml')

DEFAULTS = yaml.safe_load((ROOT / 'roles' / 'netns_lab' / 'defaults' / 'main.yml').read_text())
NAMESPACE_NAMES = 'red, blue, orange, purple'


def namespaces_with(**changes):
    """netns_lab_namespaces as in defaults/main.yml with changes such as {'1.address': '192.168.16.2'}
    (None removes the key), as extra vars."""
    listed = copy.deepcopy(DEFAULTS['netns_lab_namespaces'])
    for path, value in changes.items():
        index, key = path.split('.')
        if value is None:
            del listed[int(index)][key]
        else:
            listed[int(index)][key] = value
    return {'netns_lab_namespaces': listed}


def is_validation_task(name):
    return any(re.fullmatch(pattern, name) for pattern in VALIDATION_TASKS)


BAD_INPUT = [
    # (extra vars, failing task, [(variable named, what it allows), ...])
    pytest.param(
        {'netns_lab_bridge': 'v-net-0-16-chars'}, VALIDATE_TASK,
        [("netns_lab_bridge: 'v-net-0-16-chars' is 16 characters", 'Linux interface names are 1-15 characters')],
        id='a bridge name of 16 characters is refused'),
    pytest.param(
        namespaces_with(**{'1.veth': 'veth-blue-16char'}), VALIDATE_TASK,
        [("netns_lab_namespaces[1].veth: 'veth-blue-16char' is 16 characters",
          'Linux interface names are 1-15 characters')],
        id='a veth name of 16 characters in the second namespace is refused'),
    pytest.param(
        namespaces_with(**{'3.bridge_port': 'veth-purple-br-x'}), VALIDATE_TASK,
        [("netns_lab_namespaces[3].bridge_port: 'veth-purple-br-x' is 16 characters",
          'Linux interface names are 1-15 characters')],
        id='a bridge port name of 16 characters is refused'),
    pytest.param(
        namespaces_with(**{'2.name': 'orange/x'}), VALIDATE_TASK,
        [("netns_lab_namespaces[2].name: 'orange/x' is not usable",
          "namespace names are 1-64 letters, digits, '.', '_' or '-'")],
        id='a namespace name with a slash is refused'),
    pytest.param(
        namespaces_with(**{'1.address': '192.168.16.2'}), VALIDATE_TASK,
        [("netns_lab_namespaces[1].address: '192.168.16.2' is outside netns_lab_subnet (192.168.15.0/24)",
          'it must be a host address inside that subnet')],
        id='an address outside its subnet is refused'),
    pytest.param(
        namespaces_with(**{'2.name': 'red'}), VALIDATE_TASK,
        [('netns_lab_namespaces[].name and netns_lab_lan_host: red repeated', 'each must be unique')],
        id='two namespaces with the same name are refused'),
    pytest.param(
        {'netns_lab_lan_subnet': '192.168.0.0/16'}, VALIDATE_TASK,
        [('netns_lab_subnet (192.168.15.0/24) and netns_lab_lan_subnet (192.168.0.0/16) overlap',
          'they must be separate networks')],
        id='a LAN subnet overlapping the lab subnet is refused'),
    pytest.param(
        namespaces_with(**{'3.address': '192.168.15.5'}), VALIDATE_TASK,
        [('netns_lab_namespaces[].address: 192.168.15.5 repeated', 'each must be unique')],
        id='an address already given to the bridge is refused'),
    pytest.param(
        {'netns_lab_routes': [{'namespace': 'green', 'dst': 'default'}]}, VALIDATE_TASK,
        [("netns_lab_routes[0].namespace: 'green' is not in netns_lab_namespaces", NAMESPACE_NAMES)],
        id='a route in an undeclared namespace is refused'),
    pytest.param(
        {'netns_lab_web_namespace': 'green'}, VALIDATE_TASK,
        [("netns_lab_web_namespace: 'green' is not in netns_lab_namespaces", NAMESPACE_NAMES)],
        id='a web namespace that is not declared is refused'),
    pytest.param(
        {'netns_lab_bridge': 'v-net-0-16-chars', 'netns_lab_routes': [{'namespace': 'blue', 'dst': '192.168.1.1/24'}]},
        VALIDATE_TASK,
        [("netns_lab_bridge: 'v-net-0-16-chars' is 16 characters", 'Linux interface names are 1-15 characters'),
         ("netns_lab_routes[0].dst: '192.168.1.1/24'", "must be 'default' or an IPv4 network like 192.168.1.0/24")],
        id='two problems at once are both reported'),
    pytest.param(
        dict(namespaces_with(**{'0.name': 'red/x'}), netns_lab_state='absent'), VALIDATE_TASK,
        [("netns_lab_namespaces[0].name: 'red/x' is not usable", 'namespace names are 1-64')],
        id='a reset with a bad namespace name is refused too'),
    # Types, from meta/argument_specs.yml, checked by ansible-core when the role starts.
    pytest.param(
        {'netns_lab_state': 'gone'}, ARGUMENT_SPEC_TASK,
        [('netns_lab_state', 'must be one of: present, absent, got: gone')],
        id='an unknown state is refused by the argument spec'),
    pytest.param(
        {'netns_lab_stage': 'half'}, ARGUMENT_SPEC_TASK,
        [('netns_lab_stage', 'must be one of: full, direct, got: half')],
        id='an unknown stage is refused by the argument spec'),
    pytest.param(
        {'netns_lab_masquerade': 'maybe'}, ARGUMENT_SPEC_TASK,
        [("argument 'netns_lab_masquerade' is of type str", 'Valid booleans include')],
        id='a masquerade switch that is not a boolean is refused by the argument spec'),
    pytest.param(
        {'netns_lab_web_port': 'eighty'}, ARGUMENT_SPEC_TASK,
        [("argument 'netns_lab_web_port' is of type str", 'unable to convert to int')],
        id='a web port that is not a number is refused by the argument spec'),
    pytest.param(
        {'netns_lab_namespaces': {'name': 'red'}}, ARGUMENT_SPEC_TASK,
        [("argument 'netns_lab_namespaces' is of type dict", 'unable to convert to list')],
        id='namespaces given as one mapping instead of a list are refused by the argument spec'),
    pytest.param(
        namespaces_with(**{'1.bridge_port': None}), ARGUMENT_SPEC_TASK,
        [('netns_lab_namespaces', 'missing required arguments: bridge_port')],
        id='a namespace without a bridge port is refused by the argument spec'),
    pytest.param(
        {'netns_lab_routes': [{'namespace': 'blue', 'dst': 'default', 'via': '192.168.15.9'}]}, ARGUMENT_SPEC_TASK,
        [('netns_lab_routes.via', 'Supported parameters include: dst, namespace')],
        id='a route with its own gateway is refused by the argument spec'),
]


@pytest.mark.parametrize('extra_vars, failing_task, named', BAD_INPUT)
def test_bad_input_is_refused_before_anything_changes(run_playbook, extra_vars, failing_task, named):
    run = run_playbook(PLAYBOOK, INVENTORY, extra_vars)

    run.assert_refused_in_validation(HOST, failing_task, named, is_validation_task)


def test_valid_input_gets_past_validation_and_reaches_for_the_host(run_playbook):
    """The control: with the defaults the same harness sees the host reached for, so the tests above can fail."""
    run = run_playbook(PLAYBOOK, INVENTORY, {})
    explain = run.explain()

    assert run.failed_tasks(HOST) == [], explain
    assert any(not is_validation_task(name) for name in run.tasks_run(HOST)), explain
    assert run.reached_for_a_host(), explain
    assert run.podman_calls == [], explain
