# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one engine test's scenario INSIDE a throwaway network+mount namespace.

conftest.py starts it as

    unshare --net --mount --propagation private -- sh -c \\
        'umount -l /run/netns; mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs "$ENGINE_WORK" && exec PYTHON ...'

so the machine the lab engine works on is the test's own network namespace
(only ``lo``, its own empty iptables tables and its own sysctls), /run/netns
lives on a tmpfs nobody else sees, and ENGINE_WORK (where the lab's record and
its files go, in place of /var/lib/cka-lab and /srv) is a tmpfs of its own too.
The driver refuses to run anywhere else. SCENARIO is Python code executed with
the helpers below and ``params`` in scope; whatever it stores in ``result`` is
printed as one JSON line for the test to check.

The machine part given to the engine (:func:`lab_machine`) is lesson 202's
without its service: services are transient units of the host's systemd, which
no namespace made here can keep to itself.
"""

import ctypes
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'collections')
RESULT_MARK = 'ENGINE-DRIVER-RESULT '
LAB = 'netns_lab'
MARK = 'netns-lab'
COMMENT = 'cka-lab:' + MARK

_held = []  # processes started by hold() and serve(), killed when the scenario ends


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the driver goes, whatever happens to it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _filesystems():
    found = {}
    with open('/proc/self/mountinfo') as mounts:
        for line in mounts:
            fields = line.split()
            found[fields[4]] = fields[fields.index('-') + 1]
    return found


def _check_sandbox():
    if os.readlink('/proc/self/ns/net') == os.environ.get('ENGINE_DRIVER_HOST_NETNS', ''):
        sys.exit("engine_driver: not inside the test's own network namespace; refusing to run")
    if not os.environ.get('ENGINE_DRIVER_HOST_NETNS'):
        sys.exit('engine_driver: ENGINE_DRIVER_HOST_NETNS is not set; refusing to run')
    if os.readlink('/proc/self/ns/mnt') == os.environ.get('ENGINE_DRIVER_HOST_MNTNS'):
        sys.exit("engine_driver: not inside the test's own mount namespace; refusing to run")
    work = os.environ.get('ENGINE_WORK', '')
    fs = _filesystems()
    if fs.get('/run') != 'tmpfs' or os.listdir('/run') or '/run/netns' in fs:
        sys.exit('engine_driver: /run is not a fresh private tmpfs; refusing to run')
    if not work or fs.get(work) != 'tmpfs' or os.listdir(work):
        sys.exit('engine_driver: ENGINE_WORK (%r) is not a fresh private tmpfs; refusing to run' % work)


# --------------------------------------------------------------------------
# The lab engine, as lab_state runs it
# --------------------------------------------------------------------------

def _engine_module():
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)
    from ansible_collections.cka.lab.plugins.module_utils import lab_engine
    return lab_engine


def work_path(*parts):
    return os.path.join(os.environ['ENGINE_WORK'], *parts)


def record_dir():
    """Where the record goes in place of /var/lib/cka-lab."""
    return work_path('var', 'lib', 'cka-lab')


def record_path():
    return os.path.join(record_dir(), LAB + '.json')


def web_file():
    return work_path('srv', MARK, 'index.html')


def run(argv):
    """The engine's `run`: the command as given, LC_ALL=C, like lab_state's module.run_command."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=dict(os.environ, LC_ALL='C'))
    return proc.returncode, proc.stdout, proc.stderr


def engine(mark=MARK, check_mode=False):
    return _engine_module().Engine(run, LAB, mark, record_dir(), check_mode=check_mode)


def build(machine, mark=MARK, check_mode=False, stage='full', every_stage=None):
    """converge() once, as lab_state calls it (`every_stage`: what all stages of the
    lab declare; this lab has one stage, `machine`); the commands it ran (or, in
    check mode, would run)."""
    eng = engine(mark, check_mode)
    _engine_module().converge(eng, machine, stage, every_stage if every_stage is not None else machine)
    return eng.commands


def reset(mark=MARK, check_mode=False, also=None):
    """remove() once, as a reset runs it: the record says what to remove, `also` is
    what every stage of the lab declares with the reset's variables (default:
    lab_machine()); the commands."""
    eng = engine(mark, check_mode)
    _engine_module().remove(eng, also=also if also is not None else lab_machine())
    return eng.commands


def lab_machine(bridge='v-net-0', forwarded_port=80, web_port=80, content='Hello from blue\n', masquerade=True):
    """Lesson 202's machine part, as select_stage gives it for stage full, without the service.

    red and blue on bridge `bridge` (192.168.15.0/24, the bridge .5), a LAN beside
    the machine (lan0 192.168.1.2 <-> lan-host eth0 192.168.1.3), default routes
    of red and blue via the bridge, ip_forward, bridged traffic kept out of
    iptables, MASQUERADE and DNAT, FORWARD accepts for the bridge, and a file.
    """
    rules = [{'table': 'nat', 'rule': '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'}] if masquerade else []
    rules += [
        {'table': 'nat', 'rule': '-A PREROUTING -i lan0 -p tcp --dport %d -j DNAT --to-destination 192.168.15.2:%d'
                                 % (forwarded_port, web_port)},
        {'table': 'filter', 'rule': '-A FORWARD -i %s -j ACCEPT' % bridge, 'environment': True},
        {'table': 'filter', 'rule': '-A FORWARD -o %s -j ACCEPT' % bridge, 'environment': True},
    ]
    return {
        'namespaces': [{'name': 'lan-host'}, {'name': 'red'}, {'name': 'blue'}],
        'bridges': [{'name': bridge, 'addresses': ['192.168.15.5/24']}],
        'veth_pairs': [
            {'name': 'lan0', 'addresses': ['192.168.1.2/24'],
             'peer': {'name': 'eth0', 'namespace': 'lan-host', 'addresses': ['192.168.1.3/24']}},
            {'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
             'peer': {'name': 'veth-red-br', 'master': bridge}},
            {'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['192.168.15.2/24'],
             'peer': {'name': 'veth-blue-br', 'master': bridge}},
        ],
        'routes': [{'namespace': 'red', 'dst': 'default', 'via': '192.168.15.5'},
                   {'namespace': 'blue', 'dst': 'default', 'via': '192.168.15.5'}],
        'sysctls': [
            {'name': 'net.bridge.bridge-nf-call-iptables', 'value': '0', 'environment': True, 'if_exists': True},
            {'name': 'net.ipv4.ip_forward', 'value': '1'},
        ],
        'rules': rules,
        'files': [{'path': web_file(), 'content': content, 'environment': True}],
    }


# --------------------------------------------------------------------------
# Looking at the machine
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


def iptables_save():
    """iptables-save of this namespace without its dated comments and counters."""
    out = sh('iptables-save')
    return [re.sub(r' \[\d+:\d+\]$', '', line) for line in out.splitlines() if not line.startswith('#')]


def rules(table, chain=None):
    """The -A lines of `iptables -t TABLE -S` (of one chain)."""
    lines = sh('iptables -w -t %s -S' % table).splitlines()
    return [line for line in lines if line.startswith('-A ') and (chain is None or line.split()[1] == chain)]


def policy(chain, table='filter'):
    for line in sh('iptables -w -t %s -S' % table).splitlines():
        if line.startswith('-P %s ' % chain):
            return line.split()[2]
    return None


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


def mac(namespace, name):
    return links(namespace)[name][1]


def addresses(namespace=None):
    """{link: [CIDR, ...]} of a namespace, IPv6 link-local addresses left out."""
    prefix = ['-n', namespace] if namespace else []
    return {item['ifname']: ['%s/%s' % (a['local'], a['prefixlen']) for a in item.get('addr_info', [])
                             if not a['local'].startswith('fe80:')]
            for item in ip_json(*prefix, '-j', 'addr', 'show')}


def routes(namespace=None):
    prefix = ' -n %s' % namespace if namespace else ''
    return [' '.join(line.split()) for line in sh('ip%s route show' % prefix).splitlines()]


def sysctl(name, namespace=None):
    path = '/proc/sys/' + name.replace('.', '/')
    prefix = 'ip netns exec %s ' % namespace if namespace else ''
    return sh('%scat %s' % (prefix, path)).strip()


def record():
    try:
        with open(record_path()) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def machine_state():
    """Everything the engine could change here, to compare before and after."""
    found = {'namespaces': namespaces(), 'iptables': iptables_save(), 'record': read_text(record_path()),
             'file': read_text(web_file()), 'links': {}, 'addresses': {}, 'routes': {},
             'sysctls': {name: sysctl(name) for name in ('net.ipv4.ip_forward',
                                                         'net.bridge.bridge-nf-call-iptables')}}
    for namespace in [None] + namespaces():
        key = namespace or 'root'
        found['links'][key] = links(namespace)
        found['addresses'][key] = addresses(namespace)
        found['routes'][key] = routes(namespace)
    return found


def work_tree():
    """Every directory and file under the work directory, relative to it."""
    found = []
    for top, dirs, files in os.walk(work_path()):
        found += [os.path.relpath(os.path.join(top, name), work_path()) for name in dirs + files]
    return sorted(found)


def policies():
    return {table: {line.split()[1]: line.split()[2] for line in sh('iptables -w -t %s -S' % table).splitlines()
                    if line.startswith('-P ')} for table in ('nat', 'filter')}


def leftovers():
    """What a lab could have left behind in this namespace."""
    return {
        'namespaces': namespaces(),
        '/run/netns': os.path.exists('/run/netns'),
        'links': sorted(name for name in links() if name != 'lo'),
        'rules': rules('nat') + rules('filter'),
        'policies': policies(),
        'sysctls': {name: sysctl(name) for name in ('net.ipv4.ip_forward', 'net.bridge.bridge-nf-call-iptables')},
        'work': work_tree(),
    }


# --------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------

def _in_ns(namespace, argv):
    return (['ip', 'netns', 'exec', namespace] if namespace else []) + argv


def ping(namespace, address, timeout=2.0):
    """True when `address` answers an ICMP echo sent from `namespace` within `timeout` seconds."""
    proc = subprocess.run(_in_ns(namespace, [sys.executable, os.path.abspath(__file__), '--ping', address,
                                             str(timeout)]), capture_output=True, text=True)
    return proc.returncode == 0


def tcp_source(client_ns, server_ns, listen, connect=None, port=8080, timeout=2.0):
    """Connect from `client_ns` to `connect` (default `listen`):`port`, where a server in
    `server_ns` listens on `listen`:`port`; the source address the server saw, or None."""
    server = subprocess.Popen(_in_ns(server_ns, [sys.executable, os.path.abspath(__file__), '--serve', listen,
                                                 str(port), str(timeout + 1)]),
                              stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
    _held.append(server)
    if server.stdout.readline().strip() != 'ready':
        raise AssertionError('the test server in %s did not start' % server_ns)
    subprocess.run(_in_ns(client_ns, [sys.executable, os.path.abspath(__file__), '--connect', connect or listen,
                                      str(port), str(timeout)]), capture_output=True)
    seen = server.stdout.readline().strip()
    server.wait()
    return seen or None


def hold(namespace):
    """Start `sleep 30` inside `namespace`, as a container would keep it alive."""
    proc = subprocess.Popen(['ip', 'netns', 'exec', namespace, 'sleep', '30'], preexec_fn=_die_with_parent)
    _held.append(proc)
    for _ in range(200):
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


def _serve_main(address, port, timeout):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(1)
        sock.settimeout(timeout)
        print('ready', flush=True)
        try:
            conn, peer = sock.accept()
        except socket.timeout:
            print('', flush=True)
            return 1
        conn.close()
        print(peer[0], flush=True)
    return 0


def _connect_main(address, port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=max(deadline - time.monotonic(), 0.05)).close()
            return 0
        except OSError:
            time.sleep(0.05)
    return 1


def main():
    if sys.argv[1:2] == ['--ping']:
        sys.exit(_ping_main(sys.argv[2], float(sys.argv[3])))
    if sys.argv[1:2] == ['--serve']:
        sys.exit(_serve_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    if sys.argv[1:2] == ['--connect']:
        sys.exit(_connect_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    _check_sandbox()
    with open(sys.argv[1]) as handle:
        scenario = handle.read()
    with open(sys.argv[2]) as handle:
        params = json.load(handle)
    os.makedirs(os.path.dirname(record_dir()))  # /var/lib is there on a machine; cka-lab is the engine's
    result = {}
    scope = dict(globals(), params=params, result=result)
    try:
        exec(compile(scenario, sys.argv[1], 'exec'), scope)  # noqa: S102 - the test's own code
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        print(RESULT_MARK + json.dumps({'error': traceback.format_exc(), 'result': result}, default=str))
        sys.exit(1)
    finally:
        _release()
    print(RESULT_MARK + json.dumps({'result': result}, default=str))


if __name__ == '__main__':
    main()
