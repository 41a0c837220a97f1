# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Prove that the weave lab's checks (checks/weave_lab) can pass and can fail.

No Kubernetes can run here, so on a lab machine of its own (weave-proof, created and
removed by this test) the test builds by hand what each check looks for: listeners on
the control-plane and Weave ports, a kube-proxy mode endpoint, the API server manifest,
Weave's conflist and plugin, and a `weave` bridge whose address gives the
`10.244.0.0/16 dev weave` route. The checks run through playbooks-style exports and
pytest, as playbooks/check.yml runs them, first on the bare machine (they must fail),
then with the pieces in place (they must pass), then with a wrong conflist (that check
alone must fail). Everything the test creates is removed again.

Not provable this way (they need a running cluster): the kubelet and containerd checks,
the route to the Service range and a Service reached through its ClusterIP.
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST = 'weave-proof'
ADDRESS = '10.213.0.33'
KEY = ROOT / '.lab' / 'id_ed25519'
UNIT = 'weave-checks-proof'
PROOF_DIR = '/run/weave-checks-proof'

# check test name -> what the test builds for it
PROVABLE = {
    'test_node_listens_on_its_role_port[weave-proof: kube-apiserver]',
    'test_node_listens_on_its_role_port[weave-proof: etcd clients]',
    'test_node_listens_on_its_role_port[weave-proof: etcd peers]',
    'test_node_listens_on_its_role_port[weave-proof: kubelet]',
    'test_node_listens_on_its_role_port[weave-proof: kube-controller-manager]',
    'test_node_listens_on_its_role_port[weave-proof: kube-scheduler]',
    'test_api_server_serves_the_service_range[weave-proof]',
    'test_kube_proxy_runs_in_its_mode[weave-proof]',
    'test_conflist_is_the_one_weave_writes[weave-proof]',
    'test_cni_plugin_is_installed[weave-proof]',
    'test_weave_bridge_holds_an_address_of_the_range[weave-proof]',
    'test_range_is_routed_to_the_weave_bridge[weave-proof]',
    'test_weave_listens[weave-proof: weave control]',
    'test_weave_listens[weave-proof: weave status]',
    'test_weave_listens[weave-proof: weave sleeve]',
    'test_weave_listens[weave-proof: weave fast datapath]',
}

LISTENERS = r'''
import socket, time
held = []
for kind, port, address in [("tcp", p, "0.0.0.0") for p in (6443, 2379, 2380, 10250, 10257, 10259, 6783)] + \
        [("tcp", 6784, "127.0.0.1"), ("udp", 6783, "0.0.0.0"), ("udp", 6784, "0.0.0.0")]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    if kind == "tcp":
        s.listen()
    held.append(s)
while True:
    time.sleep(3600)
'''

APISERVER_MANIFEST = '''apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - name: kube-apiserver
    command:
    - kube-apiserver
    - --service-cluster-ip-range=10.96.0.0/12
'''

CONFLIST = {'cniVersion': '0.3.0', 'name': 'weave', 'plugins': [
    {'name': 'weave', 'type': 'weave-net', 'hairpinMode': True},
    {'type': 'portmap', 'capabilities': {'portMappings': True}, 'snat': True}]}


def ansible_playbook(*args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    binary = pathlib.Path(sys.executable).parent / 'ansible-playbook'
    result = subprocess.run([str(binary) if binary.exists() else 'ansible-playbook', *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


def ssh(script):
    command = ['ssh', '-i', str(KEY), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
               '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', 'root@' + ADDRESS, script]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture(scope='module')
def machine(tmp_path_factory):
    """The weave-proof lab machine (control plane of a one-node lab), its inventory and the exported declarations."""
    work = tmp_path_factory.mktemp('weave-proof')
    inventory = work / 'hosts.yml'
    inventory.write_text(yaml.safe_dump({'all': {
        'vars': {'ansible_user': 'root', 'ansible_ssh_private_key_file': str(KEY),
                 'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'},
        'children': {
            'local_lab_machines': {'children': {'weave_lab': {}}},
            'weave_lab': {'children': {'kube_control_plane': {'hosts': {HOST: {'ansible_host': ADDRESS}}},
                                       'kube_workers': {'hosts': {}}}},
        }}}))
    ansible_playbook('-i', str(inventory), 'playbooks/machines.yml')
    try:
        exports = work / 'export'
        exports.mkdir()
        playbook = work / 'export.yml'
        playbook.write_text(yaml.safe_dump([{
            'name': 'Export the weave lab declarations', 'hosts': 'weave_lab', 'gather_facts': False,
            'tasks': [
                {'name': 'Export the cluster declaration', 'ansible.builtin.include_role': {
                    'name': 'kubeadm_cluster', 'tasks_from': 'export'},
                 'vars': {'kubeadm_cluster_export_dir': str(exports)}},
                {'name': 'Export the Weave Net declaration', 'ansible.builtin.include_role': {
                    'name': 'weave_net', 'tasks_from': 'export'},
                 'vars': {'weave_net_export_dir': str(exports)}},
            ]}]))
        ansible_playbook('-i', str(inventory), str(playbook))
        yield {'inventory': inventory, 'exports': exports, 'work': work}
    finally:
        ansible_playbook('-i', str(inventory), 'playbooks/machines.yml', '-e', 'lab_machines_state=absent')


def run_checks(machine, name):
    """Outcome (passed, failed, skipped) of every weave lab check on the machine, by test name."""
    report = machine['work'] / ('%s.xml' % name)
    subprocess.run([sys.executable, '-m', 'pytest', str(ROOT / 'checks' / 'weave_lab'), '-p', 'no:cacheprovider',
                    '--rootdir', str(ROOT / 'checks'), '--lab-data', str(machine['exports']),
                    '--ansible-inventory', str(machine['inventory']), '--junit-xml', str(report), '-q'],
                   cwd=ROOT, capture_output=True, text=True, check=False,
                   env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg')))
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter('testcase'):
        kinds = {child.tag for child in case}
        outcomes[case.get('name')] = ('failed' if kinds & {'failure', 'error'} else
                                      'skipped' if 'skipped' in kinds else 'passed')
    return outcomes


def build(conflist):
    """Create on the machine what the provable checks look for."""
    files = {
        '/etc/kubernetes/manifests/kube-apiserver.yaml': APISERVER_MANIFEST,
        '/etc/cni/net.d/10-weave.conflist': json.dumps(conflist, indent=4),
        '/opt/cni/bin/weave-net': '#!/bin/sh\nexit 0\n',
        PROOF_DIR + '/www/proxyMode': 'iptables',
        PROOF_DIR + '/listeners.py': LISTENERS,
    }
    script = ['set -e']
    for path, content in files.items():
        script += ['mkdir -p %s' % shlex.quote(os.path.dirname(path)),
                   'printf %%s %s > %s' % (shlex.quote(content), shlex.quote(path))]
    script += [
        'chmod 0755 /opt/cni/bin/weave-net',
        'systemd-run --unit %s-listeners --collect python3 %s/listeners.py' % (UNIT, PROOF_DIR),
        'systemd-run --unit %s-proxy-mode --collect python3 -m http.server 10249 --bind 127.0.0.1 --directory %s/www'
        % (UNIT, PROOF_DIR),
        'ip link add weave type bridge', 'ip addr add 10.244.0.1/16 dev weave', 'ip link set weave up',
        # Wait until every listener is there (the UDP sockets are bound last).
        'for i in $(seq 100); do ss -tlnH | grep -q ":10249 " && ss -ulnH | grep -q ":6784 " && exit 0; sleep 0.1; done',
        'echo "the listeners did not start" >&2; exit 1',
    ]
    result = ssh('\n'.join(script))
    assert result.returncode == 0, result.stderr


def clean():
    """Remove everything build() created; what was never created is skipped quietly."""
    ssh('systemctl stop %s-listeners %s-proxy-mode 2>/dev/null; ip link del weave 2>/dev/null; '
        'rm -rf %s /etc/cni/net.d/10-weave.conflist /opt/cni/bin/weave-net /etc/kubernetes/manifests/kube-apiserver.yaml; true'
        % (UNIT, UNIT, PROOF_DIR))
    left = ssh('ip link show weave; ls /etc/cni/net.d/10-weave.conflist /opt/cni/bin/weave-net; ss -tlnH | grep ":6443 "')
    assert 'weave' not in left.stdout and ':6443' not in left.stdout, left.stdout


def provable(outcomes):
    missing = PROVABLE - set(outcomes)
    assert not missing, 'checks not found (renamed?): %s' % sorted(missing)
    return {name: outcomes[name] for name in PROVABLE}


def test_checks_fail_on_a_bare_machine(machine):
    outcomes = provable(run_checks(machine, 'bare'))
    assert set(outcomes.values()) == {'failed'}, {k: v for k, v in outcomes.items() if v != 'failed'}


def test_checks_pass_once_the_pieces_exist(machine):
    try:
        build(CONFLIST)
        outcomes = provable(run_checks(machine, 'built'))
        assert set(outcomes.values()) == {'passed'}, {k: v for k, v in outcomes.items() if v != 'passed'}
    finally:
        clean()


def test_a_wrong_conflist_fails_only_its_check(machine):
    wrong = json.loads(json.dumps(CONFLIST))
    wrong['plugins'][0]['hairpinMode'] = False
    try:
        build(wrong)
        outcomes = provable(run_checks(machine, 'wrong-conflist'))
        assert {k for k, v in outcomes.items() if v == 'failed'} == {'test_conflist_is_the_one_weave_writes[weave-proof]'}
    finally:
        clean()
