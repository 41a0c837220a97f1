# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Run cka.lab.ip_topology against the real kernel, inside a throwaway namespace.

Each scenario runs in a fresh ``unshare --net --mount --propagation private``
with a private tmpfs on /run (so /run/netns exists only there); the driver
(netns_driver.py) refuses to run if it finds itself in this process's network
or mount namespace. After every test the host is checked: no namespace file,
interface or mount the test could have made may have appeared, nor gone.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, 'netns_driver.py')
RESULT_MARK = 'NETNS-DRIVER-RESULT '
SANDBOX = ['unshare', '--net', '--mount', '--propagation', 'private', '--',
           'sh', '-c', 'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', 'sh']


def _host_snapshot():
    """Named namespaces, interfaces and mount points of the host, each as a set of names."""
    netns = set(os.listdir('/run/netns')) if os.path.isdir('/run/netns') else set()
    with open('/proc/self/mountinfo') as handle:
        mounts = {line.split()[4] for line in handle}
    return {'/run/netns': netns, 'interfaces': set(os.listdir('/sys/class/net')), 'mounts': mounts}


def _host_changes(before, after, texts):
    """What appeared or went on the host that a scenario could have made or removed.

    Other programs (a container runtime) may add or remove their own
    namespaces and interfaces meanwhile: only names the scenario uses count,
    and any mount on /run itself.
    """
    def ours(kind, name):
        if kind == 'mounts':
            return name == '/run' or (name.startswith('/run/netns/') and ours('/run/netns', name[11:]))
        return any(name in text for text in texts)

    changes = {}
    for kind in before:
        changed = [('new', n) for n in sorted(after[kind] - before[kind]) if ours(kind, n)] + \
            [('gone', n) for n in sorted(before[kind] - after[kind]) if ours(kind, n)]
        if changed:
            changes[kind] = changed
    return changes


@pytest.fixture
def netns_scenario(tmp_path):
    """run(scenario, **params) -> the scenario's ``result`` dict.

    `scenario` is Python run by netns_driver.py inside a new network+mount
    namespace, with the driver's helpers (module, sh, ping, links, ...) and
    `params` in scope. Skips when not root or when unshare is missing.
    """
    if os.geteuid() != 0:
        pytest.skip('kernel tests need root: they make network namespaces inside their own unshare sandbox')
    if shutil.which('unshare') is None:
        pytest.skip('kernel tests need the unshare command (util-linux) to make their sandbox')
    before = _host_snapshot()
    env = dict(os.environ,
               NETNS_DRIVER_HOST_NETNS=os.readlink('/proc/self/ns/net'),
               NETNS_DRIVER_HOST_MNTNS=os.readlink('/proc/self/ns/mnt'))
    runs = []
    texts = []  # the scenarios and their parameters: every name they can make is in there

    def run(scenario, **params):
        index = len(runs)
        scenario_path = tmp_path / ('scenario%d.py' % index)
        params_path = tmp_path / ('params%d.json' % index)
        scenario_path.write_text(textwrap.dedent(scenario))
        params_path.write_text(json.dumps(params))
        texts.extend([scenario, json.dumps(params)])
        proc = subprocess.run(SANDBOX + [sys.executable, DRIVER, str(scenario_path), str(params_path)],
                              capture_output=True, text=True, env=env, timeout=60)
        runs.append(proc)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
        if proc.returncode != 0 or len(lines) != 1:
            pytest.fail('the scenario failed (rc %d)\n--- stdout\n%s\n--- stderr\n%s'
                        % (proc.returncode, proc.stdout, proc.stderr), pytrace=False)
        return json.loads(lines[0][len(RESULT_MARK):])['result']

    yield run
    assert _host_changes(before, _host_snapshot(), texts) == {}, 'the kernel test changed the host'
