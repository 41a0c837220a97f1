# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The fields kubeadm's configuration documents allow, per apiVersion and kind.

Written from the Kubernetes API references (kubernetes.io/docs/reference/config-api/):
kubeadm-config.v1beta4, kube-proxy-config.v1alpha1 and kubelet-config.v1beta1. kubeadm
reads the documents strictly, so an unknown or misplaced field fails `kubeadm init`;
this schema catches that offline. The kubelet and kube-proxy documents have many more
fields than listed here: the lists hold the ones a lab is likely to set.

A schema is a dict of field name -> type, where a type is str, int, bool, a nested
dict schema, [type] for a list, or ANY (a free-form map, such as featureGates).
"""

import re

ANY = object()

_ARGS = [{'name': str, 'value': str}]  # v1beta4 extraArgs: a list of name/value pairs (a map in v1beta3)
_ENVS = [{'name': str, 'value': str, 'valueFrom': ANY}]
_VOLUMES = [{'name': str, 'hostPath': str, 'mountPath': str, 'readOnly': bool, 'pathType': str}]
_CONTROL_PLANE_COMPONENT = {'extraArgs': _ARGS, 'extraVolumes': _VOLUMES, 'extraEnvs': _ENVS}
_NODE_REGISTRATION = {
    'name': str, 'criSocket': str, 'taints': [{'key': str, 'value': str, 'effect': str, 'timeAdded': str}],
    'kubeletExtraArgs': _ARGS, 'ignorePreflightErrors': [str], 'imagePullPolicy': str, 'imagePullSerial': bool,
}
_API_ENDPOINT = {'advertiseAddress': str, 'bindPort': int}
_TIMEOUTS = {name: str for name in ('controlPlaneComponentHealthCheck', 'kubeletHealthCheck', 'kubernetesAPICall',
                                    'etcdAPICall', 'tlsBootstrap', 'discovery', 'upgradeManifests')}
_BOOTSTRAP_TOKEN = {'token': str, 'description': str, 'ttl': str, 'expires': str, 'usages': [str], 'groups': [str]}
_META = {'apiVersion': str, 'kind': str}

SCHEMAS = {
    ('kubeadm.k8s.io/v1beta4', 'InitConfiguration'): dict(_META, **{
        'bootstrapTokens': [_BOOTSTRAP_TOKEN], 'dryRun': bool, 'nodeRegistration': _NODE_REGISTRATION,
        'localAPIEndpoint': _API_ENDPOINT, 'certificateKey': str, 'skipPhases': [str],
        'patches': {'directory': str}, 'timeouts': _TIMEOUTS,
    }),
    ('kubeadm.k8s.io/v1beta4', 'ClusterConfiguration'): dict(_META, **{
        'etcd': {
            'local': {'imageRepository': str, 'imageTag': str, 'dataDir': str, 'extraArgs': _ARGS,
                      'extraEnvs': _ENVS, 'serverCertSANs': [str], 'peerCertSANs': [str]},
            'external': {'endpoints': [str], 'caFile': str, 'certFile': str, 'keyFile': str},
        },
        'networking': {'serviceSubnet': str, 'podSubnet': str, 'dnsDomain': str},
        'kubernetesVersion': str, 'controlPlaneEndpoint': str,
        'apiServer': dict(_CONTROL_PLANE_COMPONENT, certSANs=[str]),
        'controllerManager': _CONTROL_PLANE_COMPONENT, 'scheduler': _CONTROL_PLANE_COMPONENT,
        'dns': {'disabled': bool, 'imageRepository': str, 'imageTag': str},
        'proxy': {'disabled': bool},
        'certificatesDir': str, 'imageRepository': str, 'featureGates': ANY, 'clusterName': str,
        'encryptionAlgorithm': str, 'certificateValidityPeriod': str, 'caCertificateValidityPeriod': str,
    }),
    ('kubeadm.k8s.io/v1beta4', 'JoinConfiguration'): dict(_META, **{
        'dryRun': bool, 'nodeRegistration': _NODE_REGISTRATION, 'caCertPath': str,
        'discovery': {
            'bootstrapToken': {'token': str, 'apiServerEndpoint': str, 'caCertHashes': [str],
                               'unsafeSkipCAVerification': bool},
            'file': {'kubeConfigPath': str},
            'tlsBootstrapToken': str,
        },
        'controlPlane': {'localAPIEndpoint': _API_ENDPOINT, 'certificateKey': str},
        'skipPhases': [str], 'patches': {'directory': str}, 'timeouts': _TIMEOUTS,
    }),
    ('kubeproxy.config.k8s.io/v1alpha1', 'KubeProxyConfiguration'): dict(_META, **{
        'featureGates': ANY, 'clientConnection': ANY, 'logging': ANY, 'hostnameOverride': str,
        'bindAddress': str, 'healthzBindAddress': str, 'metricsBindAddress': str, 'bindAddressHardFail': bool,
        'enableProfiling': bool, 'showHiddenMetricsForVersion': str, 'mode': str, 'iptables': ANY, 'ipvs': ANY,
        'nftables': ANY, 'winkernel': ANY, 'detectLocalMode': str, 'detectLocal': ANY, 'clusterCIDR': str,
        'nodePortAddresses': [str], 'oomScoreAdj': int,
        'conntrack': {'maxPerCore': int, 'min': int, 'tcpEstablishedTimeout': str, 'tcpCloseWaitTimeout': str,
                      'tcpBeLiberal': bool, 'udpTimeout': str, 'udpStreamTimeout': str},
        'configSyncPeriod': str,
    }),
    ('kubelet.config.k8s.io/v1beta1', 'KubeletConfiguration'): dict(_META, **{
        'cgroupDriver': str, 'failSwapOn': bool, 'failCgroupV1': bool, 'memorySwap': ANY, 'clusterDNS': [str],
        'clusterDomain': str, 'staticPodPath': str, 'authentication': ANY, 'authorization': ANY,
        'rotateCertificates': bool, 'serverTLSBootstrap': bool, 'containerRuntimeEndpoint': str,
        'evictionHard': ANY, 'featureGates': ANY, 'maxPods': int, 'resolvConf': str, 'cgroupRoot': str,
        'kubeletCgroups': str, 'systemReserved': ANY, 'kubeReserved': ANY, 'protectKernelDefaults': bool,
        'imageGCHighThresholdPercent': int, 'imageGCLowThresholdPercent': int, 'localStorageCapacityIsolation': bool,
    }),
}

KUBEADM_V1BETA4_KINDS = {'InitConfiguration', 'ClusterConfiguration', 'JoinConfiguration'}


def _type_name(expected):
    if isinstance(expected, dict):
        return 'a map'
    if isinstance(expected, list):
        return 'a list'
    return 'any value' if expected is ANY else expected.__name__


def _check(value, expected, path, errors):
    if expected is ANY:
        return
    if isinstance(expected, dict):
        if not isinstance(value, dict):
            errors.append('%s: want a map, got %r' % (path, value))
            return
        for key, item in value.items():
            if key not in expected:
                errors.append('%s.%s: unknown field' % (path, key))
            else:
                _check(item, expected[key], '%s.%s' % (path, key), errors)
    elif isinstance(expected, list):
        if not isinstance(value, list):
            errors.append('%s: want a list of %s, got %r' % (path, _type_name(expected[0]), value))
            return
        for index, item in enumerate(value):
            _check(item, expected[0], '%s[%d]' % (path, index), errors)
    elif expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append('%s: want an integer, got %r' % (path, value))
    elif not isinstance(value, expected):
        errors.append('%s: want %s, got %r' % (path, _type_name(expected), value))


def validate(document):
    """Every problem of one configuration document, as a list of messages (empty when valid)."""
    key = (document.get('apiVersion'), document.get('kind'))
    if key not in SCHEMAS:
        return ['%s %s: not a kubeadm configuration document this project knows' % key]
    errors = []
    _check(document, SCHEMAS[key], key[1], errors)
    if key[1] == 'ClusterConfiguration' and 'kubernetesVersion' in document:
        if not re.match(r'^v1\.\d+\.\d+$', str(document['kubernetesVersion'])):
            errors.append('ClusterConfiguration.kubernetesVersion: want v1.<minor>.<patch>, got %r'
                          % document['kubernetesVersion'])
    return errors
