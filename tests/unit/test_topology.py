# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Unit tests of module_utils/topology.py (the lab engine's topology: parsing, reading, planning), its plans
run against the iproute2 test double (fake_iproute) by the fixtures of conftest.py."""

import copy

import pytest

import fake_iproute

from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import IFNAME_RULE, LINK_NAME_RULE, NETNS_RULE
from ansible_collections.cka.lab.plugins.module_utils.topology import (
    IpCommandError,
    TopologyError,
    command_string,
    parse_topology,
    read_state,
)
from fake_iproute import FakeIproute


def bridged_pair(color, address, master='v-net-0'):
    return {'name': 'veth-' + color, 'namespace': color, 'addresses': [address],
            'peer': {'name': 'veth-%s-br' % color, 'master': master}}


# Lesson 202: four namespaces on the bridge v-net-0 of the host, plus a
# "lan" namespace standing for another host of the LAN 192.168.1.0/24, which
# the host reaches through veth-lan-br (192.168.1.2, the host's LAN address).
LESSON_202 = {
    'namespaces': [{'name': name} for name in ('red', 'blue', 'orange', 'purple', 'lan')],
    'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.5/24']}],
    'veth_pairs': [
        bridged_pair('red', '192.168.15.1/24'),
        bridged_pair('blue', '192.168.15.2/24'),
        bridged_pair('orange', '192.168.15.3/24'),
        bridged_pair('purple', '192.168.15.4/24'),
        {'name': 'veth-lan', 'namespace': 'lan', 'addresses': ['192.168.1.3/24'],
         'peer': {'name': 'veth-lan-br', 'addresses': ['192.168.1.2/24']}},
    ],
    'routes': [
        {'namespace': 'blue', 'dst': '192.168.1.0/24', 'via': '192.168.15.5'},
        {'namespace': 'blue', 'dst': 'default', 'via': '192.168.15.5'},
        {'namespace': 'lan', 'dst': '192.168.15.0/24', 'via': '192.168.1.2'},
    ],
}

LESSON_202_COMMANDS = [
    'ip netns add red',
    'ip netns add blue',
    'ip netns add orange',
    'ip netns add purple',
    'ip netns add lan',
    'ip -n red link set lo up',
    'ip -n blue link set lo up',
    'ip -n orange link set lo up',
    'ip -n purple link set lo up',
    'ip -n lan link set lo up',
    'ip link add v-net-0 type bridge',
    'ip link add veth-red netns red type veth peer name veth-red-br',
    'ip link add veth-blue netns blue type veth peer name veth-blue-br',
    'ip link add veth-orange netns orange type veth peer name veth-orange-br',
    'ip link add veth-purple netns purple type veth peer name veth-purple-br',
    'ip link add veth-lan netns lan type veth peer name veth-lan-br',
    'ip link set veth-red-br master v-net-0',
    'ip link set veth-blue-br master v-net-0',
    'ip link set veth-orange-br master v-net-0',
    'ip link set veth-purple-br master v-net-0',
    'ip addr add 192.168.15.5/24 dev v-net-0',
    'ip -n red addr add 192.168.15.1/24 dev veth-red',
    'ip -n blue addr add 192.168.15.2/24 dev veth-blue',
    'ip -n orange addr add 192.168.15.3/24 dev veth-orange',
    'ip -n purple addr add 192.168.15.4/24 dev veth-purple',
    'ip -n lan addr add 192.168.1.3/24 dev veth-lan',
    'ip addr add 192.168.1.2/24 dev veth-lan-br',
    'ip link set v-net-0 up',
    'ip -n red link set veth-red up',
    'ip link set veth-red-br up',
    'ip -n blue link set veth-blue up',
    'ip link set veth-blue-br up',
    'ip -n orange link set veth-orange up',
    'ip link set veth-orange-br up',
    'ip -n purple link set veth-purple up',
    'ip link set veth-purple-br up',
    'ip -n lan link set veth-lan up',
    'ip link set veth-lan-br up',
    'ip -n blue route add 192.168.1.0/24 via 192.168.15.5',
    'ip -n blue route add default via 192.168.15.5',
    'ip -n lan route add 192.168.15.0/24 via 192.168.1.2',
]

# The first stage of the lesson: red and blue joined directly, no bridge.
FIRST_STAGE = {
    'namespaces': [{'name': 'red'}, {'name': 'blue'}],
    'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
                    'peer': {'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['192.168.15.2/24']}}],
}

# Only the red part of lesson 202, for the repair tests.
RED_ON_BRIDGE = {
    'namespaces': [{'name': 'red'}],
    'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.5/24']}],
    'veth_pairs': [bridged_pair('red', '192.168.15.1/24')],
}

RED_ON_BRIDGE_LINKS_UP = [
    'ip addr add 192.168.15.5/24 dev v-net-0',
    'ip -n red addr add 192.168.15.1/24 dev veth-red',
    'ip link set v-net-0 up',
    'ip -n red link set veth-red up',
    'ip link set veth-red-br up',
]


def link(kind, addresses=(), master=None, peer=None, up=True):
    return {'kind': kind, 'up': up, 'master': master, 'peer': peer, 'addresses': list(addresses)}


HOST_ONLY = FakeIproute().snapshot()  # what the machine has before any lab


def with_args(base, **changes):
    args = copy.deepcopy(base)
    args.update(changes)
    return args


def refusal(run, *args):
    """The errors of the TopologyError that run(*args) raises."""
    with pytest.raises(TopologyError) as caught:
        run(*args)
    return caught.value.errors


@pytest.fixture
def lesson(fake, converge):
    """The lesson-202 topology already converged."""
    assert converge(LESSON_202) == LESSON_202_COMMANDS
    return fake


# --------------------------------------------------------------------------
# Creating, and converging again
# --------------------------------------------------------------------------

def test_creates_lesson_202_from_nothing(fake, converge):
    commands = converge(LESSON_202)

    assert commands == LESSON_202_COMMANDS
    state = fake.snapshot()
    assert state['blue'] == {
        'links': {
            'lo': link(None, ['127.0.0.1/8', '::1/128']),
            'veth-blue': link('veth', ['192.168.15.2/24'], peer='root/veth-blue-br'),
        },
        'routes': [
            'default via 192.168.15.5 dev veth-blue',
            '192.168.1.0/24 via 192.168.15.5 dev veth-blue',
            '192.168.15.0/24 dev veth-blue',
        ],
    }
    assert state['lan']['routes'] == ['192.168.1.0/24 dev veth-lan', '192.168.15.0/24 via 192.168.1.2 dev veth-lan']
    root = state[None]['links']
    assert root['v-net-0'] == link('bridge', ['192.168.15.5/24'])
    assert root['veth-red-br'] == link('veth', master='v-net-0', peer='red/veth-red')
    assert root['veth-lan-br'] == link('veth', ['192.168.1.2/24'], peer='lan/veth-lan')
    assert root['eth0'] == HOST_ONLY[None]['links']['eth0']


def test_second_run_changes_nothing(lesson, converge):
    assert converge(LESSON_202) == []


def test_reads_with_json_before_planning_and_plans_argv_lists(fake, converge):
    converge(FIRST_STAGE)

    # Namespaces, then the root namespace's links and routes; red and blue do not exist yet.
    assert fake.calls[:4] == [['ip', '-j', 'netns', 'list'], ['ip', '-j', '-d', 'addr', 'show'],
                              ['ip', '-j', 'route', 'show'], ['ip', 'netns', 'add', 'red']]
    # Each command an argv list naming `ip` (the engine puts the binary's path in), no shell.
    assert all(isinstance(argv, list) and argv[0] == 'ip' for argv in fake.calls)


def test_first_stage_joins_two_namespaces_directly(fake, converge):
    commands = converge(FIRST_STAGE)

    assert commands == [
        'ip netns add red',
        'ip netns add blue',
        'ip -n red link set lo up',
        'ip -n blue link set lo up',
        'ip link add veth-red netns red type veth peer name veth-blue netns blue',
        'ip -n red addr add 192.168.15.1/24 dev veth-red',
        'ip -n blue addr add 192.168.15.2/24 dev veth-blue',
        'ip -n red link set veth-red up',
        'ip -n blue link set veth-blue up',
    ]
    state = fake.snapshot()
    assert state['red']['links']['veth-red'] == link('veth', ['192.168.15.1/24'], peer='blue/veth-blue')
    assert state['blue']['links']['veth-blue'] == link('veth', ['192.168.15.2/24'], peer='red/veth-red')
    assert state[None] == HOST_ONLY[None]
    assert converge(FIRST_STAGE) == []


@pytest.mark.parametrize('namespace', [None, 'red'])
def test_pair_with_both_ends_in_one_namespace(fake, converge, namespace):
    # iproute2 names the peer ("link") instead of giving its index here.
    args = {'namespaces': [{'name': 'red'}],
            'veth_pairs': [{'name': 'veth-a', 'namespace': namespace, 'addresses': ['10.5.0.1/30'],
                            'peer': {'name': 'veth-b', 'namespace': namespace, 'addresses': ['10.6.0.1/30']}}]}
    netns = [] if namespace is None else ['netns', namespace]

    commands = converge(args)

    assert ' '.join(['ip', 'link', 'add', 'veth-a'] + netns + ['type', 'veth', 'peer', 'name', 'veth-b'] + netns) \
        in commands
    assert fake.snapshot()[namespace]['links']['veth-a']['peer'] == '%s/veth-b' % (namespace or 'root')
    assert converge(args) == []


def test_pairs_between_namespaces_are_told_apart_by_netnsid(fake, converge):
    # Every end below gets ifindex 2 in its namespace and points at ifindex 2:
    # only link_netnsid tells which namespace the peer is in.
    args = with_args(FIRST_STAGE, namespaces=[{'name': n} for n in ('red', 'blue', 'orange', 'purple')])
    args['veth_pairs'].append({'name': 'veth-orange', 'namespace': 'orange', 'addresses': ['192.168.16.1/24'],
                               'peer': {'name': 'veth-purple', 'namespace': 'purple',
                                        'addresses': ['192.168.16.2/24']}})
    converge(args)

    assert converge(args) == []


def test_ipv6_addresses_and_routes(fake, converge):
    args = copy.deepcopy(FIRST_STAGE)
    args['veth_pairs'][0]['addresses'].append('fd00:15::1/64')
    args['veth_pairs'][0]['peer']['addresses'].append('fd00:15::2/64')
    args['routes'] = [{'namespace': 'blue', 'dst': 'fd00:99::/64', 'via': 'fd00:15::1'}]

    commands = converge(args)

    assert commands[-1] == 'ip -n blue -6 route add fd00:99::/64 via fd00:15::1'
    assert fake.snapshot()['blue']['routes'] == [
        '192.168.15.0/24 dev veth-blue', 'fd00:15::/64 dev veth-blue', 'fd00:99::/64 via fd00:15::1 dev veth-blue']
    # The kernel added fe80:: addresses when the links came up: left alone.
    assert converge(args) == []


# --------------------------------------------------------------------------
# Updating and repairing
# --------------------------------------------------------------------------

def test_updates_address_route_gateway_and_masters(lesson, converge):
    args = copy.deepcopy(LESSON_202)
    args['bridges'].append({'name': 'v-net-1'})
    args['veth_pairs'][0]['addresses'] = ['192.168.15.11/24']
    args['veth_pairs'][2]['peer']['master'] = 'v-net-1'
    args['veth_pairs'][3]['peer']['master'] = None
    args['routes'][0]['via'] = '192.168.15.6'

    commands = converge(args)

    assert commands == [
        'ip link add v-net-1 type bridge',
        'ip link set veth-orange-br master v-net-1',
        'ip link set veth-purple-br nomaster',
        'ip -n red addr del 192.168.15.1/24 dev veth-red',
        'ip -n red addr add 192.168.15.11/24 dev veth-red',
        'ip link set v-net-1 up',
        'ip -n blue route replace 192.168.1.0/24 via 192.168.15.6',
    ]
    state = lesson.snapshot()
    assert state['red']['links']['veth-red']['addresses'] == ['192.168.15.11/24']
    assert state[None]['links']['veth-orange-br']['master'] == 'v-net-1'
    assert state[None]['links']['veth-purple-br']['master'] is None
    assert '192.168.1.0/24 via 192.168.15.6 dev veth-blue' in state['blue']['routes']
    assert converge(args) == []


def test_routes_survive_a_change_of_the_address_they_depend_on(lesson, converge):
    # Deleting blue's only address makes the kernel drop blue's routes.
    args = copy.deepcopy(LESSON_202)
    args['veth_pairs'][1]['addresses'] = ['192.168.15.12/24']

    commands = converge(args)

    assert commands == [
        'ip -n blue addr del 192.168.15.2/24 dev veth-blue',
        'ip -n blue addr add 192.168.15.12/24 dev veth-blue',
        'ip -n blue route replace 192.168.1.0/24 via 192.168.15.5',
        'ip -n blue route replace default via 192.168.15.5',
    ]
    assert lesson.snapshot()['blue']['routes'] == [
        'default via 192.168.15.5 dev veth-blue',
        '192.168.1.0/24 via 192.168.15.5 dev veth-blue',
        '192.168.15.0/24 dev veth-blue',
    ]
    assert converge(args) == []


def test_removing_a_primary_address_keeps_the_declared_secondary(fake, converge):
    args = copy.deepcopy(FIRST_STAGE)
    args['veth_pairs'][0]['addresses'] = ['192.168.15.1/24', '192.168.15.7/24']
    converge(args)
    args['veth_pairs'][0]['addresses'] = ['192.168.15.7/24']

    commands = converge(args)

    assert commands == [
        'ip -n red addr del 192.168.15.7/24 dev veth-red',
        'ip -n red addr del 192.168.15.1/24 dev veth-red',
        'ip -n red addr add 192.168.15.7/24 dev veth-red',
    ]
    assert fake.snapshot()['red']['links']['veth-red']['addresses'] == ['192.168.15.7/24']
    assert converge(args) == []


def test_repairs_a_pair_with_one_end_missing(fake, converge):
    # Interrupted run: veth-red exists in red, but its peer is not veth-red-br.
    fake.setup('netns add red', 'link add veth-red netns red type veth peer name veth0')

    commands = converge(RED_ON_BRIDGE)

    assert commands == [
        'ip -n red link set lo up',
        'ip link add v-net-0 type bridge',
        'ip -n red link del veth-red',
        'ip link add veth-red netns red type veth peer name veth-red-br',
        'ip link set veth-red-br master v-net-0',
    ] + RED_ON_BRIDGE_LINKS_UP
    root = fake.snapshot()[None]['links']
    assert 'veth0' not in root
    assert root['veth-red-br'] == link('veth', master='v-net-0', peer='red/veth-red')
    assert converge(RED_ON_BRIDGE) == []


def test_repairs_a_pair_left_in_the_root_namespace(fake, converge):
    # Interrupted run: the pair was made in the root namespace and veth-red
    # was never moved into red.
    fake.setup('netns add red', 'link add veth-red type veth peer name veth-red-br')

    commands = converge(RED_ON_BRIDGE)

    assert commands == [
        'ip -n red link set lo up',
        'ip link add v-net-0 type bridge',
        'ip link del veth-red',  # the stray end; takes veth-red-br, its peer, along
        'ip link add veth-red netns red type veth peer name veth-red-br',
        'ip link set veth-red-br master v-net-0',
    ] + RED_ON_BRIDGE_LINKS_UP
    state = fake.snapshot()
    assert 'veth-red' not in state[None]['links']
    assert state['red']['links']['veth-red'] == link('veth', ['192.168.15.1/24'], peer='root/veth-red-br')


def test_leaves_an_unrelated_root_veth_of_the_same_name_alone(fake, converge):
    # veth-red in the root namespace pairs with tmp0, not with veth-red-br: it is
    # somebody else's, and the declared veth-red lives in namespace red anyway.
    fake.setup('netns add red', 'link add veth-red type veth peer name tmp0')

    commands = converge(RED_ON_BRIDGE)

    assert 'ip link del veth-red' not in commands
    assert {'veth-red', 'tmp0', 'veth-red-br'} <= set(fake.snapshot()[None]['links'])
    assert 'veth-red' in fake.snapshot()['red']['links']


def test_never_deletes_the_root_interface_a_namespace_end_is_named_after(fake, converge):
    # A lab machine's eth0 is a veth whose peer is on the host, in a namespace
    # with no name here. A LAN host namespace whose end is also called eth0
    # must leave it alone: it is the link Ansible reaches the machine through.
    fake.setup('netns add outside', 'link del eth0', 'link add eth0 type veth peer name host0 netns outside')
    fake.unname('outside')
    args = {'namespaces': [{'name': 'lan-host'}],
            'veth_pairs': [{'name': 'lan0', 'addresses': ['192.168.1.2/24'],
                            'peer': {'name': 'eth0', 'namespace': 'lan-host', 'addresses': ['192.168.1.3/24']}}]}

    commands = converge(args)

    assert not [c for c in commands if 'del' in c]
    assert 'eth0' in fake.snapshot()[None]['links']
    assert converge(args) == []


@pytest.mark.parametrize('args, path', [
    ({'bridges': [{'name': 'eth0'}]}, 'bridges[0].name'),
    ({'namespaces': [{'name': 'red'}],
      'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'peer': {'name': 'eth0'}}]}, 'veth_pairs[0].peer.name'),
])
def test_refuses_to_take_over_a_root_interface_it_does_not_own(fake, converge, args, path):
    fake.setup('link del eth0', 'link add eth0 type dummy')

    [error] = refusal(converge, args)

    assert error.startswith("%s: 'eth0' already exists in the root namespace " % path)


def test_repairs_crossed_pairs(fake, converge):
    fake.setup('netns add red', 'netns add blue',
               'link add veth-red netns red type veth peer name veth-blue-br',
               'link add veth-blue netns blue type veth peer name veth-red-br')
    args = with_args(LESSON_202, namespaces=[{'name': 'red'}, {'name': 'blue'}], routes=[],
                     veth_pairs=LESSON_202['veth_pairs'][:2])

    commands = converge(args)

    assert [c for c in commands if ' del ' in c or ' add veth' in c] == [
        'ip -n red link del veth-red',  # takes veth-blue-br along
        'ip link del veth-red-br',  # takes veth-blue along
        'ip link add veth-red netns red type veth peer name veth-red-br',
        'ip link add veth-blue netns blue type veth peer name veth-blue-br',
    ]
    assert converge(args) == []


def test_bridge_inside_a_namespace(fake, converge):
    args = {'namespaces': [{'name': 'lab'}],
            'bridges': [{'name': 'br0', 'namespace': 'lab', 'addresses': ['10.30.0.1/24']}],
            'veth_pairs': [{'name': 'veth-host', 'addresses': ['10.30.0.2/24'],
                            'peer': {'name': 'veth-host-br', 'namespace': 'lab', 'master': 'br0'}}],
            'routes': [{'namespace': 'lab', 'dst': 'default', 'via': '10.30.0.2', 'dev': 'br0', 'metric': 10}]}

    commands = converge(args)

    assert commands == [
        'ip netns add lab',
        'ip -n lab link set lo up',
        'ip -n lab link add br0 type bridge',
        'ip link add veth-host type veth peer name veth-host-br netns lab',
        'ip -n lab link set veth-host-br master br0',
        'ip -n lab addr add 10.30.0.1/24 dev br0',
        'ip addr add 10.30.0.2/24 dev veth-host',
        'ip -n lab link set br0 up',
        'ip link set veth-host up',
        'ip -n lab link set veth-host-br up',
        'ip -n lab route add default via 10.30.0.2 dev br0 metric 10',
    ]
    assert fake.snapshot()['lab']['routes'] == ['default via 10.30.0.2 dev br0 metric 10', '10.30.0.0/24 dev br0']
    assert converge(args) == []


def test_replaces_a_link_of_another_kind_named_like_a_bridge_in_its_namespace(fake, converge):
    fake.setup('netns add lab', 'link add v-net-0 netns lab type dummy')

    commands = converge({'namespaces': [{'name': 'lab'}], 'bridges': [{'name': 'v-net-0', 'namespace': 'lab'}]})

    assert commands == ['ip -n lab link set lo up', 'ip -n lab link del v-net-0',
                        'ip -n lab link add v-net-0 type bridge', 'ip -n lab link set v-net-0 up']
    assert fake.snapshot()['lab']['links']['v-net-0']['kind'] == 'bridge'


# --------------------------------------------------------------------------
# Removing
# --------------------------------------------------------------------------

LESSON_202_ABSENT_COMMANDS = [
    'ip -n blue route del 192.168.1.0/24 via 192.168.15.5',
    'ip -n blue route del default via 192.168.15.5',
    'ip -n lan route del 192.168.15.0/24 via 192.168.1.2',
    'ip -n red link del veth-red',
    'ip -n blue link del veth-blue',
    'ip -n orange link del veth-orange',
    'ip -n purple link del veth-purple',
    'ip -n lan link del veth-lan',
    'ip link del v-net-0',
    'ip netns del red',
    'ip netns del blue',
    'ip netns del orange',
    'ip netns del purple',
    'ip netns del lan',
]


def test_absent_removes_everything_declared(lesson, converge):
    commands = converge(with_args(LESSON_202, state='absent'))

    assert commands == LESSON_202_ABSENT_COMMANDS
    assert lesson.snapshot() == HOST_ONLY


def test_absent_from_a_partial_state(lesson, converge):
    lesson.setup('netns del orange', 'link del veth-blue-br', 'link del veth-lan-br')

    commands = converge(with_args(LESSON_202, state='absent'))

    assert commands == [
        'ip -n red link del veth-red',
        'ip -n purple link del veth-purple',
        'ip link del v-net-0',
        'ip netns del red',
        'ip netns del blue',
        'ip netns del purple',
        'ip netns del lan',
    ]
    assert lesson.snapshot() == HOST_ONLY


def test_absent_is_idempotent(lesson, converge):
    converge(with_args(LESSON_202, state='absent'))

    assert converge(with_args(LESSON_202, state='absent')) == []


def test_absent_keeps_an_end_of_the_same_name_that_belongs_to_another_pair(fake, converge):
    # The first stage's cable veth-red<->veth-blue shares the name veth-red with the
    # bridged pair veth-red<->veth-red-br; removing the bridged pair leaves the cable.
    fake.setup('netns add red', 'netns add blue',
               'link add veth-red netns red type veth peer name veth-blue netns blue')
    bridged = {'namespaces': [{'name': 'red'}],
               'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'peer': {'name': 'veth-red-br'}}],
               'state': 'absent'}

    assert converge(dict(bridged, namespaces=[])) == []
    assert 'veth-red' in fake.snapshot()['red']['links']


def test_absent_on_an_empty_machine(fake, converge):
    assert converge(with_args(LESSON_202, state='absent')) == []


# --------------------------------------------------------------------------
# Things the topology does not declare
# --------------------------------------------------------------------------

def test_undeclared_objects_are_never_touched(lesson, converge):
    lesson.setup(
        # Root namespace: look-alike names, an extra link with an address, an extra route.
        'link add veth-red-br2 type veth peer name veth-red2',
        'link add v-net-00 type bridge',
        'link add extra0 type dummy', 'addr add 10.9.0.1/24 dev extra0', 'link set extra0 up',
        'route add 10.10.0.0/16 via 10.9.0.254')
    # In a declared namespace: an extra link, address and route.
    lesson.setup('-n blue link add extra1 type dummy', '-n blue addr add 10.8.0.1/24 dev extra1',
                 '-n blue link set extra1 up', '-n blue route add 10.11.0.0/16 via 10.8.0.254')
    before = lesson.snapshot()

    assert converge(LESSON_202) == []
    assert lesson.snapshot() == before

    converge(with_args(LESSON_202, state='absent'))
    root = lesson.snapshot()[None]
    assert set(root['links']) == {'lo', 'eth0', 'veth-red-br2', 'veth-red2', 'v-net-00', 'extra0'}
    assert root['links']['extra0'] == link('dummy', ['10.9.0.1/24'])
    assert root['routes'] == ['default via 10.0.2.2 dev eth0', '10.0.2.0/24 dev eth0', '10.9.0.0/24 dev extra0',
                              '10.10.0.0/16 via 10.9.0.254 dev extra0']


def test_addresses_on_declared_links_are_exact(lesson, converge):
    lesson.setup('-n red addr add 192.168.15.99/24 dev veth-red', 'addr add 10.7.0.1/24 dev veth-red-br')

    commands = converge(LESSON_202)

    assert commands == ['ip -n red addr del 192.168.15.99/24 dev veth-red', 'ip addr del 10.7.0.1/24 dev veth-red-br']


def test_routes_that_are_not_declared_stay(lesson, converge):
    lesson.setup('-n blue route add 10.12.0.0/16 via 192.168.15.1')
    args = with_args(LESSON_202, routes=LESSON_202['routes'][1:])

    assert converge(args) == []
    assert '10.12.0.0/16 via 192.168.15.1 dev veth-blue' in lesson.snapshot()['blue']['routes']
    assert '192.168.1.0/24 via 192.168.15.5 dev veth-blue' in lesson.snapshot()['blue']['routes']


# --------------------------------------------------------------------------
# The planner's model of the kernel
# --------------------------------------------------------------------------

@pytest.mark.parametrize('setup', [
    pytest.param(('netns add red', 'link add veth-red type veth peer name veth-red-br'), id='pair left in root'),
    pytest.param(('netns add red', 'netns add blue', 'link add veth-red netns red type veth peer name veth-blue-br',
                  'link add veth-blue netns blue type veth peer name veth-red-br'), id='crossed pairs'),
])
def test_every_planned_command_runs_from_a_partial_state(fake, converge, plan, setup):
    # The planner follows the side effects of its own commands (a deleted end takes its peer
    # along): a command planned for a link already gone would fail against the test double.
    fake.setup(*setup)

    converge(LESSON_202)

    assert plan(LESSON_202) == []
    assert fake.snapshot()[None]['links']['veth-red-br']['peer'] == 'red/veth-red'


# --------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------

def test_a_failing_read_is_reported_with_its_command_and_error(fake, monkeypatch):
    def refuse(*args):
        raise fake_iproute.IpError(1, 'Error: something broke.')
    monkeypatch.setattr(fake, '_show_routes', refuse)

    with pytest.raises(IpCommandError) as caught:
        read_state(fake, parse_topology(FIRST_STAGE))

    assert str(caught.value) == 'ip -j route show failed with rc 1: Error: something broke.'
    assert (caught.value.rc, caught.value.stderr) == (1, 'Error: something broke.\n')


def test_an_unreadable_read_is_reported(fake, monkeypatch):
    monkeypatch.setattr(fake, '_show_netns', lambda viewer: 'not json')

    with pytest.raises(IpCommandError) as caught:
        read_state(fake, parse_topology(FIRST_STAGE))

    assert command_string(caught.value.argv) == 'ip -j netns list'
    assert 'cannot parse the JSON output' in str(caught.value)


@pytest.mark.parametrize('args, errors', [
    pytest.param(
        {'bridges': [{'name': 'a-very-long-bridge-name'}, {'name': 'fifteen-chars-0'}]},
        ["bridges[0].name: 'a-very-long-bridge-name' is not a valid link name; " + LINK_NAME_RULE],
        id='interface name too long'),
    pytest.param(
        {'veth_pairs': [{'name': 'veth:0', 'peer': {'name': 'a b'}}],
         'bridges': [{'name': '..'}, {'name': 'lo'}, {'name': 'br\u00fccke'}, {'name': 'lo0'}]},
        ["bridges[0].name: '..' is not a valid link name; " + LINK_NAME_RULE,
         "bridges[1].name: 'lo' is not a valid link name; " + LINK_NAME_RULE,
         "bridges[2].name: 'br\u00fccke' is not a valid link name; " + LINK_NAME_RULE,
         "veth_pairs[0].name: 'veth:0' is not a valid link name; " + LINK_NAME_RULE,
         "veth_pairs[0].peer.name: 'a b' is not a valid link name; " + LINK_NAME_RULE],
        id='interface name characters'),
    pytest.param(
        {'routes': [{'dst': '10.0.0.0/8', 'dev': 'lo'}, {'dst': '10.1.0.0/16', 'dev': 'a b'},
                    {'dst': '10.2.0.0/16', 'dev': 'x' * 16}]},
        ["routes[1].dev: 'a b' is not a valid interface name; " + IFNAME_RULE,
         "routes[2].dev: '%s' is not a valid interface name; %s" % ('x' * 16, IFNAME_RULE)],
        id='a route may go out by lo'),
    pytest.param(
        {'namespaces': [{'name': 'a/b'}, {'name': '.'}, {'name': 'x y'}, {'name': 'n' * 65}, {'name': 'n' * 64},
                        {'name': '-red'}]},
        ["namespaces[0].name: 'a/b' is not a valid namespace name; " + NETNS_RULE,
         "namespaces[1].name: '.' is not a valid namespace name; " + NETNS_RULE,
         "namespaces[2].name: 'x y' is not a valid namespace name; " + NETNS_RULE,
         "namespaces[3].name: '%s' is not a valid namespace name; %s" % ('n' * 65, NETNS_RULE),
         "namespaces[5].name: '-red' is not a valid namespace name; " + NETNS_RULE],
        id='namespace names'),
    pytest.param(
        {'namespaces': [{'name': 'red'}, {'name': 'blue'}, {'name': 'red'}]},
        ["namespaces[2].name: 'red' is declared twice (also namespaces[0].name); namespace names must be unique"],
        id='duplicate namespace'),
    pytest.param(
        {'namespaces': [{'name': 'red'}], 'bridges': [{'name': 'br0', 'namespace': 'red'}, {'name': 'br0'}],
         'veth_pairs': [{'name': 'br0', 'namespace': 'red', 'peer': {'name': 'v1'}},
                        {'name': 'v1', 'peer': {'name': 'v2', 'namespace': 'red'}}]},
        ["veth_pairs[0].name: 'br0' is already declared in namespace 'red' by bridges[0].name; "
         "interface names must be unique within a namespace",
         "veth_pairs[1].name: 'v1' is already declared in the root namespace by veth_pairs[0].peer.name; "
         "interface names must be unique within a namespace"],
        id='duplicate interface in a namespace'),
    pytest.param(
        {'namespaces': [{'name': 'red'}, {'name': 'blue'}],
         'bridges': [{'name': 'br0', 'namespace': 'green'}],
         'veth_pairs': [{'name': 'v0', 'namespace': 'red', 'peer': {'name': 'v1', 'namespace': 'pink'}}],
         'routes': [{'namespace': 'gray', 'dst': 'default', 'dev': 'v0'}]},
        ["bridges[0].namespace: 'green' is not a namespace declared in namespaces (declared: red, blue); "
         "use null for the root namespace",
         "veth_pairs[0].peer.namespace: 'pink' is not a namespace declared in namespaces (declared: red, blue); "
         "use null for the root namespace",
         "routes[0].namespace: 'gray' is not a namespace declared in namespaces (declared: red, blue); "
         "use null for the root namespace"],
        id='undeclared namespace'),
    pytest.param(
        {'namespaces': [{'name': 'red'}], 'bridges': [{'name': 'v-net-0'}, {'name': 'br-red', 'namespace': 'red'}],
         'veth_pairs': [{'name': 'v0', 'namespace': 'red', 'master': 'v-net-0', 'peer': {'name': 'v1'}},
                        {'name': 'v2', 'namespace': 'red', 'peer': {'name': 'v3', 'master': 'v-net-9'}},
                        {'name': 'v4', 'master': 'v3', 'peer': {'name': 'v5'}}]},
        ["veth_pairs[0].master: 'v-net-0' is not a bridge declared in namespace 'red' (declared there: br-red)",
         "veth_pairs[1].peer.master: 'v-net-9' is not a bridge declared in the root namespace "
         "(declared there: v-net-0)",
         "veth_pairs[2].master: 'v3' is not a bridge declared in the root namespace (declared there: v-net-0)"],
        id='master'),
    pytest.param(
        {'bridges': [{'name': 'br0', 'addresses': ['192.168.15.1', '192.168.15.300/24', 'abc/24', '10.0.0.1/33']}]},
        ["bridges[0].addresses[%d]: '%s' is not an interface address in CIDR form; "
         "use ADDRESS/PREFIXLEN such as 192.168.15.1/24 or fd00::1/64" % (i, a)
         for i, a in enumerate(['192.168.15.1', '192.168.15.300/24', 'abc/24', '10.0.0.1/33'])],
        id='address syntax'),
    pytest.param(
        {'namespaces': [{'name': 'red'}],
         'bridges': [{'name': 'br0', 'addresses': ['192.168.15.1/24']}],
         'veth_pairs': [{'name': 'v0', 'namespace': 'red', 'addresses': ['192.168.15.1/25'], 'peer': {'name': 'v1'}}]},
        ['veth_pairs[0].addresses[0]: IP 192.168.15.1 is already declared at bridges[0].addresses[0]; '
         'each IP may be declared once'],
        id='same IP twice'),
    pytest.param(
        {'bridges': [{'name': 'br0', 'addresses': ['192.168.15.5/24', '192.168.15.6/24']}],
         'veth_pairs': [{'name': 'v0', 'addresses': ['192.168.15.129/25'], 'peer': {'name': 'v1'}}]},
        ['veth_pairs[0].addresses[0]: subnet 192.168.15.128/25 overlaps 192.168.15.0/24 of bridges[0].addresses[0] '
         'on another link in the root namespace; links in one namespace need separate subnets',
         'veth_pairs[0].addresses[0]: subnet 192.168.15.128/25 overlaps 192.168.15.0/24 of bridges[0].addresses[1] '
         'on another link in the root namespace; links in one namespace need separate subnets'],
        id='overlapping subnets'),
    pytest.param(
        {'routes': [{'dst': '192.168.1.5/24', 'via': '10.0.2.2'}, {'dst': 'nowhere', 'via': '10.0.2.2'}]},
        ["routes[0].dst: '192.168.1.5/24' is not a network address (host bits set; the network is 192.168.1.0/24); "
         "use a network such as 192.168.1.0/24 or the word 'default'",
         "routes[1].dst: 'nowhere' is not a network in CIDR form; "
         "use a network such as 192.168.1.0/24 or the word 'default'"],
        id='route dst'),
    pytest.param(
        {'routes': [{'dst': 'default', 'via': 'gateway'}, {'dst': '10.1.0.0/16'},
                    {'dst': '10.2.0.0/16', 'via': 'fd00::1'}]},
        ["routes[0].via: 'gateway' is not an IP address; use a gateway address such as 192.168.15.5",
         'routes[1]: has neither via nor dev; give a gateway (via), an output link (dev), or both',
         'routes[2].via: fd00::1 is IPv6 but dst 10.2.0.0/16 is IPv4; '
         'a gateway must be of the family of its destination'],
        id='route via'),
    pytest.param(
        {'routes': [{'dst': 'default', 'via': '10.0.2.2'}, {'dst': 'default', 'via': '10.0.2.3', 'metric': 0},
                    {'dst': 'default', 'via': '10.0.2.3', 'metric': 100}]},
        ['routes[1]: duplicates routes[0] (same namespace, dst and metric); '
         'the kernel keeps one route per destination and metric'],
        id='duplicate route'),
    pytest.param(
        {'namespaces': [{'name': 'blue'}],
         'veth_pairs': [{'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['192.168.15.2/24'],
                         'peer': {'name': 'veth-blue-br'}}],
         'routes': [{'namespace': 'blue', 'dst': 'default', 'via': '192.168.16.5'},
                    {'namespace': 'blue', 'dst': '10.0.0.0/8', 'dev': 'eth0'},
                    {'namespace': 'blue', 'dst': '10.1.0.0/16', 'dev': 'lo'}]},
        ['routes[0].via: 192.168.16.5 is not inside any subnet declared on the links of namespace \'blue\' '
         '(declared: 192.168.15.0/24); the kernel would refuse this gateway',
         "routes[1].dev: 'eth0' is not a link declared in namespace 'blue' (declared there: veth-blue)"],
        id='route in a declared namespace'),
])
def test_validation_names_every_problem(args, errors):
    assert refusal(parse_topology, args) == errors


# --------------------------------------------------------------------------
# The test double itself: the kernel behaviour the tests rely on
# --------------------------------------------------------------------------

def test_fake_models_the_kernel_side_effects():
    fake = FakeIproute(uplink=False)
    assert fake(['ip', '-j', 'netns', 'list']) == (0, '', '')
    fake.setup('netns add red', 'link add a netns red type veth peer name b', 'addr add 10.1.0.1/24 dev b')
    assert fake(['ip', 'route', 'add', '10.2.0.0/16', 'via', '10.1.0.2']) == \
        (2, '', 'Error: Nexthop has invalid gateway.\n')  # b is down: no connected route yet
    fake.setup('link set b up', 'route add 10.2.0.0/16 via 10.1.0.2')
    assert fake.snapshot()[None]['routes'] == ['10.1.0.0/24 dev b', '10.2.0.0/16 via 10.1.0.2 dev b']

    fake.setup('-n red link del a')
    assert fake.snapshot()[None] == {'links': {'lo': link(None, ['127.0.0.1/8', '::1/128'])}, 'routes': []}

    fake.setup('link add c netns red type veth peer name d')
    fake.setup('netns del red')
    assert fake.snapshot() == {None: {'links': {'lo': link(None, ['127.0.0.1/8', '::1/128'])}, 'routes': []}}
    assert fake.mutations == ['ip route add 10.2.0.0/16 via 10.1.0.2']  # setup() lines are not recorded
    assert fake(['ip', 'link', 'del', 'd']) == (1, '', 'Cannot find device "d"\n')
    assert fake.mutations == ['ip route add 10.2.0.0/16 via 10.1.0.2', 'ip link del d']


def test_refuses_a_root_route_whose_gateway_is_on_no_connected_network(plan):
    args = {'namespaces': [{'name': 'green'}],
            'bridges': [{'name': 'br-green', 'addresses': ['10.70.0.1/24']}],
            'routes': [{'dst': '10.71.0.0/24', 'via': '10.99.0.1'}]}

    assert refusal(plan, args) == [
        'routes[0].via: 10.99.0.1 is in no subnet of the root namespace (10.0.2.0/24, 10.70.0.0/24, 127.0.0.0/8); '
        'the gateway must be on a connected network']


def test_a_root_route_through_a_declared_bridge_address_is_planned(converge):
    args = {'bridges': [{'name': 'br-green', 'addresses': ['10.70.0.1/24']}],
            'routes': [{'dst': '10.71.0.0/24', 'via': '10.70.0.254'}]}

    assert converge(args)[-1] == 'ip route add 10.71.0.0/24 via 10.70.0.254'
