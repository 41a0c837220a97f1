# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Bad lab machine declarations (roles/lab_machines) are refused before any container is touched.

Each test runs playbooks/machines.yml as a user would, with an inventory whose hosts
are in group local_lab_machines and whose declarations are wrong. With valid input
that playbook creates containers, so only invalid input is run here, and podman is
a test double (see conftest.py) that records each call and fails: a run that stops
in a validation task, names the variable and what it allows, ran no later task and
made no podman call, touched nothing.
"""

import json
import re

import pytest

from playbook_run import role_task_names

PLAYBOOK = 'playbooks/machines.yml'
CONTROLLER = 'localhost'  # the play runs on the controller and drives podman from there

ARGUMENT_SPEC_TASK = "Validating arguments against arg spec 'main'"
ADDRESS_TASK = "Check each machine's address and SSH key, and find the machines to create"
KEY_TASK = ADDRESS_TASK
UNIQUE_TASK = ADDRESS_TASK
VALIDATION_TASKS = [re.escape(ARGUMENT_SPEC_TASK) + '.*'] + role_task_names('lab_machines', 'validate.yml')
# Every playbook's first check (playbooks/preflight.yml): that Ansible read the checkout's ansible.cfg.
VALIDATION_TASKS.append(re.escape("Require this checkout's ansible.cfg"))
# machines.yml's own checks of --limit.
VALIDATION_TASKS += [re.escape('Require --limit to name local lab machines'),
                     re.escape('Require localhost in --limit, from where the machines are managed')]

KEY = '/nonexistent/pytest-lab-machines/id_ed25519'  # never read: validation stops first


def machines(*declared):
    """An inventory with `declared` (name, host vars) in local_lab_machines."""
    return {'all': {'children': {'local_lab_machines': {'hosts': dict(declared)}}}}


def machine(name, address, key=KEY):
    host_vars = {'ansible_host': address}
    if key is not None:
        host_vars['ansible_ssh_private_key_file'] = key
    return name, host_vars


def podman_lists(bin_dir, *running):
    """The podman double answers `ps` with `running` as this checkout's running machines, and fails the rest."""
    listed = json.dumps([{'Names': [name], 'State': 'running',
                          'Labels': {'io.github.cka-lab.authorized-key': KEY + '.pub'}} for name in running])
    (bin_dir / 'podman').write_text('#!/bin/sh\nprintf \'%%s\\n\' "$*" >> "$PODMAN_DOUBLE_CALLS"\n'
                                    'case "$1" in ps) echo \'%s\'; exit 0;; esac\nexit 125\n' % listed)


def is_validation_task(name):
    return any(re.fullmatch(pattern, name) for pattern in VALIDATION_TASKS)


BAD_INPUT = [
    # (inventory, extra vars, failing task, [(variable named, what it allows), ...])
    pytest.param(
        machines(machine('pytest-outside', '10.213.1.5')), {}, ADDRESS_TASK,
        [("ansible_host of pytest-outside: '10.213.1.5' is not usable",
          'allowed: an IPv4 address inside lab_machines_network_subnet (10.213.0.0/24)')],
        id='an ansible_host outside 10.213.0.0/24 is refused'),
    pytest.param(
        machines(machine('pytest-first', '10.213.0.250'), machine('pytest-second', '10.213.0.250')), {}, UNIQUE_TASK,
        [('ansible_host: pytest-first and pytest-second share the address 10.213.0.250',
          'allowed: one distinct address per machine')],
        id='two machines with the same ansible_host are refused'),
    pytest.param(
        machines(machine('pytest-gateway', '10.213.0.1')), {}, ADDRESS_TASK,
        [("ansible_host of pytest-gateway: '10.213.0.1' is not usable", 'other than its first address')],
        id='the address of the Podman gateway is refused'),
    pytest.param(
        machines(machine('pytest-hostname', 'lab-machine.example')), {}, ADDRESS_TASK,
        [("ansible_host of pytest-hostname: 'lab-machine.example' is not usable", 'allowed: an IPv4 address')],
        id='an ansible_host that is a host name is refused'),
    pytest.param(
        machines(machine('pytest-keyless', '10.213.0.251', key=None)), {}, KEY_TASK,
        [('ansible_ssh_private_key_file of pytest-keyless is not set', 'allowed: a path')],
        id='a machine without an SSH key path is refused'),
    pytest.param(
        machines(machine('pytest-state', '10.213.0.252')), {'lab_machines_state': 'gone'}, ARGUMENT_SPEC_TASK,
        [('lab_machines_state', 'must be one of: present, absent, got: gone')],
        id='an unknown state is refused by the argument spec'),
]


@pytest.mark.parametrize('inventory, extra_vars, failing_task, named', BAD_INPUT)
def test_bad_declaration_is_refused_before_any_container_is_touched(run_playbook, inventory, extra_vars,
                                                                    failing_task, named):
    run = run_playbook(PLAYBOOK, inventory, extra_vars)

    run.assert_refused_in_validation(CONTROLLER, failing_task, named, is_validation_task)


def test_podman_double_records_the_calls_ansible_makes(run_playbook, tmp_path):
    """The control: the podman the role's tasks would run is the double, so `podman_calls == []` above can fail.

    A playbook of its own, not playbooks/machines.yml: valid input there would create containers."""
    playbook = tmp_path / 'podman-probe.yml'
    playbook.write_text(
        '- name: Call podman the ways roles/lab_machines does\n'
        '  hosts: localhost\n'
        '  connection: local\n'
        '  gather_facts: false\n'
        '  tasks:\n'
        '    - name: List containers from a lookup\n'
        '      ansible.builtin.debug:\n'
        "        msg: \"{{ lookup('ansible.builtin.pipe', 'podman ps --filter label=pytest-probe') }}\"\n"
        '      ignore_errors: true\n'
        '    - name: List containers from a module\n'
        '      containers.podman.podman_container_info:\n'
        '        name: pytest-probe\n'
        '      ignore_errors: true\n')
    run = run_playbook(str(playbook), {'all': {}})  # the implicit localhost, as playbooks/machines.yml uses

    assert 'ps --filter label=pytest-probe' in run.podman_calls, run.explain()
    assert any(call.startswith('container inspect') for call in run.podman_calls), run.explain()


def test_machines_past_the_computers_inotify_limit_are_refused_before_any_is_made(run_playbook, podman_double):
    """With no machine running yet (the double lists none), twenty new machines at an inflated cost each would
    pass root's fs.inotify.max_user_instances: refused in one message, and podman asked nothing but `ps`."""
    bin_dir, calls = podman_double
    podman_lists(bin_dir)
    room = machines(*(machine('pytest-room-%02d' % n, '10.213.0.%d' % (200 + n)) for n in range(20)))
    with open('/proc/sys/fs/inotify/max_user_instances') as handle:
        limit = int(handle.read())
    run = run_playbook(PLAYBOOK, room, {'lab_machines_inotify_per_machine': limit})

    assert run.rc != 0, run.explain()
    assert run.failed_tasks(CONTROLLER) == ["Check that the machines to create fit this computer's inotify limit"], \
        run.explain()
    message = ' '.join(run.messages(CONTROLLER))
    assert '20 new lab machine(s) need about %d inotify instances of root' % (20 * limit) in message
    assert 'sysctl -w fs.inotify.max_user_instances=512' in message and 'Nothing was created.' in message
    assert [call.split()[0] for call in run.podman_calls] == ['ps'], run.explain()


RUNNING = 'pytest-running'


@pytest.mark.parametrize('rebuild, refused', [('notabool', True), ('true', False)],
                         ids=['a mistyped value is refused', 'the control: true runs the role'])
def test_lab_playbook_refuses_a_mistyped_image_rebuild_while_its_machines_run(run_playbook, podman_double, rebuild,
                                                                              refused):
    """playbooks/lab.yml asks only `podman ps` while its machines run and skips the role; a value of
    lab_machines_image_rebuild that is not false still runs the role, whose argument check names it.
    The control: `true` runs the role past that check (to the image, where the podman double fails)."""
    bin_dir, calls = podman_double
    podman_lists(bin_dir, RUNNING)
    inventory = {'all': {'children': {'local_lab_machines': {'children': {'netns_lab': {'hosts': dict(
        [machine(RUNNING, '10.213.0.253')])}}}}}}
    run = run_playbook('playbooks/netns-lab.yml', inventory, {'lab_machines_image_rebuild': rebuild})

    assert run.rc != 0, run.explain()
    assert [call.split()[0] for call in run.podman_calls][:1] == ['ps'], run.explain()
    failed = run.failed_tasks(CONTROLLER)
    assert len(failed) == 1, run.explain()
    assert failed[0].startswith(ARGUMENT_SPEC_TASK) is refused, run.explain()
    if refused:
        assert any("'lab_machines_image_rebuild'" in message and "'notabool' is not a valid boolean" in message
                   for message in run.messages(CONTROLLER)), run.explain()
        assert [call.split()[0] for call in run.podman_calls] == ['ps'], run.explain()
        assert not run.reached_for_a_host(), run.explain()


@pytest.mark.parametrize('limit, removed', [('pytest-one,localhost', ['pytest-one']),
                                             (None, ['pytest-one', 'pytest-two'])],
                         ids=['--limit one machine', 'the control: no --limit'])
def test_machines_playbook_removes_only_the_machines_within_limit(run_playbook, podman_double, limit, removed):
    """`machines.yml -e lab_machines_state=absent --limit M,localhost` removes M, not every local machine."""
    podman_lists(podman_double[0], 'pytest-one', 'pytest-two')
    room = machines(machine('pytest-one', '10.213.0.253'), machine('pytest-two', '10.213.0.254'))
    limited = ['--limit', limit] if limit else []
    run = run_playbook(PLAYBOOK, room, options=['-e', 'lab_machines_state=absent', *limited])
    named = sorted({name for name in ('pytest-one', 'pytest-two')
                    if any(name in call for call in run.podman_calls if not call.startswith('ps'))})

    assert named == removed, run.output + '\n'.join(run.podman_calls)


def test_machines_playbook_refuses_a_limit_without_localhost(run_playbook):
    run = run_playbook(PLAYBOOK, machines(machine('pytest-one', '10.213.0.253')),
                       options=['-e', 'lab_machines_state=absent', '--limit', 'pytest-one'])

    assert "which --limit pytest-one leaves out: add it, e.g. --limit 'pytest-one,localhost'" in run.output, run.output
    assert run.podman_calls == [], run.podman_calls


@pytest.mark.parametrize('rebuild', ['false', 'no', 'False'])
def test_machines_playbook_takes_a_boolean_typed_on_the_command_line(run_playbook, podman_double, rebuild):
    """`-e lab_machines_image_rebuild=false` arrives as a string: with every machine running, nothing is done
    (ansible-core 2.19 refuses a string as a condition, so each condition on it must read it as a boolean)."""
    podman_lists(podman_double[0], 'pytest-one')
    run = run_playbook(PLAYBOOK, machines(machine('pytest-one', '10.213.0.253')),
                       options=['-e', 'lab_machines_image_rebuild=%s' % rebuild])
    output = run.output

    assert 'was derived from value of type' not in output, output
    assert '"failures": 0' in output and '"failures": 1' not in output, output
    assert [call.split()[0] for call in run.podman_calls] == ['ps'], output
