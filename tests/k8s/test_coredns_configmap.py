# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The CoreDNS ConfigMap the coredns_config role renders from kubeadm's Corefile and the declared additions."""

import kubernetes_validate
import pytest

from ansible_collections.cka.lab.plugins.filter.corefile_edit import corefile_edit
from conftest import KUBEADM_COREFILE, objects


def test_configmap_is_valid_for_the_pinned_kubernetes(rendered, kubernetes_version):
    (configmap,) = objects(rendered['coredns'])
    kubernetes_validate.validate(configmap, kubernetes_version, strict=True)
    assert configmap['metadata'] == {'name': 'coredns', 'namespace': 'kube-system'}


def test_corefile_survives_the_yaml_block_exactly(rendered):
    (configmap,) = objects(rendered['coredns'])
    expected = corefile_edit(KUBEADM_COREFILE, hosts={'controlplane': '10.213.0.20', 'node01': '10.213.0.21'},
                             forward=['10.213.0.1'])
    assert configmap['data'] == {'Corefile': expected}


@pytest.mark.parametrize('line', [
    '    hosts {', '       10.213.0.20 controlplane', '       10.213.0.21 node01', '       fallthrough',
    '    forward . 10.213.0.1 {', '       max_concurrent 1000',
    '    kubernetes cluster.local in-addr.arpa ip6.arpa {', '    reload',
])
def test_corefile_has(rendered, line):
    (configmap,) = objects(rendered['coredns'])
    assert line in configmap['data']['Corefile'].split('\n')
