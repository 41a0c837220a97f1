# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The options and repairs the kernel tests exercise (owned, mac, stale namespaces,
0.0.0.0/0 as default), checked with module_utils/topology.py at the planner level
against the iproute2 test double (the fixtures of conftest.py)."""

import pytest

from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import LINK_NAME_RULE, NETNS_RULE
from ansible_collections.cka.lab.plugins.module_utils.topology import (
    TopologyError,
    parse_topology,
    read_state,
)

RED_ON_BRIDGE = {
    'namespaces': [{'name': 'red'}],
    'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.5/24']}],
    'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
                    'peer': {'name': 'veth-red-br', 'master': 'v-net-0'}}],
}
RED_PAIR = [
    'ip link add veth-red netns red type veth peer name veth-red-br',
    'ip link set veth-red-br master v-net-0',
]


def refusal(plan, args):
    """The errors of the TopologyError that planning `args` raises."""
    with pytest.raises(TopologyError) as caught:
        plan(args)
    return caught.value.errors


# --------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------

def test_owned_and_mac_reach_the_topology():
    topology = parse_topology({
        'namespaces': [{'name': 'red'}],
        'bridges': [{'name': 'v-net-0', 'mac': ' 02:42:AC:11:00:05 '}],
        'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'mac': '02:42:ac:11:00:01',
                        'peer': {'name': 'veth-red-br', 'mac': '0A:00:00:00:00:01'}}],
        'owned': [{'name': 'veth-red-br'}, {'name': 'veth-red', 'namespace': 'red'},
                  {'name': 'old0', 'namespace': 'gone'}],
    })

    assert topology.owned == {(None, 'veth-red-br'), ('red', 'veth-red'), ('gone', 'old0')}
    assert topology.owns(None, 'veth-red-br') and not topology.owns(None, 'veth-red')
    assert [link.mac for link in topology.links] == ['02:42:ac:11:00:05', '02:42:ac:11:00:01', '0a:00:00:00:00:01']


MAC_RULE = ('use a unicast MAC address of six colon-separated hexadecimal octets, the first one even, '
            'such as 02:42:ac:11:00:02')


@pytest.mark.parametrize('args, errors', [
    pytest.param(
        {'bridges': [{'name': 'br0', 'mac': '02:42:ac:11:00'}, {'name': 'br1', 'mac': '01:00:5e:00:00:01'},
                     {'name': 'br2', 'mac': '00:00:00:00:00:00'}, {'name': 'br3', 'mac': '02-42-ac-11-00-02'}],
         'veth_pairs': [{'name': 'v0', 'mac': '02:42:ac:11:00:0g',
                         'peer': {'name': 'v1', 'mac': 'ff:ff:ff:ff:ff:ff'}}]},
        ["bridges[0].mac: '02:42:ac:11:00' is not a MAC address; " + MAC_RULE,
         "bridges[1].mac: '01:00:5e:00:00:01' is a multicast address (the first octet is odd); " + MAC_RULE,
         "bridges[2].mac: '00:00:00:00:00:00' is the all-zero address; " + MAC_RULE,
         "bridges[3].mac: '02-42-ac-11-00-02' is not a MAC address; " + MAC_RULE,
         "veth_pairs[0].mac: '02:42:ac:11:00:0g' is not a MAC address; " + MAC_RULE,
         "veth_pairs[0].peer.mac: 'ff:ff:ff:ff:ff:ff' is a multicast address (the first octet is odd); " + MAC_RULE],
        id='mac syntax'),
    pytest.param(
        {'bridges': [{'name': 'br0', 'mac': '02:42:ac:11:00:02'}],
         'veth_pairs': [{'name': 'v0', 'peer': {'name': 'v1', 'mac': '02:42:AC:11:00:02'}}]},
        ["veth_pairs[0].peer.mac: '02:42:ac:11:00:02' is already declared at bridges[0].mac; "
         "each MAC address may be declared once"],
        id='mac twice'),
    pytest.param(
        {'owned': [{'name': 'a b'}, {'name': 'veth-red-br', 'namespace': 'a/b'}, {'name': 'x' * 16},
                   {'name': 'lo'}]},
        ["owned[0].name: 'a b' is not a valid link name; " + LINK_NAME_RULE,
         "owned[1].namespace: 'a/b' is not a valid namespace name; " + NETNS_RULE,
         "owned[2].name: '%s' is not a valid link name; %s" % ('x' * 16, LINK_NAME_RULE),
         "owned[3].name: 'lo' is not a valid link name; " + LINK_NAME_RULE],
        id='owned'),
    pytest.param(
        {'routes': [{'dst': 'default', 'via': '10.0.2.2'}, {'dst': '0.0.0.0/0', 'via': '10.0.2.3'},
                    {'dst': '::/0', 'via': 'fd00::1'}, {'dst': 'default', 'via': 'fd00::2'}]},
        ['routes[1]: duplicates routes[0] (same namespace, dst and metric); '
         'the kernel keeps one route per destination and metric',
         'routes[3]: duplicates routes[2] (same namespace, dst and metric); '
         'the kernel keeps one route per destination and metric'],
        id='0.0.0.0/0 is default'),
])
def test_validation(args, errors):
    with pytest.raises(TopologyError) as caught:
        parse_topology(args)

    assert caught.value.errors == errors


# --------------------------------------------------------------------------
# owned
# --------------------------------------------------------------------------

@pytest.fixture
def deleted_red(fake):
    """`ip netns del red` while a process held it: red lives on without a name."""
    fake.setup('netns add red', 'link add v-net-0 type bridge', 'addr add 192.168.15.5/24 dev v-net-0',
               'link set v-net-0 up', 'link add veth-red netns red type veth peer name veth-red-br',
               'link set veth-red-br master v-net-0', 'link set veth-red-br up')
    fake.unname('red')
    return fake


def test_a_root_end_whose_peer_is_in_an_unnamed_namespace_is_refused_unless_owned(deleted_red, plan):
    assert refusal(plan, RED_ON_BRIDGE) == [
        "veth_pairs[0].peer.name: 'veth-red-br' already exists in the root namespace and is not a veth paired with "
        "'veth-red'; choose another name (the lab replaces only its own pairs there)"]

    commands = plan(dict(RED_ON_BRIDGE, owned=[{'name': 'veth-red-br'}]))

    assert commands == ['ip netns add red', 'ip -n red link set lo up', 'ip link del veth-red-br'] + RED_PAIR + [
        'ip -n red addr add 192.168.15.1/24 dev veth-red', 'ip -n red link set veth-red up',
        'ip link set veth-red-br up']


def test_an_owned_root_link_of_another_kind_is_replaced(fake, plan, converge):
    fake.setup('netns add red', 'link add veth-red-br type dummy', 'link add v-net-0 type dummy')
    args = dict(RED_ON_BRIDGE, owned=[{'name': 'veth-red-br'}, {'name': 'v-net-0'}])

    commands = converge(args)

    assert commands[:5] == ['ip -n red link set lo up', 'ip link del v-net-0', 'ip link add v-net-0 type bridge',
                            'ip link del veth-red-br'] + RED_PAIR[:1]
    assert plan(args) == []


def test_an_owned_root_interface_is_never_refused_as_foreign(fake, plan):
    # The test double's eth0 is a dummy with an address; a caller that says it made it gets it replaced.
    args = {'bridges': [{'name': 'eth0'}]}

    assert refusal(plan, args) == ["bridges[0].name: 'eth0' already exists in the root namespace as a dummy; "
                                   "choose another name (the lab replaces only its own bridges there)"]
    assert plan(dict(args, owned=[{'name': 'eth0'}])) == [
        'ip link del eth0', 'ip link add eth0 type bridge', 'ip link set eth0 up']


def test_owned_in_another_namespace_does_not_let_a_root_link_through(fake, plan):
    fake.setup('link del eth0', 'link add eth0 type dummy')

    assert refusal(plan, {'bridges': [{'name': 'eth0'}], 'owned': [{'name': 'eth0', 'namespace': 'red'}]})


def test_absent_deletes_an_owned_end_whose_peer_cannot_be_found(deleted_red, plan):
    absent = dict(RED_ON_BRIDGE, state='absent')

    assert plan(absent) == ['ip link del v-net-0']  # veth-red-br may be somebody else's
    assert plan(dict(absent, owned=[{'name': 'veth-red-br'}])) == [
        'ip link del veth-red-br', 'ip link del v-net-0']


def test_absent_keeps_an_owned_end_paired_with_another_name(fake, plan):
    fake.setup('netns add red', 'link add veth-red-br type veth peer name other0 netns red')
    absent = dict(RED_ON_BRIDGE, state='absent', owned=[{'name': 'veth-red-br'}])

    assert plan(absent) == ['ip netns del red']


# --------------------------------------------------------------------------
# Bridges found in the root namespace
# --------------------------------------------------------------------------

@pytest.mark.parametrize('setup, taken_over', [
    (['addr add 10.99.0.1/24 dev v-net-0'], False),
    (['addr add 192.168.15.5/24 dev v-net-0', 'addr add 10.99.0.1/24 dev v-net-0'], False),
    (['addr add 192.168.15.5/16 dev v-net-0'], False),  # same IP, another subnet
    ([], True),
    (['link set v-net-0 up'], True),  # only the kernel's fe80:: address
    (['addr add 192.168.15.5/24 dev v-net-0', 'link set v-net-0 up'], True),
])
def test_a_root_bridge_with_undeclared_addresses_is_refused(fake, plan, setup, taken_over):
    fake.setup('link add v-net-0 type bridge', *setup)

    if taken_over:
        assert 'ip link add v-net-0 type bridge' not in plan(dict(RED_ON_BRIDGE, owned=[]))
    else:
        [error] = refusal(plan, dict(RED_ON_BRIDGE, owned=[]))
        # Without a record of what the caller made (no owned at all), the addresses are made exact instead.
        assert [c for c in plan(RED_ON_BRIDGE) if c.startswith('ip addr del ') and c.endswith(' dev v-net-0')]
        assert error.startswith("bridges[0].name: 'v-net-0' already exists in the root namespace with ")
        assert error.endswith('; it was not made here: remove it (ip link del v-net-0) or choose another name')
        assert plan(dict(RED_ON_BRIDGE, owned=[{'name': 'v-net-0'}]))  # owned: taken over


def test_a_bridge_inside_a_declared_namespace_is_always_taken_over(fake, plan):
    fake.setup('netns add lab', '-n lab link add br0 type bridge', '-n lab addr add 10.99.0.1/24 dev br0')

    assert plan({'namespaces': [{'name': 'lab'}], 'bridges': [{'name': 'br0', 'namespace': 'lab'}]}) == [
        'ip -n lab link set lo up', 'ip -n lab addr del 10.99.0.1/24 dev br0', 'ip -n lab link set br0 up']


# --------------------------------------------------------------------------
# Stale namespace entries
# --------------------------------------------------------------------------

def test_a_stale_namespace_is_not_read_and_is_made_again(fake, plan, converge):
    fake.setup('netns add red', 'netns add blue')
    topology = parse_topology(RED_ON_BRIDGE)

    state = read_state(fake, topology, is_mounted=lambda name: name != 'red')

    assert state.stale == {'red'}
    assert state.namespaces == {'red', 'blue'}
    assert 'red' not in state.links
    assert not [argv for argv in fake.calls if '-n' in argv]
    commands = converge(RED_ON_BRIDGE, stale={'red'})
    assert commands[:3] == ['ip netns del red', 'ip netns add red', 'ip -n red link set lo up']
    assert plan(RED_ON_BRIDGE) == []


def test_absent_deletes_a_stale_namespace_without_reading_it(fake, plan):
    fake.setup('netns add red', 'netns add other')
    fake.calls.clear()

    assert plan(dict(RED_ON_BRIDGE, state='absent'), stale={'red', 'other'}) == ['ip netns del red']
    assert [argv for argv in fake.calls if '-n' in argv] == []  # absent reads every namespace, but no stale one


def test_the_default_check_looks_for_a_mount_on_run_netns(monkeypatch, tmp_path):
    from ansible_collections.cka.lab.plugins.module_utils import topology

    monkeypatch.setattr(topology, 'NETNS_RUN_DIR', str(tmp_path))
    (tmp_path / 'stale').write_text('')

    assert topology.netns_mounted('stale') is False  # a plain file: nothing mounted there
    assert topology.netns_mounted('gone') is True  # no file at all: not a stale entry
    monkeypatch.setattr(topology, 'NETNS_RUN_DIR', '/')
    assert topology.netns_mounted('proc') is True  # a mount point


# --------------------------------------------------------------------------
# mac
# --------------------------------------------------------------------------

def test_mac_is_given_only_when_the_link_is_created(fake, plan, converge):
    args = {'namespaces': [{'name': 'red'}, {'name': 'blue'}, {'name': 'lab'}],
            'bridges': [{'name': 'br0', 'namespace': 'lab', 'mac': '02:00:00:00:01:01'}],
            'veth_pairs': [{'name': 'a', 'namespace': 'red', 'mac': '02:00:00:00:01:02',
                            'peer': {'name': 'b', 'namespace': 'blue', 'mac': '02:00:00:00:01:03'}},
                           {'name': 'c', 'mac': '02:00:00:00:01:04', 'peer': {'name': 'd', 'namespace': 'lab'}}]}

    commands = plan(args)

    assert [c for c in commands if ' add ' in c and 'netns add' not in c] == [
        'ip -n lab link add br0 address 02:00:00:00:01:01 type bridge',
        'ip link add a address 02:00:00:00:01:02 netns red type veth peer name b address 02:00:00:00:01:03 netns blue',
        'ip link add c address 02:00:00:00:01:04 type veth peer name d netns lab',
    ]
    # Existing links keep whatever address they have (the test double gives 02:00:00:00:xx:xx ones).
    converge(dict(args, bridges=[{'name': 'br0', 'namespace': 'lab'}],
                        veth_pairs=[dict(pair, mac=None, peer=dict(pair['peer'], mac=None))
                                    for pair in args['veth_pairs']]))
    assert plan(args) == []


# --------------------------------------------------------------------------
# 0.0.0.0/0 and default
# --------------------------------------------------------------------------

@pytest.mark.parametrize('dst', ['0.0.0.0/0', 'default'])
def test_a_default_route_declared_either_way_matches_the_kernels(fake, plan, dst):
    # The test double's machine has "default via 10.0.2.2"; the kernel always prints "default".
    fake.setup('-6 route add default via fe80::1 dev eth0')

    assert plan({'routes': [{'dst': dst, 'via': '10.0.2.2'}]}) == []
    assert plan({'routes': [{'dst': '::/0' if dst != 'default' else dst, 'via': 'fe80::1', 'dev': 'eth0'}]}) \
        == []
    assert plan({'routes': [{'dst': dst, 'via': '10.0.2.3'}]}) == ['ip route replace default via 10.0.2.3']
