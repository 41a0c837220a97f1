# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A classroom of kubeadm clusters in one inventory: inventory/rehearsal-weave's two students, each with their own
controlplane, node01 and node02 (cka.lab.classroom, labs/weave_lab.yml's weave_lab_nodes), built, graded and one of
them reset, as an instructor does.

Six local lab machines with the whole weave lab (about 10 GB of memory, 94 of root's 128 inotify instances):
marked `cluster`, run by scripts/test after Molecule's weave_lab scenario has built or found the offline bundle
(`pytest tests/live -m cluster`). The tests of this module run in order on one room.
"""

import csv
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, SSH, Run, ansible

pytestmark = pytest.mark.cluster

ROOM = ROOT / 'inventory' / 'rehearsal-weave'
# The room's addresses: .170-.175 of the lab machines' network (its first_address).
FIRST_ADDRESS = 170
STUDENTS = {
    'student01': ['student01-controlplane', 'student01-node01', 'student01-node02'],
    'student02': ['student02-controlplane', 'student02-node01', 'student02-node02'],
}
ADDRESS = {host: '10.213.0.%d' % (FIRST_ADDRESS + i)
           for i, host in enumerate(h for hosts in STUDENTS.values() for h in hosts)}


class Room:
    """The shipped room's inventory, run as an instructor runs it; reports in a folder of the test's."""

    def __init__(self, directory):
        self.inventory = ROOM
        self.reports = directory / 'reports'

    def playbook(self, name, *args, timeout=3600):
        environ = dict(os.environ, ANSIBLE_FORCE_COLOR='false', ANSIBLE_NOCOLOR='1', PY_COLORS='0')
        command = [ansible('ansible-playbook'), '-i', str(self.inventory), str(ROOT / 'playbooks' / name), *args]
        return Run(subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=timeout))

    def on(self, host, command, timeout=120):
        return Run(subprocess.run(SSH + ['root@%s' % ADDRESS[host], command], capture_output=True, text=True,
                                  timeout=timeout))

    def nodes(self, student):
        """{node name: Ready condition status} of `kubectl get nodes` on the student's control plane."""
        shown = self.on(STUDENTS[student][0], 'kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o json')
        if shown.rc != 0:
            return None
        return {node['metadata']['name']: next(c['status'] for c in node['status']['conditions']
                                               if c['type'] == 'Ready')
                for node in json.loads(shown.stdout)['items']}


@pytest.fixture(scope='module')
def room(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip('the live tests run lab machines (Podman containers), which needs root')
    if shutil.which('podman') is None:
        pytest.skip('the live tests need Podman for their lab machines')
    made = Room(tmp_path_factory.mktemp('weave-classroom'))
    for host in ADDRESS:
        subprocess.run(['podman', 'rm', '-f', host], capture_output=True)
    yield made
    removed = made.playbook('machines.yml', '-e', 'lab_machines_state=absent')
    assert removed.rc == 0, removed


def test_the_main_job_builds_a_cluster_of_their_own_for_each_student(room):
    built = room.playbook('weave-lab.yml')
    assert built.rc == 0, built
    for student, hosts in STUDENTS.items():
        assert room.nodes(student) == {host: 'True' for host in hosts}, student


def test_the_grader_grades_both_clusters_in_one_scoreboard(room):
    graded = room.playbook('check.yml', '-e', 'check_labs=weave_lab', '-e', 'check_reports_dir=%s' % room.reports)
    assert graded.rc == 0, graded
    with open(room.reports / 'scoreboard.csv', encoding='utf-8') as handle:
        rows = list(csv.DictReader(handle))
    assert {row['student'] for row in rows} == set(STUDENTS)
    assert {row['machine'] for row in rows} == set(ADDRESS)
    failed = [row for row in rows if row['outcome'] not in ('passed', 'skipped')]
    assert not failed, failed
    passed = {host: len([row for row in rows if row['machine'] == host and row['outcome'] == 'passed'])
              for host in ADDRESS}
    assert min(passed.values()) >= 5, passed


def test_one_students_reset_leaves_the_other_cluster_alone(room):
    reset = room.playbook('reset.yml', '--limit', 'student02')
    assert reset.rc == 0, reset
    lines = reset.stdout.split('TASK [Say how each machine was reset]')[1].split('TASK [')[0]
    assert all(host in lines for host in STUDENTS['student02']) and 'student01' not in lines, lines
    assert room.nodes('student02') is None
    assert room.on('student02-node01', 'test -e /etc/kubernetes/kubelet.conf').rc == 1
    assert room.nodes('student01') == {host: 'True' for host in STUDENTS['student01']}
