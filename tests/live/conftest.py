# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Grading and classroom cases on real local lab machines, run as a user runs the project.

Each test gets lab machines of its own names (``live-a``, ``live-b`` on the
internal Podman network, addresses 10.213.0.60-61), created fresh for it
through playbooks/machines.yml with an inventory written here, and removed
after it. The project's playbooks are run with ``ansible-playbook`` from the
checkout, the student's typing with ``ssh`` to the machine. Nothing here runs
on this computer's own network: every command that changes a network runs
inside a lab machine. Skipped when not root or when Podman is missing.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = ROOT / '.lab' / 'id_ed25519'
MACHINES = {'live-a': '10.213.0.60', 'live-b': '10.213.0.61', 'live-c': '10.213.0.62'}
SSH = ['ssh', '-i', str(KEY), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
       '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10']
BY_HAND = ROOT / 'molecule' / 'netns_lab' / 'files' / 'lesson-202-by-hand.sh'


def ansible(name):
    """The ansible-playbook beside this Python (the checkout's .venv), else the one on PATH."""
    here = pathlib.Path(os.path.realpath(os.sys.executable)).parent / name
    beside = pathlib.Path(os.sys.executable).parent / name
    for path in (beside, here):
        if path.exists():
            return str(path)
    return shutil.which(name) or name


class Run:
    """A finished command: rc, and its output with whitespace folded (messages wrap in Ansible's output)."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.text = re.sub(r'\s+', ' ', proc.stdout + ' ' + proc.stderr)

    def __repr__(self):
        return 'rc=%s\n%s' % (self.rc, (self.stdout + self.stderr)[-6000:])


class Classroom:
    """Lab machines of a test, an inventory naming them, and ways to act on them."""

    def __init__(self, directory, groups):
        self.directory = directory
        self.inventory = directory / 'inventory'
        self.groups = groups
        self.write_inventory()

    def write_inventory(self, **host_vars):
        """The inventory: `groups` ({lab group: [hosts]}) under local_lab_machines; `host_vars` per host."""
        (self.inventory / 'group_vars').mkdir(parents=True, exist_ok=True)
        hosts = {}
        for group, members in self.groups.items():
            hosts[group] = {'hosts': {h: dict({'ansible_host': MACHINES[h]}, **host_vars.get(h, {}))
                                      for h in members}}
        (self.inventory / 'hosts.yml').write_text(yaml.safe_dump(
            {'all': {'children': {'local_lab_machines': {'children': hosts}}}}, sort_keys=False))
        (self.inventory / 'group_vars' / 'local_lab_machines.yml').write_text(yaml.safe_dump({
            'ansible_user': 'root', 'ansible_python_interpreter': '/usr/bin/python3',
            'ansible_ssh_private_key_file': str(KEY),
            'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR',
        }))

    @property
    def hosts(self):
        return sorted({h for members in self.groups.values() for h in members})

    def playbook(self, name, *args, cwd=ROOT, env=None, timeout=900):
        """ansible-playbook -i THIS-INVENTORY playbooks/NAME ARGS, from the checkout, as a user runs it."""
        environ = dict(os.environ, ANSIBLE_FORCE_COLOR='false', ANSIBLE_NOCOLOR='1', PY_COLORS='0')
        environ.pop('CKA_LAB_ROOT', None)
        environ.pop('ANSIBLE_CONFIG', None)
        environ.update(env or {})
        command = [ansible('ansible-playbook'), '-i', str(self.inventory), str(ROOT / 'playbooks' / name), *args]
        return Run(subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout))

    def on(self, host, script, user='root', timeout=120):
        """A shell script run on a machine as a student types it (over SSH)."""
        return Run(subprocess.run(SSH + ['%s@%s' % (user, MACHINES[host]), 'bash', '-s'], input=script,
                                  capture_output=True, text=True, timeout=timeout))

    def type_lesson(self, host, omit=''):
        """Lesson 202 as the course's notes type it (molecule/netns_lab/files/lesson-202-by-hand.sh)."""
        result = self.on(host, 'export OMIT=%s\n%s' % (omit, BY_HAND.read_text()))
        assert result.rc == 0, result
        return result

    @property
    def reports(self):
        """This test's reports folder (check_reports_dir): other runs' reports are not read as its own."""
        return self.directory / 'reports'

    def grade(self, *args, **kwargs):
        """playbooks/check.yml of the netns lab, and the report's {check id: failure message or None}."""
        report = self.reports / 'checks.xml'
        run = self.playbook('check.yml', '-e', 'check_labs=netns_lab', '-e', 'check_reports_dir=%s' % self.reports,
                            *args, **kwargs)
        run.checks = {}
        if report.exists():
            for case in ET.parse(report).iter('testcase'):
                failure = case.find('failure')
                if case.find('skipped') is None:
                    run.checks[case.get('name')] = None if failure is None else failure.get('message', '')
        return run

    def nat(self, host):
        """The -A lines of the machine's iptables nat table."""
        return [line for line in self.on(host, 'iptables -t nat -S').stdout.splitlines() if line.startswith('-A')]


def failures(run):
    return {name: message for name, message in run.checks.items() if message is not None}


@pytest.fixture
def classroom(tmp_path, request):
    """Fresh lab machines for one test: `@pytest.mark.machines({'netns_lab': ['live-a']})` (the default)."""
    if os.geteuid() != 0:
        pytest.skip('the live tests run lab machines (Podman containers), which needs root')
    if shutil.which('podman') is None:
        pytest.skip('the live tests need Podman for their lab machines')
    marker = request.node.get_closest_marker('machines')
    room = Classroom(tmp_path, marker.args[0] if marker else {'netns_lab': ['live-a']})
    for host in room.hosts:
        subprocess.run(['podman', 'rm', '-f', host], capture_output=True)
    created = room.playbook('machines.yml')
    assert created.rc == 0, created
    yield room
    room.write_inventory()
    for host in room.hosts:
        subprocess.run(['podman', 'unpause', host], capture_output=True)
    removed = room.playbook('machines.yml', '-e', 'lab_machines_state=absent')
    assert removed.rc == 0, removed


def pytest_configure(config):
    config.addinivalue_line('markers', 'machines(groups): the lab groups of the test\'s machines, {group: [hosts]}')
    config.addinivalue_line('markers', 'cluster: kubeadm clusters on local lab machines (the offline bundle; '
                                       'scripts/test runs them after Molecule\'s weave_lab)')


def report_json(path):
    return json.loads(pathlib.Path(path).read_text())
