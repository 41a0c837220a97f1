# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one kernel test's scenario INSIDE a throwaway network+mount namespace.

conftest.py starts it with ../sandbox_run.py as

    unshare --net --mount --propagation private -- \\
        sh -c 'umount -l /run/netns; mount -t tmpfs tmpfs /run && exec PYTHON netns_driver.py SCENARIO PARAMS'

so the "root namespace" the module sees is the test's own network namespace
(only ``lo``), and /run/netns lives on a tmpfs nobody else sees. The driver
refuses to run anywhere else. SCENARIO is Python code executed with the
helpers below, those of ../sandbox.py (sh, rc, ip_json, namespaces, links,
ping, hold) and ``params`` (from the JSON file PARAMS) in scope; whatever it
stores in ``result`` is printed as one JSON line for the test to check (see
sandbox.run_scenario).
"""

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tests/, for `import sandbox` however this file is run or imported
    sys.path.insert(0, os.path.dirname(HERE))
from sandbox import (  # noqa: E402,F401 - the helpers every driver gives its scenarios (in scope for them)
    hold, ip_json, links, namespaces, ping, rc, run_scenario, sh)

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'collections')
MODULE = 'ansible_collections.cka.lab.plugins.modules.ip_topology'
RESULT_MARK = 'NETNS-DRIVER-RESULT '


# --------------------------------------------------------------------------
# Helpers for scenarios
# --------------------------------------------------------------------------

def module(args, check_mode=False, diff=False, fresh_process=False):
    """Run cka.lab.ip_topology's main() and return what it printed, without ``invocation``.

    With `fresh_process`, as `python -m MODULE ARGS.json` (how a module runs
    directly, its arguments in a JSON file as argv[1]); otherwise in a child
    forked from this driver, which has imported Ansible once (much faster,
    the same code: main() with its real run_command).
    """
    module_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    if fresh_process:
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': module_args}, handle)
        try:
            env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL='C')
            proc = subprocess.run([sys.executable, '-m', MODULE, handle.name], capture_output=True, text=True,
                                  env=env, timeout=30)
        finally:
            os.unlink(handle.name)
        status, out = proc.returncode, proc.stdout
    else:
        status, out = _module_forked(module_args)
    try:
        printed = json.loads(out)
    except ValueError:
        raise AssertionError('the module printed no JSON (exit status %d): %r' % (status, out)) from None
    printed.pop('invocation', None)
    return printed


def _module_forked(module_args):
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible.module_utils import basic  # noqa: F401 - imported once, before the fork
    main = importlib.import_module(MODULE).main
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: run main() with these arguments, its stdout into the pipe
        status = 1
        try:
            os.close(read_end)
            sys.stdout = open(write_end, 'w')  # pylint: disable=consider-using-with
            with _module_args(module_args):
                main()
        except SystemExit as exc:  # exit_json / fail_json
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # pylint: disable=broad-except
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    os.close(write_end)
    with open(read_end) as pipe:
        out = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def _module_args(module_args):
    from ansible.module_utils.testing import patch_module_args  # ansible-core 2.19, as pinned
    return patch_module_args(module_args)


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
    run_scenario('netns_driver', RESULT_MARK, globals())


if __name__ == '__main__':
    main()
