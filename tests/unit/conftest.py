# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Fixtures to plan and converge topologies with module_utils/topology.py against the iproute2 test double."""

import os
import sys

import pytest

from ansible_collections.cka.lab.plugins.module_utils.topology import (
    IpCommandError,
    command_string,
    parse_topology,
    plan_absent,
    plan_present,
    read_state,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for `import fake_iproute` in any import mode
from fake_iproute import FakeIproute  # noqa: E402


@pytest.fixture
def fake():
    """A fresh test double of iproute2: only the root namespace with lo and an uplink eth0."""
    return FakeIproute()


def planned(run, params, stale=()):
    """The planner topology.py makes for `params` against `run`, as the lab engine's Engine.topology does:
    parse_topology, read_state, then plan_present or plan_absent. Names in `stale` are stale entries of
    `ip netns list` (read_state's is_mounted), every other one is mounted. Raises TopologyError."""
    topology = parse_topology(params)
    state = read_state(run, topology, is_mounted=lambda name: name not in stale)
    return plan_present(topology, state) if topology.state == 'present' else plan_absent(topology, state)


@pytest.fixture
def plan(fake):
    """plan(params, stale=()) -> the commands topology.py plans against `fake`, as people read them; none is run."""
    def plan_(params, stale=()):
        return [command_string(argv) for argv in planned(fake, params, stale).commands]
    return plan_


@pytest.fixture
def converge(fake):
    """converge(params, stale=()) -> the commands planned against `fake`, each then run by `fake` in order.

    A command that fails raises IpCommandError: the planner's model of the kernel
    (a veth end deleted with its peer, a route gone with its link) must agree with
    the test double's. (The engine's apply_planner also forgives `link del` of a
    device already gone; this does not.)"""
    def converge_(params, stale=()):
        commands = planned(fake, params, stale).commands
        for argv in commands:
            rc, out, err = fake(argv)
            if rc != 0:
                raise IpCommandError(argv, rc, out, err)
        return [command_string(argv) for argv in commands]
    return converge_


def pytest_configure(config):
    # checks/lab/test_lab.py, imported by test_lab_checks.py, marks its checks with the grader's own marker.
    config.addinivalue_line('markers', 'each(key): one check per element of a lab\'s exported list (checks/conftest.py)')
