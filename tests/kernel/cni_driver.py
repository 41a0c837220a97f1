# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one CNI kernel test's scenario INSIDE a throwaway network+mount namespace.

test_cni_kernel.py starts it with ../sandbox_run.py, as netns_driver.py is
started (see there and ../sandbox.py): the "host" the CNI plugins see is the
test's own network namespace (only ``lo``, its own iptables tables and
sysctls) and /run is a tmpfs nobody else sees. The driver refuses to run
anywhere else. Before the scenario it makes a temporary directory on that
/run tmpfs for the runtime's cache (``CACHE_DIR``) and host-local's leases
(``DATA_DIR``), so neither /var/lib/cni/results nor /var/lib/cni/networks is
touched, and all of it goes with the sandbox.

A scenario is a function of the test module, called as netns_driver.py calls
its own; it imports from this module the helpers of ../sandbox.py (sh, rc,
ip_json, links, ping, keep, ...) and those below; ``runtime()`` runs the real
plugins of Debian's containernetworking-plugins from /usr/lib/cni with
``cni``, the module_utils under test.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tests/, for `import sandbox` however this file is run or imported
    sys.path.insert(0, os.path.dirname(HERE))
from sandbox import (  # noqa: E402
    die_with_parent, hold, ip_json, keep, links, namespaces, ping, rc, run_scenario, sh)

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
from ansible_collections.cka.lab.plugins.module_utils import cni  # noqa: E402

RESULT_MARK = 'CNI-DRIVER-RESULT '
# The helpers of ../sandbox.py every driver gives its scenarios, which import them from here (with this
# driver's own, below, by name).
__all__ = ['hold', 'ip_json', 'keep', 'links', 'namespaces', 'ping', 'rc', 'sh']
BIN_DIR = cni.DEBIAN_BIN_DIR
WORK_DIR = CACHE_DIR = DATA_DIR = None  # set by prepare(), on the sandbox's own /run


def prepare():
    global WORK_DIR, CACHE_DIR, DATA_DIR  # pylint: disable=global-statement
    WORK_DIR = tempfile.mkdtemp(prefix='cni-test-', dir='/run')
    CACHE_DIR = os.path.join(WORK_DIR, 'results')  # made by the runtime, as /var/lib/cni/results would be
    DATA_DIR = os.path.join(WORK_DIR, 'networks')  # host-local's dataDir


# --------------------------------------------------------------------------
# Helpers for scenarios
# --------------------------------------------------------------------------

def exec_plugin(argv, env, data):
    """The `run` of the runtime: `argv` with exactly `env`, `data` on stdin; (rc, stdout, stderr)."""
    proc = subprocess.run(argv, env=env, input=data, capture_output=True, text=True, check=False, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


def runtime(check_mode=False):
    """A cni.Runtime running the real plugins of /usr/lib/cni with exec_plugin, its cache in CACHE_DIR."""
    return cni.Runtime(exec_plugin, bin_dirs=(BIN_DIR,), cache_dir=CACHE_DIR, check_mode=check_mode)


def with_data_dir(conflist):
    """`conflist` with every host-local IPAM's dataDir set to DATA_DIR."""
    for plugin in conflist['plugins']:
        if (plugin.get('ipam') or {}).get('type') == 'host-local':
            plugin['ipam']['dataDir'] = DATA_DIR
    return conflist


def addresses(namespace, name):
    """Addresses of a link in CIDR form, IPv6 link-local ones left out (namespace None: the sandbox's root)."""
    prefix = ['-n', namespace] if namespace else []
    return ['%s/%s' % (a['local'], a['prefixlen'])
            for item in ip_json(*prefix, '-j', 'addr', 'show', 'dev', name) for a in item.get('addr_info', [])
            if not (a['family'] == 'inet6' and a['local'].startswith('fe80:'))]


def routes(namespace=None):
    """IPv4 main-table routes as `ip route` prints them."""
    prefix = '-n %s ' % namespace if namespace else ''
    return [' '.join(line.split()) for line in sh('ip %sroute show' % prefix).splitlines()]


def pod(name):
    """A pod's network namespace, as a runtime makes it: `ip netns add NAME`; its path."""
    sh('ip netns add %s' % name)
    return '/run/netns/%s' % name


def leases(network):
    """host-local's reservations of `network`: {address: [container id, ifname]}."""
    directory = os.path.join(DATA_DIR, network)
    if not os.path.isdir(directory):
        return {}
    found = {}
    for name in sorted(os.listdir(directory)):
        if name == 'lock' or name.startswith('last_reserved_ip'):
            continue
        with open(os.path.join(directory, name)) as handle:
            found[name] = [line.strip() for line in handle.read().splitlines()]
    return found


def cache_files():
    """{file name: mode} of the runtime's cache directory, with the directory's own mode under '.'."""
    if not os.path.isdir(CACHE_DIR):
        return {}
    found = {'.': oct(os.stat(CACHE_DIR).st_mode & 0o777)}
    for name in sorted(os.listdir(CACHE_DIR)):
        found[name] = oct(os.stat(os.path.join(CACHE_DIR, name)).st_mode & 0o777)
    return found


def nat_rules():
    """`iptables -t nat -S` of the sandbox, as lines."""
    return sh('iptables -w -t nat -S').splitlines()


def serve_once(namespace, port, text):
    """A one-shot TCP server in `namespace` on `port` that sends `text`; returns once it listens."""
    code = ('import socket,sys\n'
            's=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n'
            's.bind(("0.0.0.0", %d)); s.listen(1); print("listening", flush=True)\n'
            'c, _ = s.accept(); c.sendall(%r); c.close()\n') % (port, text.encode())
    proc = keep(subprocess.Popen(['ip', 'netns', 'exec', namespace, sys.executable, '-c', code],
                                 stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent))
    if proc.stdout.readline().strip() != 'listening':
        raise AssertionError('the server in %s did not start' % namespace)
    return proc


def fetch(address, port, timeout=3.0):
    """What a TCP connection from the sandbox's root namespace to address:port receives, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1) as conn:
                return conn.recv(1024).decode()
        except OSError:
            time.sleep(0.05)
    return None


def main():
    run_scenario('cni_driver', RESULT_MARK, prepare=prepare)


if __name__ == '__main__':
    main()
