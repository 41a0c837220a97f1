# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""module_utils/topology.py's VXLAN links and onlink routes without a kernel: parsing, and
planning against a state read from canned ``ip -j`` / ``bridge -j`` output (shaped as
iproute2 6.1 prints it). The same behaviour against the real kernel:
tests/kernel/test_topology_vxlan.py."""

import copy
import ipaddress
import json

import pytest

from vxlan_cases import OVERLAY, with_vxlan  # tests/vxlan_cases.py, shared with the kernel tests
from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import IFNAME_RULE
from ansible_collections.cka.lab.plugins.module_utils.topology import (
    ROOT,
    TopologyError,
    VxlanConfig,
    command_string,
    parse_topology,
    plan_absent,
    plan_present,
    read_state,
)

VXLAN = {'name': 'vxlan0', 'namespace': 'n1', 'vni': 42, 'dev': 'u1', 'local': '192.0.2.1',
         'remotes': ['192.0.2.2', '192.0.2.3'], 'addresses': ['10.244.1.0/32']}
ROUTE = {'namespace': 'n1', 'dst': '10.244.2.0/24', 'via': '10.244.2.0', 'dev': 'vxlan0', 'onlink': True}
TOPOLOGY = {'namespaces': [{'name': 'n1'}], 'vxlans': [VXLAN], 'routes': [ROUTE]}


def args(**vxlan_changes):
    """TOPOLOGY with changes to its vxlan."""
    result = copy.deepcopy(TOPOLOGY)
    result['vxlans'][0].update(vxlan_changes)
    return result


# --------------------------------------------------------------------------
# A machine as read: namespace n1 with the underlay u1 and the declared vxlan
# --------------------------------------------------------------------------

def link_entry(ifindex, name, kind=None, mtu=1500, addresses=(), up=True, info_data=None):
    entry = {'ifindex': ifindex, 'ifname': name, 'flags': ['BROADCAST', 'MULTICAST'] + (['UP'] if up else []),
             'mtu': mtu, 'address': '02:00:00:00:00:%02x' % ifindex,
             'addr_info': [{'family': 'inet', 'local': a.split('/')[0], 'prefixlen': int(a.split('/')[1])}
                           for a in addresses]}
    if kind is not None:
        entry['linkinfo'] = {'info_kind': kind}
        if info_data is not None:
            entry['linkinfo']['info_data'] = info_data
    return entry


VXLAN_DATA = {'id': 42, 'local': '192.0.2.1', 'link': 'u1', 'port_range': {'low': 0, 'high': 0}, 'port': 4789,
              'learning': True, 'ttl': 0, 'df': 'unset', 'ageing': 300}


class CannedIproute:
    """Answers the reads of `ip -j` and `bridge -j` from canned output; records every other command."""

    def __init__(self, vxlan_data=VXLAN_DATA, flood=('192.0.2.3', '192.0.2.2'), route_flags=('onlink',), mtu=1450):
        n1_links = [link_entry(1, 'lo', up=True), link_entry(2, 'u1', 'veth', addresses=['192.0.2.1/24'])]
        n1_links[1]['link_index'], n1_links[1]['link_netnsid'] = 2, 0
        if vxlan_data is not None:
            n1_links.append(link_entry(3, 'vxlan0', 'vxlan', mtu=mtu, addresses=['10.244.1.0/32'],
                                       info_data=vxlan_data))
        fdb = [{'mac': 'aa:bb:cc:00:00:02', 'dst': '192.0.2.2', 'flags': ['self'], 'state': ''}]  # learned
        fdb += [{'mac': '00:00:00:00:00:00', 'dst': dst, 'flags': ['self'], 'state': 'permanent'} for dst in flood]
        routes = [{'dst': '192.0.2.0/24', 'dev': 'u1', 'protocol': 'kernel', 'scope': 'link', 'prefsrc': '192.0.2.1',
                   'flags': []}]
        if vxlan_data is not None:
            routes.insert(0, {'dst': '10.244.2.0/24', 'gateway': '10.244.2.0', 'dev': 'vxlan0',
                              'flags': list(route_flags)})
        self.reads = {
            'ip -j netns list': [{'name': 'n1', 'id': 0}],
            'ip -j -d addr show': [link_entry(1, 'lo')],
            'ip -j route show': [],
            'ip -n n1 -j -d addr show': n1_links,
            'ip -n n1 -j netns list': [{'name': 'n1'}],
            'ip -n n1 -j route show': routes,
            'bridge -n n1 -j fdb show dev vxlan0': fdb,
        }
        self.calls = []
        self.mutations = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        program = argv[0].rsplit('/', 1)[-1]
        text = ' '.join([program] + list(argv[1:]))
        if text in self.reads:
            return 0, json.dumps(self.reads[text]), ''
        assert ' -j ' not in text, 'a read this double does not know: %s' % text
        self.mutations.append(text)
        return 0, '', ''


def plan(canned, params):
    topology = parse_topology(params)
    state = read_state(canned, topology, is_mounted=lambda name: True)
    planner = plan_present(topology, state) if topology.state == 'present' else plan_absent(topology, state)
    return [command_string(argv) for argv in planner.commands]


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

def test_a_vxlan_and_an_onlink_route_reach_the_topology_with_their_defaults():
    topology = parse_topology({'vxlans': [{'name': 'vxlan0', 'vni': 1, 'dev': 'eth0'}],
                               'routes': [ROUTE | {'namespace': None}, {'dst': '10.0.0.0/8', 'dev': 'eth0'}]})

    [vxlan] = topology.vxlans
    assert (vxlan.kind, vxlan.namespace, vxlan.remotes, vxlan.mtu, vxlan.addresses) == ('vxlan', ROOT, [], None, [])
    assert vxlan.vxlan == VxlanConfig(vni=1, dev='eth0', local=None, dstport=4789, learning=True)
    assert topology.links == [vxlan]
    assert [route.onlink for route in topology.routes] == [True, False]


def test_the_remotes_are_addresses_in_the_order_given():
    topology = parse_topology(args(remotes=[' fd00::3 ', 'fd00::2'], local='FD00::1'))

    assert topology.vxlans[0].remotes == [ipaddress.ip_address('fd00::3'), ipaddress.ip_address('fd00::2')]
    assert topology.vxlans[0].vxlan.local == ipaddress.ip_address('fd00::1')


def test_removing_a_vxlan_needs_only_its_name():
    topology = parse_topology({'state': 'absent', 'vxlans': [{'name': 'vxlan0', 'namespace': 'gone'}]})

    assert topology.vxlans[0].vxlan is None


def test_an_onlink_gateway_needs_no_declared_subnet():
    ordinary = dict(ROUTE, onlink=False)
    with pytest.raises(TopologyError) as caught:
        parse_topology(dict(TOPOLOGY, routes=[ordinary]))

    assert caught.value.errors == [
        "routes[0].via: 10.244.2.0 is not inside any subnet declared on link 'vxlan0' (declared: 10.244.1.0/32); "
        "the kernel would refuse this gateway"]
    parse_topology(TOPOLOGY)  # with onlink: accepted


VNI_RULE = 'a VXLAN Network Identifier (VNI) is an integer 1-16777215 (24 bits, RFC 7348)'


@pytest.mark.parametrize('changes, errors', [
    pytest.param({'vni': 16777215, 'dstport': 65535, 'mtu': 68}, [], id='the limits'),
    pytest.param({'vni': '42'}, ["vxlans[0].vni: '42' is not an integer; " + VNI_RULE], id='vni as text'),
    pytest.param({'vni': True}, ["vxlans[0].vni: 'True' is not an integer; " + VNI_RULE], id='vni as boolean'),
    pytest.param({'learning': 'no'}, ["vxlans[0].learning: 'no' is not a boolean; use true (learn the remote MAC "
                                      "addresses from the packets received) or false (iproute2's nolearning)"],
                 id='learning'),
    pytest.param({'mtu': 65536}, ["vxlans[0].mtu: 65536 is out of range; an MTU is an integer 68-65535, and a "
                                  "vxlan's at most its underlay's less 50 (IPv4) or 70 (IPv6)"], id='mtu'),
    pytest.param({'dev': 'a b'}, ["vxlans[0].dev: 'a b' is not a valid interface name; " + IFNAME_RULE], id='dev'),
    pytest.param({'dev': 'lo'}, [], id='over lo'),
    pytest.param({'local': '224.0.0.1'}, ["vxlans[0].local: 224.0.0.1 is not a unicast address; use this machine's "
                                          "address on the underlay, such as 10.89.0.31"], id='multicast local'),
    pytest.param({'remotes': ['0.0.0.0']}, ['vxlans[0].remotes[0]: 0.0.0.0 is the unspecified address; list the '
                                            'underlay addresses of the other VTEPs, such as 10.89.0.30'],
                 id='unspecified remote'),
    pytest.param({'local': None, 'remotes': ['192.0.2.2', 'fd00::2']},
                 ['vxlans[0].remotes[1]: fd00::2 is IPv6 but vxlans[0].remotes[0] is IPv4 (192.0.2.2); a vxlan '
                  'sends over one address family, so its local address and remotes are all IPv4 or all IPv6'],
                 id='families without local'),
    pytest.param({'mac': '01:00:5e:00:00:01'},
                 ["vxlans[0].mac: '01:00:5e:00:00:01' is a multicast address (the first octet is odd); use a unicast "
                  "MAC address of six colon-separated hexadecimal octets, the first one even, such as "
                  "02:42:ac:11:00:02"], id='mac'),
    pytest.param({'namespace': 'n9'}, [
        "vxlans[0].namespace: 'n9' is not a namespace declared in namespaces (declared: n1); use null for the root "
        "namespace",
        "routes[0].dev: 'vxlan0' is not a link declared in namespace 'n1' (declared there: none)"], id='namespace'),
])
def test_vxlan_validation(changes, errors):
    if not errors:
        parse_topology(args(**changes))
        return
    with pytest.raises(TopologyError) as caught:
        parse_topology(args(**changes))
    assert caught.value.errors == errors


def test_two_vxlans_with_one_vni_and_port_are_fine_in_other_namespaces_or_families():
    other = dict(VXLAN, name='vxlan1', addresses=[], remotes=[])
    parse_topology(dict(TOPOLOGY, namespaces=[{'name': 'n1'}, {'name': 'n2'}],
                        vxlans=[VXLAN, dict(other, namespace='n2'), dict(other, name='vxlan2', dstport=4790),
                                dict(other, name='vxlan3', local='fd00::1')]))


# --------------------------------------------------------------------------
# Bad input in a whole overlay: two nodes as namespaces n1 and n2 (as
# tests/kernel/test_topology_vxlan.py builds them), the veth pair u1/u2 their
# node network, a vxlan in each flooding to the other
# --------------------------------------------------------------------------

PORT_RULE = "a UDP port is an integer 1-65535 (VXLAN's is 4789, assigned by IANA, RFC 7348)"


@pytest.mark.parametrize('params, errors', [
    pytest.param(with_vxlan(OVERLAY, 0, vni=0, dstport=0),
                 ['vxlans[0].vni: 0 is out of range; ' + VNI_RULE,
                  'vxlans[0].dstport: 0 is out of range; ' + PORT_RULE],
                 id='vni 0 and dstport 0'),
    pytest.param(with_vxlan(OVERLAY, 1, vni=16777216), ['vxlans[1].vni: 16777216 is out of range; ' + VNI_RULE],
                 id='vni 2**24'),
    pytest.param(with_vxlan(OVERLAY, 0, dstport=65536), ['vxlans[0].dstport: 65536 is out of range; ' + PORT_RULE],
                 id='dstport 65536'),
    pytest.param(dict(OVERLAY, routes=[{'namespace': 'n1', 'dst': '10.244.2.0/24', 'via': '10.244.2.0',
                                        'onlink': True}]),
                 ['routes[0].onlink: needs both via and dev (it has via); an onlink route names its gateway and the '
                  'link it is reached on, such as 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink'],
                 id='onlink without dev'),
    pytest.param(with_vxlan(OVERLAY, 0, remotes=['192.0.2.2', '192.0.2.3', '192.0.2.2']),
                 ['vxlans[0].remotes[2]: 192.0.2.2 is already listed at vxlans[0].remotes[0]; each remote VTEP is '
                  'listed once'],
                 id='remotes duplicate'),
    pytest.param(with_vxlan(OVERLAY, 0, local='192.0.2.300', remotes=['192.0.2.2', 'node02'],
                            addresses=['10.244.1.0']),
                 ["vxlans[0].addresses[0]: '10.244.1.0' is not an interface address in CIDR form; use "
                  "ADDRESS/PREFIXLEN such as 192.168.15.1/24 or fd00::1/64",
                  "vxlans[0].local: '192.0.2.300' is not an IP address; use this machine's address on the underlay, "
                  "such as 10.89.0.31",
                  "vxlans[0].remotes[1]: 'node02' is not an IP address; list the underlay addresses of the other "
                  "VTEPs, such as 10.89.0.30"],
                 id='invalid addresses'),
    pytest.param(with_vxlan(OVERLAY, 0, remotes=['192.0.2.1', 'fd00:2::2']),
                 ['vxlans[0].remotes[0]: 192.0.2.1 is the local address (vxlans[0].local); a VTEP does not flood to '
                  'itself',
                  'vxlans[0].remotes[1]: fd00:2::2 is IPv6 but vxlans[0].local is IPv4 (192.0.2.1); a vxlan sends over '
                  'one address family, so its local address and remotes are all IPv4 or all IPv6'],
                 id='families'),
    pytest.param(with_vxlan(OVERLAY, 0, local=None, remotes=['fd00:2::2']),
                 ['vxlans[0].local: missing while the remotes are IPv6; a vxlan without a local address sends over '
                  'IPv4, so give its IPv6 source address on the underlay'],
                 id='IPv6 without local'),
    pytest.param(with_vxlan(dict(OVERLAY, vxlans=OVERLAY['vxlans'] + [dict(OVERLAY['vxlans'][0], name='vxlan1')]), 2,
                            addresses=[]),
                 ["vxlans[2].vni: 42 with dstport 4789 is already declared in namespace 'n1' by vxlans[0]; the kernel "
                  'takes one vxlan per VNI and UDP port (and address family) in a namespace'],
                 id='one vni per port'),
    pytest.param(with_vxlan(dict(OVERLAY, routes=[]), 0, name='u1', dev='u1', mtu=40),
                 ["vxlans[0].dev: 'u1' is the vxlan itself; the underlay is another link, such as eth0",
                  "vxlans[0].mtu: 40 is out of range; an MTU is an integer 68-65535, and a vxlan's at most its "
                  "underlay's less 50 (IPv4) or 70 (IPv6)",
                  "vxlans[0].name: 'u1' is already declared in namespace 'n1' by veth_pairs[0].name; interface names "
                  'must be unique within a namespace'],
                 id='names'),
    pytest.param(dict(OVERLAY, vxlans=[{'name': 'vxlan0', 'namespace': 'n1'}], routes=[]),
                 ['vxlans[0].vni: missing; ' + VNI_RULE,
                  'vxlans[0].dev: missing; name the underlay link the encapsulated packets go out by, such as eth0'],
                 id='missing'),
])
def test_a_bad_overlay_is_refused_naming_the_path(params, errors):
    with pytest.raises(TopologyError) as caught:
        parse_topology(params)

    assert caught.value.errors == errors


# --------------------------------------------------------------------------
# Planning against a state read
# --------------------------------------------------------------------------

def test_reads_the_settings_flood_list_and_onlink_flag():
    canned = CannedIproute()
    topology = parse_topology(TOPOLOGY)
    state = read_state(canned, topology, is_mounted=lambda name: True)

    found = state.link('n1', 'vxlan0')
    assert found.vxlan == topology.vxlans[0].vxlan
    assert found.remotes == [ipaddress.ip_address('192.0.2.3'), ipaddress.ip_address('192.0.2.2')]
    assert found.mtu == 1450
    assert [r.onlink for r in state.routes['n1']] == [True, False]
    assert ['bridge', '-n', 'n1', '-j', 'fdb', 'show', 'dev', 'vxlan0'] in canned.calls
    route = state.routes['n1'][0]
    assert (str(route.dst), str(route.gateway), route.dev, route.metric) == ('10.244.2.0/24', '10.244.2.0', 'vxlan0', 0)


def test_no_flood_list_is_read_without_vxlans():
    canned = CannedIproute()
    read_state(canned, parse_topology({'namespaces': [{'name': 'n1'}]}), is_mounted=lambda name: True)

    assert [argv for argv in canned.calls if argv[0] != 'ip'] == []


def test_a_converged_vxlan_plans_nothing_whatever_the_order_of_its_remotes():
    assert plan(CannedIproute(), TOPOLOGY) == []
    assert plan(CannedIproute(), args(remotes=['192.0.2.3', '192.0.2.2'])) == []


def test_the_flood_list_is_made_exact():
    assert plan(CannedIproute(flood=['192.0.2.9', '192.0.2.2']), TOPOLOGY) == [
        'bridge -n n1 fdb del 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.9',
        'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.3',
    ]


def test_the_mtu_is_set_in_place_and_left_alone_when_not_declared():
    assert plan(CannedIproute(), args(mtu=1400)) == ['ip -n n1 link set vxlan0 mtu 1400']
    assert plan(CannedIproute(mtu=1400), TOPOLOGY) == []


VXLAN_AGAIN = [
    'ip -n n1 link del vxlan0',
    'ip -n n1 link add vxlan0 type vxlan id 42 dev u1 local 192.0.2.1 dstport 4789',
    'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.2',
    'bridge -n n1 fdb append 00:00:00:00:00:00 dev vxlan0 dst 192.0.2.3',
    'ip -n n1 addr add 10.244.1.0/32 dev vxlan0',
    'ip -n n1 link set vxlan0 up',
    'ip -n n1 route add 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',  # the route went with the link
]


@pytest.mark.parametrize('found', [
    pytest.param(dict(VXLAN_DATA, id=7), id='vni'),
    pytest.param(dict(VXLAN_DATA, link='u2'), id='dev'),
    pytest.param(dict(VXLAN_DATA, local='192.0.2.9'), id='local'),
    pytest.param({k: v for k, v in VXLAN_DATA.items() if k != 'local'}, id='no local'),
    pytest.param(dict(VXLAN_DATA, port=8472), id='dstport'),
    pytest.param(dict(VXLAN_DATA, learning=False), id='learning'),
])
def test_settings_that_differ_make_the_vxlan_again(found):
    assert plan(CannedIproute(vxlan_data=found), TOPOLOGY) == VXLAN_AGAIN


def test_a_route_without_the_onlink_flag_is_replaced():
    assert plan(CannedIproute(route_flags=()), TOPOLOGY) == [
        'ip -n n1 route replace 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink']


def test_a_missing_underlay_is_refused_before_anything_is_planned():
    with pytest.raises(TopologyError) as caught:
        plan(CannedIproute(), args(dev='eth0'))

    assert caught.value.errors == [
        "vxlans[0].dev: 'eth0' does not exist in namespace 'n1' (links there: lo, u1, vxlan0); the underlay link "
        "must exist before its vxlan is made: create it, or declare it in this topology"]


def test_absent_deletes_the_route_then_the_vxlan():
    removal = dict(TOPOLOGY, state='absent', namespaces=[], vxlans=[{'name': 'vxlan0', 'namespace': 'n1'}])

    assert plan(CannedIproute(), removal) == ['ip -n n1 route del 10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink',
                                              'ip -n n1 link del vxlan0']
    assert plan(CannedIproute(vxlan_data=None), removal) == []
