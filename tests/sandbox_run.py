# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Run a scenario driver (see sandbox.py) inside a throwaway namespace, and check the host after.

The conftest.py of tests/kernel and of tests/engine each make their fixture
with :func:`scenario_fixture` or :func:`scenario_runs`. A scenario is a
module-level function of a test module, which the driver imports and calls
in a fresh ``unshare --net --mount --propagation private`` with a private
tmpfs on /run (so /run/netns exists only there) and, for a driver that names
a work directory, another on that directory. The driver (sandbox.check_sandbox)
refuses to run if it finds itself in this process's network or mount
namespace. After every test the host is checked: no namespace file,
interface, mount, iptables rule of a lab, sysctl or file the scenarios could
have made or changed may have appeared, gone or changed.
"""

import inspect
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # for `import sandbox` however pytest imports this file
    sys.path.insert(0, HERE)
from sandbox import HOST_MNTNS, HOST_NETNS  # noqa: E402

HOST_SYSCTLS = ('net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables')


def sandbox_command(work_variable=None):
    """unshare's command line up to the driver's own (which is given to the shell as "$@").

    The host's own /run/netns (a container runtime's namespaces) is detached
    first, in the new mount namespace only: under the new /run it would stay in
    /proc/self/mountinfo, and mountpoint(1), which the engine asks before it
    unmounts /run/netns, would take the hidden mount for the lab's. With
    `work_variable`, the directory that environment variable names gets a
    tmpfs of its own too.
    """
    script = ('{ ! mountpoint -q /run/netns || umount -n -l /run/netns; } '
              '&& mount -n -t tmpfs -o mode=0755 tmpfs /run ')
    if work_variable:
        script += '&& mount -n -t tmpfs -o mode=0755 tmpfs "$%s" ' % work_variable
    return ['unshare', '--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', script + '&& exec "$@"', 'sh']


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


def host_snapshot():
    """What a scenario could change on the host if it ran there: names as sets, values as they are."""
    netns = set(os.listdir('/run/netns')) if os.path.isdir('/run/netns') else set()
    with open('/proc/self/mountinfo') as handle:
        mounts = {line.split()[4] for line in handle}
    return {'/run/netns': netns, 'interfaces': set(os.listdir('/sys/class/net')), 'mounts': mounts,
            'lab rules': set(_lab_rules()),
            'sysctls': {name: _read('/proc/sys/' + name) for name in HOST_SYSCTLS},
            '/var/lib/cka-lab': os.path.exists('/var/lib/cka-lab') and sorted(os.listdir('/var/lib/cka-lab'))}


def host_changes(before, after, texts, work=None):
    """What appeared, went or changed on the host that a scenario could have made.

    Other programs (a container runtime) may add or remove their own
    namespaces, interfaces and mounts meanwhile: only names the scenarios (or
    their driver) use count, and any mount on /run, /run/netns or the work
    directory."""
    def ours(kind, name):
        if kind == 'mounts':
            return name in ('/run', '/run/netns') or (work and (name == work or name.startswith(work + '/'))) or (
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
    if work and os.listdir(work):
        changes['work directory'] = sorted(os.listdir(work))
    return changes


def scenario_runs(tmp_path, driver, result_mark, suite, why_root, timeout, work_variable=None, data=None):
    """The body of a scenario fixture: yields run(scenario, **params) -> the scenario's ``result`` dict.

    `scenario` is a module-level function of a test module, ``scenario(result, **params)``: `driver`
    imports that module inside a new network+mount namespace and calls it there (its helpers imported
    from the driver module by name, as a linter reads them; `params` JSON values). Skips (saying `suite`
    tests need root: `why_root`) when not root or when unshare is missing. With `work_variable`, a new
    empty directory is named in that environment variable, mounted over in the sandbox, and must be
    empty again at the end. `data`, {environment variable: path}: files the driver reads, named to it in
    those variables. When the fixture ends the host must be as it was (see host_changes).
    """
    if os.geteuid() != 0:
        pytest.skip('%s tests need root: %s' % (suite, why_root))
    if shutil.which('unshare') is None:
        pytest.skip('%s tests need the unshare command (util-linux) to make their sandbox' % suite)
    env = dict(os.environ, **{HOST_NETNS: os.readlink('/proc/self/ns/net'),
                              HOST_MNTNS: os.readlink('/proc/self/ns/mnt')}, **(data or {}))
    work = None
    if work_variable:
        work = tmp_path / 'work'
        work.mkdir()
        env[work_variable] = str(work)
    before = host_snapshot()
    command = sandbox_command(work_variable)
    texts = []  # the driver, the test modules and the data: every name a scenario can make is in there
    for path in [driver] + list((data or {}).values()):
        with open(path) as handle:
            texts.append(handle.read())
    count = [0]

    def run(scenario, **params):
        if not inspect.isfunction(scenario) or scenario.__qualname__ != scenario.__name__:
            pytest.fail('a scenario is a module-level function of a test module, not %r' % (scenario,), pytrace=False)
        module = inspect.getsourcefile(scenario)
        params_path = tmp_path / ('params%d.json' % count[0])
        count[0] += 1
        params_path.write_text(json.dumps(params))
        with open(module) as handle:
            texts.extend([handle.read(), json.dumps(params)])
        proc = subprocess.run(command + [sys.executable, driver, module, scenario.__name__, str(params_path)],
                              capture_output=True, text=True, env=env, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith(result_mark)]
        if proc.returncode != 0 or len(lines) != 1:
            pytest.fail('the scenario failed (rc %d)\n--- stdout\n%s\n--- stderr\n%s'
                        % (proc.returncode, proc.stdout[-6000:], proc.stderr[-6000:]), pytrace=False)
        return json.loads(lines[0][len(result_mark):])['result']

    yield run
    assert host_changes(before, host_snapshot(), texts, work and str(work)) == {}, \
        'the %s test changed the host' % suite


def scenario_fixture(name, driver, result_mark, suite, why_root, timeout, work_variable=None, doc=None):
    """A pytest fixture `name` (documented by `doc`) that gives scenario_runs()'s run: see there."""
    def fixture(tmp_path):
        yield from scenario_runs(tmp_path, driver, result_mark, suite, why_root, timeout, work_variable)
    fixture.__name__ = fixture.__qualname__ = name
    fixture.__doc__ = doc
    return pytest.fixture(name=name)(fixture)
