# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Run the lab engine (module_utils/lab_engine.py) against the real kernel, inside a throwaway namespace.

Each scenario runs in a fresh ``unshare --net --mount --propagation private``
with a private tmpfs on /run (so /run/netns exists only there) and another on
a temporary work directory, which holds the lab's record (in place of
/var/lib/cka-lab) and its files (in place of /srv). iptables rules and sysctls
set there belong to the test's own network namespace. The driver
(engine_driver.py) refuses to run if it finds itself in this process's network
or mount namespace. After every test the host is checked: no namespace file,
interface, mount, iptables rule of a lab, sysctl or file the scenario could
have made or changed may have appeared, gone or changed.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, 'engine_driver.py')
RESULT_MARK = 'ENGINE-DRIVER-RESULT '
# The host's own /run/netns (a container runtime's namespaces) is detached
# first, in the new mount namespace only: under the new /run it would stay in
# /proc/self/mountinfo, and mountpoint(1), which the engine asks before it
# unmounts /run/netns, would take the hidden mount for the lab's.
SANDBOX = ['unshare', '--net', '--mount', '--propagation', 'private', '--',
           'sh', '-c', '{ ! mountpoint -q /run/netns || umount -n -l /run/netns; } '
                       '&& mount -n -t tmpfs -o mode=0755 tmpfs /run '
                       '&& mount -n -t tmpfs -o mode=0755 tmpfs "$ENGINE_WORK" && exec "$@"', 'sh']
HOST_SYSCTLS = ('net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables')


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _lab_rules():
    """The host's iptables rules that carry a lab's mark (reading only)."""
    if shutil.which('iptables') is None:
        return []
    found = []
    for table in ('nat', 'filter'):
        proc = subprocess.run(['iptables', '-w', '-t', table, '-S'], capture_output=True, text=True, check=False)
        found += ['%s: %s' % (table, line) for line in proc.stdout.splitlines() if 'cka-lab' in line]
    return found


def _host_snapshot():
    netns = set(os.listdir('/run/netns')) if os.path.isdir('/run/netns') else set()
    with open('/proc/self/mountinfo') as handle:
        mounts = {line.split()[4] for line in handle}
    return {'/run/netns': netns, 'interfaces': set(os.listdir('/sys/class/net')), 'mounts': mounts,
            'lab rules': set(_lab_rules()),
            'sysctls': {name: _read('/proc/sys/' + name) for name in HOST_SYSCTLS},
            '/var/lib/cka-lab': os.path.exists('/var/lib/cka-lab') and sorted(os.listdir('/var/lib/cka-lab'))}


def _host_changes(before, after, texts, work):
    """What appeared, went or changed on the host that a scenario could have made.

    Other programs may add or remove their own namespaces, interfaces and
    mounts meanwhile: only names the scenarios use count, and any mount on
    /run or on the work directory."""
    def ours(kind, name):
        if kind == 'mounts':
            return name in ('/run', '/run/netns', work) or name.startswith(work + '/') or (
                name.startswith('/run/netns/') and ours('/run/netns', name[11:]))
        if kind == 'lab rules':
            return True
        return any(name in text for text in texts)

    changes = {}
    for kind in ('/run/netns', 'interfaces', 'mounts', 'lab rules'):
        changed = [('new', n) for n in sorted(after[kind] - before[kind]) if ours(kind, n)] + \
            [('gone', n) for n in sorted(before[kind] - after[kind]) if ours(kind, n)]
        if changed:
            changes[kind] = changed
    for kind in ('sysctls', '/var/lib/cka-lab'):
        if before[kind] != after[kind]:
            changes[kind] = (before[kind], after[kind])
    if os.listdir(work):
        changes['work directory'] = sorted(os.listdir(work))
    return changes


@pytest.fixture
def engine_scenario(tmp_path):
    """run(scenario, **params) -> the scenario's ``result`` dict.

    `scenario` is Python run by engine_driver.py inside a new network+mount
    namespace, with the driver's helpers (lab_machine, build, reset, rules,
    ping, ...) and `params` in scope. Skips when not root or when unshare is
    missing.
    """
    if os.geteuid() != 0:
        pytest.skip('engine kernel tests need root: they build a lab inside their own unshare sandbox '
                    '(a new network and mount namespace)')
    if shutil.which('unshare') is None:
        pytest.skip('engine kernel tests need the unshare command (util-linux) to make their sandbox')
    work = tmp_path / 'work'
    work.mkdir()
    before = _host_snapshot()
    env = dict(os.environ,
               ENGINE_WORK=str(work),
               ENGINE_DRIVER_HOST_NETNS=os.readlink('/proc/self/ns/net'),
               ENGINE_DRIVER_HOST_MNTNS=os.readlink('/proc/self/ns/mnt'))
    texts = []  # the scenarios and their parameters: every name they can make is in there
    count = [0]

    def run(scenario, **params):
        index = count[0]
        count[0] += 1
        scenario_path = tmp_path / ('scenario%d.py' % index)
        params_path = tmp_path / ('params%d.json' % index)
        scenario_path.write_text(textwrap.dedent(scenario))
        params_path.write_text(json.dumps(params))
        texts.extend([scenario, json.dumps(params), textwrap.dedent(open(DRIVER).read())])
        proc = subprocess.run(SANDBOX + [sys.executable, DRIVER, str(scenario_path), str(params_path)],
                              capture_output=True, text=True, env=env, timeout=90)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if proc.returncode != 0 or len(lines) != 1:
            raise AssertionError('the scenario failed (rc %d)\n--- stdout\n%s\n--- stderr\n%s'
                                 % (proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:]))
        return json.loads(lines[0][len(RESULT_MARK):])['result']

    yield run
    assert _host_changes(before, _host_snapshot(), texts, str(work)) == {}, 'the engine test changed the host'
