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

The pods are attached by Debian's reference plugins (containernetworking-plugins,
/usr/lib/cni), reached through symbolic links the declaration's files make in
a directory of the work tree (the pods' cni_path), as lesson 205 links them into
/opt/cni/bin. The engine runs them through :func:`run_plugin`, which notes every
plugin it executes (:data:`executions`).

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
    LAB, MARK, addresses, leftovers, links, namespaces, ping, record, record_dir, run, work_path)
from sandbox import filesystems, ip_json, run_scenario, sh  # noqa: E402

RESULT_MARK = 'PODS-DRIVER-RESULT '
# The helpers of engine_driver.py and ../sandbox.py the scenarios import from here (with this driver's
# own, below, by name).
__all__ = ['addresses', 'links', 'namespaces', 'ping', 'record', 'sh', 'work_path']
PACKAGE_DIR = '/usr/lib/cni'  # Debian 12's containernetworking-plugins
PLUGINS = ('bridge', 'host-local', 'portmap', 'loopback')
NETWORK = 'podnet'
BRIDGE = 'cni0'
SLICE = '10.244.1.0/24'
GATEWAY = '10.244.1.1'
PODS = ('pod-a', 'pod-b')
PORT_MAPPING = {'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'}
STATE_DIR = '/var/lib/cni'  # on the sandbox's tmpfs over /var/lib
CACHE_DIR = '/var/lib/cni/results'
LEASES_DIR = '/var/lib/cni/networks/' + NETWORK  # host-local's default dataDir, then the network's name

executions = []  # [CNI_COMMAND, plugin, CNI_CONTAINERID, CNI_IFNAME] of every plugin run_plugin executed
failures = []  # the same and the plugin's error message, of those that failed


OPT_BIN_DIR = '/opt/cni/bin'  # the engine's default cni_path, on the sandbox's tmpfs over /opt (opt_on_tmpfs)


def bin_dir(opt=False):
    """Where the declaration's files link the package's plugins: a directory of the work tree (the pods'
    cni_path), or with `opt` /opt/cni/bin, where cni_lab links them (the pods then name no cni_path)."""
    return OPT_BIN_DIR if opt else work_path('opt', 'cni', 'bin')


def opt_on_tmpfs():
    """A private tmpfs on /opt, for a lab that links its plugins in /opt/cni/bin, as cni_lab does."""
    subprocess.run(['mount', '-n', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/opt'], check=True)
    if filesystems().get('/opt') != 'tmpfs' or os.listdir('/opt'):
        raise AssertionError('/opt is not a fresh private tmpfs')


def conflist_path():
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
    """converge() once, as lab_state calls it; the commands it ran (or, in check mode, would run)."""
    eng = pod_engine(check_mode)
    engine_driver._engine_module().converge(eng, machine, stage,
                                            every_stage if every_stage is not None else machine)
    return eng.commands


def reset_pods(check_mode=False, also=None):
    """remove() once, as a reset runs it; the commands."""
    eng = pod_engine(check_mode)
    engine_driver._engine_module().remove(eng, also=also if also is not None else pod_machine())
    return eng.commands


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


def conflist(mtu=None, version='1.0.0', portmap=True):
    """Lesson 205's network configuration list: bridge cni0 with host-local over the slice, then portmap."""
    bridge = {'type': 'bridge', 'bridge': BRIDGE, 'isGateway': True, 'ipMasq': False,
              'ipam': {'type': 'host-local', 'ranges': [[{'subnet': SLICE, 'gateway': GATEWAY}]],
                       'routes': [{'dst': '0.0.0.0/0'}]}}
    if mtu is not None:
        bridge['mtu'] = mtu
    return {'cniVersion': version, 'name': NETWORK,
            'plugins': [bridge] + ([{'type': 'portmap', 'capabilities': {'portMappings': True}}] if portmap else [])}


def pod_machine(pods=PODS, plugins=PLUGINS, mtu=None, links=None, opt=False, version='1.0.0', portmap=True):
    """cni_lab's node stage on one node: the plugins linked, the conflist, ip_forward, the pods
    (the first publishes its port 80 on the node's 8080). `links`: extra {plugin: target} links.
    `opt`: the plugins in /opt/cni/bin and the pods without cni_path (the default), as in cni_lab."""
    if opt and filesystems().get('/opt') != 'tmpfs':
        raise AssertionError('opt_on_tmpfs() first: the lab would link its plugins in the host\'s /opt/cni/bin')
    directory = bin_dir(opt)
    files = [{'path': os.path.join(directory, name), 'link': os.path.join(PACKAGE_DIR, name)} for name in plugins]
    files += [{'path': os.path.join(directory, name), 'link': target} for name, target in (links or {}).items()]
    files.append({'path': conflist_path(), 'content': json.dumps(conflist(mtu, version, portmap), indent=2) + '\n'})
    pod_list = [{'name': name, 'network': conflist_path(), 'ifname': 'eth0', 'subnet': SLICE,
                 'port_mappings': [PORT_MAPPING] if name == PODS[0] and portmap else []} for name in pods]
    if not opt:
        for pod in pod_list:
            pod['cni_path'] = [directory]
    return {'files': files, 'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1'}], 'pods': pod_list}


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
