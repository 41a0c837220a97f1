# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""module_utils/topology.py's VXLAN links and onlink routes against the real kernel.

Every scenario, a function of this module given to the netns_scenario fixture,
runs inside its own unshare'd network+mount namespace (see conftest.py). Two
namespaces, n1 and n2, stand for two nodes: a veth pair u1/u2 (192.0.2.1/24,
192.0.2.2/24) is the node network (the underlay), and a vxlan in each,
flooding to the other, carries the pod addresses 10.244.1.0/32 and
10.244.2.0/32, each node reaching the other's pod subnet by an onlink route
through its vxlan, as flannel's vxlan backend does.
"""

import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import netns_driver` in any import mode
from netns_driver import (  # noqa: E402 - the scenarios' helpers, run by netns_driver.py in its sandbox
    addresses, converge, flood_list, links, namespaces, ping, read, routes, sh, vxlan)
from vxlan_cases import OVERLAY, ROUTES, UNDERLAY, VXLANS, onlink_route, vxlan_item, with_vxlan  # noqa: E402

UNCHANGED = {'commands': []}

OVERLAY_COMMANDS = [
    'ip netns add n1',
    'ip netns add n2',
    'ip -n n1 link set lo up',
    'ip -n n2 link set lo up',
    'ip link add u1 netns n1 type veth peer name u2 netns n2',
    'ip -n n1 link add vxlan0 type vxlan id 42 dev u1 local 192.0.2.1 dstport 4789',
    'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2',
    'ip -n n2 link add vxlan0 type vxlan id 42 dev u2 local 192.0.2.2 dstport 4789',
    'bridge -n n2 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.1',
    'ip -n n1 addr add 192.0.2.1/24 dev u1',
    'ip -n n2 addr add 192.0.2.2/24 dev u2',
    'ip -n n1 addr add 10.244.1.0/32 dev vxlan0',
    'ip -n n2 addr add 10.244.2.0/32 dev vxlan0',
    'ip -n n1 link set u1 up',
    'ip -n n2 link set u2 up',
    'ip -n n1 link set vxlan0 up',
    'ip -n n2 link set vxlan0 up',
    'ip -n n1 route add 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
    'ip -n n2 route add 10.244.1.0/24 via 10.244.1.0 dev vxlan0 onlink',
]

# n1's vxlan made again (its route went with it), the rest as it was.
N1_VXLAN_AGAIN = [
    'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2',
    'ip -n n1 addr add 10.244.1.0/32 dev vxlan0',
    'ip -n n1 link set vxlan0 up',
    'ip -n n1 route add 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
]


def builds_an_overlay_that_carries_traffic(result, topology):
    result['first'] = converge(topology)
    result['settings'] = {ns: vxlan(ns, 'vxlan0') for ns in ('n1', 'n2')}
    result['flood lists'] = {ns: flood_list(ns, 'vxlan0') for ns in ('n1', 'n2')}
    result['n1 links'] = {name: [kind, up] for name, (kind, _mac, _master, up) in links('n1').items()}
    result['n1 addresses'] = addresses('n1', 'vxlan0')
    result['n1 routes'] = routes('n1')
    result['n2 routes'] = routes('n2')
    result['10.244.1.0 -> 10.244.2.0'] = ping('n1', '10.244.2.0')
    result['10.244.2.0 -> 10.244.1.0'] = ping('n2', '10.244.1.0')
    result['n1 -> nobody'] = ping('n1', '10.244.2.9', timeout=0.3)
    # What read_state makes of the kernel's JSON: the settings, flood list and onlink flag.
    state = read(topology)
    found = state.link('n1', 'vxlan0')
    config = found.vxlan
    result['read'] = [found.kind, found.up, [str(a) for a in found.addresses if not a.is_link_local],
                      config.vni, config.dev, str(config.local), config.dstport, config.learning,
                      [str(a) for a in found.remotes], found.mtu]
    result['read routes'] = [[str(r.dst), str(r.gateway), r.dev, r.metric, r.onlink]
                             for r in state.routes['n1'] if r.gateway is not None]
    result['second'] = converge(topology)


def test_builds_an_overlay_that_carries_traffic(netns_scenario):
    result = netns_scenario(builds_an_overlay_that_carries_traffic, topology=OVERLAY)

    assert result['first'] == {'commands': OVERLAY_COMMANDS}
    assert result['settings'] == {
        'n1': {'vni': 42, 'dev': 'u1', 'local': '192.0.2.1', 'dstport': 4789, 'learning': True, 'mtu': 1450},
        'n2': {'vni': 42, 'dev': 'u2', 'local': '192.0.2.2', 'dstport': 4789, 'learning': True, 'mtu': 1450}}
    assert result['flood lists'] == {'n1': ['192.0.2.2'], 'n2': ['192.0.2.1']}
    assert result['n1 links'] == {'lo': [None, True], 'u1': ['veth', True], 'vxlan0': ['vxlan', True]}
    assert result['n1 addresses'] == ['10.244.1.0/32']
    assert result['n1 routes'] == ['10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
                                   '192.0.2.0/24 dev u1 proto kernel scope link src 192.0.2.1']
    assert result['n2 routes'] == ['10.244.1.0/24 via 10.244.1.0 dev vxlan0 onlink',
                                   '192.0.2.0/24 dev u2 proto kernel scope link src 192.0.2.2']
    assert result['10.244.1.0 -> 10.244.2.0'] is result['10.244.2.0 -> 10.244.1.0'] is True
    assert result['n1 -> nobody'] is False
    assert result['read'] == ['vxlan', True, ['10.244.1.0/32'], 42, 'u1', '192.0.2.1', 4789, True, ['192.0.2.2'],
                              1450]
    assert result['read routes'] == [['10.244.2.0/24', '10.244.2.0', 'vxlan0', 0, True]]
    assert result['second'] == UNCHANGED


def a_vxlan_over_an_underlay_made_by_hand(result, topology, reordered, no_underlay):
    result['no underlay'] = converge(topology)
    sh('ip netns add n1 && ip netns add n2 && ip -n n1 link set lo up && ip -n n2 link set lo up')
    sh('ip link add u1 netns n1 type veth peer name u2 netns n2')
    sh('ip -n n1 addr add 192.0.2.1/24 dev u1 && ip -n n1 link set u1 up')
    sh('ip -n n2 addr add 192.0.2.2/24 dev u2 && ip -n n2 link set u2 up')
    result['not there in n2'] = converge(no_underlay)
    result['first'] = converge(topology)
    result['flood lists'] = {ns: flood_list(ns, 'vxlan0') for ns in ('n1', 'n2')}
    result['settings'] = vxlan('n1', 'vxlan0')
    result['n1 -> n2'] = ping('n1', '10.244.2.0')
    result['reordered'] = converge(reordered)


def test_a_vxlan_over_an_underlay_made_by_hand(netns_scenario):
    # Only the namespaces are declared: the node network is not the topology's. The
    # flood list is a set: its order does not matter, and a third node may be listed.
    three = [vxlan_item('n1', 'u1', None, ['192.0.2.3', '192.0.2.2'], '10.244.1.0/32'),
             vxlan_item('n2', 'u2', None, ['192.0.2.1', '192.0.2.3'], '10.244.2.0/32')]
    topology = {'namespaces': UNDERLAY['namespaces'], 'vxlans': three, 'routes': ROUTES}
    reordered = copy.deepcopy(topology)
    for item in reordered['vxlans']:
        item['remotes'].reverse()
    no_underlay = with_vxlan(topology, 1, dev='eth0')
    result = netns_scenario(a_vxlan_over_an_underlay_made_by_hand, topology=topology, reordered=reordered,
                            no_underlay=no_underlay)

    error = ("vxlans[0].dev: 'u1' does not exist in namespace 'n1' (links there: lo); the underlay link must exist "
             "before its vxlan is made: create it, or declare it in this topology")
    assert error in result['no underlay']['refused']
    error = ("vxlans[1].dev: 'eth0' does not exist in namespace 'n2' (links there: lo, u2); the underlay link must "
             "exist before its vxlan is made: create it, or declare it in this topology")
    assert result['not there in n2'] == {'refused': [error]}
    assert result['first'] == {'commands': [
        'ip -n n1 link add vxlan0 type vxlan id 42 dev u1 dstport 4789',
        'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.3',
        'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2',
        'ip -n n2 link add vxlan0 type vxlan id 42 dev u2 dstport 4789',
        'bridge -n n2 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.1',
        'bridge -n n2 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.3',
        'ip -n n1 addr add 10.244.1.0/32 dev vxlan0',
        'ip -n n2 addr add 10.244.2.0/32 dev vxlan0',
        'ip -n n1 link set vxlan0 up',
        'ip -n n2 link set vxlan0 up',
        'ip -n n1 route add 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
        'ip -n n2 route add 10.244.1.0/24 via 10.244.1.0 dev vxlan0 onlink',
    ]}
    assert result['flood lists'] == {'n1': ['192.0.2.2', '192.0.2.3'], 'n2': ['192.0.2.1', '192.0.2.3']}
    assert result['settings'] == {'vni': 42, 'dev': 'u1', 'local': None, 'dstport': 4789, 'learning': True,
                                  'mtu': 1450}
    assert result['n1 -> n2'] is True  # the copies sent to 192.0.2.3, where nobody is, do no harm
    assert result['reordered'] == UNCHANGED


def a_flood_list_changed_by_hand_is_repaired(result, topology, emptied):
    converge(topology)
    result['before'] = ping('n1', '10.244.2.0')
    # The entries learned (n2's MAC address, learning being on) are not the flood list's: left alone.
    fdb = json.loads(sh('bridge -n n1 -j fdb show dev vxlan0'))
    result['learned'] = [e['dst'] for e in fdb if e['mac'] != '00:00:00:00:00:00' and 'dst' in e]
    sh('bridge -n n1 fdb del 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2')
    sh('bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.9')
    result['by hand'] = flood_list('n1', 'vxlan0')
    result['repair'] = converge(topology)
    result['repaired'] = flood_list('n1', 'vxlan0')
    sh('ip -n n1 neigh flush dev vxlan0')  # ARP again, through the flood list
    result['after'] = ping('n1', '10.244.2.0')
    result['again'] = converge(topology)
    result['emptied'] = converge(emptied)
    result['empty'] = flood_list('n1', 'vxlan0')


def test_a_flood_list_changed_by_hand_is_repaired(netns_scenario):
    emptied = with_vxlan(OVERLAY, 0, remotes=[])
    result = netns_scenario(a_flood_list_changed_by_hand_is_repaired, topology=OVERLAY, emptied=emptied)

    repair = ['bridge -n n1 fdb del 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.9',
              'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2']
    assert result['before'] is True
    assert result['learned'] == ['192.0.2.2']
    assert result['by hand'] == ['192.0.2.9']
    assert result['repair'] == {'commands': repair}
    assert result['repaired'] == ['192.0.2.2']
    assert result['after'] is True
    assert result['again'] == UNCHANGED
    assert result['emptied'] == {'commands': [
        'bridge -n n1 fdb del 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2']}
    assert result['empty'] == []


def settings_the_kernel_cannot_change_make_the_vxlan_again(result, base, other_vni, variations):
    converge(base)
    result['mac'] = links('n1')['vxlan0'][1]
    result['other vni'] = converge(other_vni)
    result['vni'] = [vxlan(ns, 'vxlan0')['vni'] for ns in ('n1', 'n2')]
    result['mac kept'] = links('n1')['vxlan0'][1]
    result['ping with the new vni'] = ping('n1', '10.244.2.0')
    result['vni again'] = converge(other_vni)
    for name, changes in variations:
        args = dict(base, vxlans=[dict(base['vxlans'][0], **changes), base['vxlans'][1]])
        converge(base)
        result[name] = converge(args)
        result[name + ' read'] = vxlan('n1', 'vxlan0')
        result[name + ' again'] = converge(args)
    converge(base)
    sh('ip -n n1 link del vxlan0 && ip -n n1 link add vxlan0 type bridge')
    result['a bridge of that name'] = converge(base)
    result['ping at the end'] = ping('n1', '10.244.2.0')


def test_settings_the_kernel_cannot_change_make_the_vxlan_again(netns_scenario):
    mac = '02:42:0a:f4:01:00'
    base = with_vxlan(OVERLAY, 0, mac=mac)
    other_vni = copy.deepcopy(base)
    for item in other_vni['vxlans']:
        item['vni'] = 4242
    result = netns_scenario(settings_the_kernel_cannot_change_make_the_vxlan_again, base=base, other_vni=other_vni,
                            variations=[['mtu', {'mtu': 1400}], ['nolearning', {'learning': False}],
                                        ['dstport', {'dstport': 8472}], ['no local', {'local': None}]])

    add = 'ip -n n1 link add vxlan0 address %s type vxlan id %%s dev u1%%s dstport %%s' % mac

    def again(*what):
        return ['ip -n n1 link del vxlan0', add % what] + N1_VXLAN_AGAIN

    assert result['mac'] == mac
    assert result['other vni'] == {'commands': [
        'ip -n n1 link del vxlan0',
        add % (4242, ' local 192.0.2.1', 4789),
        'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2',
        'ip -n n2 link del vxlan0',
        'ip -n n2 link add vxlan0 type vxlan id 4242 dev u2 local 192.0.2.2 dstport 4789',
        'bridge -n n2 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.1',
    ] + OVERLAY_COMMANDS[11:13] + OVERLAY_COMMANDS[15:]}
    assert result['vni'] == [4242, 4242]
    assert result['mac kept'] == mac
    assert result['ping with the new vni'] is True
    assert result['vni again'] == UNCHANGED

    assert result['mtu'] == {'commands': ['ip -n n1 link set vxlan0 mtu 1400']}
    assert result['mtu read']['mtu'] == 1400
    assert result['nolearning']['commands'] == ['ip -n n1 link del vxlan0',
                                                (add % (42, ' local 192.0.2.1', 4789)) + ' nolearning'] + N1_VXLAN_AGAIN
    assert result['nolearning read']['learning'] is False
    assert result['dstport']['commands'] == again(42, ' local 192.0.2.1', 8472)
    assert result['dstport read']['dstport'] == 8472
    assert result['no local']['commands'] == again(42, '', 4789)
    assert result['no local read']['local'] is None
    for name in ('mtu', 'nolearning', 'dstport', 'no local'):
        assert result[name + ' again'] == UNCHANGED, name
    assert result['a bridge of that name'] == {'commands': again(42, ' local 192.0.2.1', 4789)}
    assert result['ping at the end'] is True


def a_vxlan_over_an_underlay_the_plan_replaces_is_made_again(result, topology):
    converge(topology)
    sh('ip -n n1 link del u1')  # u2 goes too, and the vxlans over them
    result['gone'] = [sorted(links(ns)) for ns in ('n1', 'n2')]
    sh('ip -n n1 link add u1 type veth peer name u9')
    sh('ip -n n1 link add vxlan0 type vxlan id 42 dev u1 local 192.0.2.1 dstport 4789')
    sh('bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2')
    result['repair'] = converge(topology)
    result['n1 -> n2'] = ping('n1', '10.244.2.0')
    result['again'] = converge(topology)


def test_a_vxlan_over_an_underlay_the_plan_replaces_is_made_again(netns_scenario):
    # By hand: u1 paired with another end, and a vxlan over it just as declared. The
    # plan deletes u1, which takes the vxlan along (the kernel deletes a vxlan with
    # its underlay): the vxlan is planned again, not only its flood list.
    result = netns_scenario(a_vxlan_over_an_underlay_the_plan_replaces_is_made_again, topology=OVERLAY)

    assert result['gone'] == [['lo'], ['lo']]
    assert result['repair']['commands'] == [
        'ip -n n1 link del u1',
        'ip link add u1 netns n1 type veth peer name u2 netns n2',
        'ip -n n1 link add vxlan0 type vxlan id 42 dev u1 local 192.0.2.1 dstport 4789',
        'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2',
        'ip -n n2 link add vxlan0 type vxlan id 42 dev u2 local 192.0.2.2 dstport 4789',
        'bridge -n n2 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.1',
    ] + OVERLAY_COMMANDS[9:]
    assert result['n1 -> n2'] is True
    assert result['again'] == UNCHANGED


def the_onlink_flag_is_part_of_a_route(result, topology):
    converge(topology)
    # The same gateway without the flag: only possible once a subnet on vxlan0 holds it.
    sh('ip -n n1 route add 10.244.2.0/31 dev vxlan0')
    sh('ip -n n1 route replace 10.244.2.0/24 via 10.244.2.0 dev vxlan0')
    # And the other way round: a route declared without the flag, found with it.
    sh('ip -n n1 route replace 198.51.100.0/24 via 192.0.2.2 dev u1 onlink')
    result['by hand'] = routes('n1')
    result['repair'] = converge(topology)
    sh('ip -n n1 route del 10.244.2.0/31 dev vxlan0')
    result['repaired'] = routes('n1')
    result['n1 -> n2'] = ping('n1', '10.244.2.0')
    result['again'] = converge(topology)


def test_the_onlink_flag_is_part_of_a_route(netns_scenario):
    plain = {'namespace': 'n1', 'dst': '198.51.100.0/24', 'via': '192.0.2.2', 'dev': 'u1'}
    topology = dict(OVERLAY, routes=ROUTES + [plain])
    result = netns_scenario(the_onlink_flag_is_part_of_a_route, topology=topology)

    assert result['by hand'][:2] == ['10.244.2.0/31 dev vxlan0 scope link', '10.244.2.0/24 via 10.244.2.0 dev vxlan0']
    assert '198.51.100.0/24 via 192.0.2.2 dev u1 onlink' in result['by hand']
    assert result['repair'] == {'commands': [
        'ip -n n1 route replace 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
        'ip -n n1 route replace 198.51.100.0/24 via 192.0.2.2 dev u1',
    ]}
    assert result['repaired'] == ['10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
                                  '192.0.2.0/24 dev u1 proto kernel scope link src 192.0.2.1',
                                  '198.51.100.0/24 via 192.0.2.2 dev u1']
    assert result['n1 -> n2'] is True
    assert result['again'] == UNCHANGED


def absent_removes_the_overlay_then_everything(result, topology, overlay_only):
    converge(topology)
    result['overlay'] = converge(overlay_only)
    result['n1 links'] = sorted(links('n1'))
    result['n1 routes'] = routes('n1')
    result['underlay still there'] = ping('n1', '192.0.2.2')
    result['overlay again'] = converge(overlay_only)
    converge(topology)
    result['absent'] = converge(dict(topology, state='absent'))
    result['namespaces'] = namespaces()
    result['links'] = sorted(links())
    result['absent again'] = converge(dict(topology, state='absent'))


def test_absent_removes_the_overlay_then_everything(netns_scenario):
    # The overlay alone: vxlans named (their settings are not needed) and their routes.
    overlay_only = {'state': 'absent', 'vxlans': [{'name': 'vxlan0', 'namespace': 'n1'},
                                                  {'name': 'vxlan0', 'namespace': 'n2'}], 'routes': ROUTES}
    result = netns_scenario(absent_removes_the_overlay_then_everything, topology=OVERLAY, overlay_only=overlay_only)

    removal = ['ip -n n1 route del 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
               'ip -n n2 route del 10.244.1.0/24 via 10.244.1.0 dev vxlan0 onlink',
               'ip -n n1 link del vxlan0',
               'ip -n n2 link del vxlan0']
    assert result['overlay'] == {'commands': removal}
    assert result['n1 links'] == ['lo', 'u1']
    assert result['n1 routes'] == ['192.0.2.0/24 dev u1 proto kernel scope link src 192.0.2.1']
    assert result['underlay still there'] is True
    assert result['overlay again'] == UNCHANGED
    assert result['absent'] == {'commands': removal + [
        'ip -n n1 link del u1', 'ip netns del n1', 'ip netns del n2']}
    assert result['namespaces'] == []
    assert result['links'] == ['lo']
    assert result['absent again'] == UNCHANGED


def an_ipv6_underlay(result, topology):
    result['first'] = converge(topology)
    result['settings'] = vxlan('n1', 'vxlan0')
    result['flood list'] = flood_list('n1', 'vxlan0')
    result['n1 -> n2'] = ping('n1', '10.244.2.0', timeout=6)  # once duplicate address detection is done
    result['again'] = converge(topology)


def test_an_ipv6_underlay(netns_scenario):
    underlay = copy.deepcopy(UNDERLAY)
    underlay['veth_pairs'][0]['addresses'] = ['fd00:2::1/64']
    underlay['veth_pairs'][0]['peer']['addresses'] = ['fd00:2::2/64']
    topology = dict(underlay, routes=ROUTES, vxlans=[
        vxlan_item('n1', 'u1', 'fd00:2::1', ['fd00:2::2'], '10.244.1.0/32'),
        vxlan_item('n2', 'u2', 'fd00:2::2', ['fd00:2::1'], '10.244.2.0/32')])
    result = netns_scenario(an_ipv6_underlay, topology=topology)

    commands = result['first']['commands']
    assert 'ip -n n1 link add vxlan0 type vxlan id 42 dev u1 local fd00:2::1 dstport 4789' in commands
    assert 'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst fd00:2::2' in commands
    assert result['settings'] == {'vni': 42, 'dev': 'u1', 'local': 'fd00:2::1', 'dstport': 4789, 'learning': True,
                                  'mtu': 1430}
    assert result['flood list'] == ['fd00:2::2']
    assert result['n1 -> n2'] is True
    assert result['again'] == UNCHANGED


def a_root_namespace_vxlan_is_not_taken_from_someone_else(result, topology):
    sh('ip link add vxlan0 type bridge')
    result['a bridge'] = converge(topology)
    result['owned'] = converge(dict(topology, owned=[{'name': 'vxlan0'}]))
    result['root -> n2'] = ping(None, '10.244.2.0')
    sh('ip link del vxlan0 && ip link add vxlan0 type vxlan id 7 dev u1 dstport 4789')
    result['another vxlan'] = converge(topology)
    result['its vni'] = vxlan(None, 'vxlan0')['vni']
    result['not recorded'] = converge(dict(topology, owned=None))  # no record kept: made as declared
    result['again'] = converge(topology)


def test_a_root_namespace_vxlan_is_not_taken_from_someone_else(netns_scenario):
    # The test's root namespace is node 1 here, the underlay a veth to n2.
    topology = {
        'namespaces': [{'name': 'n2'}],
        'veth_pairs': [{'name': 'u1', 'addresses': ['192.0.2.1/24'],
                        'peer': {'name': 'u2', 'namespace': 'n2', 'addresses': ['192.0.2.2/24']}}],
        'vxlans': [vxlan_item(None, 'u1', '192.0.2.1', ['192.0.2.2'], '10.244.1.0/32'), VXLANS[1]],
        'routes': [onlink_route(None, '10.244.2.0/24', '10.244.2.0'), ROUTES[1]],
        'owned': [],
    }
    result = netns_scenario(a_root_namespace_vxlan_is_not_taken_from_someone_else, topology=topology)

    error = ("vxlans[0].name: 'vxlan0' already exists in the root namespace as a bridge; choose another name "
             "(the lab replaces only its own vxlans there)")
    assert result['a bridge'] == {'refused': [error]}
    assert result['owned']['commands'][:4] == [
        'ip netns add n2', 'ip -n n2 link set lo up', 'ip link add u1 type veth peer name u2 netns n2',
        'ip link del vxlan0']
    assert result['root -> n2'] is True
    error = ("vxlans[0].name: 'vxlan0' already exists in the root namespace with other settings (id 7 dev u1 "
             "dstport 4789); it was not made here: remove it (ip link del vxlan0) or choose another name")
    assert result['another vxlan'] == {'refused': [error]}
    assert result['its vni'] == 7
    assert result['not recorded']['commands'][:2] == [
        'ip link del vxlan0', 'ip link add vxlan0 type vxlan id 42 dev u1 local 192.0.2.1 dstport 4789']
    assert result['again'] == UNCHANGED
