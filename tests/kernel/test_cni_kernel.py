# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""module_utils/cni.py running the real CNI plugins (Debian's containernetworking-plugins, /usr/lib/cni).

Every scenario, a function of this module given to the cni_scenario fixture,
runs inside its own unshare'd network+mount namespace, as the other kernel
tests do (see conftest.py and ../sandbox_run.py), driven by cni_driver.py:
the "host" the plugins change is the test's namespace (cni0, the veths' host
ends, iptables nat rules, sysctls such as ip_forward), pods are namespaces
made with ``ip netns add`` on the sandbox's private /run, and the runtime's
cache and host-local's leases are in a temporary directory on that /run. After every test the host must be as it was.
"""

import ipaddress
import os
import shutil
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (HERE, os.path.dirname(HERE)):  # cni_driver (tests/kernel) and sandbox_run (tests/), in any import mode
    if _path not in sys.path:
        sys.path.insert(0, _path)
from ansible_collections.cka.lab.plugins.module_utils import cni  # noqa: E402
from cni_driver import (  # noqa: E402 - the scenarios' helpers, run by cni_driver.py in its sandbox
    addresses, cache_files, fetch, leases, links, nat_rules, ping, pod, routes, runtime, serve_once, sh, with_data_dir)
from sandbox_run import scenario_fixture  # noqa: E402

BRIDGE = '/usr/lib/cni/bridge'
SUBNET = ipaddress.ip_network('10.244.1.0/24')
GATEWAY = '10.244.1.1'

cni_scenario = scenario_fixture(
    'cni_scenario', os.path.join(HERE, 'cni_driver.py'), 'CNI-DRIVER-RESULT ', 'kernel',
    'the CNI plugins make bridges, veths and iptables rules inside their own unshare sandbox', timeout=120,
    doc="""run(scenario, **params) -> the scenario's ``result`` dict (see cni_driver.py).""")


@pytest.fixture(autouse=True)
def plugins_installed():
    if not os.path.exists(BRIDGE):
        pytest.skip('the CNI kernel tests run the reference plugins: %s is missing '
                    '(apt-get install containernetworking-plugins)' % BRIDGE)
    if shutil.which('iptables') is None:
        pytest.skip('the CNI kernel tests need iptables (the portmap plugin runs it)')


# The pod network of a node, as a kubeadm lesson's CNI configuration has it.
NETWORK = {
    'cniVersion': '1.0.0',
    'name': 'cbr0',
    'plugins': [
        {'type': 'bridge', 'bridge': 'cni0', 'isGateway': True, 'ipMasq': False,
         'ipam': {'type': 'host-local', 'ranges': [[{'subnet': str(SUBNET), 'gateway': GATEWAY}]],
                  'routes': [{'dst': '0.0.0.0/0'}]}},  # dataDir: set by the driver (with_data_dir)
        {'type': 'portmap', 'snat': True, 'capabilities': {'portMappings': True}},
    ],
}
LOOPBACK = {'cniVersion': '1.0.0', 'name': 'cni-loopback', 'plugins': [{'type': 'loopback'}]}
PORTS = {'portMappings': [{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'}]}


def address_of(cidrs):
    assert len(cidrs) == 1, cidrs
    interface = ipaddress.ip_interface(cidrs[0])
    assert interface.network == SUBNET and interface.ip != ipaddress.ip_address(GATEWAY), cidrs
    return str(interface.ip)


def pods_on_a_bridge_network_through_their_lifecycle(result, network, loopback, ports, gateway):
    rt = runtime()
    network = with_data_dir(network)
    red, blue = pod('red'), pod('blue')
    result['missing'] = rt.missing_plugins(network) + rt.missing_plugins(loopback)
    for name, path in (('red', red), ('blue', blue)):
        rt.add(loopback, 'ctr-' + name, path, 'lo')
    result['lo'] = {name: [links(name)['lo'][3], addresses(name, 'lo')] for name in ('red', 'blue')}

    result['red result'] = rt.add(network, 'ctr-red', red, 'eth0', capability_args=ports)
    result['blue result'] = rt.add(network, 'ctr-blue', blue, 'eth0')
    result['red eth0'] = addresses('red', 'eth0')
    result['blue eth0'] = addresses('blue', 'eth0')
    result['red routes'] = routes('red')
    result['cni0'] = addresses(None, 'cni0')
    result['ip_forward'] = sh('cat /proc/sys/net/ipv4/ip_forward').strip()
    red_ip, blue_ip = result['red eth0'][0].split('/')[0], result['blue eth0'][0].split('/')[0]
    result['red -> blue'] = ping('red', blue_ip)
    result['blue -> red'] = ping('blue', red_ip)
    result['blue -> gateway'] = ping('blue', gateway)
    result['leases'] = leases('cbr0')
    result['cache files'] = cache_files()
    result['cached red'] = rt.cached('cbr0', 'ctr-red', 'eth0')
    result['cached config'] = cni.conflist_of(result['cached red'])
    result['entries'] = [[e['networkName'], e['containerId'], e['ifName']] for e in rt.cached_entries()]
    result['dnat'] = [rule for rule in nat_rules() if '-j DNAT' in rule]
    serve_once('red', 80, 'hello from red')
    result['through the host port'] = fetch(gateway, 8080)  # OUTPUT -> CNI-HOSTPORT-DNAT -> red:80

    rt.check(network, 'ctr-blue', blue, 'eth0')  # raises when a plugin finds a problem
    rt.check(loopback, 'ctr-red', red, 'lo')
    try:  # with port mappings: see the test's comment
        rt.check(network, 'ctr-red', red, 'eth0')
        result['red CHECK'] = None
    except cni.CniError as exc:
        result['red CHECK'] = [exc.command, exc.plugin, exc.msg]

    rt.delete(network, 'ctr-red', red, 'eth0')  # the port mappings come from the cache
    result['after DEL: red links'] = sorted(links('red'))
    result['after DEL: leases'] = leases('cbr0')
    result['after DEL: dnat'] = [rule for rule in nat_rules() if '-j DNAT' in rule]
    result['after DEL: cache'] = sorted(cache_files())
    result['after DEL: cached red'] = rt.cached('cbr0', 'ctr-red', 'eth0')
    rt.delete(network, 'ctr-red', red, 'eth0')  # DEL twice: nothing left to do, and no error
    rt.delete(network, 'ctr-red', '', 'eth0')  # and without CNI_NETNS
    result['after 2nd DEL: leases'] = leases('cbr0')

    sh('ip netns del blue')  # the pod is gone before its DEL, its veth with it
    rt.delete(network, 'ctr-blue', blue, 'eth0')
    rt.delete(loopback, 'ctr-blue', blue, 'lo')
    result['after blue gone: leases'] = leases('cbr0')
    rt.delete(loopback, 'ctr-red', red, 'lo')
    result['after every DEL: cache'] = sorted(cache_files())
    for _ in range(300):  # a namespace is torn down asynchronously, the veth's host end with it
        result['after every DEL: host links'] = sorted(name for name in links() if name.startswith('veth'))
        if not result['after every DEL: host links']:
            break
        time.sleep(0.01)


def test_pods_on_a_bridge_network_through_their_lifecycle(cni_scenario):
    result = cni_scenario(pods_on_a_bridge_network_through_their_lifecycle, network=NETWORK, loopback=LOOPBACK,
                          ports=PORTS, gateway=GATEWAY)

    assert result['missing'] == []
    for name in ('red', 'blue'):
        up, lo_addresses = result['lo'][name]
        assert up and '127.0.0.1/8' in lo_addresses, result['lo']
    red_ip, blue_ip = address_of(result['red eth0']), address_of(result['blue eth0'])
    assert red_ip != blue_ip
    red = result['red result']
    assert red['cniVersion'] == '1.0.0'
    assert [ip['address'] for ip in red['ips']] == ['%s/24' % red_ip]
    assert red['ips'][0]['gateway'] == GATEWAY
    assert [(i['name'], i.get('sandbox')) for i in red['interfaces']] == [
        ('cni0', None), (red['interfaces'][1]['name'], None), ('eth0', '/run/netns/red')]
    assert red['interfaces'][1]['name'].startswith('veth')
    assert 'default via %s dev eth0' % GATEWAY in result['red routes']
    assert result['cni0'][0] == GATEWAY + '/24'
    assert result['ip_forward'] == '1'  # isGateway, in the sandbox's own namespace
    assert result['red -> blue'] and result['blue -> red'] and result['blue -> gateway']
    assert result['leases'] == {red_ip: ['ctr-red', 'eth0'], blue_ip: ['ctr-blue', 'eth0']}

    assert result['cache files'] == {'.': '0o700', 'cbr0-ctr-blue-eth0': '0o600', 'cbr0-ctr-red-eth0': '0o600',
                                     'cni-loopback-ctr-blue-lo': '0o600', 'cni-loopback-ctr-red-lo': '0o600'}
    cached = result['cached red']
    assert list(cached) == ['kind', 'containerId', 'config', 'ifName', 'networkName', 'netns', 'capabilityArgs',
                            'result']
    assert cached['kind'] == 'cniCacheV1' and cached['containerId'] == 'ctr-red' and cached['ifName'] == 'eth0'
    assert cached['networkName'] == 'cbr0' and cached['netns'] == '/run/netns/red'
    assert cached['capabilityArgs'] == PORTS and cached['result'] == red
    assert result['cached config']['plugins'][1] == NETWORK['plugins'][1]
    assert result['entries'] == [['cbr0', 'ctr-blue', 'eth0'], ['cbr0', 'ctr-red', 'eth0'],
                                 ['cni-loopback', 'ctr-blue', 'lo'], ['cni-loopback', 'ctr-red', 'lo']]
    dnat = [rule for rule in result['dnat'] if '--to-destination %s:80' % red_ip in rule]
    assert len(dnat) == 1 and '--dport 8080' in dnat[0] and '-p tcp' in dnat[0], result['dnat']
    assert result['through the host port'] == 'hello from red'
    # portmap 1.1.1 (Debian 12) also looks for an IPv6 DNAT chain on CHECK when the pod has port mappings
    # but no IPv6 address, and fails: containernetworking/plugins issue #819, fixed in later releases.
    assert result['red CHECK'] in (None, ['CHECK', 'portmap', 'could not check ipv6 dnat: chain %s not found in '
                                          'iptables table nat' % dnat[0].split()[1]]), result['red CHECK']

    assert result['after DEL: red links'] == ['lo']
    assert result['after DEL: leases'] == {blue_ip: ['ctr-blue', 'eth0']}
    assert not [rule for rule in result['after DEL: dnat'] if red_ip in rule]
    assert 'cbr0-ctr-red-eth0' not in result['after DEL: cache']
    assert result['after DEL: cached red'] is None
    assert result['after 2nd DEL: leases'] == {blue_ip: ['ctr-blue', 'eth0']}
    assert result['after blue gone: leases'] == {}
    assert result['after every DEL: cache'] == ['.']
    assert result['after every DEL: host links'] == []


def check_fails_when_the_pods_interface_is_gone(result, network):
    rt = runtime()
    network = with_data_dir(network)
    red = pod('red')
    rt.add(network, 'ctr-red', red, 'eth0')  # no port mappings: see test_pods_on_a_bridge_network...
    rt.check(network, 'ctr-red', red, 'eth0')
    sh('ip -n red link del eth0')  # by hand, behind the runtime's back
    try:
        rt.check(network, 'ctr-red', red, 'eth0')
    except cni.CniError as exc:
        result['error'] = [exc.command, exc.plugin, exc.code, exc.msg, str(exc)]
    rt.delete(network, 'ctr-red', red, 'eth0')
    result['leases'] = leases('cbr0')
    result['dnat'] = [rule for rule in nat_rules() if '-j DNAT' in rule]
    try:
        rt.check(network, 'ctr-red', red, 'eth0')
    except cni.CniError as exc:
        result['check after DEL'] = [exc.command, exc.plugin, exc.code, str(exc)]


def test_check_fails_when_the_pods_interface_is_gone(cni_scenario):
    result = cni_scenario(check_fails_when_the_pods_interface_is_gone, network=NETWORK)

    command, plugin, code, msg, text = result['error']
    assert (command, plugin) == ('CHECK', 'bridge'), result['error']
    assert 'eth0' in msg and text.startswith("CHECK plugin 'bridge' failed"), result['error']
    assert result['leases'] == {}
    assert result['dnat'] == []
    assert result['check after DEL'][:3] == ['CHECK', None, None]
    assert 'no cached result' in result['check after DEL'][3]


def a_failed_add_is_deleted_again(result, network, ports):
    rt = runtime()
    network = with_data_dir(network)
    red = pod('red')
    try:
        rt.add(network, 'ctr-red', red, 'eth0', capability_args=ports)
    except cni.CniError as exc:
        result['error'] = [exc.command, exc.plugin, exc.code, exc.cleanup_error]
    result['red links'] = sorted(links('red'))
    result['host links'] = sorted(name for name in links() if name.startswith('veth'))
    result['leases'] = leases('cbr0')
    result['cache'] = cache_files()
    result['portmap chains'] = [rule for rule in nat_rules() if 'CNI-DN-' in rule]


def test_a_failed_add_is_deleted_again(cni_scenario):
    # portmap's ADD fails (iptables refuses the condition) after bridge made the veth and host-local
    # gave an address: the runtime DELs the whole list, so neither stays.
    broken = dict(NETWORK, plugins=[NETWORK['plugins'][0],
                                    dict(NETWORK['plugins'][1], conditionsV4=['--no-such-option'])])
    result = cni_scenario(a_failed_add_is_deleted_again, network=broken, ports=PORTS)

    assert result['error'][:2] == ['ADD', 'portmap'] and result['error'][3] is None, result['error']
    assert result['red links'] == ['lo']
    assert result['host links'] == []
    assert result['leases'] == {}
    assert result['cache'] == {}
    assert result['portmap chains'] == []


def check_mode_runs_nothing(result, network, ports):
    rt = runtime(check_mode=True)
    network = with_data_dir(network)
    red = pod('red')
    result['add'] = rt.add(network, 'ctr-red', red, 'eth0', capability_args=ports)
    result['links'] = sorted(links())
    result['red links'] = sorted(links('red'))
    result['cache'] = cache_files()
    result['leases'] = leases('cbr0')


def test_check_mode_runs_nothing(cni_scenario):
    result = cni_scenario(check_mode_runs_nothing, network=NETWORK, ports=PORTS)

    assert result == {'add': None, 'links': ['lo'], 'red links': ['lo'], 'cache': {}, 'leases': {}}
