# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Unit tests of the cka.lab filters corefile_edit and k8s_nodes_not_ready."""

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.cka.lab.plugins.filter.corefile_edit import MANAGED_MARK, FilterModule as CorefileFilters
from ansible_collections.cka.lab.plugins.filter.corefile_edit import corefile_edit
from ansible_collections.cka.lab.plugins.filter.k8s_nodes_not_ready import FilterModule as NodeFilters
from ansible_collections.cka.lab.plugins.filter.k8s_nodes_not_ready import k8s_nodes_not_ready
from conftest import KUBEADM_COREFILE

HOSTS = {'node01': '10.213.0.21', 'controlplane': '10.213.0.20'}

# kubeadm 1.30/1.31 wrote a plain `cache 30`.
COREFILE_1_31 = KUBEADM_COREFILE.replace(
    '    cache 30 {\n       disable success cluster.local\n       disable denial cluster.local\n    }\n', '    cache 30\n')


def test_filters_are_registered():
    assert CorefileFilters().filters() == {'corefile_edit': corefile_edit}
    assert NodeFilters().filters() == {'k8s_nodes_not_ready': k8s_nodes_not_ready}


def test_hosts_block_goes_before_forward_and_falls_through():
    lines = corefile_edit(KUBEADM_COREFILE, hosts=HOSTS).split('\n')
    start = lines.index('    hosts {')
    assert lines[start:start + 6] == ['    hosts {', '       ' + MANAGED_MARK, '       10.213.0.20 controlplane',
                                      '       10.213.0.21 node01', '       fallthrough', '    }']
    assert lines[start + 6] == '    forward . /etc/resolv.conf {'


@pytest.mark.parametrize('corefile', [KUBEADM_COREFILE, COREFILE_1_31], ids=['kubeadm 1.32+', 'kubeadm 1.30-1.31'])
def test_edit_is_idempotent_and_reversible(corefile):
    edited = corefile_edit(corefile, hosts=HOSTS, forward=['10.213.0.1'])
    assert corefile_edit(edited, hosts=HOSTS, forward=['10.213.0.1']) == edited
    assert corefile_edit(edited, forward=['/etc/resolv.conf']) == corefile


def test_nothing_declared_changes_nothing():
    assert corefile_edit(KUBEADM_COREFILE) == KUBEADM_COREFILE


def test_changed_hosts_replace_the_managed_block():
    edited = corefile_edit(corefile_edit(KUBEADM_COREFILE, hosts=HOSTS), hosts={'node02': '10.213.0.22'})
    assert '10.213.0.22 node02' in edited
    assert 'controlplane' not in edited
    assert edited.count('hosts {') == 1


def test_forward_keeps_its_options():
    edited = corefile_edit(KUBEADM_COREFILE, forward=['8.8.8.8', '1.1.1.1'])
    assert '    forward . 8.8.8.8 1.1.1.1 {\n       max_concurrent 1000\n    }\n' in edited


def test_forward_without_options_and_forward_missing():
    plain = KUBEADM_COREFILE.replace('forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }',
                                     'forward . /etc/resolv.conf')
    assert '    forward . 10.0.0.1\n    cache 30 {' in corefile_edit(plain, forward=['10.0.0.1'])
    missing = plain.replace('    forward . /etc/resolv.conf\n', '')
    assert corefile_edit(missing, forward=['10.0.0.1']).endswith('    loadbalance\n    forward . 10.0.0.1\n}\n')


def test_only_the_named_server_block_changes():
    other = 'lab.local:53 {\n    hosts {\n       192.168.1.10 web\n    }\n}\n'
    edited = corefile_edit(other + KUBEADM_COREFILE, hosts=HOSTS)
    assert edited.startswith(other)
    with pytest.raises(AnsibleFilterError, match='already has a hosts directive'):
        corefile_edit(other + KUBEADM_COREFILE, hosts=HOSTS, server='lab.local:53')


def test_an_unmanaged_hosts_block_is_kept_when_nothing_is_declared():
    own = KUBEADM_COREFILE.replace('    reload\n', '    reload\n    hosts /etc/coredns/lab.hosts\n')
    assert corefile_edit(own) == own
    with pytest.raises(AnsibleFilterError, match='Ansible did not write'):
        corefile_edit(own, hosts=HOSTS)


def test_braces_in_comments_do_not_count():
    commented = KUBEADM_COREFILE.replace('    ready\n', '    ready # { not a block\n')
    assert corefile_edit(commented, hosts=HOSTS).count('hosts {') == 1


@pytest.mark.parametrize('kwargs, message', [
    ({'hosts': {'bad name': '10.0.0.1'}}, 'is not a DNS name'),
    ({'hosts': {'node01': 'ten'}}, 'is not an IP address'),
    ({'forward': ['8.8.8.8 {']}, 'is not an upstream'),
    ({'server': 'example.org:53'}, 'has no server block'),
])
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        corefile_edit(KUBEADM_COREFILE, **kwargs)


def test_unbalanced_corefile_is_refused():
    with pytest.raises(AnsibleFilterError, match='not closed'):
        corefile_edit(KUBEADM_COREFILE.rstrip('}\n'), hosts=HOSTS)
    with pytest.raises(AnsibleFilterError, match='must be the Corefile text'):
        corefile_edit(None)


def node(name, status):
    conditions = [{'type': 'MemoryPressure', 'status': 'False'}]
    if status is not None:
        conditions.append({'type': 'Ready', 'status': status})
    return {'metadata': {'name': name}, 'status': {'conditions': conditions}}


NODES = {'apiVersion': 'v1', 'kind': 'List',
         'items': [node('controlplane', 'True'), node('node01', 'False'), node('node02', None)]}


def test_nodes_not_ready_lists_every_node_that_is_not_ready():
    assert k8s_nodes_not_ready(NODES) == ['node01', 'node02']
    assert k8s_nodes_not_ready(json.dumps(NODES)) == ['node01', 'node02']


def test_expected_nodes_that_did_not_register_count_as_not_ready():
    assert k8s_nodes_not_ready(NODES, ['controlplane', 'node03']) == ['node03']
    assert k8s_nodes_not_ready(NODES, ['controlplane']) == []


def test_all_ready_is_empty():
    ready = {'items': [node('controlplane', 'True'), node('node01', 'True')]}
    assert k8s_nodes_not_ready(ready) == []
    assert k8s_nodes_not_ready({'items': []}, ['node01']) == ['node01']


@pytest.mark.parametrize('value', ['not json', {'kind': 'List'}, ['node01']])
def test_not_a_node_list_is_refused(value):
    with pytest.raises(AnsibleFilterError):
        k8s_nodes_not_ready(value)
