# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Runs one pod scenario of the lab engine INSIDE a throwaway network+mount namespace.

The sandbox is engine_driver.py's (see there and ../sandbox_run.py): the test's
own network namespace, /run and the work directory (ENGINE_WORK) on private
tmpfs mounts. Before the scenario this driver also mounts a private tmpfs on
/var/lib, so that the CNI state the pods make stays in the sandbox: the
engine's cache (/var/lib/cni/results, libcni's place) and host-local's leases
(its default dataDir, /var/lib/cni/networks) land on that tmpfs, never on the
host's /var/lib/cni; the driver refuses to run when the mount is not there.

The lab is cni_lab's, rendered from labs/cni_lab.yml by cka.lab.lab_declaration
(conftest.py, once a session) for one node, then changed only where the sandbox
must differ from a node (:func:`pods_in_the_sandbox`). Its pods are attached by
Debian's reference plugins (containernetworking-plugins, /usr/lib/cni), reached
through the symbolic links its files make, as lesson 205 links them into
/opt/cni/bin: there on a tmpfs of the sandbox (:func:`opt_on_tmpfs`), or moved
to a directory of the work tree that the pods name as their cni_path. The
engine runs them through :func:`run_plugin`, which notes every plugin it
executes (:data:`executions`).

The scenario is a function of the test module, called as engine_driver.py
calls its own (see there); it imports the helpers it uses from this module
(those below, and those of engine_driver.py and ../sandbox.py that it imports
here) by name. Whatever it stores in ``result`` is printed as one JSON line
for the test to check.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (HERE, os.path.dirname(HERE)):  # engine_driver (tests/engine) and sandbox (tests/)
    if _path not in sys.path:
        sys.path.insert(0, _path)
import engine_driver  # noqa: E402
from engine_driver import (  # noqa: E402
    LABS_VARIABLE, addresses, in_the_sandbox, leftovers, links, namespaces, ping, record_dir, rendered, run,
    work_path)
from sandbox import filesystems, ip_json, run_scenario, sh  # noqa: E402

RESULT_MARK = 'PODS-DRIVER-RESULT '
# The helpers of engine_driver.py and ../sandbox.py the scenarios import from here (with this driver's
# own, below, by name).
__all__ = ['LABS_VARIABLE', 'addresses', 'links', 'namespaces', 'ping', 'sh', 'work_path']
LAB = 'cni_lab'
MARK = 'cni-lab'
NETWORK = 'podnet'
SLICE = '10.244.1.0/24'  # node01's
GATEWAY = '10.244.1.1'
NODE = '{{ inventory_hostname }}'  # the node the lab is rendered for (each variable set is one inventory host)
LAB_PODS = [{'name': 'pod-a', 'node': NODE, 'host_port': 8080}, {'name': 'pod-b', 'node': NODE}]
PODS = tuple(pod['name'] for pod in LAB_PODS)
# The variable sets of cni_lab these tests build (its variables without the prefix cni_lab_), each rendered
# once a session (see engine_driver.RENDERED); `base` is what every set has besides: one node, node01 with
# the slice 10.244.1.0/24, and its two pods, pod-a publishing its port 80 on the node's 8080.
RENDERED = {LAB: {
    'base': {'nodes': [{'host': NODE, 'name': 'node01', 'pod_subnet': SLICE, 'address': '192.0.2.11'}],
             'pods': LAB_PODS, 'pod_port': 80},
    'variants': [{}, {'pods': LAB_PODS[:1]}, {'pods': []}, {'mode': 'overlay'}] +
                [{'cni_version': v} for v in ('0.2.0', '0.3.1', '0.4.0', '1.0.0', '9.9.9')],
}}
STATE_DIR = '/var/lib/cni'  # on the sandbox's tmpfs over /var/lib
CACHE_DIR = '/var/lib/cni/results'
LEASES_DIR = '/var/lib/cni/networks/' + NETWORK  # host-local's default dataDir, then the network's name

executions = []  # [CNI_COMMAND, plugin, CNI_CONTAINERID, CNI_IFNAME] of every plugin run_plugin executed
failures = []  # the same and the plugin's error message, of those that failed


OPT_BIN_DIR = '/opt/cni/bin'  # the engine's default cni_path, on the sandbox's tmpfs over /opt (opt_on_tmpfs)


def bin_dir(opt=False):
    """Where the declaration's files link the package's plugins: a directory of the work tree (the pods'
    cni_path, see pods_in_the_sandbox), or with `opt` /opt/cni/bin, where cni_lab links them (the pods then
    name no cni_path)."""
    return OPT_BIN_DIR if opt else work_path('opt', 'cni', 'bin')


def opt_on_tmpfs():
    """A private tmpfs on /opt, for a lab that links its plugins in /opt/cni/bin, as cni_lab does."""
    subprocess.run(['mount', '-n', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/opt'], check=True)
    if filesystems().get('/opt') != 'tmpfs' or os.listdir('/opt'):
        raise AssertionError('/opt is not a fresh private tmpfs')


def conflist_path():
    """Where pods_in_the_sandbox() moves the lab's network configuration list (/etc/cni/net.d/10-podnet.conflist)."""
    return work_path('etc', 'cni', 'net.d', '10-%s.conflist' % NETWORK)


def run_plugin(argv, env, data):
    """The engine's run_plugin, as lab_state builds it: `env` over this process's environment, `data` on stdin."""
    execution = [env.get('CNI_COMMAND'), os.path.basename(argv[0]), env.get('CNI_CONTAINERID'), env.get('CNI_IFNAME')]
    executions.append(execution)
    proc = subprocess.run(list(argv), input=data, stdin=subprocess.DEVNULL if data is None else None,
                          capture_output=True, text=True, env=dict(os.environ, LC_ALL='C', **env))
    if proc.returncode != 0:
        try:
            message = json.loads(proc.stdout).get('msg')
        except (ValueError, AttributeError):
            message = proc.stdout + proc.stderr
        failures.append(execution + [message])
    return proc.returncode, proc.stdout, proc.stderr


def plugin_runs(versions=False):
    """The plugins executed since the last call, and those of them that failed; both forgotten. The
    VERSION questions a build asks first are left out, unless `versions`."""
    found = {'runs': [e for e in executions if versions or e[0] != 'VERSION'], 'failed': list(failures)}
    del executions[:], failures[:]
    return found


def pod_engine(check_mode=False):
    return engine_driver._engine_module().Engine(run, LAB, MARK, record_dir(), check_mode=check_mode,
                                                  run_plugin=run_plugin, cni_cache_dir=CACHE_DIR)


def build_pods(machine, check_mode=False, every_stage=None, stage='node'):
    """converge() once, as lab_state calls it (`every_stage`: what all stages of the lab declare, default
    `machine`); the commands it ran (or, in check mode, would run)."""
    eng = pod_engine(check_mode)
    engine_driver._engine_module().converge(eng, machine, stage,
                                            every_stage if every_stage is not None else machine)
    return eng.commands


def reset_pods(check_mode=False, also=None):
    """remove() once, as a reset runs it (`also`: what every stage of the lab declares, default
    pod_every_stage()); the commands."""
    eng = pod_engine(check_mode)
    engine_driver._engine_module().remove(eng, also=also if also is not None else pod_every_stage())
    return eng.commands


def record():
    """The lab's record (cni_lab.json in record_dir()), or None."""
    try:
        with open(os.path.join(record_dir(), LAB + '.json')) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def attempt(function, *args, **kwargs):
    """(what function(*args, **kwargs) returned, None), or (None, 'ExceptionName: message') when it raised."""
    try:
        return function(*args, **kwargs), None
    except Exception as exc:  # pylint: disable=broad-except - the scenario reports it
        return None, '%s: %s' % (type(exc).__name__, exc)


def refusal(machine):
    """The lines of the EngineError a build of `machine` raises, or None when it builds."""
    try:
        build_pods(machine)
    except engine_driver._engine_module().EngineError as exc:
        return exc.errors
    return None


# --------------------------------------------------------------------------
# The lab: labs/cni_lab.yml, rendered by cka.lab.lab_declaration (conftest.py)
# --------------------------------------------------------------------------

def pods_in_the_sandbox(machine, opt=False, portmap=True):
    """A machine part of cni_lab as the sandbox can build it; what differs from a node, and why:

    - engine_driver.in_the_sandbox(): no services (the pods' servers: units of the node's systemd), each
      file under the work directory (the network configuration list, the servers' script);
    - with `opt` (after opt_on_tmpfs()), the plugins' links stay in /opt/cni/bin, on the sandbox's tmpfs;
      without, they move with the other files (to bin_dir()), and each pod names that directory as its
      cni_path (the lab's pods take the engine's default, /opt/cni/bin);
    - each pod's network names the list where it moved;
    - without `portmap`, the list runs the bridge plugin alone and the pods publish no port: a list
      cniVersion 0.2.0 can run (one plugin), which no variable of the lab makes.
    """
    if opt and filesystems().get('/opt') != 'tmpfs':
        raise AssertionError('opt_on_tmpfs() first: the lab would link its plugins in the host\'s /opt/cni/bin')
    machine = in_the_sandbox(machine, stay=(OPT_BIN_DIR + '/',) if opt else ())
    for item in machine.get('files', []):
        if not portmap and item.get('format') == 'json':
            network = json.loads(item['content'])
            network['plugins'] = [p for p in network['plugins'] if p['type'] != 'portmap']
            item['content'] = json.dumps(network, indent=2)
    for pod in machine.get('pods', []):
        pod['network'] = work_path(pod['network'].lstrip('/'))
        if not opt:
            pod['cni_path'] = [bin_dir()]
        if not portmap:
            pod['port_mappings'] = []
    return machine


def pod_machine(stage='node', opt=False, portmap=True, **variables):
    """cni_lab's stage `stage` on node01, rendered from labs/cni_lab.yml with `variables` (its variables
    without the prefix cni_lab_: pods, plugins, mode, cni_version; a set of RENDERED), then
    pods_in_the_sandbox(opt, portmap).

    Stage node: Debian's plugins (bridge, host-local, portmap, loopback) linked, the network configuration
    list (bridge cni0 with host-local over 10.244.1.0/24, then portmap), ip_forward, the pods' server
    script (environment) and the pods, pod-a publishing its port 80 on the node's 8080.
    """
    return pods_in_the_sandbox(rendered(LAB, variables)['stages'][stage], opt, portmap)


def pod_every_stage(opt=False, **variables):
    """What every stage of cni_lab declares with `variables` (see pod_machine), as lab_state is given it,
    then pods_in_the_sandbox(opt)."""
    return pods_in_the_sandbox(rendered(LAB, variables)['every_stage'], opt)


def conflist():
    """The lab's network configuration list (of pod_machine())."""
    return json.loads(conflist_file(pod_machine())['content'])


def conflist_file(machine):
    """The file of `machine` that holds the network configuration list."""
    return [item for item in machine['files'] if item['path'] == conflist_path()][0]


# --------------------------------------------------------------------------
# Looking at the pods
# --------------------------------------------------------------------------

def listdir(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else None


def cache_entries():
    return listdir(CACHE_DIR)


def leases():
    """host-local's lease files (named by the address they hold) of the pods' network."""
    return [name for name in listdir(LEASES_DIR) or [] if name[0].isdigit()]


def lease_of(address):
    """The container id and ifname host-local keeps for an address ('pod-a', 'eth0'), or None."""
    try:
        with open(os.path.join(LEASES_DIR, address)) as handle:
            return handle.read().split()
    except FileNotFoundError:
        return None


def pod_address(pod, ifname='eth0'):
    """The IPv4 CIDR of the pod's interface, or None."""
    found = [a for a in (addresses(pod).get(ifname) or []) if ':' not in a]
    return found[0] if found else None


def mtu(link, namespace=None):
    prefix = ('-n', namespace) if namespace else ()
    return ip_json(*prefix, '-j', 'link', 'show', 'dev', link)[0]['mtu']


def iptables_listing(table):
    """`iptables -t TABLE -S`, every line (policies, chains and rules)."""
    return sh('iptables -w -t %s -S' % table).splitlines()


def cni_chains(table='nat'):
    return sorted(line.split()[1] for line in iptables_listing(table) if line.startswith('-N CNI-'))


def sandbox_state():
    """What a pod lab may change here: engine_driver.leftovers() (namespaces, links, rules, policies, sysctls,
    the work tree), the full listing of nat and filter (chains too), what /var/lib (the CNI state) and /opt
    hold."""
    return dict(leftovers(), listing={t: iptables_listing(t) for t in ('nat', 'filter')},
                var_lib=listdir('/var/lib'), opt=listdir('/opt'))


def tcp_reaches(client_ns, server_ns, connect, port, listen_port, timeout=2.0):
    """The source address a server in `server_ns` listening on 0.0.0.0:`listen_port` sees when a client in
    `client_ns` (None: this namespace) connects to `connect`:`port`; None when nothing arrives."""
    serve = [sys.executable, engine_driver.__file__, '--serve', '0.0.0.0', str(listen_port), str(timeout + 1)]
    server = engine_driver.keep(subprocess.Popen(engine_driver.in_namespace(server_ns, serve), stdout=subprocess.PIPE,
                                                 text=True, preexec_fn=engine_driver.die_with_parent))
    if server.stdout.readline().strip() != 'ready':
        raise AssertionError('the test server in %s did not start' % server_ns)
    subprocess.run(engine_driver.in_namespace(client_ns, [sys.executable, engine_driver.__file__, '--connect',
                                                          connect, str(port), str(timeout)]), capture_output=True)
    seen = server.stdout.readline().strip()
    server.wait()
    return seen or None


def prepare():
    """A private tmpfs on /var/lib (the CNI state goes there), and the record's parent directory."""
    os.makedirs(os.path.dirname(record_dir()))  # /var/lib is there on a machine; cka-lab is the engine's
    subprocess.run(['mount', '-n', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/var/lib'], check=True)
    if filesystems().get('/var/lib') != 'tmpfs' or os.listdir('/var/lib'):
        sys.exit('pods_driver: /var/lib is not a fresh private tmpfs; refusing to run')


def main():
    run_scenario('pods_driver', RESULT_MARK, work_variable='ENGINE_WORK', prepare=prepare)


if __name__ == '__main__':
    main()
