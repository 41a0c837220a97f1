# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Bad input to lessons 205-214 (labs/cni_lab.yml) is refused before anything on a node changes.

As in test_lab_bad_input.py: playbooks/cni-lab.yml runs as a user would, the
bad value typed as `-e`, against three nodes of group cni_lab that are not
local lab machines (podman is a test double that fails) and whose address
nothing listens on. A run that stops in the validation task with a message
naming the variable or the declaration's path, and never reached for a node,
changed nothing. The control at the end sees the nodes reached for.
"""

import json
import re

import pytest

from playbook_run import UNREACHABLE_HOST, run_playbook

PLAYBOOK = 'playbooks/cni-lab.yml'
HOSTS = ['cni-controlplane', 'cni-node01', 'cni-node02']
INVENTORY = {'all': {'children': {'cni_lab': {'hosts': {host: dict(UNREACHABLE_HOST) for host in HOSTS}}}}}
# Each node's address given in the lab's data (all three hosts are 127.0.0.1 in the inventory).
NODES = [{'host': host, 'name': name, 'pod_subnet': subnet, 'address': address}
         for host, name, subnet, address in zip(HOSTS, ['controlplane', 'node01', 'node02'],
                                                 ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24'],
                                                 ['192.0.2.10', '192.0.2.11', '192.0.2.12'])]
PODS = [{'name': 'pod-a', 'node': 'cni-node01'}, {'name': 'pod-c', 'node': 'cni-node02', 'host_port': 30080}]

VALIDATE_TASK = 'Read and validate the declaration of lab cni_lab'
VALIDATION_TASKS = [re.escape("Validating arguments against arg spec 'main'") + '.*', re.escape(VALIDATE_TASK)]
# Every playbook's first check (playbooks/preflight.yml): that Ansible read the checkout's ansible.cfg.
VALIDATION_TASKS.append(re.escape("Require this checkout's ansible.cfg"))


def is_validation_task(name):
    return any(re.fullmatch(pattern, name) for pattern in VALIDATION_TASKS)


def nodes(**changes):
    """-e cni_lab_nodes as JSON: the three nodes, with `changes` ({index: {key: value}}) applied."""
    listed = [dict(node) for node in NODES]
    for index, change in changes.items():
        listed[int(index.lstrip('n'))].update(change)
    return json.dumps({'cni_lab_nodes': listed})


def pods(*extra):
    return json.dumps({'cni_lab_pods': PODS + list(extra)})


@pytest.fixture
def run_user_playbook(tmp_path, ansible_env, podman_double):
    """playbooks/cni-lab.yml with the three nodes' data, then each `extra` typed as one -e."""
    _, calls = podman_double
    return lambda *extra: run_playbook(PLAYBOOK, INVENTORY, tmp_path, ansible_env, calls, nodes(), *extra)


BAD_INPUT = [
    pytest.param([nodes(n1={'pod_subnet': '10.245.1.0/24'})],
                 [("cni_lab_nodes[1].pod_subnet: '10.245.1.0/24' is not inside cni_lab_pod_subnet (10.244.0.0/16)",
                   'allowed: a network inside it')],
                 id='a node slice outside the pod range'),
    pytest.param([nodes(n2={'pod_subnet': '10.244.1.128/25'})],
                 [('cni_lab_nodes[2].pod_subnet: 10.244.1.128/25 overlaps cni_lab_nodes[1].pod_subnet '
                   '(10.244.1.0/24)', 'allowed: separate networks, one each')],
                 id='overlapping slices'),
    pytest.param([nodes(n2={'pod_subnet': '10.244.2.1/24'})],
                 [("cni_lab_nodes[2].pod_subnet: '10.244.2.1/24'", 'IPv4 network in CIDR form with its host bits zero')],
                 id='a slice with host bits set'),
    pytest.param(['cni_lab_mode=tunnel'], [("cni_lab_mode: 'tunnel' is not a mode of the lab",
                                            'allowed: routes (lesson 211), overlay')],
                 id='an unknown mode'),
    pytest.param([pods({'name': 'pod-a', 'node': 'cni-node02'})],
                 [("cni_lab_pods[2].name: 'pod-a' is also cni_lab_pods[0].name", 'allowed: each once')],
                 id='two pods with one name'),
    pytest.param([pods({'name': 'pod-x', 'node': 'node09'})],
                 [("cni_lab_pods[2].node: 'node09' is not in cni_lab_nodes[*].host",
                   'allowed: cni-controlplane, cni-node01')],
                 id='a pod on no node'),
    pytest.param(['{"cni_lab_plugins": ["bridge", "host-local", "loopback"]}'],
                 [('runs the plugin portmap, which the lab does not install in /opt/cni/bin',
                   'installed there: bridge, host-local, loopback')],
                 id='a plugin the network runs is not installed', marks=pytest.mark.nodes('cni-node01', 'cni-node02')),
    pytest.param(['{"cni_lab_plugins": ["bridge", "host-local", "portmap", "loopback", "flannel"]}'],
                 [("cni_lab_plugins[4]: 'flannel' is not a plugin of containernetworking-plugins", 'allowed: bridge')],
                 id='a plugin Debian does not ship'),
    pytest.param([pods({'name': 'pod_b!', 'node': 'cni-node01'})],
                 [("cni_lab_pods[2].name: 'pod_b!' is not a namespace name", 'namespace names are')],
                 id='a pod name that is no namespace name'),
    pytest.param(['cni_lab_vni=0', 'cni_lab_mode=overlay'], [('machine.vxlans[0].vni', '0')], id='VNI 0'),
    pytest.param(['cni_lab_vxlan=vxlan-much-too-long', 'cni_lab_mode=overlay'],
                 [("'vxlan-much-too-long'", 'Linux interface names are 1-15 characters')],
                 id='an overlay device name too long'),
    pytest.param(['{"cni_lab_pods": [{"name": "pod-a", "node": "cni-node01", "host_port": 70000}]}'],
                 [('cni_lab_pods[0].host_port: 70000 is not a port', 'allowed: a whole number 1-65535')],
                 id='a published port out of range'),
]


@pytest.mark.parametrize('extra, named', BAD_INPUT)
def test_bad_input_is_refused_before_anything_changes(request, run_user_playbook, extra, named):
    """Refused on the nodes whose declaration it spoils (marked `nodes`, else all), and no node reached."""
    marker = request.node.get_closest_marker('nodes')
    run = run_user_playbook(*extra)

    for host in marker.args if marker else HOSTS:
        run.assert_refused_in_validation(host, VALIDATE_TASK, named, is_validation_task)
    assert not run.reached_for_a_host(), run.explain()


@pytest.mark.parametrize('extra', [
    pytest.param([], id='routes mode'),
    pytest.param(['cni_lab_mode=overlay'], id='overlay mode'),
    pytest.param(['cni_lab_state=absent'], id='a reset'),
])
def test_valid_input_gets_past_validation_and_reaches_for_the_nodes(run_user_playbook, extra):
    """The control: the same harness sees the nodes reached for, so the tests above can fail."""
    run = run_user_playbook(*extra)
    explain = run.explain()

    for host in HOSTS:
        assert run.failed_tasks(host) == [], explain
        assert VALIDATE_TASK in run.tasks_run(host), explain
    assert run.reached_for_a_host(), explain
    assert run.podman_calls == [], explain
