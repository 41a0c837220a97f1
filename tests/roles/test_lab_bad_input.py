# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Bad input to lesson 202 (role lab, labs/netns_lab.yml) is refused before anything on a machine changes.

Each test runs playbooks/netns-lab.yml as a user would, with the bad value typed
as a command-line ``-e`` argument, against an inventory of one host in group
netns_lab that is not a local lab machine (so the playbook's first play creates
no container; podman is a test double that records each call and fails) and
whose address nothing listens on (127.0.0.1, port 9): any task that reached for
that host would end UNREACHABLE. A run that stops in the validation task, with a
message naming the variable or the path in the declaration and what is allowed,
and that never reached for the host, is the proof that nothing on a machine was
touched. The last tests give valid input and see the host reached for, so these
tests can fail.
"""

import json
import re

import pytest
import yaml

from playbook_run import ROOT, UNREACHABLE_HOST, run_playbook

PLAYBOOK = 'playbooks/netns-lab.yml'
HOST = 'netns-unreachable'
INVENTORY = {'all': {'children': {'netns_lab': {'hosts': {HOST: dict(UNREACHABLE_HOST)}}}}}

VALIDATE_TASK = 'Read and validate the declaration of lab netns_lab'
# Tasks that run on the controller only: ansible-core's argument-spec check of the role, and the validation.
VALIDATION_TASKS = [re.escape("Validating arguments against arg spec 'main'") + '.*', re.escape(VALIDATE_TASK)]
# Every playbook's first check (playbooks/preflight.yml): that Ansible read the checkout's ansible.cfg.
VALIDATION_TASKS.append(re.escape("Require this checkout's ansible.cfg"))

LAB = yaml.safe_load((ROOT / 'labs' / 'netns_lab.yml').read_text())
SLUG_RULE = "1-24 lower-case letters, digits or '-', starting with a letter"
IFNAME_RULE = "Linux interface names are 1-15 characters without '/', ':' or whitespace"


def is_validation_task(name):
    return any(re.fullmatch(pattern, name) for pattern in VALIDATION_TASKS)


def namespaces_with(index, **changes):
    """-e with netns_lab_namespaces as labs/netns_lab.yml declares it, one entry changed, as JSON."""
    listed = [dict(item) for item in LAB['variables']['netns_lab_namespaces']]
    listed[index].update(changes)
    return json.dumps({'netns_lab_namespaces': listed})


@pytest.fixture
def run_user_playbook(tmp_path, ansible_env, podman_double):
    """ansible-playbook -i INVENTORY playbooks/netns-lab.yml -e ARG ... with each `extra` typed as one -e."""
    _, calls = podman_double
    return lambda *extra: run_playbook(PLAYBOOK, INVENTORY, tmp_path, ansible_env, calls, *extra)


LONG_NAME = 'cka-' + 'x' * 226
assert len(LONG_NAME) == 230

BAD_INPUT = [
    # (-e arguments, [(the variable or path named, what is allowed), ...]); every part must be in one message
    pytest.param(
        ['netns_lab_name='],
        [("name: ''", SLUG_RULE)],
        id='an empty lab name is refused'),
    pytest.param(
        # In a shell the space must be quoted for Ansible too: -e 'netns_lab_name=cka 202' would give
        # Ansible's key=value parser netns_lab_name=cka and a stray word.
        ['netns_lab_name="cka 202"'],
        [("name: 'cka 202'", SLUG_RULE)],
        id='a lab name with a space is refused'),
    pytest.param(
        ['netns_lab_name=' + LONG_NAME],
        [("name: '%s'" % LONG_NAME, SLUG_RULE)],
        id='a lab name of 230 characters is refused'),
    pytest.param(
        ['netns_lab_bridge=v-net-0-much-too-long'],
        [("netns_lab_bridge: 'v-net-0-much-too-long' is not an interface name", IFNAME_RULE)],
        id='a bridge name of 21 characters is refused, naming the variable'),
    pytest.param(
        ['netns_lab_web_port=http'],
        [("netns_lab_web_port: 'http'", 'is not a whole number like 80')],
        id='a web port that is not a number is refused'),
    pytest.param(
        ['netns_lab_web_port=70000'],
        [('netns_lab_web_port: 70000 is not a port', 'allowed: a whole number 1-65535')],
        id='a web port above 65535 is refused'),
    pytest.param(
        ['netns_lab_stage=nope'],
        [("netns_lab_stage: 'nope'", 'allowed: start, direct, full')],
        id='an unknown stage is refused'),
    pytest.param(
        ['netns_lab_state=gone'],
        [("netns_lab_state: 'gone'", 'allowed: present, absent')],
        id='an unknown state is refused'),
    pytest.param(
        ['netns_lab_masquerade=maybe'],
        [("netns_lab_masquerade: 'maybe'", 'allowed: true or false')],
        id='a masquerade switch that is not a boolean is refused'),
    pytest.param(
        [namespaces_with(1, address='192.168.15.0')],
        [("netns_lab_namespaces[1].address: '192.168.15.0' is not a host address of netns_lab_subnet "
          "(192.168.15.0/24)", 'neither its network nor its broadcast address')],
        id='a namespace given the network address of the lab subnet is refused'),
    pytest.param(
        [namespaces_with(2, address='192.168.15.300')],
        [("netns_lab_namespaces[2].address: '192.168.15.300' is not an IPv4 address",
          'allowed: a host address of netns_lab_subnet')],
        id='a namespace address that is no address is refused'),
    pytest.param(
        [namespaces_with(1, address='192.168.15.5')],
        [('192.168.15.5 is already held by machine.bridges[0].addresses[0]', 'each address once'),
         ('192.168.15.5', 'netns_lab_namespaces')],
        id='a namespace given the address of the bridge is refused'),
    pytest.param(
        [namespaces_with(3, name='purple/x')],
        [("netns_lab_namespaces[3].name: 'purple/x' is not a namespace name",
          "namespace names are 1-64 letters, digits, '.', '_' or '-'")],
        id='a namespace name with a slash is refused'),
    pytest.param(
        [namespaces_with(1, veth='veth-blue-16char')],
        [("netns_lab_namespaces[1].veth: 'veth-blue-16char'", IFNAME_RULE)],
        id='a veth name of 16 characters is refused'),
    pytest.param(
        ['netns_lab_web_namespace=green'],
        [("netns_lab_web_namespace: 'green' is not in netns_lab_namespaces[*].name",
          'allowed: red, blue, orange, purple')],
        id='a web namespace that is not declared is refused'),
    pytest.param(
        ['netns_lab_bridge=v-net-0-much-too-long', 'netns_lab_web_port=http'],
        [("netns_lab_web_port: 'http'", 'is not a whole number like 80')],
        id='a variable of the wrong type is refused before the declaration is rendered'),
    pytest.param(
        ['netns_lab_state=absent', 'netns_lab_name="cka 202"'],
        [("name: 'cka 202'", SLUG_RULE)],
        id='a reset with a bad lab name is refused too'),
    pytest.param(
        ['netns_lab_routes=[{"namespace": "blue", "dst": "default"}]'],
        [('netns_lab_routes: must be a list', 'with -e pass it as JSON: -e \'{"netns_lab_routes": ...}\'')],
        id='a list typed as key=value is refused, showing the JSON form'),
    pytest.param(
        ['netns_lab_routes=[{"namespace": "blue", "dst": "default"}]'],
        [('netns_lab_routes: must be a list', '(given str)')],
        id='a list typed as key=value is refused, saying a string was given'),
    pytest.param(
        ['netns_lab_lan_subnet=192.168.15.0/24'],
        [('netns_lab_lan_address: \'192.168.1.2\' is not a host address', 'allowed: an address inside it')],
        id='a LAN subnet equal to the lab subnet is refused'),
    pytest.param(
        [namespaces_with(2, address='192.168.16.3')],
        [('192.168.16.3', '192.168.15.0/24')],
        id='a namespace address outside the lab subnet is refused'),
]


@pytest.mark.parametrize('extra, named', BAD_INPUT)
def test_bad_input_is_refused_before_anything_changes(run_user_playbook, extra, named):
    run = run_user_playbook(*extra)

    run.assert_refused_in_validation(HOST, VALIDATE_TASK, named, is_validation_task)


def test_the_refusal_names_every_problem_at_once(run_user_playbook):
    run = run_user_playbook('netns_lab_bridge=v-net-0-much-too-long', namespaces_with(3, veth='veth-purple-16ch'))

    run.assert_refused_in_validation(HOST, VALIDATE_TASK, [
        ("netns_lab_bridge: 'v-net-0-much-too-long'", IFNAME_RULE),
        ("netns_lab_namespaces[3].veth: 'veth-purple-16ch'", IFNAME_RULE),
    ], is_validation_task)


def test_problems_in_two_variables_are_reported_at_once(run_user_playbook):
    run = run_user_playbook(namespaces_with(2, address='192.168.15.0'),
                            '{"netns_lab_routes": [{"namespace": "blue", "dst": "192.168.1.1/24"}]}')

    run.assert_refused_in_validation(HOST, VALIDATE_TASK, [
        ("netns_lab_namespaces[2].address: '192.168.15.0' is not a host address", 'netns_lab_subnet'),
        ("netns_lab_routes[0].dst: '192.168.1.1/24' is not a route destination", 'allowed: default, or'),
    ], is_validation_task)


@pytest.mark.parametrize('extra', [
    pytest.param([], id='the defaults'),
    pytest.param(['netns_lab_stage=direct', 'netns_lab_name=cka-202', 'netns_lab_web_port=8080'],
                 id='another stage, name and port'),
    pytest.param(['netns_lab_state=absent'], id='a reset'),
])
def test_valid_input_gets_past_validation_and_reaches_for_the_host(run_user_playbook, extra):
    """The control: the same harness sees the host reached for, so the tests above can fail."""
    run = run_user_playbook(*extra)
    explain = run.explain()

    assert run.failed_tasks(HOST) == [], explain
    assert VALIDATE_TASK in run.tasks_run(HOST), explain
    assert run.reached_for_a_host(), explain
    assert run.podman_calls == [], explain


# The host as a local lab machine (group local_lab_machines): the playbook makes it when it is missing. Bad
# input must stop the run before that: not even podman is asked what runs.
LOCAL_INVENTORY = {'all': {'children': {'local_lab_machines': {'children': {'netns_lab': {'hosts': {
    HOST: dict(UNREACHABLE_HOST, ansible_host='10.213.0.250', ansible_ssh_private_key_file='/nonexistent/key')}}}}}}}


@pytest.mark.parametrize('extra', [
    pytest.param(['netns_lab_stage=finished'], id='a stage the lab does not have'),
    pytest.param(['netns_lab_bridge=v-net-0-much-too-long'], id='a bad variable'),
])
def test_bad_input_stops_before_a_local_lab_machine_is_made(tmp_path, ansible_env, podman_double, extra):
    _, calls = podman_double
    run = run_playbook(PLAYBOOK, LOCAL_INVENTORY, tmp_path, ansible_env, calls, *extra)
    explain = run.explain()

    assert run.rc != 0, explain
    assert run.failed_tasks(HOST) == [VALIDATE_TASK], explain
    assert run.podman_calls == [], explain


def test_valid_input_goes_on_to_make_the_local_lab_machine(tmp_path, ansible_env, podman_double):
    """The control: valid input reaches the machines' role (the podman double is asked what runs)."""
    _, calls = podman_double
    run = run_playbook(PLAYBOOK, LOCAL_INVENTORY, tmp_path, ansible_env, calls)

    assert any(call.startswith('ps ') for call in run.podman_calls), run.explain()


LAB_FILES = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((ROOT / 'labs').glob('*.yml'))}
ENGINE_LABS = [lab for lab, source in LAB_FILES.items() if 'playbook' not in source]
OWN_PLAYBOOK_LABS = [lab for lab, source in LAB_FILES.items() if 'playbook' in source]


@pytest.mark.parametrize('extra, says', [
    pytest.param([], 'lab_id is not set; allowed: ', id='no lab_id'),
    pytest.param(['lab_id=nope_lab'], "lab_id: 'nope_lab' is not a lab of %s; allowed: " % (ROOT / 'labs'),
                 id='a lab_id that names no lab'),
])
def test_lab_playbook_without_a_lab_names_the_labs_it_builds(tmp_path, ansible_env, podman_double, extra, says):
    """playbooks/lab.yml without a lab of labs/ stops in its first check, before any machine: the message lists
    the labs the engine builds, and those with a playbook of their own apart (the weave lab)."""
    _, calls = podman_double
    run = run_playbook('playbooks/lab.yml', INVENTORY, tmp_path, ansible_env, calls, *extra)
    explain = run.explain()

    assert run.rc != 0, explain
    assert run.failed_tasks('localhost') == ['Require lab_id to name a lab of labs/ that the lab engine builds'], explain
    assert ENGINE_LABS and OWN_PLAYBOOK_LABS, 'labs/ changed: this test needs one lab of each kind'
    message = ' '.join(run.messages('localhost'))
    assert says + ', '.join(ENGINE_LABS) + ' (-e lab_id=netns_lab)' in message, message
    assert 'Built by playbooks of their own: ' + ', '.join(OWN_PLAYBOOK_LABS) in message, message
    assert 'is undefined' not in run.stdout + run.stderr, explain
    assert not run.reached_for_a_host() and run.podman_calls == [], explain
