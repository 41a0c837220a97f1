# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The Weave Net manifest the weave_net role renders: valid objects, the release's shape, the lab's range."""

import ipaddress

import kubernetes_validate
import pytest
import yaml

from conftest import ROLES, objects

# The release's objects, and the ConfigMap weave-net the role adds before the DaemonSet (Weave's launch
# script reads its UID before any peer has created it: without it every Weave pod's first start exits once).
RELEASE_OBJECTS = [('ServiceAccount', 'weave-net'), ('ClusterRole', 'weave-net'), ('ClusterRoleBinding', 'weave-net'),
                   ('Role', 'weave-net'), ('RoleBinding', 'weave-net'), ('ConfigMap', 'weave-net'),
                   ('DaemonSet', 'weave-net')]


def daemonset(text):
    return next(obj for obj in objects(text) if obj['kind'] == 'DaemonSet')


def containers(text):
    spec = daemonset(text)['spec']['template']['spec']
    return {container['name']: container for container in spec['initContainers'] + spec['containers']}


def env(container):
    return {item['name']: item.get('value') for item in container.get('env', [])}


@pytest.mark.parametrize('case', ['weave', 'weave-local'])
def test_every_object_is_valid_for_the_pinned_kubernetes(rendered, case, kubernetes_version):
    for obj in objects(rendered[case]):
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)


def test_manifest_is_a_list_of_the_release_objects(rendered):
    (document,) = list(yaml.safe_load_all(rendered['weave']))
    assert (document['apiVersion'], document['kind']) == ('v1', 'List')
    assert [(obj['kind'], obj['metadata']['name']) for obj in document['items']] == RELEASE_OBJECTS
    assert {obj['metadata'].get('namespace') for obj in document['items']
            if obj['kind'] in ('ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'DaemonSet')} == {'kube-system'}


def test_weave_allocates_from_the_pod_subnet(rendered):
    assert env(containers(rendered['weave'])['weave'])['IPALLOC_RANGE'] == '10.244.0.0/16'


def test_default_ipalloc_range_lies_inside_the_default_pod_subnet():
    weave = yaml.safe_load((ROLES / 'weave_net' / 'defaults' / 'main.yml').read_text())
    cluster = yaml.safe_load((ROLES / 'kubeadm_cluster' / 'defaults' / 'main.yml').read_text())
    assert ipaddress.ip_network(weave['weave_net_ipalloc_range']).subnet_of(
        ipaddress.ip_network(cluster['kubeadm_cluster_pod_subnet']))


def test_fork_images_and_decided_guesses_by_default(rendered):
    found = containers(rendered['weave'])
    assert {name: c['image'] for name, c in found.items()} == {
        'weave-init': 'rajchaudhuri/weave-kube:2.9.0', 'weave': 'rajchaudhuri/weave-kube:2.9.0',
        'weave-npc': 'rajchaudhuri/weave-npc:2.9.0'}
    assert not any('imagePullPolicy' in c for c in found.values())
    # The iptables backend and the datapath decided on every container, not guessed.
    for name, container in found.items():
        assert {k: v for k, v in env(container).items() if k in ('IPTABLES_BACKEND', 'WEAVE_NO_FASTDP', 'CHECKPOINT_DISABLE')} \
            == {'IPTABLES_BACKEND': 'nft', 'WEAVE_NO_FASTDP': '1', 'CHECKPOINT_DISABLE': '1'}, name
    assert env(found['weave']) == {'INIT_CONTAINER': 'true', 'HOSTNAME': None, 'IPALLOC_RANGE': '10.244.0.0/16',
                                   'IPTABLES_BACKEND': 'nft', 'WEAVE_NO_FASTDP': '1', 'CHECKPOINT_DISABLE': '1'}


def test_local_images_never_pulled_legacy_backend_fast_datapath_and_extra_env(rendered):
    found = containers(rendered['weave-local'])
    assert found['weave']['image'] == 'rajchaudhuri/weave-kube:2.9.0@sha256:' + '0' * 64
    assert {c['imagePullPolicy'] for c in found.values()} == {'Never'}
    assert env(found['weave']) == {'INIT_CONTAINER': 'true', 'HOSTNAME': None, 'IPALLOC_RANGE': '10.244.128.0/17',
                                   'IPTABLES_BACKEND': 'legacy', 'CHECKPOINT_DISABLE': '1', 'WEAVE_MTU': '1376'}
    assert env(found['weave-npc'])['IPTABLES_BACKEND'] == 'legacy'


def test_daemonset_runs_on_every_node_in_the_host_network(rendered):
    spec = daemonset(rendered['weave'])['spec']['template']['spec']
    assert spec['hostNetwork'] is True
    assert {(t['effect'], t['operator']) for t in spec['tolerations']} == {('NoSchedule', 'Exists'),
                                                                           ('NoExecute', 'Exists')}
    assert containers(rendered['weave'])['weave']['readinessProbe']['httpGet'] == {
        'host': '127.0.0.1', 'path': '/status', 'port': 6784}
    assert {v['name']: v['hostPath']['path'] for v in spec['volumes']} == {
        'weavedb': '/var/lib/weave', 'cni-bin': '/opt', 'cni-bin2': '/home', 'cni-conf': '/etc',
        'cni-machine-id': '/etc/machine-id', 'dbus': '/var/lib/dbus', 'lib-modules': '/lib/modules',
        'xtables-lock': '/run/xtables.lock'}


def test_validator_rejects_a_broken_daemonset(rendered, kubernetes_version):
    broken = daemonset(rendered['weave'])
    broken['spec']['template']['spec']['containers'][0]['env'][0]['value'] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_version, strict=True)
