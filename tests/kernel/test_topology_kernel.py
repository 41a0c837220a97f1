# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""module_utils/topology.py against the real kernel: its reads of `ip -j` output, its plans
run by iproute2 (netns_driver.converge, as the lab engine runs them), and the traffic they carry.

Every scenario, a function of this module given to the netns_scenario fixture,
runs inside its own unshare'd network+mount namespace (see conftest.py): the
"root namespace" below is the test's namespace, which has only ``lo``, and
/run/netns is a tmpfs of its own.
"""

import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import netns_driver` in any import mode
from netns_driver import (  # noqa: E402 - the scenarios' helpers, run by netns_driver.py in its sandbox
    addresses, converge, hold, links, macs, namespaces, neighbour, ping, plan, rc, read, routes, sh, wait_gone)

RED = {'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
       'peer': {'name': 'veth-red-br', 'master': 'v-net-0'}}
BLUE = {'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['192.168.15.2/24'],
        'peer': {'name': 'veth-blue-br', 'master': 'v-net-0'}}
BRIDGED = {
    'namespaces': [{'name': 'red'}, {'name': 'blue'}],
    'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.5/24']}],
    'veth_pairs': [RED, BLUE],
}
UNCHANGED = {'commands': []}

BRIDGED_COMMANDS = [
    'ip netns add red',
    'ip netns add blue',
    'ip -n red link set lo up',
    'ip -n blue link set lo up',
    'ip link add v-net-0 type bridge',
    'ip link add veth-red netns red type veth peer name veth-red-br',
    'ip link add veth-blue netns blue type veth peer name veth-blue-br',
    'ip link set veth-red-br master v-net-0',
    'ip link set veth-blue-br master v-net-0',
    'ip addr add 192.168.15.5/24 dev v-net-0',
    'ip -n red addr add 192.168.15.1/24 dev veth-red',
    'ip -n blue addr add 192.168.15.2/24 dev veth-blue',
    'ip link set v-net-0 up',
    'ip -n red link set veth-red up',
    'ip link set veth-red-br up',
    'ip -n blue link set veth-blue up',
    'ip link set veth-blue-br up',
]

# Re-creating blue's pair, blue itself existing (or just re-created).
BLUE_PAIR_COMMANDS = [
    'ip link add veth-blue netns blue type veth peer name veth-blue-br',
    'ip link set veth-blue-br master v-net-0',
    'ip -n blue addr add 192.168.15.2/24 dev veth-blue',
    'ip -n blue link set veth-blue up',
    'ip link set veth-blue-br up',
]


def with_args(base, **changes):
    args = copy.deepcopy(base)
    args.update(changes)
    return args


def builds_a_bridged_topology_that_carries_traffic(result, topology):
    result['first'] = converge(topology)
    result['namespaces'] = namespaces()
    result['links'] = {name: [kind, master, up] for name, (kind, _mac, master, up) in links().items()}
    result['red -> blue'] = ping('red', '192.168.15.2')
    result['blue -> red'] = ping('blue', '192.168.15.1')
    result['blue -> bridge'] = ping('blue', '192.168.15.5')
    result['red -> nobody'] = ping('red', '192.168.15.9', timeout=0.3)
    # What read_state makes of the kernel's JSON: each end's peer found across namespaces.
    state = read(topology)
    result['read'] = {'%s/%s' % (ns or 'root', name): [link.kind, link.master, link.up, link.peer,
                                                      [str(a) for a in link.addresses if not a.is_link_local]]
                      for ns, name in [(None, 'v-net-0'), (None, 'veth-red-br'), ('red', 'veth-red'),
                                       ('blue', 'veth-blue')]
                      for link in [state.link(ns, name)]}
    result['second'] = converge(topology)


def test_builds_a_bridged_topology_that_carries_traffic(netns_scenario):
    result = netns_scenario(builds_a_bridged_topology_that_carries_traffic, topology=BRIDGED)

    assert result['first'] == {'commands': BRIDGED_COMMANDS}
    assert result['namespaces'] == ['blue', 'red']
    assert result['links'] == {'lo': [None, None, False], 'v-net-0': ['bridge', None, True],
                               'veth-red-br': ['veth', 'v-net-0', True], 'veth-blue-br': ['veth', 'v-net-0', True]}
    assert result['red -> blue'] is result['blue -> red'] is result['blue -> bridge'] is True
    assert result['red -> nobody'] is False  # the ping helper does not answer yes to everything
    assert result['read'] == {
        'root/v-net-0': ['bridge', None, True, None, ['192.168.15.5/24']],
        'root/veth-red-br': ['veth', 'v-net-0', True, ['red', 'veth-red'], []],
        'red/veth-red': ['veth', None, True, [None, 'veth-red-br'], ['192.168.15.1/24']],
        'blue/veth-blue': ['veth', None, True, [None, 'veth-blue-br'], ['192.168.15.2/24']],
    }
    assert result['second'] == UNCHANGED


def a_stale_namespace_entry_is_deleted_and_made_again(result, topology):
    converge(topology)
    sh('umount /run/netns/blue')  # nothing holds blue: it goes, and veth-blue-br with it
    wait_gone('veth-blue-br')
    result['listed'] = namespaces()
    result['ip -n blue'] = rc('ip -n blue link show')
    state = read(topology)  # told stale by /run/netns/blue being no mount point any more
    result['stale'] = sorted(state.stale)
    result['read'] = sorted(ns for ns in state.links if ns is not None)
    result['repair'] = converge(topology)
    result['red -> blue'] = ping('red', '192.168.15.2')
    result['again'] = converge(topology)
    sh('umount /run/netns/red')
    wait_gone('veth-red-br')
    result['absent'] = converge(dict(topology, state='absent'))
    result['namespaces after absent'] = namespaces()
    result['links after absent'] = sorted(links())


def test_a_stale_namespace_entry_is_deleted_and_made_again(netns_scenario):
    result = netns_scenario(a_stale_namespace_entry_is_deleted_and_made_again, topology=BRIDGED)

    assert result['listed'] == ['blue', 'red']
    assert result['ip -n blue'] != 0  # "setting the network namespace "blue" failed: Invalid argument"
    assert result['stale'] == ['blue']
    assert result['read'] == ['red']  # a stale entry is never read
    assert result['repair'] == {'commands': ['ip netns del blue', 'ip netns add blue', 'ip -n blue link set lo up'] +
                                BLUE_PAIR_COMMANDS}
    assert result['red -> blue'] is True
    assert result['again'] == UNCHANGED
    assert result['absent'] == {'commands': ['ip -n blue link del veth-blue', 'ip link del v-net-0',
                                             'ip netns del red', 'ip netns del blue']}
    assert result['namespaces after absent'] == []
    assert result['links after absent'] == ['lo']


def a_namespace_deleted_while_held_is_repaired_when_its_links_are_owned(result, topology, owned):
    converge(topology)
    hold('red')
    sh('ip netns del red')
    result['listed'] = namespaces()
    result['kept by the holder'] = 'veth-red-br' in links()
    result['not owned'] = converge(topology)
    result['repair'] = converge(dict(topology, owned=owned))
    result['red -> blue'] = ping('red', '192.168.15.2')
    result['red -> bridge'] = ping('red', '192.168.15.5')
    result['again'] = converge(dict(topology, owned=owned))
    hold('blue')
    sh('ip netns del blue')
    result['absent'] = converge(dict(topology, state='absent', owned=owned))
    result['links after absent'] = sorted(links())
    result['namespaces after absent'] = namespaces()


def test_a_namespace_deleted_while_held_is_repaired_when_its_links_are_owned(netns_scenario):
    # `ip netns del red` while a process still runs in red: red lives on,
    # unnamed, and veth-red-br's peer is in it. Only links the caller made
    # (owned) may then be replaced.
    owned = [{'name': 'v-net-0'}, {'name': 'veth-red-br'}, {'name': 'veth-blue-br'}]
    result = netns_scenario(a_namespace_deleted_while_held_is_repaired_when_its_links_are_owned, topology=BRIDGED,
                            owned=owned)

    assert result['listed'] == ['blue']
    assert result['kept by the holder'] is True
    error = ("veth_pairs[0].peer.name: 'veth-red-br' already exists in the root namespace and is not a veth paired "
             "with 'veth-red'; choose another name (the lab replaces only its own pairs there)")
    assert result['not owned'] == {'refused': [error]}
    assert result['repair'] == {'commands': [
        'ip netns add red',
        'ip -n red link set lo up',
        'ip link del veth-red-br',  # and its peer in the unnamed namespace
        'ip link add veth-red netns red type veth peer name veth-red-br',
        'ip link set veth-red-br master v-net-0',
        'ip -n red addr add 192.168.15.1/24 dev veth-red',
        'ip -n red link set veth-red up',
        'ip link set veth-red-br up',
    ]}
    assert result['red -> blue'] is result['red -> bridge'] is True
    assert result['again'] == UNCHANGED
    assert result['absent'] == {'commands': [
        'ip -n red link del veth-red', 'ip link del veth-blue-br', 'ip link del v-net-0', 'ip netns del red']}
    assert result['links after absent'] == ['lo']
    assert result['namespaces after absent'] == []


def a_foreign_bridge_is_refused_and_a_student_built_one_taken_over(result, topology):
    # A caller that keeps a record of what it made (a lab engine) passes owned, here empty.
    topology = dict(topology, owned=[])
    sh('ip link add v-net-0 type bridge && ip addr add 10.99.0.1/24 dev v-net-0 && ip link set v-net-0 up')
    result['foreign'] = converge(topology)
    # What the lesson has students type: the bridge and its address, by hand.
    sh('ip addr flush dev v-net-0 && ip addr add 192.168.15.5/24 dev v-net-0')
    result['student'] = converge(topology)
    result['red -> bridge'] = ping('red', '192.168.15.5')
    # An address added since, on a bridge the caller did not record as its own...
    sh('ip addr add 10.99.0.1/24 dev v-net-0')
    result['not owned'] = converge(topology)
    # ...and on one it did.
    result['owned'] = converge(dict(topology, owned=[{'name': 'v-net-0'}]))
    result['bridge at the end'] = addresses(None, 'v-net-0')


def test_a_foreign_bridge_is_refused_and_a_student_built_one_taken_over(netns_scenario):
    result = netns_scenario(a_foreign_bridge_is_refused_and_a_student_built_one_taken_over, topology=BRIDGED)

    error = ("bridges[0].name: 'v-net-0' already exists in the root namespace with 10.99.0.1/24, which this topology "
             "does not declare; it was not made here: remove it (ip link del v-net-0) or choose another name")
    assert result['foreign'] == {'refused': [error]}
    assert [c for c in result['student']['commands'] if 'v-net-0' in c] == [
        'ip link set veth-red-br master v-net-0', 'ip link set veth-blue-br master v-net-0']
    assert result['red -> bridge'] is True
    error = ("bridges[0].name: 'v-net-0' already exists in the root namespace with 192.168.15.5/24, 10.99.0.1/24, "
             "of which this topology does not declare 10.99.0.1/24; it was not made here: remove it "
             "(ip link del v-net-0) or choose another name")
    assert result['not owned'] == {'refused': [error]}
    assert result['owned'] == {'commands': ['ip addr del 10.99.0.1/24 dev v-net-0']}
    assert result['bridge at the end'] == ['192.168.15.5/24']


MACS = {'v-net-0': '02:42:c0:a8:0f:05', 'veth-red': '02:42:c0:a8:0f:01', 'veth-red-br': '02:42:c0:a8:0f:81',
        'veth-blue': '02:42:c0:a8:0f:02', 'veth-blue-br': '02:42:c0:a8:0f:82'}


def links_created_again_by_a_repair_keep_their_mac_addresses(result, topology, other_mac):
    where = [(None, 'v-net-0'), ('red', 'veth-red'), (None, 'veth-red-br'),
             ('blue', 'veth-blue'), (None, 'veth-blue-br')]
    result['first'] = converge(topology)
    result['created'] = macs(*where)
    result['red -> blue'] = ping('red', '192.168.15.2')
    result['red has blue at'] = neighbour('red', '192.168.15.2')
    sh('ip link del veth-blue-br')  # takes veth-blue along
    result['repair'] = converge(topology)
    result['after the repair'] = macs(*where)
    result['red -> blue, same ARP entry'] = ping('red', '192.168.15.2', timeout=1)
    result['red still has blue at'] = neighbour('red', '192.168.15.2')
    sh('ip link del v-net-0')
    result['bridge repair'] = converge(topology)
    result['after the bridge repair'] = macs(*where)
    result['another MAC declared for an existing link'] = converge(other_mac)
    result['at the end'] = macs(*where)


def test_links_created_again_by_a_repair_keep_their_mac_addresses(netns_scenario):
    topology = copy.deepcopy(BRIDGED)
    topology['bridges'][0]['mac'] = MACS['v-net-0']
    for end in topology['veth_pairs']:
        end['mac'] = MACS[end['name']]
        end['peer']['mac'] = MACS[end['peer']['name']].upper()  # any case; the kernel is given lower case
    other_mac = with_args(topology)
    other_mac['veth_pairs'][0]['mac'] = '02:42:c0:a8:0f:99'
    result = netns_scenario(links_created_again_by_a_repair_keep_their_mac_addresses, topology=topology,
                            other_mac=other_mac)

    assert 'ip link add v-net-0 address 02:42:c0:a8:0f:05 type bridge' in result['first']['commands']
    assert 'ip link add veth-red address 02:42:c0:a8:0f:01 netns red type veth peer name veth-red-br ' \
        'address 02:42:c0:a8:0f:81' in result['first']['commands']
    declared = {'root/v-net-0': MACS['v-net-0'], 'red/veth-red': MACS['veth-red'],
                'root/veth-red-br': MACS['veth-red-br'], 'blue/veth-blue': MACS['veth-blue'],
                'root/veth-blue-br': MACS['veth-blue-br']}
    assert result['created'] == declared
    assert result['red -> blue'] is True
    assert result['red has blue at'] == MACS['veth-blue']
    assert result['repair']['commands'] == [
        'ip link add veth-blue address 02:42:c0:a8:0f:02 netns blue type veth peer name veth-blue-br '
        'address 02:42:c0:a8:0f:82'] + BLUE_PAIR_COMMANDS[1:]
    assert result['after the repair'] == declared
    assert result['red -> blue, same ARP entry'] is True
    assert result['red still has blue at'] == MACS['veth-blue']
    assert result['bridge repair']['commands'] == [
        'ip link add v-net-0 address 02:42:c0:a8:0f:05 type bridge', 'ip link set veth-red-br master v-net-0',
        'ip link set veth-blue-br master v-net-0', 'ip addr add 192.168.15.5/24 dev v-net-0',
        'ip link set v-net-0 up']
    assert result['after the bridge repair'] == declared
    assert result['another MAC declared for an existing link'] == UNCHANGED  # never changed on an existing link
    assert result['at the end'] == declared


def prefix_zero_and_default_are_the_same_route(result, as_prefix, as_default):
    result['as prefix'] = converge(as_prefix)
    result['blue routes'] = routes('blue')
    result['blue IPv6 routes'] = routes('blue', 6)
    result['as prefix again'] = converge(as_prefix)
    result['as default'] = plan(as_default)  # nothing run
    sh('ip -n red route add 0.0.0.0/0 via 192.168.15.5')  # by hand, the other way round
    result['red routes'] = routes('red')
    result['as default, red by hand'] = converge(as_default)
    result['red routes at the end'] = routes('red')


def test_prefix_zero_and_default_are_the_same_route(netns_scenario):
    topology = copy.deepcopy(BRIDGED)
    topology['bridges'][0]['addresses'].append('fd00:15::5/64')
    topology['veth_pairs'][1]['addresses'].append('fd00:15::2/64')
    as_prefix = with_args(topology, routes=[{'namespace': 'blue', 'dst': '0.0.0.0/0', 'via': '192.168.15.5'},
                                            {'namespace': 'blue', 'dst': '::/0', 'via': 'fd00:15::5'}])
    as_default = with_args(topology, routes=[{'namespace': 'blue', 'dst': 'default', 'via': '192.168.15.5'},
                                             {'namespace': 'blue', 'dst': 'default', 'via': 'fd00:15::5'},
                                             {'namespace': 'red', 'dst': 'default', 'via': '192.168.15.5'}])
    result = netns_scenario(prefix_zero_and_default_are_the_same_route, as_prefix=as_prefix, as_default=as_default)

    assert result['as prefix']['commands'][-2:] == ['ip -n blue route add default via 192.168.15.5',
                                                    'ip -n blue -6 route add default via fd00:15::5']
    assert 'default via 192.168.15.5 dev veth-blue' in result['blue routes']
    assert any(r.startswith('default via fd00:15::5 dev veth-blue') for r in result['blue IPv6 routes'])
    assert result['as prefix again'] == UNCHANGED
    assert result['as default'] == {'commands': ['ip -n red route add default via 192.168.15.5']}
    assert result['red routes'][0] == 'default via 192.168.15.5 dev veth-red'
    assert result['as default, red by hand'] == UNCHANGED
    assert result['red routes at the end'] == result['red routes']


def absent_removes_everything_it_built(result, topology):
    converge(topology)
    result['absent'] = converge(dict(topology, state='absent'))
    result['namespaces'] = namespaces()
    result['links'] = sorted(links())
    result['routes'] = routes() + routes(family=6)
    result['again'] = converge(dict(topology, state='absent'))


def test_absent_removes_everything_it_built(netns_scenario):
    topology = with_args(BRIDGED, routes=[{'namespace': 'blue', 'dst': '10.20.0.0/16', 'via': '192.168.15.5'}])
    result = netns_scenario(absent_removes_everything_it_built, topology=topology)

    assert result['absent'] == {'commands': [
        'ip -n blue route del 10.20.0.0/16 via 192.168.15.5',
        'ip -n red link del veth-red',
        'ip -n blue link del veth-blue',
        'ip link del v-net-0',
        'ip netns del red',
        'ip netns del blue',
    ]}
    assert result['namespaces'] == []
    assert result['links'] == ['lo']
    assert result['routes'] == []
    assert result['again'] == UNCHANGED
