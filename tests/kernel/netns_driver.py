# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one kernel test's scenario INSIDE a throwaway network+mount namespace.

conftest.py starts it as

    unshare --net --mount --propagation private -- \\
        sh -c 'mount -t tmpfs tmpfs /run && exec PYTHON netns_driver.py SCENARIO PARAMS'

so the "root namespace" the module sees is the test's own network namespace
(only ``lo``), and /run/netns lives on a tmpfs nobody else sees. The driver
refuses to run anywhere else. SCENARIO is Python code executed with the
helpers below and ``params`` (from the JSON file PARAMS) in scope; whatever
it stores in ``result`` is printed as one JSON line for the test to check.
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
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'collections')
MODULE = 'ansible_collections.cka.lab.plugins.modules.ip_topology'
RESULT_MARK = 'NETNS-DRIVER-RESULT '

_held = []  # processes started by hold(), killed when the scenario ends


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the driver goes, whatever happens to it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _check_sandbox():
    host = os.environ.get('NETNS_DRIVER_HOST_NETNS')
    if not host or os.readlink('/proc/self/ns/net') == host:
        sys.exit('netns_driver: not inside the test\'s own network namespace; refusing to run')
    if os.readlink('/proc/self/ns/mnt') == os.environ.get('NETNS_DRIVER_HOST_MNTNS'):
        sys.exit('netns_driver: not inside the test\'s own mount namespace; refusing to run')
    fs = {}
    with open('/proc/self/mountinfo') as mounts:
        for line in mounts:
            fields = line.split()
            fs[fields[4]] = fields[fields.index('-') + 1]
    if fs.get('/run') != 'tmpfs' or os.listdir('/run'):
        sys.exit('netns_driver: /run is not a fresh private tmpfs; refusing to run')


# --------------------------------------------------------------------------
# Helpers for scenarios
# --------------------------------------------------------------------------

def sh(command, check=True):
    """Run a shell command line; its stdout, or an AssertionError with its stderr."""
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, env=dict(os.environ, LC_ALL='C'))
    if check and proc.returncode != 0:
        raise AssertionError('%r failed with rc %d: %s' % (command, proc.returncode, proc.stderr.strip()))
    return proc.stdout


def ip_json(*args):
    out = sh(' '.join(['ip'] + list(args)))
    return json.loads(out) if out.strip() else []


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
    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        import contextlib
        from unittest import mock

        from ansible.module_utils import basic

        @contextlib.contextmanager
        def patch_module_args(args):
            with mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode()):
                yield
    return patch_module_args(module_args)


def namespaces():
    """Entries of /run/netns (what `ip netns list` lists), sorted."""
    return sorted(os.listdir('/run/netns')) if os.path.isdir('/run/netns') else []


def links(namespace=None):
    """{name: (kind, mac, master, up)} of a namespace (None: the test's root namespace)."""
    prefix = ['-n', namespace] if namespace else []
    found = {}
    for item in ip_json(*prefix, '-j', '-d', 'link', 'show'):
        found[item['ifname']] = ((item.get('linkinfo') or {}).get('info_kind'), item.get('address'),
                                 item.get('master'), 'UP' in item.get('flags', []))
    return found


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


def rc(command):
    """Exit status of a shell command line."""
    return subprocess.run(command, shell=True, capture_output=True).returncode


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


def ping(namespace, address, timeout=2.0):
    """True when `address` answers an ICMP echo sent from `namespace` within `timeout` seconds."""
    prefix = ['ip', 'netns', 'exec', namespace] if namespace else []
    proc = subprocess.run(prefix + [sys.executable, os.path.abspath(__file__), '--ping', address, str(timeout)],
                          capture_output=True, text=True, env=dict(os.environ, NETNS_DRIVER_PING='1'))
    return proc.returncode == 0


def hold(namespace):
    """Start a process inside `namespace` that keeps it alive (as a container would)."""
    proc = subprocess.Popen(['ip', 'netns', 'exec', namespace, 'sleep', '60'], preexec_fn=_die_with_parent)
    _held.append(proc)
    for _ in range(100):  # until the sleep runs inside the namespace
        try:
            if os.stat('/proc/%d/ns/net' % proc.pid).st_ino == os.stat('/run/netns/%s' % namespace).st_ino:
                return proc
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError('the process holding %s did not start' % namespace)


def _release():
    for proc in _held:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


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
            sock.sendto(header + body, (address, 0))
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


def main():
    if sys.argv[1:2] == ['--ping']:
        sys.exit(_ping_main(sys.argv[2], float(sys.argv[3])))
    _check_sandbox()
    with open(sys.argv[1]) as handle:
        scenario = handle.read()
    with open(sys.argv[2]) as handle:
        params = json.load(handle)
    result = {}
    scope = dict(globals(), params=params, result=result)
    try:
        exec(compile(scenario, 'scenario', 'exec'), scope)  # noqa: S102 - the test's own code
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        print(RESULT_MARK + json.dumps({'error': traceback.format_exc(), 'result': result}, default=str))
        sys.exit(1)
    finally:
        _release()
    print(RESULT_MARK + json.dumps({'result': result}, default=str))


if __name__ == '__main__':
    main()
