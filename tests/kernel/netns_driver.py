# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one kernel test's scenario INSIDE a throwaway network+mount namespace.

conftest.py starts it with ../sandbox_run.py as

    unshare --net --mount --propagation private -- \\
        sh -c 'umount -l /run/netns; mount -t tmpfs tmpfs /run && exec PYTHON netns_driver.py MODULE FUNCTION PARAMS'

so the "root namespace" topology.py works on is the test's own network
namespace (only ``lo``), and /run/netns lives on a tmpfs nobody else sees.
The driver refuses to run anywhere else. The scenario is the function
FUNCTION of the test module MODULE, called as ``FUNCTION(result, **params)``
(``params`` from the JSON file PARAMS); it imports what it uses from this
module: the helpers below (``converge``, ``read`` and the kernel's view of what
they made) and those of ../sandbox.py (sh, rc, ip_json, namespaces, links,
ping, hold). Whatever it stores in ``result`` is printed as one JSON line for
the test to check (see sandbox.run_scenario).
"""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tests/, for `import sandbox` however this file is run or imported
    sys.path.insert(0, os.path.dirname(HERE))
from sandbox import hold, ip_json, links, namespaces, ping, rc, run_scenario, sh  # noqa: E402

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.cka.lab.plugins.module_utils.topology import (  # noqa: E402
    IpCommandError,
    TopologyError,
    command_string,
    parse_topology,
    plan_absent,
    plan_present,
    read_state,
)

RESULT_MARK = 'NETNS-DRIVER-RESULT '
# The helpers of ../sandbox.py every driver gives its scenarios, which import them from here (with this
# driver's own, below, by name).
__all__ = ['hold', 'ip_json', 'links', 'namespaces', 'ping', 'rc', 'sh']


# --------------------------------------------------------------------------
# topology.py, as the lab engine runs it
# --------------------------------------------------------------------------

def run(argv):
    """The `run` topology.py reads and changes the kernel through: the command as given
    (``ip`` or ``bridge`` from PATH), LC_ALL=C, as lab_state runs the engine's commands."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=dict(os.environ, LC_ALL='C'))
    return proc.returncode, proc.stdout, proc.stderr


def read(params):
    """The state topology.py reads for the topology `params` (read_state, stale entries
    told by whether /run/netns/NAME is a mount point)."""
    return read_state(run, parse_topology(params))


def _planned(params):
    """(planner or None, outcome): see converge()."""
    topology = parse_topology(params)
    state = read_state(run, topology)
    try:
        planner = plan_present(topology, state) if topology.state == 'present' else plan_absent(topology, state)
    except TopologyError as exc:
        return None, {'refused': exc.errors}
    return planner, {'commands': [command_string(argv) for argv in planner.commands]}


def plan(params):
    """What converge(params) would run, running nothing."""
    return _planned(params)[1]


def converge(params):
    """What the lab engine does with a topology (Engine.topology, then apply_planner):
    parse_topology, read_state, plan_present or plan_absent, then every planned
    command in order, the first that fails raising IpCommandError.

    {'commands': [...]} as people read them, or {'refused': errors} when planning
    refuses what it found (nothing is run then). Parameters parse_topology refuses
    raise TopologyError: tests/unit checks those, no kernel needed."""
    planner, outcome = _planned(params)
    for argv in planner.commands if planner is not None else []:
        status, out, err = run(argv)
        if status != 0:
            raise IpCommandError(argv, status, out, err)
    return outcome


# --------------------------------------------------------------------------
# The kernel's own view, for scenarios
# --------------------------------------------------------------------------

def addresses(namespace, name):
    """Addresses of a link in CIDR form, IPv6 link-local ones left out."""
    prefix = ['-n', namespace] if namespace else []
    return ['%s/%s' % (a['local'], a['prefixlen'])
            for item in ip_json(*prefix, '-j', 'addr', 'show', 'dev', name) for a in item.get('addr_info', [])
            if not (a['family'] == 'inet6' and a['local'].startswith('fe80:'))]


def routes(namespace=None, family=4):
    """Main-table routes as `ip route` prints them, IPv6 link-local prefixes left out."""
    prefix = (['-n', namespace] if namespace else []) + (['-6'] if family == 6 else [])
    lines = sh(' '.join(['ip'] + prefix + ['route', 'show'])).splitlines()
    return [' '.join(line.split()) for line in lines if not line.startswith('fe80::')]


def neighbour(namespace, address):
    """The link-layer address `namespace` has cached for `address`, or None."""
    for item in ip_json('-n', namespace, '-j', 'neigh', 'show', address):
        return item.get('lladdr')
    return None


def wait_gone(name, namespace=None, timeout=3.0):
    """Wait until a link has gone: a namespace is torn down asynchronously, its veths with it."""
    deadline = time.monotonic() + timeout
    while name in links(namespace):
        if time.monotonic() > deadline:
            raise AssertionError('%s did not go away' % name)
        time.sleep(0.02)


def macs(*where):
    """{"NS/NAME": mac} for (namespace, name) pairs; namespace None is the test's root namespace."""
    return {'%s/%s' % (ns or 'root', name): links(ns)[name][1] for ns, name in where}


def vxlan(namespace, name):
    """A vxlan's settings as the kernel has them: {vni, dev, local, dstport, learning, mtu}, or None."""
    prefix = ['-n', namespace] if namespace else []
    for item in ip_json(*prefix, '-d', '-j', 'link', 'show', 'dev', name):
        info = item.get('linkinfo') or {}
        if info.get('info_kind') != 'vxlan':
            return None
        data = info.get('info_data') or {}
        return {'vni': data.get('id'), 'dev': data.get('link'), 'local': data.get('local') or data.get('local6'),
                'dstport': data.get('port'), 'learning': data.get('learning'), 'mtu': item.get('mtu')}
    return None


def flood_list(namespace, name):
    """The `dst` of a vxlan's all-zeros FDB entries (its remote VTEPs), sorted."""
    prefix = '-n %s ' % namespace if namespace else ''
    out = sh('bridge %s-j fdb show dev %s' % (prefix, name))
    entries = json.loads(out) if out.strip() else []
    return sorted(e['dst'] for e in entries if e.get('mac') == '00:00:00:00:00:00' and e.get('dst'))


def main():
    run_scenario('netns_driver', RESULT_MARK)


if __name__ == '__main__':
    main()
