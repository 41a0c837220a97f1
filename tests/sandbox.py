# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""What the scenario drivers share, inside their throwaway network+mount namespace.

A driver (kernel/netns_driver.py, engine/engine_driver.py) is started by
sandbox_run.py as

    unshare --net --mount --propagation private -- sh -c \\
        '{ ! mountpoint -q /run/netns || umount -n -l /run/netns; } && mount -n -t tmpfs tmpfs /run
         [&& mount -n -t tmpfs tmpfs "$WORK"] && exec PYTHON DRIVER MODULE FUNCTION PARAMS'

so the "root namespace" it works on is the test's own network namespace (only
``lo``, its own iptables tables and sysctls) and /run/netns lives on a tmpfs
nobody else sees. :func:`run_scenario` refuses to go on anywhere else
(:func:`check_sandbox`), then imports the test module MODULE (a file) and
calls its scenario, the module-level function FUNCTION, as
``FUNCTION(result, **params)`` (``params`` from the JSON file PARAMS); whatever
it stores in ``result`` is printed as one JSON line after the driver's marker.
A scenario's names are the test module's own, imported from the driver module
(``from engine_driver import build, sh``), so linters read them.

The helpers here are the ones every driver gives its scenarios (each driver
imports them for its scenarios to import from it): ``sh``, ``rc``,
``ip_json``, ``namespaces``, ``links``, ``ping`` and ``hold``.

Run as a script, ``python sandbox.py --ping ADDRESS TIMEOUT`` sends the ICMP
echo :func:`ping` asks for (started inside a namespace with ip netns exec).
This file imports nothing but the standard library.
"""

import ctypes
import importlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

HOST_NETNS = 'SANDBOX_HOST_NETNS'  # the environment variables sandbox_run.py sets: the test process's
HOST_MNTNS = 'SANDBOX_HOST_MNTNS'  # own network and mount namespaces, where no driver may run

_held = []  # processes started by hold() (and by a driver's own helpers), killed when the scenario ends


def die_with_parent():
    """preexec_fn: SIGKILL this child when the driver goes, whatever happens to it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def filesystems():
    """{mount point: filesystem type} of this mount namespace."""
    found = {}
    with open('/proc/self/mountinfo') as mounts:
        for line in mounts:
            fields = line.split()
            found[fields[4]] = fields[fields.index('-') + 1]
    return found


def check_sandbox(driver, work_variable=None):
    """Exit (naming `driver`) unless this is the test's own sandbox.

    Not the test process's network or mount namespace (from the environment
    variables HOST_NETNS and HOST_MNTNS, which must be set); /run a fresh
    private tmpfs with no mount on /run/netns left under it; and, with
    `work_variable`, the directory that environment variable names another.
    """
    host = os.environ.get(HOST_NETNS)
    if not host:
        sys.exit('%s: %s is not set; refusing to run' % (driver, HOST_NETNS))
    if os.readlink('/proc/self/ns/net') == host:
        sys.exit("%s: not inside the test's own network namespace; refusing to run" % driver)
    if os.readlink('/proc/self/ns/mnt') == os.environ.get(HOST_MNTNS):
        sys.exit("%s: not inside the test's own mount namespace; refusing to run" % driver)
    fs = filesystems()
    if fs.get('/run') != 'tmpfs' or os.listdir('/run') or '/run/netns' in fs:
        sys.exit('%s: /run is not a fresh private tmpfs; refusing to run' % driver)
    if work_variable:
        work = os.environ.get(work_variable, '')
        if not work or fs.get(work) != 'tmpfs' or os.listdir(work):
            sys.exit('%s: %s (%r) is not a fresh private tmpfs; refusing to run' % (driver, work_variable, work))


# --------------------------------------------------------------------------
# Helpers for scenarios
# --------------------------------------------------------------------------

def sh(command, check=True):
    """Run a shell command line; its stdout, or an AssertionError with its stderr."""
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, env=dict(os.environ, LC_ALL='C'))
    if check and proc.returncode != 0:
        raise AssertionError('%r failed with rc %d: %s' % (command, proc.returncode, proc.stderr.strip()))
    return proc.stdout


def rc(command):
    """Exit status of a shell command line."""
    return subprocess.run(command, shell=True, capture_output=True).returncode


def ip_json(*args):
    out = sh(' '.join(['ip'] + list(args)))
    return json.loads(out) if out.strip() else []


def namespaces():
    """Entries of /run/netns (what `ip netns list` lists), sorted."""
    return sorted(os.listdir('/run/netns')) if os.path.isdir('/run/netns') else []


def links(namespace=None):
    """{name: [kind, mac, master, up]} of a namespace (None: the test's root namespace)."""
    prefix = ['-n', namespace] if namespace else []
    found = {}
    for item in ip_json(*prefix, '-j', '-d', 'link', 'show'):
        found[item['ifname']] = [(item.get('linkinfo') or {}).get('info_kind'), item.get('address'),
                                 item.get('master'), 'UP' in item.get('flags', [])]
    return found


def in_namespace(namespace, argv):
    """`argv` run inside `namespace` (None: the test's root namespace)."""
    return (['ip', 'netns', 'exec', namespace] if namespace else []) + argv


def ping(namespace, address, timeout=2.0):
    """True when `address` answers an ICMP echo sent from `namespace` within `timeout` seconds."""
    proc = subprocess.run(in_namespace(namespace, [sys.executable, os.path.abspath(__file__), '--ping', address,
                                                   str(timeout)]), capture_output=True, text=True)
    return proc.returncode == 0


def keep(proc):
    """Have `proc` killed when the scenario ends; `proc`."""
    _held.append(proc)
    return proc


def hold(namespace):
    """Start a process inside `namespace` that keeps it alive (as a container would)."""
    proc = keep(subprocess.Popen(['ip', 'netns', 'exec', namespace, 'sleep', '60'], preexec_fn=die_with_parent))
    for _ in range(200):  # until the sleep runs inside the namespace
        try:
            if os.stat('/proc/%d/ns/net' % proc.pid).st_ino == os.stat('/run/netns/%s' % namespace).st_ino:
                return proc
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError('the process holding %s did not start' % namespace)


def release():
    """Kill what hold() and keep() started."""
    for proc in _held:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# --------------------------------------------------------------------------
# The ping itself
# --------------------------------------------------------------------------

def _checksum(data):
    if len(data) % 2:
        data += b'\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    total += total >> 16
    return ~total & 0xffff


def _ping_main(address, timeout):
    """One ICMP echo over a raw socket (this machine may have no ping binary)."""
    ident = os.getpid() & 0xffff
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            body = struct.pack('!d', time.monotonic())
            header = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
            header = struct.pack('!BBHHH', 8, 0, _checksum(header + body), ident, seq)
            try:
                sock.sendto(header + body, (address, 0))
            except OSError:  # no route yet
                time.sleep(0.1)
                continue
            wait_until = min(deadline, time.monotonic() + 0.3)
            while time.monotonic() < wait_until:
                sock.settimeout(max(wait_until - time.monotonic(), 0.01))
                try:
                    packet, source = sock.recvfrom(2048)
                except socket.timeout:
                    break
                ihl = (packet[0] & 0x0f) * 4
                kind, _code, _sum, got_id, _seq = struct.unpack('!BBHHH', packet[ihl:ihl + 8])
                if kind == 0 and got_id == ident and source[0] == address:
                    return 0
    return 1


# --------------------------------------------------------------------------
# The driver's main()
# --------------------------------------------------------------------------

def load_scenario(path, name):
    """The module-level function `name` of the test module at `path`, imported as the test runner does
    (its directory first on sys.path, the module under its own name)."""
    directory, module = os.path.split(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    function = getattr(importlib.import_module(os.path.splitext(module)[0]), name)
    if not callable(function):
        raise TypeError('%s of %s is not a function' % (name, path))
    return function


def run_scenario(driver, result_mark, work_variable=None, prepare=None):
    """A driver's main(): check the sandbox, call the scenario (the function sys.argv[2] of the test module
    sys.argv[1]) as ``scenario(result, **params)`` (params: the JSON file sys.argv[3]), print ``result``
    after `result_mark`.

    `driver` is the driver's module name: the driver runs as ``__main__``, and is also that module for
    the test module's ``from DRIVER import ...`` (one module, not a second copy without the state the
    driver set up). `prepare`, called after the check and before the test module is imported, sets up
    what the driver needs; whatever the scenario started is killed when it ends.
    """
    check_sandbox(driver, work_variable)
    sys.modules[driver] = sys.modules['__main__']
    path, name, params_path = sys.argv[1:4]
    with open(params_path) as handle:
        params = json.load(handle)
    if prepare is not None:
        prepare()
    result = {}
    try:
        load_scenario(path, name)(result, **params)
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        print(result_mark + json.dumps({'error': traceback.format_exc(), 'result': result}, default=str))
        sys.exit(1)
    finally:
        release()
    print(result_mark + json.dumps({'result': result}, default=str))


if __name__ == '__main__':
    if sys.argv[1:2] != ['--ping'] or len(sys.argv) != 4:
        sys.exit('usage: sandbox.py --ping ADDRESS TIMEOUT')
    sys.exit(_ping_main(sys.argv[2], float(sys.argv[3])))
