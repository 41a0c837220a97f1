# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Render the roles' real templates with ansible-playbook, once per test session.

Every case is one play on localhost: the role's defaults (vars_files) plus the case's
overrides (task vars, which take precedence), templated by ansible.builtin.template
exactly as the role does. Nothing here touches a lab machine or the network.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
ROLES = ROOT / 'roles'

# kubeadm's default Corefile for Kubernetes 1.32-1.34 (cmd/kubeadm/app/phases/addons/dns),
# the input the coredns_config role edits.
KUBEADM_COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
"""

JOIN = ['10.213.0.20:6443', 'abcdef.0123456789abcdef', 'sha256:' + '0' * 64]

# name -> (role, template, overrides)
CASES = {
    'kubeadm-config': ('kubeadm_cluster', 'kubeadm-config.yaml.j2',
                       {'__kubeadm_cluster_version': '1.34.7', 'ansible_host': '10.213.0.20'}),
    'kubeadm-config-extras': ('kubeadm_cluster', 'kubeadm-config.yaml.j2', {
        '__kubeadm_cluster_version': '1.34.7', 'ansible_host': '10.213.0.20',
        'kubeadm_cluster_ignore_preflight_errors': ['SystemVerification', 'Swap'],
        'kubeadm_cluster_kubelet_config_extra': {'failSwapOn': False, 'failCgroupV1': False},
        'kubeadm_cluster_kube_proxy_config_extra': {'conntrack': {'maxPerCore': 0}},
        'kubeadm_cluster_control_plane_endpoint': 'cp.lab.example:6443'}),
    'kubeadm-join': ('kubeadm_cluster', 'kubeadm-join.yaml.j2',
                     {'__kubeadm_cluster_join': JOIN, 'ansible_host': '10.213.0.21'}),
    'weave': ('weave_net', 'weave-daemonset-k8s.yaml.j2', {}),
    'weave-local': ('weave_net', 'weave-daemonset-k8s.yaml.j2', {
        'weave_net_kube_image': 'rajchaudhuri/weave-kube:2.9.0@sha256:' + '0' * 64,
        'weave_net_image_pull_policy': 'Never',
        'weave_net_ipalloc_range': '10.244.128.0/17',
        'weave_net_iptables_backend': 'legacy',
        'weave_net_fastdp': True,
        'weave_net_extra_env': [{'name': 'WEAVE_MTU', 'value': '1376'}]}),
    'coredns': ('coredns_config', 'coredns-configmap.yaml.j2', {
        'coredns_config_hosts': {'controlplane': '10.213.0.20', 'node01': '10.213.0.21'},
        'coredns_config_forward': ['10.213.0.1'],
        '__coredns_config_corefile': "{{ corefile | cka.lab.corefile_edit(hosts=coredns_config_hosts,"
                                     " forward=coredns_config_forward) }}",
        'corefile': KUBEADM_COREFILE}),
}


def _playbook(out_dir):
    plays = []
    for name, (role, template, overrides) in CASES.items():
        plays.append({
            'name': 'Render ' + name,
            'hosts': 'localhost',
            'connection': 'local',
            'gather_facts': False,
            'vars_files': [str(ROLES / role / 'defaults' / 'main.yml')],
            'tasks': [{
                'name': 'Render ' + template,
                'ansible.builtin.template': {'src': str(ROLES / role / 'templates' / template),
                                             'dest': str(out_dir / name), 'mode': '0644'},
                'vars': overrides,
            }],
        })
    return plays


@pytest.fixture(scope='session')
def rendered(tmp_path_factory):
    """Rendered text of every case, by case name."""
    work = tmp_path_factory.mktemp('render')
    playbook = work / 'render.yml'
    playbook.write_text(yaml.safe_dump(_playbook(work), sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    ansible_playbook = pathlib.Path(sys.executable).parent / 'ansible-playbook'
    command = [str(ansible_playbook) if ansible_playbook.exists() else 'ansible-playbook',
               '-i', 'localhost,', '-e', 'ansible_python_interpreter=' + sys.executable, str(playbook)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return {name: (work / name).read_text() for name in CASES}


@pytest.fixture(scope='session')
def kubernetes_version():
    """The Kubernetes minor the project pins (k8s_node's default), as kubernetes-validate wants it."""
    defaults = yaml.safe_load((ROLES / 'k8s_node' / 'defaults' / 'main.yml').read_text())
    major, minor, _patch = defaults['k8s_node_kubernetes_version'].split('.')
    return '%s.%s.0' % (major, minor)


def documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def objects(text):
    """Kubernetes objects of a manifest, with the items of a v1 List expanded."""
    found = []
    for doc in documents(text):
        found += doc['items'] if doc.get('kind') == 'List' else [doc]
    return found


def dump(value):
    return json.dumps(value, indent=1, sort_keys=True)
