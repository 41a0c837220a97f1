# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The lab grader's own reasoning (checks/lab/test_lab.py) against a test double of a lab machine: a check
that cannot run says why instead of blaming the lesson."""
import importlib.util
import json
import pathlib
import sys

import pytest

CHECKS = pathlib.Path(__file__).resolve().parents[2] / 'checks' / 'lab'
sys.path.insert(0, str(CHECKS))  # for `import lab_grading` from test_lab.py
_SPEC = importlib.util.spec_from_file_location('lab_checks_under_test', CHECKS / 'test_lab.py')
lab_checks = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(lab_checks)


class Result:
    def __init__(self, rc=0, stdout='', stderr=''):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr


class FakeLabMachine:
    """A test double of checks/conftest.Lab: `answers` maps a command's first words to a Result."""

    def __init__(self, answers, name='node01'):
        self.name = name
        self.answers = answers
        self.data = {'machine': {}}
        self.commands = []

    def run(self, command, *args):
        self.commands.append(command)
        for start, result in self.answers.items():
            if command.startswith(start) or ('sh -c' in command and start in command):
                return result
        return Result()

    @staticmethod
    def parse_json(out):
        return json.loads(out) if out.strip() else []

    def json(self, command):
        return self.parse_json(self.run(command).stdout)


@pytest.fixture(autouse=True)
def forget_tools():
    lab_checks.look._HAVE.clear()


def failure(function, *args):
    with pytest.raises(pytest.fail.Exception) as raised:
        function(*args)
    return raised.value.msg


def test_a_full_tmp_is_said_by_the_capture_check():
    lab = FakeLabMachine({
        'mktemp': Result(stdout='cannot=mktemp: mktemp: failed to create file via template /tmp/tmp.XXXXXXXXXX: '
                                'No space left on device\n'),
        'ip -j netns list': Result(stdout='[{"name": "pod-a"}]'),
        "ip -n pod-a -j addr show dev eth0": Result(stdout='[{"addr_info": [{"family": "inet", "local": "10.244.1.2"}]}]'),
        "ip -n pod-b -j addr show dev eth0": Result(stdout='[{"addr_info": [{"family": "inet", "local": "10.244.2.2"}]}]'),
    })
    lab.data = {'machine': {'pods': [{'name': 'pod-a'}, {'name': 'pod-b'}]}}
    spec = {'from': 'pod-a', 'to': 'pod-b', 'port': 8080, 'capture': {'interface': 'eth0', 'seen': 'udp'}}
    message = failure(lab_checks.probe_pod, lab, spec, [lab])
    assert message.startswith('this check cannot run on node01: it captures packets into a file in /tmp')
    assert 'No space left on device' in message and 'df -h /tmp' in message


def test_a_missing_tool_is_named_with_its_package():
    lab = FakeLabMachine({'command -v dig': Result(rc=1)})
    message = failure(lab_checks.probe_dns, lab, {'from': None, 'server': '10.0.0.10', 'name': 'web'})
    assert message == ('this check cannot run on node01: a DNS question needs `dig`, which is not installed (Debian '
                       'package dnsutils: `apt-get install dnsutils`) - see `command -v dig`')


def test_a_conflist_of_another_supported_cni_version_is_the_lessons():
    versions = Result(stdout='{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}')
    lab = FakeLabMachine({'echo': versions})
    conflist = {'cniVersion': '1.0.0', 'name': 'cbr0', 'plugins': [{'type': 'bridge', 'ipam': {'type': 'host-local'}}]}
    assert lab_checks.files.cni_version_refused(lab, conflist, '0.3.1') is None
    assert lab_checks.files.cni_version_refused(lab, conflist, '0.2.0') == (
        'the plugins bridge (supports 0.3.0, 0.3.1, 0.4.0, 1.0.0); host-local (supports 0.3.0, 0.3.1, 0.4.0, 1.0.0) '
        'do not support')


def test_a_probe_failing_on_a_machine_not_set_up_as_the_lessons_host_says_so():
    lab = FakeLabMachine({'sysctl -n net.bridge.bridge-nf-call-iptables': Result(stdout='1\n'),
                          'ip -j netns list': Result(stdout='[{"name": "red"}, {"name": "blue"}]'),
                          'command -v': Result()})
    lab.data = {'machine': {'sysctls': [{'name': 'net.bridge.bridge-nf-call-iptables', 'value': '0',
                                         'environment': True}]}}
    probe = {'name': 'red reaches blue', 'tcp': {'from': 'red', 'to': 'blue', 'address': '192.168.15.2',
                                                 'source': '192.168.15.1'}}
    lab.answers['timeout 10 sh -c'] = Result(stdout='192.168.15.5\n')
    message = failure(lab_checks.test_probe, lab, probe, [lab])
    assert 'arrives in namespace blue from 192.168.15.5' in message
    assert ("note: this machine is not set up as the lesson's host: net.bridge.bridge-nf-call-iptables is 1 here, "
            "0 on the lesson's host (`sysctl -w net.bridge.bridge-nf-call-iptables=0`)") in message


_CONFTEST_SPEC = importlib.util.spec_from_file_location('checks_conftest_under_test', CHECKS.parent / 'conftest.py')
checks_conftest = importlib.util.module_from_spec(_CONFTEST_SPEC)
_CONFTEST_SPEC.loader.exec_module(checks_conftest)


def machine(host, lab, peers=None):
    """A graded machine's export as checks/conftest.Lab holds it: its host, its lab and, when given, its peers."""
    return checks_conftest.Lab(dict({'host': host, 'lab': lab}, **({'peers': peers} if peers else {})), None)


def test_checks_across_machines_look_only_at_the_students_own_machines_of_the_lab():
    """A classroom grades two students' CNI labs at once: a pod-to-pod probe on student02's node finds the pod
    on student02's other node, never student01's (the lab's `peers`); a lab without `peers`, every machine."""
    s1 = ['student01-cni-node01', 'student01-cni-node02']
    s2 = ['student02-cni-node01', 'student02-cni-node02']
    room = [machine(h, 'cni_lab', s1) for h in s1] + [machine(h, 'cni_lab', s2) for h in s2]
    room += [machine('student02-lab', 'netns_lab')]

    assert [m.name for m in checks_conftest.peers_of(room[2], room)] == s2
    assert [m.name for m in checks_conftest.peers_of(room[0], room)] == s1
    unmarked = [machine(h, 'cni_lab') for h in s1 + s2]
    assert [m.name for m in checks_conftest.peers_of(unmarked[3], unmarked)] == s1 + s2


def test_a_students_cluster_is_graded_by_one_worker_and_a_lone_machine_by_itself():
    """The xdist group of a machine's checks: a lab with peers (a student's cluster) shares one, so one worker
    starts and removes that cluster's probe pods; a machine without peers is its own group."""
    nodes = ['student02-node01', 'student02-controlplane', 'student02-node02']
    groups = {checks_conftest.grading_group(machine(h, lab, nodes)) for h in nodes for lab in ('weave_lab', 'weave_net')}
    assert groups == {'student02-controlplane+student02-node01+student02-node02'}
    assert checks_conftest.grading_group(machine('student01-lab', 'netns_lab')) == 'student01-lab'
