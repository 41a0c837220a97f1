# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The classroom inventory plugin (cka.lab.classroom): N students, machines and addresses derived, and the
rehearsal inventory as ansible-inventory reads it."""

import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from ansible_collections.cka.lab.plugins.inventory.classroom import plan

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE = yaml.safe_load((ROOT / 'inventory' / 'local' / 'hosts.yml').read_text())
LABS = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / 'labs').glob('*.yml')}


def test_each_student_gets_their_own_copy_of_each_labs_machines_in_order():
    machines, error = plan(2, ['netns_lab', 'cni_lab'], TEMPLATE, LABS)

    assert error is None
    assert [(host, student, vars_['ansible_host']) for host, student, _, vars_ in machines] == [
        ('student01-netns-host', 'student01', '10.213.0.100'),
        ('student01-cni-controlplane', 'student01', '10.213.0.101'),
        ('student01-cni-node01', 'student01', '10.213.0.102'),
        ('student01-cni-node02', 'student01', '10.213.0.103'),
        ('student02-netns-host', 'student02', '10.213.0.104'),
        ('student02-cni-controlplane', 'student02', '10.213.0.105'),
        ('student02-cni-node01', 'student02', '10.213.0.106'),
        ('student02-cni-node02', 'student02', '10.213.0.107'),
    ]
    groups = {host: g for host, _, g, _ in machines}
    assert groups['student02-netns-host'] == ['netns_lab'] and groups['student02-cni-node01'] == ['cni_lab']


def test_a_labs_variables_that_name_machines_name_the_students_own():
    machines, _ = plan(2, ['cni_lab'], TEMPLATE, LABS)
    node = {host: vars_ for host, _, _, vars_ in machines}['student02-cni-node01']

    assert [n['host'] for n in node['cni_lab_nodes']] == [
        'student02-cni-controlplane', 'student02-cni-node01', 'student02-cni-node02']
    assert {p['node'] for p in node['cni_lab_pods']} == {'student02-cni-node01', 'student02-cni-node02'}
    assert [n['pod_subnet'] for n in node['cni_lab_nodes']] == ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24']


def test_each_student_gets_a_cluster_of_their_own_in_the_weave_lab():
    machines, error = plan(2, ['weave_lab'], TEMPLATE, LABS, first_address=170)
    by_host = {host: (student, groups, vars_) for host, student, groups, vars_ in machines}

    assert error is None
    assert list(by_host) == ['student01-controlplane', 'student01-node01', 'student01-node02',
                             'student02-controlplane', 'student02-node01', 'student02-node02']
    student, groups, node = by_host['student02-node01']
    assert student == 'student02' and groups == ['kube_workers', 'weave_lab']
    assert by_host['student02-controlplane'][1] == ['kube_control_plane', 'weave_lab']
    assert node['weave_lab_nodes'] == ['student02-controlplane', 'student02-node01', 'student02-node02']
    assert node['ansible_host'] == '10.213.0.174'
    assert by_host['student01-node02'][2]['weave_lab_nodes'][0] == 'student01-controlplane'


def test_a_lab_whose_nodes_are_not_an_empty_list_gets_no_list_of_nodes():
    labs = dict(LABS, weave_lab=dict(LABS['weave_lab'], variables={'weave_lab_nodes': ['controlplane']}))
    machines, _ = plan(1, ['weave_lab'], TEMPLATE, labs)
    # A value naming the template's machines is renamed, as any lab variable that names machines.
    assert {tuple(v['weave_lab_nodes']) for _, _, _, v in machines} == {('student01-controlplane',)}
    labs = dict(LABS, netns_lab=dict(LABS['netns_lab'], variables={'netns_lab_nodes': 'x'}))
    assert all('netns_lab_nodes' not in v for _, _, _, v in plan(1, ['netns_lab'], TEMPLATE, labs)[0])


def test_thirty_students_are_named_with_two_digits_and_a_hundred_with_three():
    assert plan(30, ['netns_lab'], TEMPLATE, LABS, first_address=20)[0][-1][:2] == ('student30-netns-host',
                                                                                   'student30')
    assert plan(100, ['netns_lab'], TEMPLATE, LABS, network='10.214.0.0/16')[0][0][1] == 'student001'


@pytest.mark.parametrize('args, error', [
    ((0, ['netns_lab']), 'students: 0 is not usable; allowed: a whole number 1-200'),
    ((True, ['netns_lab']), 'students: True is not usable'),
    ((2, ['nope_lab']), 'labs: nope_lab is not a lab of labs/; allowed: cni_lab,'),
    ((60, ['cni_lab']), 'the classroom needs 180 addresses from .100 of 10.213.0.0/24 and they do not fit'),
])
def test_a_room_that_cannot_be_made_is_refused_saying_why(args, error):
    machines, found = plan(*args, TEMPLATE, LABS)
    assert machines == [] and found.startswith(error), found


def test_the_rehearsal_inventory_is_a_room_ansible_reads():
    out = subprocess.run([str(pathlib.Path(sys.executable).parent / 'ansible-inventory'), '-i',
                          str(ROOT / 'inventory' / 'rehearsal'), '--list'], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    room = json.loads(out)
    students = room['students']['children']
    assert students == ['student01', 'student02', 'student03']
    assert room['student02']['hosts'] == ['student02-netns-host', 'student02-cni-controlplane',
                                          'student02-cni-node01', 'student02-cni-node02']
    assert len(room['local_lab_machines']['hosts']) == 12
    assert room['_meta']['hostvars']['student03-cni-node02']['ansible_ssh_private_key_file'].endswith(
        '/.lab/id_ed25519')


def test_every_machine_of_the_classroom_example_belongs_to_one_student():
    listed = json.loads(subprocess.run([str(pathlib.Path(sys.executable).parent / 'ansible-inventory'), '-i',
                                        str(ROOT / 'inventory' / 'classroom.example'), '--list'], cwd=ROOT,
                                       capture_output=True, text=True, check=True).stdout)
    students = listed['students']['children']
    owners = {}
    for student in students:
        for host in listed[student].get('hosts', []):
            owners.setdefault(host, []).append(student)
    machines = {h for group in ('netns_lab', 'routing_lab', 'dns_lab', 'docker_lab', 'cni_lab',
                                'kube_control_plane', 'kube_workers') for h in listed.get(group, {}).get('hosts', [])}
    assert sorted(owners) == sorted(machines)
    assert all(len(found) == 1 for found in owners.values()), owners
    # Each student's cluster is theirs: weave_lab_nodes (labs/weave_lab.yml) on each of their nodes lists exactly
    # their own machines of the weave lab, one of them a control plane.
    weave = set(listed['kube_control_plane']['hosts'] + listed['kube_workers']['hosts'])
    assert weave
    for host in weave:
        nodes = listed['_meta']['hostvars'][host]['weave_lab_nodes']
        assert sorted(nodes) == sorted(h for h in weave if owners[h] == owners[host]), host
        assert len([n for n in nodes if n in listed['kube_control_plane']['hosts']]) == 1, host
    assert 'weave_lab_nodes' in yaml.safe_load((ROOT / 'labs' / 'weave_lab.yml').read_text())['variables']


def test_the_weave_rehearsal_inventory_is_two_clusters_ansible_reads():
    out = subprocess.run([str(pathlib.Path(sys.executable).parent / 'ansible-inventory'), '-i',
                          str(ROOT / 'inventory' / 'rehearsal-weave'), '--list'], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    room = json.loads(out)
    assert room['kube_control_plane']['hosts'] == ['student01-controlplane', 'student02-controlplane']
    node = room['_meta']['hostvars']['student02-node02']
    # ansible-inventory shows an inventory plugin's strings as {'__ansible_unsafe': ...}: never templated.
    assert [plain(name) for name in node['weave_lab_nodes']] == [
        'student02-controlplane', 'student02-node01', 'student02-node02']
    assert plain(node['ansible_host']) == '10.213.0.175' and node['k8s_node_install_source'] == 'bundle'


def plain(value):
    return value.get('__ansible_unsafe') if isinstance(value, dict) else value
