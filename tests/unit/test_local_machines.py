# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""cka.lab.local_machines (plugins/action/local_machines.py): which local lab machines are usable as declared,
and which are missing, stopped or another checkout's, from one `podman ps --all --format json`.

The role's own runs are tests/roles/test_lab_machines_bad_input.py (bad declarations, podman a test double)
and tests/live/test_classroom.py (machines made with another checkout's key, with real Podman)."""

import pytest

from ansible_collections.cka.lab.plugins.action.local_machines import (KEY_LABEL, declaration_problems, sort_machines,
                                                                      subnet_problem)

SUBNET = '10.213.0.0/24'
KEY = '/work/lab/.lab/id_ed25519'


def container(name, state='running', key=KEY + '.pub'):
    """One entry of `podman ps --all --format json` as Podman 4 prints it (the fields read)."""
    labels = {'io.github.cka-lab.machine': 'true'}
    if key is not None:
        labels[KEY_LABEL] = key
    return {'Names': [name], 'State': state, 'Labels': labels}


def test_usable_machines_have_no_problem():
    assert declaration_problems([('a', '10.213.0.10', KEY), ('b', '10.213.0.254', KEY)], SUBNET) == []


@pytest.mark.parametrize('address, why', [
    ('10.213.1.5', 'outside the subnet'),
    ('10.213.0.1', 'the Podman gateway'),
    ('lab-machine.example', 'a host name'),
    ('fd00::5', 'IPv6'),
    ('010.213.0.5', 'leading zeros (ambiguous)'),
    ('10.213.0.0', 'the network address'),
    ('10.213.0.255', 'the broadcast address'),
    (None, 'unset'),
])
def test_an_unusable_address_is_named_with_what_is_allowed(address, why):
    problems = declaration_problems([('pytest-a', address, KEY)], SUBNET)

    assert problems == ["ansible_host of pytest-a: '%s' is not usable; allowed: an IPv4 address inside "
                        "lab_machines_network_subnet (10.213.0.0/24) other than its first address, which is the "
                        "Podman gateway, and its network and broadcast addresses." % (address or '(unset)')], why


def test_every_problem_is_named_at_once():
    problems = declaration_problems([('a', '10.213.0.9', None), ('b', '10.213.0.9', KEY), ('c', '10.9.0.1', KEY),
                                     ('d', ('!', "'room' is undefined"), KEY), ('e', None, KEY), ('f', None, KEY)],
                                    SUBNET)

    assert problems == [
        'ansible_ssh_private_key_file of a is not set; allowed: a path where the project keeps (or creates) the key '
        'the machines accept for root.',
        "ansible_host of c: '10.9.0.1' is not usable; allowed: an IPv4 address inside lab_machines_network_subnet "
        "(10.213.0.0/24) other than its first address, which is the Podman gateway, and its network and broadcast "
        "addresses.",
        "ansible_host of d cannot be rendered: 'room' is undefined",
        "ansible_host of e: '(unset)' is not usable; allowed: an IPv4 address inside lab_machines_network_subnet "
        "(10.213.0.0/24) other than its first address, which is the Podman gateway, and its network and broadcast "
        "addresses.",
        "ansible_host of f: '(unset)' is not usable; allowed: an IPv4 address inside lab_machines_network_subnet "
        "(10.213.0.0/24) other than its first address, which is the Podman gateway, and its network and broadcast "
        "addresses.",
        'ansible_host: a and b share the address 10.213.0.9; allowed: one distinct address per machine.']


@pytest.mark.parametrize('subnet, why', [
    ('10.213.0.0/24', None),
    ('10.213.0.0/30', None),
    ('10.213.0.10/32', 'has no room for the gateway and a machine'),
    ('10.213.0.0/31', 'has no room for the gateway and a machine'),
    ('10.213.0.5/24', 'is not usable'),  # host bits set
    ('fd00::/64', 'is not usable'),
    ('10.213.0.0/33', 'is not usable'),
    ('abc', 'is not usable'),
])
def test_the_subnet_must_be_an_ipv4_network_with_room_for_machines(subnet, why):
    problem = subnet_problem(subnet)
    if why is None:
        assert problem is None
    else:
        assert problem == "lab_machines_network_subnet: '%s' %s; allowed: an IPv4 network address with a prefix " \
                          "length of at most 30, such as 10.213.0.0/24" % (subnet, why)


def test_machines_are_sorted_into_missing_stopped_and_foreign():
    listed = [container('running-own'), container('stopped-own', state='exited'),
              container('running-other', key='/elsewhere/.lab/id_ed25519.pub'), container('unlabelled', key=None),
              container('not-asked')]
    machines = [(name, KEY + '.pub') for name in ('absent', 'running-own', 'stopped-own', 'running-other',
                                                  'unlabelled')]

    assert sort_machines(listed, machines) == {
        'missing': ['absent', 'stopped-own'],
        'stopped': ['stopped-own'],
        'foreign': ['running-other (made with /elsewhere/.lab/id_ed25519.pub)',
                    'unlabelled (made with an unrecorded key)'],
    }


def test_nothing_listed_means_every_machine_is_missing():
    assert sort_machines([], [('a', KEY), ('b', KEY)]) == {'missing': ['a', 'b'], 'stopped': [], 'foreign': []}
