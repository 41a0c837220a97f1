# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The lab engine's pods, attached for real by Debian's CNI plugins, against the kernel.

Every scenario, a function of this module given to the pods_scenario
fixture, runs inside its own unshare'd network+mount namespace, as the other
engine tests do (see conftest.py), with pods_driver.py: /run, the work
directory and /var/lib (where the engine's CNI cache and host-local's leases
go) are private tmpfs mounts. The lab is cni_lab's node stage on one node,
rendered from labs/cni_lab.yml (conftest.py) without the pods' servers (units
of the node's systemd), its files moved under the work directory: the
reference plugins of containernetworking-plugins (/usr/lib/cni) linked by the
declaration's files into a directory of the work tree (the pods' cni_path), a
network configuration list (bridge cni0 with host-local over 10.244.1.0/24,
then portmap), ip_forward, the servers' script, and two pods, pod-a publishing
its port 80 on the node's 8080. Tests marked `opt` link the plugins in
/opt/cni/bin (on a tmpfs of the sandbox) and leave the pods' cni_path to its
default, as cni_lab itself does (see pods_driver.pod_machine).
"""

import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # for `import pods_driver` in any import mode
import pods_driver  # noqa: E402
from pods_driver import (  # noqa: E402 - the scenarios' helpers, run by pods_driver.py in its sandbox
    CACHE_DIR, GATEWAY, LAB_PODS, PODS, addresses, attempt, bin_dir, build_pods, cache_entries, conflist,
    iptables_listing, lease_of, leases, links, mtu, namespaces, opt_on_tmpfs, ping, plugin_runs, pod_address,
    pod_every_stage, pod_machine, record, refusal, reset_pods, run_plugin, sandbox_state, sh, tcp_reaches, work_path)

from ansible_collections.cka.lab.plugins.module_utils.cni import Runtime  # noqa: E402

CACHE = ['cni-loopback-pod-a-lo', 'cni-loopback-pod-b-lo', 'podnet-pod-a-eth0', 'podnet-pod-b-eth0']
DEL_POD_A = 'CNI DEL podnet pod-a: CNI_CONTAINERID=pod-a CNI_NETNS=/run/netns/pod-a CNI_IFNAME=eth0 portmap | bridge'
DEL_POD_B = 'CNI DEL podnet pod-b: CNI_CONTAINERID=pod-b CNI_NETNS=/run/netns/pod-b CNI_IFNAME=eth0 portmap | bridge'
DEL_LO_A = 'CNI DEL cni-loopback pod-a: CNI_CONTAINERID=pod-a CNI_NETNS=/run/netns/pod-a CNI_IFNAME=lo loopback'
DEL_LO_B = 'CNI DEL cni-loopback pod-b: CNI_CONTAINERID=pod-b CNI_NETNS=/run/netns/pod-b CNI_IFNAME=lo loopback'
# portmap's own chains (its per-pod CNI-DN-... chain goes with the pod's DEL).
PORTMAP_CHAINS = ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK']
LAYOUTS = [pytest.param(False, id='cni_path'), pytest.param(True, id='opt')]


def changes(commands):
    """The commands without the note that the record was written."""
    return [c for c in commands if not c.startswith('record what the lab owns in ')]


def steps(commands):
    """changes(), each CNI command cut to its name ('CNI ADD podnet pod-a'), any other to its first word."""
    return [c.split(':')[0] if c.startswith('CNI ') else c.split()[0] for c in changes(commands)]


def in_slice(cidr):
    return bool(cidr) and cidr.endswith('/24') and cidr.startswith('10.244.1.') and cidr != '10.244.1.1/24'


def test_the_pod_lab_of_these_tests_is_a_valid_declaration(monkeypatch, rendered_labs):
    """What the sandbox changed of cni_lab (pods_driver.pods_in_the_sandbox) leaves a lab the engine takes."""
    # Imported here, not with the module: the driver imports the module for every scenario, and needs no
    # jsonschema.
    from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import validate

    monkeypatch.setenv('ENGINE_WORK', '/tmp/engine-work')
    monkeypatch.setenv(pods_driver.LABS_VARIABLE, rendered_labs)
    declaration = {'lab': 'cni_lab', 'lesson': '205', 'title': 'CNI', 'group': 'cni_lab', 'name': 'cni-lab',
                   'stages': ['node'], 'stage': 'node', 'machine': pods_driver.pod_machine(), 'probes': []}

    assert validate(declaration) == []


def a_build_attaches_the_pods_with_the_real_plugins(result):
    sh('sysctl -q -w net.ipv4.ip_forward=0')
    result['build'] = build_pods(pod_machine())
    result['plugins'] = plugin_runs()
    result['namespaces'] = namespaces()
    result['address'] = {pod: pod_address(pod) for pod in PODS}
    result['lo up'] = {pod: links(pod)['lo'][3] for pod in PODS}
    result['lo address'] = {pod: addresses(pod)['lo'] for pod in PODS}
    a, b = (result['address'][pod].split('/')[0] for pod in PODS)
    result['a -> b'] = ping('pod-a', b)
    result['b -> a'] = ping('pod-b', a)
    result['b -> gateway'] = ping('pod-b', GATEWAY)
    result['cni0'] = links()['cni0']
    result['cache'] = cache_entries()
    result['leases'] = {address: lease_of(address) for address in leases()}
    result['record'] = record()
    result['nat'] = iptables_listing('nat')
    # The published port: the node's 8080 (here, its cni0 address) reaches pod-a's port 80.
    result['node:8080 -> pod-a:80'] = tcp_reaches(None, 'pod-a', GATEWAY, 8080, 80)
    result['node:8080 -> pod-b:80'] = tcp_reaches(None, 'pod-b', GATEWAY, 8080, 80, timeout=0.5)


def test_a_build_attaches_the_pods_with_the_real_plugins(pods_scenario):
    result = pods_scenario(a_build_attaches_the_pods_with_the_real_plugins)

    assert result['namespaces'] == ['pod-a', 'pod-b']
    assert all(in_slice(cidr) for cidr in result['address'].values()), result['address']
    assert result['address']['pod-a'] != result['address']['pod-b']
    assert result['lo up'] == {'pod-a': True, 'pod-b': True}
    assert result['lo address'] == {'pod-a': ['127.0.0.1/8', '::1/128'], 'pod-b': ['127.0.0.1/8', '::1/128']}
    assert result['a -> b'] and result['b -> a'] and result['b -> gateway']
    assert result['cni0'][0] == 'bridge'
    assert result['cache'] == CACHE
    a, b = (result['address'][pod].split('/')[0] for pod in ('pod-a', 'pod-b'))
    assert result['leases'] == {a: ['pod-a', 'eth0'], b: ['pod-b', 'eth0']}
    # The engine's steps, as a runtime would take them: the namespace, lo, then the pod's network (after the
    # plugins' links, the network configuration list and the script of the pods' servers).
    assert steps(result['build']) == [
        'sysctl', 'ln', 'ln', 'ln', 'ln', 'write', 'write',
        'ip', 'CNI ADD cni-loopback pod-a', 'CNI ADD podnet pod-a',
        'ip', 'CNI ADD cni-loopback pod-b', 'CNI ADD podnet pod-b']
    assert 'ip netns add pod-a' in result['build'] and 'ip netns add pod-b' in result['build']
    assert [r[:2] for r in result['plugins']['runs']] == [
        ['ADD', 'loopback'], ['ADD', 'bridge'], ['ADD', 'portmap']] * 2
    assert result['plugins']['failed'] == []
    record = result['record']
    assert [(p['name'], p['network_name'], p['ifname']) for p in record['pods']] == [
        ('pod-a', 'podnet', 'eth0'), ('pod-b', 'podnet', 'eth0')]
    assert 'cni0' in record['cni_links']
    assert record['cni_dirs'] == ['/var/lib/cni', '/var/lib/cni/results']
    dnat = [line for line in result['nat'] if re.match(
        r'-A CNI-DN-\w+ -p tcp -m tcp --dport 8080 -j DNAT --to-destination %s:80$' % re.escape(a), line)]
    assert len(dnat) == 1, result['nat']
    assert [c for c in PORTMAP_CHAINS if '-N ' + c in result['nat']] == PORTMAP_CHAINS
    assert result['node:8080 -> pod-a:80'] == '10.244.1.1'
    assert result['node:8080 -> pod-b:80'] is None  # the control: only pod-a's port is published


def a_second_build_only_checks_the_pods(result):
    build_pods(pod_machine())
    result['record'] = record()
    result['address'] = {pod: pod_address(pod) for pod in PODS}
    result['state'] = sandbox_state()
    plugin_runs()
    result['second'] = build_pods(pod_machine())
    result['plugins'] = plugin_runs()
    result['record again'] = record()
    result['address again'] = {pod: pod_address(pod) for pod in PODS}
    result['state again'] = sandbox_state()


def test_a_second_build_only_checks_the_pods(pods_scenario):
    """CHECK runs for every attachment and changes nothing; portmap 1.1.1's failing CHECK of pod-a's
    port mappings (no IPv6: containernetworking/plugins issue #819) is that exact, tolerated, failure."""
    result = pods_scenario(a_second_build_only_checks_the_pods)

    assert changes(result['second']) == []
    assert result['plugins']['runs'] == [
        ['CHECK', 'loopback', 'pod-a', 'lo'], ['CHECK', 'bridge', 'pod-a', 'eth0'],
        ['CHECK', 'portmap', 'pod-a', 'eth0'],
        ['CHECK', 'loopback', 'pod-b', 'lo'], ['CHECK', 'bridge', 'pod-b', 'eth0'],
        ['CHECK', 'portmap', 'pod-b', 'eth0']]
    failed = result['plugins']['failed']
    assert [f[:4] for f in failed] == [['CHECK', 'portmap', 'pod-a', 'eth0']], failed
    assert failed[0][4].startswith('could not check ipv6 dnat'), failed
    assert result['record again'] == result['record']
    assert result['address again'] == result['address']
    assert result['state again'] == result['state']


def a_pod_whose_eth0_was_deleted_by_hand_is_detached_and_attached_again(result, opt):
    if opt:
        opt_on_tmpfs()
    machine = pod_machine(opt=opt)
    build_pods(machine)
    old = pod_address('pod-a').split('/')[0]
    sh('ip -n pod-a link del eth0')
    result['eth0 gone'] = 'eth0' not in links('pod-a')
    plugin_runs()
    result['repair'], result['error'] = attempt(build_pods, machine)
    if result['error'] is None:
        result['plugins'] = plugin_runs()
        result['address'] = pod_address('pod-a')
        result['new'] = result['address'].split('/')[0]
        result['old address leased'] = lease_of(old)
        result['leases'] = {address: lease_of(address) for address in leases()}
        result['a -> b'] = ping('pod-a', pod_address('pod-b').split('/')[0])
        result['dnat'] = [l for l in iptables_listing('nat') if ' -j DNAT ' in l]
        result['cache'] = cache_entries()
        result['again'] = build_pods(machine)


@pytest.mark.parametrize('opt', LAYOUTS)
def test_a_pod_whose_eth0_was_deleted_by_hand_is_detached_and_attached_again(pods_scenario, opt):
    result = pods_scenario(a_pod_whose_eth0_was_deleted_by_hand_is_detached_and_attached_again, opt=opt)

    assert result['error'] is None, result['error']
    assert result['eth0 gone']
    assert steps(result['repair']) == ['CNI DEL podnet pod-a', 'CNI ADD podnet pod-a']
    assert DEL_POD_A in result['repair']
    runs = result['plugins']['runs']
    assert runs[:6] == [['CHECK', 'loopback', 'pod-a', 'lo'], ['CHECK', 'bridge', 'pod-a', 'eth0'],
                        ['DEL', 'portmap', 'pod-a', 'eth0'], ['DEL', 'bridge', 'pod-a', 'eth0'],
                        ['ADD', 'bridge', 'pod-a', 'eth0'], ['ADD', 'portmap', 'pod-a', 'eth0']], runs
    assert [f[:4] for f in result['plugins']['failed']][:1] == [['CHECK', 'bridge', 'pod-a', 'eth0']]
    assert in_slice(result['address'])
    assert result['old address leased'] is None  # host-local released it with the DEL
    assert sorted(v[0] for v in result['leases'].values()) == ['pod-a', 'pod-b']
    assert result['a -> b']
    assert len(result['dnat']) == 1 and result['dnat'][0].endswith('--to-destination %s:80' % result['new'])
    assert result['cache'] == CACHE
    assert changes(result['again']) == []


def a_changed_network_configuration_detaches_and_attaches_every_pod(result, opt):
    if opt:
        opt_on_tmpfs()
    build_pods(pod_machine(opt=opt))
    result['mtu before'] = [mtu('eth0', pod) for pod in PODS]
    plugin_runs()
    result['build'], result['error'] = attempt(build_pods, pod_machine(opt=opt, mode='overlay'))
    if result['error'] is None:
        result['plugins'] = plugin_runs()
        result['mtu'] = [mtu('eth0', pod) for pod in PODS]
        result['address'] = [pod_address(pod) for pod in PODS]
        result['a -> b'] = ping('pod-a', pod_address('pod-b').split('/')[0])
        result['dnat'] = [l for l in iptables_listing('nat') if ' -j DNAT ' in l]
        result['leases'] = sorted(lease_of(address)[0] for address in leases())
        result['again'] = build_pods(pod_machine(opt=opt, mode='overlay'))


@pytest.mark.parametrize('opt', LAYOUTS)
def test_a_changed_network_configuration_detaches_and_attaches_every_pod(pods_scenario, opt):
    result = pods_scenario(a_changed_network_configuration_detaches_and_attaches_every_pod, opt=opt)

    assert result['error'] is None, result['error']
    assert result['mtu before'] == [1500, 1500]
    assert steps(result['build']) == ['write', 'CNI DEL podnet pod-a', 'CNI ADD podnet pod-a',
                                      'CNI DEL podnet pod-b', 'CNI ADD podnet pod-b']
    assert DEL_POD_A in result['build'] and DEL_POD_B in result['build']
    assert [r for r in result['plugins']['runs'] if r[0] != 'CHECK'] == [
        ['DEL', 'portmap', 'pod-a', 'eth0'], ['DEL', 'bridge', 'pod-a', 'eth0'],
        ['ADD', 'bridge', 'pod-a', 'eth0'], ['ADD', 'portmap', 'pod-a', 'eth0'],
        ['DEL', 'portmap', 'pod-b', 'eth0'], ['DEL', 'bridge', 'pod-b', 'eth0'],
        ['ADD', 'bridge', 'pod-b', 'eth0'], ['ADD', 'portmap', 'pod-b', 'eth0']]
    # Only lo is CHECKed: the cached podnet attachments were made with another list.
    assert [r[1] for r in result['plugins']['runs'] if r[0] == 'CHECK'] == ['loopback', 'loopback']
    assert result['mtu'] == [1450, 1450]
    assert all(in_slice(cidr) for cidr in result['address'])
    assert result['a -> b']
    assert len(result['dnat']) == 1 and result['dnat'][0].endswith(
        '--to-destination %s:80' % result['address'][0].split('/')[0])
    assert result['leases'] == ['pod-a', 'pod-b']
    assert changes(result['again']) == []


def a_pod_no_longer_declared_is_detached_and_its_namespace_deleted(result):
    build_pods(pod_machine())
    b = pod_address('pod-b').split('/')[0]
    a = pod_address('pod-a').split('/')[0]
    result['b leased'] = lease_of(b)
    plugin_runs()
    result['build'] = build_pods(pod_machine(pods=LAB_PODS[:1]), every_stage=pod_machine())
    result['plugins'] = plugin_runs()
    result['b lease'] = lease_of(b)
    result['a lease'] = lease_of(a)
    result['namespaces'] = namespaces()
    result['cache'] = cache_entries()
    result['record pods'] = [p['name'] for p in record()['pods']]
    result['a -> gateway'] = ping('pod-a', GATEWAY)
    result['cni0'] = 'cni0' in links()
    result['again'] = build_pods(pod_machine(pods=LAB_PODS[:1]), every_stage=pod_machine())


def test_a_pod_no_longer_declared_is_detached_and_its_namespace_deleted(pods_scenario):
    result = pods_scenario(a_pod_no_longer_declared_is_detached_and_its_namespace_deleted)

    assert result['b leased'] == ['pod-b', 'eth0']
    assert changes(result['build']) == [DEL_POD_B, DEL_LO_B, 'ip netns del pod-b']
    assert [r for r in result['plugins']['runs'] if r[0] != 'CHECK'] == [
        ['DEL', 'portmap', 'pod-b', 'eth0'], ['DEL', 'bridge', 'pod-b', 'eth0'], ['DEL', 'loopback', 'pod-b', 'lo']]
    assert result['b lease'] is None
    assert result['a lease'] == ['pod-a', 'eth0']
    assert result['namespaces'] == ['pod-a']
    assert result['cache'] == ['cni-loopback-pod-a-lo', 'podnet-pod-a-eth0']
    assert result['record pods'] == ['pod-a']
    assert result['a -> gateway'] and result['cni0']
    assert changes(result['again']) == []


def a_reset_detaches_every_pod_and_puts_the_sandbox_back_as_it_was(result):
    sh('sysctl -q -w net.ipv4.ip_forward=0')
    result['before'] = sandbox_state()
    build_pods(pod_machine())
    result['built'] = sandbox_state()
    result['planned'] = reset_pods(check_mode=True)
    result['after check mode'] = sandbox_state()
    plugin_runs()
    result['reset'] = reset_pods()
    result['plugins'] = plugin_runs()
    result['after'] = sandbox_state()
    result['record'] = record()
    result['reset again'] = reset_pods()


def test_a_reset_detaches_every_pod_and_puts_the_sandbox_back_as_it_was(pods_scenario):
    result = pods_scenario(a_reset_detaches_every_pod_and_puts_the_sandbox_back_as_it_was)

    built = result['built']
    assert built['namespaces'] == ['pod-a', 'pod-b'] and 'cni0' in built['links']
    assert built['var_lib'] == ['cni']
    assert result['after check mode'] == built
    assert DEL_POD_A in result['planned'] and 'ip link del cni0' in result['planned']
    reset = result['reset']
    for command in (DEL_POD_A, DEL_LO_A, 'ip netns del pod-a', DEL_POD_B, DEL_LO_B, 'ip netns del pod-b',
                    'ip link del cni0',
                    'rm -rf --one-file-system /var/lib/cni', 'sysctl -q -w net.ipv4.ip_forward=0'):
        assert command in reset, (command, reset)
    assert reset.index(DEL_POD_A) < reset.index('ip netns del pod-a') < reset.index('ip link del cni0')
    for chain in PORTMAP_CHAINS:
        assert 'iptables-nft -w -t nat -X %s' % chain in reset, reset
    for jump in ('PREROUTING', 'OUTPUT'):
        assert any(c.startswith('iptables-nft -w -t nat -D %s ' % jump) and c.endswith('-j CNI-HOSTPORT-DNAT')
                   for c in reset), reset
    assert [r for r in result['plugins']['runs']] == [
        ['DEL', 'portmap', 'pod-a', 'eth0'], ['DEL', 'bridge', 'pod-a', 'eth0'], ['DEL', 'loopback', 'pod-a', 'lo'],
        ['DEL', 'portmap', 'pod-b', 'eth0'], ['DEL', 'bridge', 'pod-b', 'eth0'], ['DEL', 'loopback', 'pod-b', 'lo']]
    assert result['plugins']['failed'] == []
    # The work tree holds the student's own cache (kept where the student put it).
    assert dict(result['after'], work=None) == dict(result['before'], work=None)
    assert result['after']['listing']['nat'] == ['-P PREROUTING ACCEPT', '-P INPUT ACCEPT', '-P OUTPUT ACCEPT',
                                                 '-P POSTROUTING ACCEPT']
    assert result['after']['var_lib'] == [] and result['after']['work'] == ['var', 'var/lib']
    assert result['record'] is None
    assert result['reset again'] == []


def check_mode_on_a_fresh_sandbox_plans_the_pods_and_changes_nothing(result):
    result['before'] = sandbox_state()
    result['planned'] = build_pods(pod_machine(), check_mode=True)
    result['plugins'] = plugin_runs()
    result['after'] = sandbox_state()
    result['really'] = build_pods(pod_machine())
    result['bin'] = bin_dir()


def test_check_mode_on_a_fresh_sandbox_plans_the_pods_and_changes_nothing(pods_scenario):
    result = pods_scenario(check_mode_on_a_fresh_sandbox_plans_the_pods_and_changes_nothing)

    # The work tree holds the student's own cache (kept where the student put it).
    assert dict(result['after'], work=None) == dict(result['before'], work=None)
    assert result['plugins'] == {'runs': [], 'failed': []}
    planned, directory = result['planned'], result['bin']
    for pod in ('pod-a', 'pod-b'):
        assert 'ip netns add %s' % pod in planned
        assert ('CNI ADD cni-loopback {0}: CNI_CONTAINERID={0} CNI_NETNS=/run/netns/{0} CNI_IFNAME=lo CNI_PATH={1} '
                'loopback'.format(pod, directory)) in planned, planned
        assert ('CNI ADD podnet {0}: CNI_CONTAINERID={0} CNI_NETNS=/run/netns/{0} CNI_IFNAME=eth0 CNI_PATH={1} '
                'bridge | portmap'.format(pod, directory)) in planned, planned
    assert 'ln -sfn /usr/lib/cni/portmap %s/portmap' % directory in planned
    # What check mode announced is what the real run then did.
    assert planned == result['really']


def a_network_running_a_plugin_not_installed_is_refused_before_any_change(result):
    sh('sysctl -q -w net.ipv4.ip_forward=0')
    machine = pod_machine()
    # The link to portmap left out, as if a student deleted it: the lab's declaration itself refuses a
    # network whose plugin the lab does not link (cni_lab_plugins), so only a machine can lack it.
    machine['files'] = [item for item in machine['files'] if item['path'] != os.path.join(bin_dir(), 'portmap')]
    result['cni_path'] = [pod['cni_path'] for pod in machine['pods']]
    result['bin'] = bin_dir()
    result['before'] = sandbox_state()
    result['error'] = refusal(machine)
    result['after'] = sandbox_state()
    result['plugins'] = plugin_runs()
    result['record'] = record()


def test_a_network_running_a_plugin_not_installed_is_refused_before_any_change(pods_scenario):
    result = pods_scenario(a_network_running_a_plugin_not_installed_is_refused_before_any_change)

    directory = result['bin']
    assert result['cni_path'] == [[directory], [directory]]  # and the sandbox's fresh work tree has no portmap there
    assert result['error'] is not None
    for pod in ('pod-a', 'pod-b'):
        assert any(e.startswith('pod %s: the plugin portmap (run by ' % pod) and 'not installed in %s' % directory in e
                   for e in result['error']), result['error']
    assert not [e for e in result['error'] if 'portmap' not in e], result['error']
    # The work tree holds the student's own cache (kept where the student put it).
    assert dict(result['after'], work=None) == dict(result['before'], work=None)
    assert result['plugins'] == {'runs': [], 'failed': []}
    assert result['record'] is None


def a_file_linking_to_a_missing_target_is_refused_before_any_change(result):
    sh('sysctl -q -w net.ipv4.ip_forward=0')
    result['before'] = sandbox_state()
    machine = pod_machine()
    machine['files'].append({'path': os.path.join(bin_dir(), 'flannel'), 'link': '/usr/lib/cni/flannel'})
    result['error'] = refusal(machine)
    result['after'] = sandbox_state()
    result['plugins'] = plugin_runs()
    result['record'] = record()
    result['bin'] = bin_dir()


def test_a_file_linking_to_a_missing_target_is_refused_before_any_change(pods_scenario):
    result = pods_scenario(a_file_linking_to_a_missing_target_is_refused_before_any_change)

    assert result['error'] == ['file %s/flannel: links to /usr/lib/cni/flannel, which this machine does not have '
                               '(see: ls -l /usr/lib/cni)' % result['bin']]
    # The work tree holds the student's own cache (kept where the student put it).
    assert dict(result['after'], work=None) == dict(result['before'], work=None)
    assert result['plugins'] == {'runs': [], 'failed': []}
    assert result['record'] is None


def back_to_a_stage_without_pods_nor_plugins_detaches_the_pods_first(result):
    opt_on_tmpfs()
    sh('sysctl -q -w net.ipv4.ip_forward=0')
    result['before'] = sandbox_state()
    build_pods(pod_machine(opt=True))
    result['start'], result['error'] = attempt(build_pods, pod_machine(stage='start', opt=True), stage='start',
                                               every_stage=pod_every_stage(opt=True))
    result['links gone'] = not os.path.lexists(os.path.join(bin_dir(opt=True), 'bridge'))
    result['at start'] = sandbox_state()
    result['reset'], result['reset error'] = attempt(reset_pods, also=pod_every_stage(opt=True))
    result['after'] = sandbox_state()


def test_back_to_a_stage_without_pods_nor_plugins_detaches_the_pods_first(pods_scenario):
    """cni_lab from stage node back to start, which declares neither the pods nor the plugins' links."""
    result = pods_scenario(back_to_a_stage_without_pods_nor_plugins_detaches_the_pods_first)

    # The pods' DEL ran while the plugins' links were still there; the links went after.
    assert result['error'] is None, result['error']
    for command in (DEL_POD_A, DEL_LO_A, 'ip netns del pod-a', DEL_POD_B, 'ip link del cni0',
                    'rm /opt/cni/bin/bridge'):
        assert command in result['start'], result['start']
    # What stays until the reset: the lab's record (in the work tree) and /run/netns.
    ignored = {'work': None, '/run/netns': None}
    assert dict(result['at start'], **ignored) == dict(result['before'], **ignored)
    assert result['reset error'] is None, result['reset error']
    # The work tree holds the student's own cache (kept where the student put it).
    assert dict(result['after'], work=None) == dict(result['before'], work=None)


def a_pod_attached_by_hand_without_the_cache_is_taken_over(result):
    machine = pod_machine()
    build_pods(machine)
    os.unlink(os.path.join(CACHE_DIR, 'podnet-pod-a-eth0'))
    result['build'], result['error'] = attempt(build_pods, machine)
    result['address'] = pod_address('pod-a')
    result['leases'] = sorted(lease_of(address) for address in leases())
    result['again'] = build_pods(machine)


def test_a_pod_attached_by_hand_without_the_cache_is_taken_over(pods_scenario):
    """A student's pod (ADD run by hand: no entry in the runtime's cache) under the lab's name: a build DELs
    that attachment, as a runtime that lost its cache would, then ADDs its own."""
    result = pods_scenario(a_pod_attached_by_hand_without_the_cache_is_taken_over)

    assert result['error'] is None, result['error']
    assert steps(result['build']) == ['CNI DEL podnet pod-a (attached by hand)', 'CNI ADD podnet pod-a']
    assert in_slice(result['address'])
    assert result['leases'] == [['pod-a', 'eth0'], ['pod-b', 'eth0']]
    assert changes(result['again']) == []


def a_reset_removes_a_pod_a_student_attached_by_hand(result):
    before = sandbox_state()
    build_pods(pod_machine(pods=[]), every_stage=pod_machine())
    sh('ip netns add pod-a')
    runtime = Runtime(run_plugin, bin_dirs=(bin_dir(),), cache_dir=work_path('student-cache'))
    runtime.add(conflist(), 'pod-a', '/run/netns/pod-a', 'eth0')
    sleeper = subprocess.Popen(['ip', 'netns', 'exec', 'pod-a', 'sleep', '300'])
    result['leases before'] = sorted(leases())
    result['reset'] = reset_pods(also=pod_machine())
    sh('sleep 0.2')
    result['sleeper'] = sleeper.poll()
    result['after'] = sandbox_state()
    result['before'] = before
    result['leases after'] = leases()


def test_a_reset_removes_a_pod_a_student_attached_by_hand(pods_scenario):
    """The lab built without pods (a start stage), then a student's pod of the lab's name, attached with the
    plugins by hand (no cache) and running a process: a reset stops the process, DELs the pod through the
    declared network (its lease goes), deletes its namespace, and the bridge the plugin made."""
    result = pods_scenario(a_reset_removes_a_pod_a_student_attached_by_hand)

    assert len(result['leases before']) == 1
    assert any(c.startswith('CNI DEL podnet pod-a (made by hand)') for c in result['reset']), result['reset']
    assert 'ip netns del pod-a' in result['reset'] and 'ip link del cni0' in result['reset']
    assert result['sleeper'] is not None, 'the process in the pod still runs'
    assert result['leases after'] in ([], None)
    # The work tree holds the student's own cache (kept where the student put it).
    assert dict(result['after'], work=None) == dict(result['before'], work=None)


def each_cni_version_the_plugins_support_is_built_run_again_and_reset(result, version):
    sh('sysctl -q -w net.ipv4.ip_forward=0')
    result['before'] = sandbox_state()
    build_pods(pod_machine(cni_version=version, portmap=False))
    result['address'] = {pod: pod_address(pod) for pod in PODS}
    plugin_runs()
    result['second'] = build_pods(pod_machine(cni_version=version, portmap=False))
    result['runs'] = plugin_runs()['runs']
    reset_pods(also=pod_machine(cni_version=version, portmap=False))
    result['after'] = sandbox_state()


@pytest.mark.parametrize('version', ['0.2.0', '0.3.1', '0.4.0', '1.0.0'])
def test_each_cni_version_the_plugins_support_is_built_run_again_and_reset(pods_scenario, version):
    """A list of an older cniVersion: its results (ip4 before 0.3.0) give the pods their slice, a second build
    changes nothing (no CHECK before 0.4.0: the pod's interface is looked at instead), and a reset is clean."""
    result = pods_scenario(each_cni_version_the_plugins_support_is_built_run_again_and_reset, version=version)

    assert all(in_slice(address) for address in result['address'].values()), result['address']
    assert changes(result['second']) == []
    assert not [r for r in result['runs'] if r[0] in ('ADD', 'DEL')], result['runs']
    if version < '0.4.0':
        assert not [r for r in result['runs'] if r[0] == 'CHECK'], result['runs']
    assert dict(result['after'], work=None) == dict(result['before'], work=None)


def a_cni_version_the_plugins_cannot_run_is_refused_before_any_change(result, version):
    result['before'] = sandbox_state()
    result['error'] = refusal(pod_machine(cni_version=version))
    result['after'] = sandbox_state()
    result['runs'] = plugin_runs(versions=True)['runs']


@pytest.mark.parametrize('version, words', [
    ('9.9.9', ['has cniVersion 9.9.9, which the plugins bridge, host-local, loopback, portmap do not support',
               'CNI_COMMAND=VERSION answers bridge: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0',
               'allowed: a cniVersion every plugin of the list supports: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0']),
    ('0.2.0', ['has cniVersion 0.2.0 and chains 2 plugins (bridge, portmap)',
               'allowed: 0.3.0 or later, or one plugin']),
])
def test_a_cni_version_the_plugins_cannot_run_is_refused_before_any_change(pods_scenario, version, words):
    result = pods_scenario(a_cni_version_the_plugins_cannot_run_is_refused_before_any_change, version=version)

    assert result['error'] is not None
    message = result['error'][0]
    assert message.startswith('pod pod-a: %s ' % result['error'][0].split()[2]), message
    for part in words:
        assert part in message, message
    assert not [r for r in result['runs'] if r[0] != 'VERSION'], result['runs']
    assert dict(result['after'], work=None) == dict(result['before'], work=None)
