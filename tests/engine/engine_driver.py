# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one engine test's scenario INSIDE a throwaway network+mount namespace.

conftest.py starts it with ../sandbox_run.py as

    unshare --net --mount --propagation private -- sh -c \\
        'umount -l /run/netns; mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs "$ENGINE_WORK" &&
         exec PYTHON engine_driver.py MODULE FUNCTION PARAMS'

so the machine the lab engine works on is the test's own network namespace
(only ``lo``, its own empty iptables tables and its own sysctls), /run/netns
lives on a tmpfs nobody else sees, and ENGINE_WORK (where the lab's record and
its files go, in place of /var/lib/cka-lab and /srv) is a tmpfs of its own too.
The driver refuses to run anywhere else. The scenario is the function
FUNCTION of the test module MODULE, called as ``FUNCTION(result, **params)``
(``params`` from the JSON file PARAMS); it imports what it uses from this
module: the helpers below and those of ../sandbox.py (sh, rc, ip_json,
namespaces, links, ping, hold). Whatever it stores in ``result`` is printed as
one JSON line for the test to check (see sandbox.run_scenario).

The machine part given to the engine (:func:`lab_machine`) is lesson 202's,
rendered from labs/netns_lab.yml by cka.lab.lab_declaration (conftest.py, once
a session; the file named in ENGINE_LABS), then changed only where the sandbox
must differ from a lab machine (:func:`in_the_sandbox`): no service, the page
under the work directory.
"""

import copy
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.dirname(HERE) not in sys.path:  # tests/, for `import sandbox` however this file is run or imported
    sys.path.insert(0, os.path.dirname(HERE))
from sandbox import (  # noqa: E402
    die_with_parent, hold, in_namespace, ip_json, keep, links, namespaces, ping, rc, run_scenario, sh)

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(HERE)), 'collections')
if COLLECTIONS not in sys.path:  # for ansible_collections.cka, here and in the test modules the scenarios are in
    sys.path.insert(0, COLLECTIONS)
RESULT_MARK = 'ENGINE-DRIVER-RESULT '
LAB = 'netns_lab'
MARK = 'netns-lab'
COMMENT = 'cka-lab:' + MARK
# The helpers of ../sandbox.py every driver gives its scenarios, which import them from here (with this
# driver's own, below, by name).
__all__ = ['die_with_parent', 'hold', 'in_namespace', 'ip_json', 'keep', 'links', 'namespaces', 'ping', 'rc', 'sh']


# --------------------------------------------------------------------------
# The lab engine, as lab_state runs it
# --------------------------------------------------------------------------

def _engine_module():
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
    """Where in_the_sandbox() moves the lab's page (/srv/netns-lab/index.html)."""
    return work_path('srv', MARK, 'index.html')


def run(argv):
    """The engine's `run`: the command as given, LC_ALL=C, like lab_state's module.run_command."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=dict(os.environ, LC_ALL='C'))
    return proc.returncode, proc.stdout, proc.stderr


def engine(mark=MARK, check_mode=False):
    return _engine_module().Engine(run, LAB, mark, record_dir(), check_mode=check_mode)


def build(machine, mark=MARK, check_mode=False, stage='full', every_stage=None):
    """converge() once, as lab_state calls it (`every_stage`: what all stages of the
    lab declare, default `machine`); the commands it ran (or, in check mode, would run)."""
    eng = engine(mark, check_mode)
    _engine_module().converge(eng, machine, stage, every_stage if every_stage is not None else machine)
    return eng.commands


def build_start():
    """The practice start: lesson 202's stage start (the LAN beside the machine, its settings and
    the page), built as lab_state builds it."""
    return build(lab_machine(stage='start'), stage='start', every_stage=lab_every_stage())


def reset(mark=MARK, check_mode=False, also=None):
    """remove() once, as a reset runs it: the record says what to remove, `also` is
    what every stage of the lab declares with the reset's variables (default:
    lab_every_stage()); the commands."""
    eng = engine(mark, check_mode)
    _engine_module().remove(eng, also=also if also is not None else lab_every_stage())
    return eng.commands


# --------------------------------------------------------------------------
# The lab: labs/netns_lab.yml, rendered by cka.lab.lab_declaration (conftest.py)
# --------------------------------------------------------------------------

LABS_VARIABLE = 'ENGINE_LABS'  # names the JSON file of the rendered labs (conftest.rendered_labs)
# The variable sets of lesson 202's lab these tests build (its variables without the prefix netns_lab_),
# each rendered once a session; `base` is what every set has besides: two namespaces of the lab's four,
# red and blue, as the lesson starts.
RENDERED = {LAB: {
    'base': {'namespaces': [
        {'name': 'red', 'address': '192.168.15.1', 'veth': 'veth-red', 'bridge_port': 'veth-red-br'},
        {'name': 'blue', 'address': '192.168.15.2', 'veth': 'veth-blue', 'bridge_port': 'veth-blue-br'}]},
    'variants': [{}, {'bridge': 'v-net-1'}, {'bridge': 'v-net-9'}, {'bridge': 'v-net-1', 'forwarded_port': 8080},
                 {'masquerade': False, 'forwarded_port': 8080}],
}}


def rendered(lab, variables):
    """What conftest.rendered_labs rendered of labs/LAB.yml with `variables` (without the prefix LAB_):
    {'variables', 'stages': {stage: machine}, 'every_stage': machine}."""
    with open(os.environ[LABS_VARIABLE]) as handle:
        found = [e for e in json.load(handle)[lab] if e['variables'] == json.loads(json.dumps(variables))]
    if not found:
        raise AssertionError('%s was not rendered with %r: add these variables to the RENDERED variants of '
                             'its driver' % (lab, variables))
    return found[0]


def in_the_sandbox(machine, content=None, stay=()):
    """A machine part of a rendered lab as the sandbox can build it; what differs from a lab machine, and why:

    - no services: each is a transient unit of the machine's systemd, and the sandbox has no systemd of its
      own (a unit started from here would run on the host, outside every namespace made here);
    - each file's path is moved under the work directory (/srv/netns-lab/index.html ->
      $ENGINE_WORK/srv/netns-lab/index.html), but for paths under `stay` (a directory the sandbox mounted
      a tmpfs of its own on): the work directory is the sandbox's own tmpfs, the host's /srv is not; what a
      file links to is only read, and stays;
    - with `content`, each file gets that content: a change of the page no variable of the lab makes.

    A sysctl outside net.* is refused: the sandbox's network namespace has only those of its own.
    """
    machine = copy.deepcopy(machine)
    machine.pop('services', None)
    for item in machine.get('files', []):
        if not item['path'].startswith(tuple(stay)):
            item['path'] = work_path(item['path'].lstrip('/'))
        if content is not None:
            item['content'] = content
    host_wide = [item['name'] for item in machine.get('sysctls', []) if not item['name'].startswith('net.')]
    if host_wide:
        raise AssertionError('sysctls %s are the host\'s, not the sandbox\'s' % ', '.join(host_wide))
    return machine


def lab_machine(stage='full', content=None, **variables):
    """Lesson 202's machine part, stage `stage`, rendered from labs/netns_lab.yml with `variables` (its
    variables without the prefix netns_lab_: bridge, forwarded_port, masquerade, ...; a set of RENDERED),
    then in_the_sandbox(content).

    Stage full: red and blue on bridge v-net-0 (192.168.15.0/24, the bridge .5), a LAN beside the machine
    (lan0 192.168.1.2 <-> lan-host eth0 192.168.1.3), blue's routes to the LAN and default via the bridge,
    ip_forward and bridged traffic kept out of iptables (environment), MASQUERADE and DNAT, FORWARD accepts
    for the bridge (environment), and the page (environment; web_file()).
    """
    return in_the_sandbox(rendered(LAB, variables)['stages'][stage], content)


def lab_every_stage(**variables):
    """What every stage of lesson 202's lab declares with `variables` (see lab_machine), as lab_state is
    given it (no stages, conditions or environment marks), then in_the_sandbox()."""
    return in_the_sandbox(rendered(LAB, variables)['every_stage'])


# --------------------------------------------------------------------------
# Looking at the machine
# --------------------------------------------------------------------------

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

def tcp_source(client_ns, server_ns, listen, connect=None, port=8080, timeout=2.0):
    """Connect from `client_ns` to `connect` (default `listen`):`port`, where a server in
    `server_ns` listens on `listen`:`port`; the source address the server saw, or None."""
    server = keep(subprocess.Popen(in_namespace(server_ns, [sys.executable, os.path.abspath(__file__), '--serve',
                                                            listen, str(port), str(timeout + 1)]),
                                   stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent))
    if server.stdout.readline().strip() != 'ready':
        raise AssertionError('the test server in %s did not start' % server_ns)
    subprocess.run(in_namespace(client_ns, [sys.executable, os.path.abspath(__file__), '--connect', connect or listen,
                                            str(port), str(timeout)]), capture_output=True)
    seen = server.stdout.readline().strip()
    server.wait()
    return seen or None


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
    if sys.argv[1:2] == ['--serve']:
        sys.exit(_serve_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    if sys.argv[1:2] == ['--connect']:
        sys.exit(_connect_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    run_scenario('engine_driver', RESULT_MARK, work_variable='ENGINE_WORK',
                 # /var/lib is there on a machine; cka-lab is the engine's
                 prepare=lambda: os.makedirs(os.path.dirname(record_dir())))


if __name__ == '__main__':
    main()
