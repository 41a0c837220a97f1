# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The kubeadm configuration the kubeadm_cluster role renders, checked against kubeadm.k8s.io/v1beta4."""

import ipaddress

import pytest

import kubeadm_schema
from conftest import documents

KINDS = ['InitConfiguration', 'ClusterConfiguration', 'KubeProxyConfiguration', 'KubeletConfiguration']


def by_kind(text):
    return {doc['kind']: doc for doc in documents(text)}


@pytest.mark.parametrize('case', ['kubeadm-config', 'kubeadm-config-extras', 'kubeadm-join'])
def test_every_document_has_only_fields_its_api_version_allows(rendered, case):
    for doc in documents(rendered[case]):
        assert kubeadm_schema.validate(doc) == []


def test_init_config_holds_the_four_documents_in_order(rendered):
    assert [doc['kind'] for doc in documents(rendered['kubeadm-config'])] == KINDS
    assert {doc['apiVersion'] for doc in documents(rendered['kubeadm-config'])
            if doc['kind'] in kubeadm_schema.KUBEADM_V1BETA4_KINDS} == {'kubeadm.k8s.io/v1beta4'}


def test_cluster_uses_the_lesson_networks(rendered):
    networking = by_kind(rendered['kubeadm-config'])['ClusterConfiguration']['networking']
    assert networking == {'podSubnet': '10.244.0.0/16', 'serviceSubnet': '10.96.0.0/12', 'dnsDomain': 'cluster.local'}
    assert not ipaddress.ip_network(networking['podSubnet']).overlaps(ipaddress.ip_network(networking['serviceSubnet']))


def test_kube_proxy_runs_in_iptables_mode_on_the_pod_network(rendered):
    proxy = by_kind(rendered['kubeadm-config'])['KubeProxyConfiguration']
    assert proxy['mode'] == 'iptables'
    assert proxy['clusterCIDR'] == '10.244.0.0/16'


def test_kubelet_uses_the_systemd_cgroup_driver_like_containerd(rendered):
    assert by_kind(rendered['kubeadm-config'])['KubeletConfiguration']['cgroupDriver'] == 'systemd'


def test_control_plane_advertises_its_node_address_with_containerd(rendered):
    docs = by_kind(rendered['kubeadm-config'])
    init, cluster = docs['InitConfiguration'], docs['ClusterConfiguration']
    assert init['localAPIEndpoint'] == {'advertiseAddress': '10.213.0.20', 'bindPort': 6443}
    assert init['nodeRegistration']['criSocket'] == 'unix:///var/run/containerd/containerd.sock'
    assert init['nodeRegistration']['kubeletExtraArgs'] == [{'name': 'node-ip', 'value': '10.213.0.20'}]
    assert 'ignorePreflightErrors' not in init['nodeRegistration']
    assert cluster['kubernetesVersion'] == 'v1.34.7'
    assert cluster['controlPlaneEndpoint'] == '10.213.0.20:6443'


def test_extras_are_merged_into_their_documents(rendered):
    docs = by_kind(rendered['kubeadm-config-extras'])
    assert docs['KubeletConfiguration'] == {
        'apiVersion': 'kubelet.config.k8s.io/v1beta1', 'kind': 'KubeletConfiguration',
        'cgroupDriver': 'systemd', 'failSwapOn': False, 'failCgroupV1': False}
    assert docs['KubeProxyConfiguration']['conntrack'] == {'maxPerCore': 0}
    assert docs['KubeProxyConfiguration']['mode'] == 'iptables'
    assert docs['InitConfiguration']['nodeRegistration']['ignorePreflightErrors'] == ['SystemVerification', 'Swap']
    assert docs['ClusterConfiguration']['controlPlaneEndpoint'] == 'cp.lab.example:6443'


def test_join_config_carries_the_token_and_the_ca_pin(rendered):
    (join,) = documents(rendered['kubeadm-join'])
    assert join['kind'] == 'JoinConfiguration'
    assert join['discovery'] == {'bootstrapToken': {
        'apiServerEndpoint': '10.213.0.20:6443', 'token': 'abcdef.0123456789abcdef',
        'caCertHashes': ['sha256:' + '0' * 64]}}
    assert join['nodeRegistration']['kubeletExtraArgs'] == [{'name': 'node-ip', 'value': '10.213.0.21'}]


# The schema itself must be able to fail, or the tests above prove nothing.
@pytest.mark.parametrize('document, problem', [
    ({'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'InitConfiguration',
      'nodeRegistration': {'kubeletExtraArgs': {'node-ip': '10.0.0.1'}}},
     'InitConfiguration.nodeRegistration.kubeletExtraArgs: want a list'),
    ({'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'ClusterConfiguration', 'podSubnet': '10.244.0.0/16'},
     'ClusterConfiguration.podSubnet: unknown field'),
    ({'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'InitConfiguration', 'localAPIEndpoint': {'bindPort': '6443'}},
     'InitConfiguration.localAPIEndpoint.bindPort: want an integer'),
    ({'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'ClusterConfiguration', 'kubernetesVersion': '1.34'},
     'ClusterConfiguration.kubernetesVersion: want v1.<minor>.<patch>'),
    ({'apiVersion': 'kubeadm.k8s.io/v1beta3', 'kind': 'InitConfiguration'}, 'not a kubeadm configuration document'),
    ({'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'JoinConfiguration',
      'discovery': {'bootstrapToken': {'caCertHashes': 'sha256:00'}}},
     'JoinConfiguration.discovery.bootstrapToken.caCertHashes: want a list'),
], ids=['v1beta3 map of kubelet args', 'field in the wrong place', 'port as a string', 'short version',
        'old api version', 'ca hash not a list'])
def test_schema_rejects_what_kubeadm_would_refuse(document, problem):
    errors = kubeadm_schema.validate(document)
    assert any(problem in error for error in errors), errors
