# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Lesson 202 built, graded and reset through ansible-runner as AWX runs jobs (conftest.py makes the lab machine).

AWX runs a job template with ansible-runner on a private data dir it lays out (ansible/awx, awx/main/tasks/jobs.py,
and ansible-runner's "Runner Input Directory Hierarchy"):

- ``project/``: the project's checkout, copied without ``.git`` and with its symlinks kept
  (``shutil.copytree(..., ignore=ignore_patterns('.git'), symlinks=True)``); here the checkout's files less what
  .gitignore keeps out of a clone (.venv, .lab, reports, caches).
- ``inventory/hosts``: the job's inventory as an executable script printing its JSON (``write_inventory_file``);
  here one lab machine in the lab's group, reached over SSH like a school's VM, not a local machine of the project.
- ``env/ssh_key``: the machine credential's key, which ansible-runner hands to ``ssh-agent``.
- ``env/extravars``: the job's extra variables, with AWX's own ``awx_*`` ones.
- ``env/envvars``: AWX's environment: its ANSIBLE_* settings, a ControlPath folder per job, and the collection and
  role paths it builds from the project's ansible.cfg with the project sync's requirements folders first.

Three jobs on one private data dir, as three launches of job templates: playbooks/netns-lab.yml, playbooks/check.yml
(the grader, its reports written into the data dir) and playbooks/netns-lab.yml with ``netns_lab_state: absent``.
ansible-playbook runs in ``project/``, so Ansible reads the project's ansible.cfg, as in AWX's execution
environment; here it is the checkout's .venv (ansible-runner's process isolation off, as ``ansible-runner run``
without a container). The collections of requirements.yml come from the ansible package there, where AWX's project
sync would have put them in requirements_collections (Galaxy cannot be reached here).
"""

import json
import os
import pathlib
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET

import ansible_runner
import pytest

from conftest import KEY, MACHINES, ROOT, ansible

HOST = 'live-c'
# Left out of the copy, as a git clone of the project lacks them (.gitignore) and AWX leaves out .git.
NOT_IN_A_CLONE = {'.git', '.venv', '.lab', '.ansible', 'reports', 'build'}
CACHES = ('__pycache__', '.pytest_cache', '*.pyc', '*.egg-info')


def lay_out_project(project):
    """The checkout copied as AWX copies a project into a job's private data dir."""
    caches = shutil.ignore_patterns(*CACHES)

    def ignore(directory, names):
        left_out = set(caches(directory, names))
        if os.path.samefile(directory, ROOT):
            left_out |= NOT_IN_A_CLONE & set(names)
        return left_out

    shutil.copytree(ROOT, project, symlinks=True, ignore=ignore)


def inventory_script(hosts_file):
    """inventory/hosts as AWX writes it: a script that prints the inventory's JSON (groups, then _meta.hostvars)."""
    data = {
        'all': {'children': ['ungrouped', 'netns_lab']},
        'netns_lab': {'hosts': [HOST]},
        '_meta': {'hostvars': {HOST: {
            'ansible_host': MACHINES[HOST],
            'ansible_user': 'root',
            'ansible_python_interpreter': '/usr/bin/python3',
            # A throw-away machine with a new host key each time (inventory/classroom.example says the same).
            'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR',
        }}},
    }
    hosts_file.write_text('#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n' % json.dumps(data))
    hosts_file.chmod(0o700)


def awx_envvars(data):
    """env/envvars as AWX's RunJob.build_env makes it for a job (its settings' defaults)."""
    return {
        'ANSIBLE_FORCE_COLOR': 'True',
        'ANSIBLE_HOST_KEY_CHECKING': 'False',
        'ANSIBLE_INVENTORY_UNPARSED_FAILED': 'True',
        'ANSIBLE_PARAMIKO_RECORD_HOST_KEYS': 'False',
        'ANSIBLE_RETRY_FILES_ENABLED': 'False',
        'ANSIBLE_SSH_CONTROL_PATH_DIR': str(data / 'cp'),
        'JOB_ID': '1',
        'AWX_PRIVATE_DATA_DIR': str(data),
        # The project sync's folders first, then the project's ansible.cfg value (read by AWX, relative to the
        # job's working directory, project/), then Ansible's defaults.
        'ANSIBLE_COLLECTIONS_PATH': ':'.join([
            str(data / 'requirements_collections'), 'collections:~/.ansible/collections:/usr/share/ansible/collections',
            '~/.ansible/collections', '/usr/share/ansible/collections']),
        'ANSIBLE_ROLES_PATH': ':'.join([
            str(data / 'requirements_roles'), 'roles',
            '~/.ansible/roles', '/usr/share/ansible/roles', '/etc/ansible/roles']),
    }


def run_job(data, ident, extravars, playbook='playbooks/netns-lab.yml'):
    """One job: env/ written as AWX writes it, then ansible_runner.run on the private data dir."""
    env = data / 'env'
    env.mkdir(exist_ok=True)
    (env / 'extravars').write_text(json.dumps(dict(extravars, awx_job_id=ident, awx_job_template_name='netns lab')))
    (env / 'envvars').write_text(json.dumps(awx_envvars(data)))
    (env / 'ssh_key').write_text(KEY.read_text())
    started = time.monotonic()
    runner = ansible_runner.run(private_data_dir=str(data), playbook=playbook, ident=str(ident),
                                quiet=True, timeout=900)
    runner.seconds = time.monotonic() - started
    runner.event_list = list(runner.events)
    return runner


def task_results(runner, task):
    """{host: the result of `task`} from the job's events (runner_on_ok, runner_on_failed...)."""
    return {event['event_data']['host']: dict(event['event_data'].get('res', {}), outcome=event['event'],
                                              task_path=event['event_data'].get('task_path', ''))
            for event in runner.event_list
            if event['event'].startswith('runner_on_') and event.get('event_data', {}).get('task') == task}


def namespaces(classroom):
    """The names of the machine's network namespaces (`ip netns list`: NAME [(id: N)])."""
    return {line.split()[0] for line in classroom.on(HOST, 'ip netns list').stdout.splitlines() if line.strip()}


def job_output(runner):
    return '\n'.join(event.get('stdout', '') for event in runner.event_list)[-6000:]


@pytest.fixture
def private_data_dir(monkeypatch):
    """A short private data dir (ssh's ControlPath sockets live in it, and a socket's path is at most 107 bytes), with
    the ansible-playbook of this checkout's .venv first on PATH, as an execution environment has its own."""
    monkeypatch.setenv('PATH', os.path.dirname(ansible('ansible-playbook')) + os.pathsep + os.environ['PATH'])
    for name in ('ANSIBLE_CONFIG', 'CKA_LAB_ROOT'):
        monkeypatch.delenv(name, raising=False)
    with tempfile.TemporaryDirectory(prefix='awx-job-') as directory:
        yield directory


@pytest.mark.machines({'netns_lab': [HOST]})
def test_the_netns_lab_built_graded_and_reset_through_ansible_runner_as_awx_runs_jobs(classroom, private_data_dir):
    data = pathlib.Path(private_data_dir)
    lay_out_project(data / 'project')
    (data / 'inventory').mkdir()
    inventory_script(data / 'inventory' / 'hosts')
    (data / 'cp').mkdir()

    built = run_job(data, 1, {})
    assert (built.status, built.rc) == ('successful', 0), job_output(built)
    stage = task_results(built, "Build the lab's stage on the machine")
    assert stage[HOST]['outcome'] == 'runner_on_ok' and stage[HOST]['changed'] is True, stage
    # The job ran the project's copy (its roles), not the checkout.
    assert stage[HOST]['task_path'].startswith(str(data / 'project' / 'roles' / 'lab') + os.sep), stage
    assert built.stats['changed'].get(HOST), built.stats
    assert not built.stats['failures'] and not built.stats['dark'], built.stats
    assert {'red', 'blue'} <= namespaces(classroom)

    # Graded by playbooks/check.yml, the grader logging in with the credential's key in ssh-agent (no key file in
    # the inventory), its reports written where the job can keep them (AWX: a path exposed to jobs).
    reports = data / 'reports'
    graded = run_job(data, 2, {'check_labs': 'netns_lab', 'check_reports_dir': str(reports)}, 'playbooks/check.yml')
    assert (graded.status, graded.rc) == ('successful', 0), job_output(graded)
    # Skipped cases (a kind the lab does not declare: test_vxlan[NOTSET]) are not graded.
    cases = [case for case in ET.parse(reports / 'checks.xml').iter('testcase') if case.find('skipped') is None]
    names = [case.get('name') for case in cases]
    assert names and all('[%s: netns_lab: ' % HOST in name for name in names), names
    assert not [name for name, case in zip(names, cases) if case.find('failure') is not None
                or case.find('error') is not None]

    reset = run_job(data, 3, {'netns_lab_state': 'absent'})
    assert (reset.status, reset.rc) == ('successful', 0), job_output(reset)
    removed = task_results(reset, 'Remove what the lab made, as recorded on the machine')
    assert removed[HOST]['outcome'] == 'runner_on_ok' and removed[HOST]['changed'] is True, removed
    assert not task_results(reset, "Build the lab's stage on the machine").get(HOST, {}).get('changed')
    assert namespaces(classroom) == set()
    print('ansible-runner jobs on %s: build %.1f s, grading %.1f s (%d checks), reset %.1f s'
          % (HOST, built.seconds, graded.seconds, len(cases), reset.seconds))
