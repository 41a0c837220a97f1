# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""module_utils/cni.py against a TEST DOUBLE of the CNI plugins (no plugin runs, nothing on the machine changes).

``FakePlugins`` stands in for the ``run`` callable: it records every call
(the plugin, the CNI_COMMAND, the environment, the JSON read from stdin) and
answers as the reference plugins do: ADD echoes ``prevResult`` with an
interface of its own added (a plugin without one starts a result), CHECK and
DEL print nothing; a scripted answer replaces that for one (command, plugin).
The plugin files are empty executables in a temporary bin dir, so that
find_plugin() finds them as it finds the real ones.
"""

import base64
import json
import os
import stat

import pytest

from ansible_collections.cka.lab.plugins.module_utils import cni
from ansible_collections.cka.lab.plugins.module_utils.cni import CniConfigError, CniError, Runtime, parse_conflist

NETNS = '/run/netns/red'
PORTS = {'portMappings': [{'hostPort': 8080, 'containerPort': 80, 'protocol': 'tcp'}]}
NETWORK = {
    'cniVersion': '1.0.0',
    'name': 'cbr0',
    'plugins': [
        {'type': 'bridge', 'bridge': 'cni0', 'isGateway': True,
         'ipam': {'type': 'host-local', 'subnet': '10.244.1.0/24'}},
        {'type': 'tuning', 'capabilities': {'mac': True, 'ips': False}, 'sysctl': {'net.core.somaxconn': '500'}},
        {'type': 'portmap', 'snat': True, 'capabilities': {'portMappings': True}},
    ],
}


class FakePlugins:
    """A test double of the CNI plugins: `run(argv, env, data)` for cni.Runtime."""

    def __init__(self, bin_dir):
        self.bin_dir = bin_dir
        self.calls = []  # [command, plugin, env, stdin as parsed JSON]
        self.answers = {}  # (command, plugin) -> (rc, stdout, stderr)

    def install(self, *names, directory=None, mode=0o755):
        for name in names:
            path = os.path.join(directory or self.bin_dir, name)
            with open(path, 'w') as handle:
                handle.write('#!/bin/false\n')
            os.chmod(path, mode)

    def __call__(self, argv, env, data):
        plugin = os.path.basename(argv[0])
        config = json.loads(data)
        self.calls.append([env['CNI_COMMAND'], plugin, env, config])
        answer = self.answers.get((env['CNI_COMMAND'], plugin))
        if answer is not None:
            return answer
        if env['CNI_COMMAND'] != 'ADD':
            return 0, '', ''
        start = {'cniVersion': config['cniVersion'], 'interfaces': [], 'ips': []}
        result = json.loads(json.dumps(config.get('prevResult') or start))
        result['interfaces'].append({'name': '%s-of-%s' % (plugin, env['CNI_IFNAME'])})
        return 0, json.dumps(result), 'log line of %s\n' % plugin

    def commands(self):
        return [(command, plugin) for command, plugin, _env, _config in self.calls]

    def fail(self, command, plugin, code=11, msg='failed on purpose', details='the details'):
        self.answers[(command, plugin)] = (1, json.dumps({'cniVersion': '1.0.0', 'code': code, 'msg': msg,
                                                          'details': details}), 'a log line\n')


@pytest.fixture
def bin_dir(tmp_path):
    path = tmp_path / 'bin'
    path.mkdir()
    return str(path)


@pytest.fixture
def plugins(bin_dir):
    fake = FakePlugins(bin_dir)
    fake.install('bridge', 'tuning', 'portmap', 'loopback')
    return fake


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / 'cache' / 'results')


@pytest.fixture
def runtime(plugins, bin_dir, cache_dir):
    return Runtime(plugins, bin_dirs=(bin_dir,), cache_dir=cache_dir)


def cache_file(cache_dir, name='cbr0-ctr1-eth0'):
    with open(os.path.join(cache_dir, name)) as handle:
        return json.load(handle)


# --------------------------------------------------------------------------
# ADD
# --------------------------------------------------------------------------

def test_add_gives_each_plugin_the_environment_and_its_own_configuration(runtime, plugins, bin_dir, monkeypatch):
    monkeypatch.setenv('PATH', '/usr/sbin:/usr/bin')
    monkeypatch.setenv('UNRELATED', 'not passed on')
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=PORTS)

    assert plugins.commands() == [('ADD', 'bridge'), ('ADD', 'tuning'), ('ADD', 'portmap')]
    for _command, _plugin, env, _config in plugins.calls:
        assert env == {'CNI_COMMAND': 'ADD', 'CNI_CONTAINERID': 'ctr1', 'CNI_NETNS': NETNS, 'CNI_IFNAME': 'eth0',
                       'CNI_PATH': bin_dir, 'PATH': '/usr/sbin:/usr/bin'}
    bridge, tuning, portmap = [config for _c, _p, _e, config in plugins.calls]
    assert bridge == dict(NETWORK['plugins'][0], cniVersion='1.0.0', name='cbr0')  # no prevResult for the first
    assert 'capabilities' not in tuning and 'capabilities' not in portmap  # removed (spec 1.0.0 section 3)
    assert tuning['sysctl'] == {'net.core.somaxconn': '500'} and tuning['name'] == 'cbr0'


def test_add_chains_each_result_into_the_next_plugin_and_returns_the_last(runtime, plugins):
    result = runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')

    configs = [config for _c, _p, _e, config in plugins.calls]
    assert 'prevResult' not in configs[0]
    assert [i['name'] for i in configs[1]['prevResult']['interfaces']] == ['bridge-of-eth0']
    assert [i['name'] for i in configs[2]['prevResult']['interfaces']] == ['bridge-of-eth0', 'tuning-of-eth0']
    assert [i['name'] for i in result['interfaces']] == ['bridge-of-eth0', 'tuning-of-eth0', 'portmap-of-eth0']


def test_plugins_get_the_list_s_name_and_version_over_their_own(runtime, plugins):
    network = dict(NETWORK, plugins=[dict(NETWORK['plugins'][0], name='other', cniVersion='0.3.1')])
    runtime.add(network, 'ctr1', NETNS, 'eth0')
    assert plugins.calls[0][3]['name'] == 'cbr0' and plugins.calls[0][3]['cniVersion'] == '1.0.0'


def test_runtime_config_holds_only_the_capabilities_a_plugin_declares(runtime, plugins):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0',
                capability_args=dict(PORTS, mac='c2:11:22:33:44:55', ips=['10.244.1.9/24'], bandwidth={}))

    bridge, tuning, portmap = [config for _c, _p, _e, config in plugins.calls]
    assert 'runtimeConfig' not in bridge  # declares nothing
    assert tuning['runtimeConfig'] == {'mac': 'c2:11:22:33:44:55'}  # "ips": false is not a capability
    assert portmap['runtimeConfig'] == PORTS


def test_no_runtime_config_when_no_declared_capability_is_given(runtime, plugins):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args={'bandwidth': {'ingressRate': 1}})
    assert not any('runtimeConfig' in config for _c, _p, _e, config in plugins.calls)


def test_the_caller_s_list_is_left_as_it_was(runtime):
    network = json.loads(json.dumps(NETWORK))
    runtime.add(network, 'ctr1', NETNS, 'eth0', capability_args=PORTS)
    assert network == NETWORK


def test_cni_args_are_passed_as_cni_args_and_cached(runtime, plugins, cache_dir):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', cni_args=[('K8S_POD_NAMESPACE', 'default'), ('K8S_POD_NAME', 'web')])
    assert plugins.calls[0][2]['CNI_ARGS'] == 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=web'
    assert cache_file(cache_dir)['cniArgs'] == [['K8S_POD_NAMESPACE', 'default'], ['K8S_POD_NAME', 'web']]


def test_a_plugin_s_error_json_becomes_a_cni_error(runtime, plugins):
    plugins.fail('ADD', 'bridge', code=7, msg='Invalid Configuration', details='Network too small')
    with pytest.raises(CniError) as caught:
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    error = caught.value
    assert (error.command, error.plugin, error.code, error.msg, error.details) == (
        'ADD', 'bridge', 7, 'Invalid Configuration', 'Network too small')
    assert error.stderr == 'a log line\n'
    assert str(error) == "ADD plugin 'bridge' failed (code 7): Invalid Configuration: Network too small"


def test_a_plugin_that_fails_without_error_json(runtime, plugins):
    plugins.answers[('ADD', 'bridge')] = (2, '', 'panic: runtime error\ngoroutine 1\n')
    with pytest.raises(CniError) as caught:
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    assert (caught.value.plugin, caught.value.code) == ('bridge', None)
    assert 'exited with status 2' in str(caught.value) and 'panic: runtime error' in str(caught.value)


def test_a_plugin_that_succeeds_without_a_result(runtime, plugins):
    plugins.answers[('ADD', 'portmap')] = (0, 'not json', '')
    with pytest.raises(CniError, match="ADD plugin 'portmap' failed: succeeded but printed no result"):
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')


def test_a_plugin_that_cannot_be_executed(runtime, plugins):
    def run(argv, env, data):
        raise PermissionError(13, 'Permission denied', argv[0])
    runtime.run = run
    with pytest.raises(CniError, match="ADD plugin 'bridge' failed: could not be run: .*Permission denied"):
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')


def test_a_failed_add_deletes_the_whole_list_in_reverse_order(runtime, plugins, cache_dir):
    plugins.fail('ADD', 'tuning')
    with pytest.raises(CniError) as caught:
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=PORTS)

    assert (caught.value.command, caught.value.plugin, caught.value.cleanup_error) == ('ADD', 'tuning', None)
    assert plugins.commands() == [('ADD', 'bridge'), ('ADD', 'tuning'),
                                  ('DEL', 'portmap'), ('DEL', 'tuning'), ('DEL', 'bridge')]  # portmap too
    for _command, _plugin, env, config in plugins.calls[2:]:
        assert 'prevResult' not in config  # there is no ADD result to give
        assert env['CNI_COMMAND'] == 'DEL' and env['CNI_NETNS'] == NETNS
    assert plugins.calls[2][3]['runtimeConfig'] == PORTS  # the same attachment parameters
    assert not os.path.exists(cache_dir)


def test_a_failed_add_whose_del_fails_too(runtime, plugins):
    plugins.fail('ADD', 'portmap', msg='ADD broke')
    plugins.fail('DEL', 'tuning', msg='DEL broke')
    with pytest.raises(CniError) as caught:
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    assert caught.value.msg == 'ADD broke'
    assert (caught.value.cleanup_error.command, caught.value.cleanup_error.plugin) == ('DEL', 'tuning')
    assert 'and the DEL that followed failed too' in str(caught.value)
    assert plugins.commands()[-2:] == [('DEL', 'portmap'), ('DEL', 'tuning')]  # a failure stops the list


def test_add_twice_is_refused(runtime, plugins):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    with pytest.raises(CniError, match='is attached already .*DEL it first'):
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    assert len(plugins.calls) == 3
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth1')  # another interface is another attachment


# --------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------

def test_the_cache_entry_is_libcni_s(runtime, cache_dir):
    text = json.dumps(NETWORK, indent=2)
    result = runtime.add(text, 'ctr1', NETNS, 'eth0', capability_args=PORTS)

    assert os.listdir(cache_dir) == ['cbr0-ctr1-eth0']  # no temporary file left
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(cache_dir, 'cbr0-ctr1-eth0')).st_mode) == 0o600
    entry = cache_file(cache_dir)
    assert list(entry) == ['kind', 'containerId', 'config', 'ifName', 'networkName', 'netns', 'capabilityArgs',
                           'result']
    assert entry == {'kind': 'cniCacheV1', 'containerId': 'ctr1', 'config': base64.b64encode(text.encode()).decode(),
                     'ifName': 'eth0', 'networkName': 'cbr0', 'netns': NETNS, 'capabilityArgs': PORTS,
                     'result': result}
    assert runtime.cached('cbr0', 'ctr1', 'eth0') == entry
    assert cni.conflist_of(entry) == NETWORK


def test_empty_arguments_are_left_out_of_the_cache(runtime, cache_dir):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args={})
    entry = cache_file(cache_dir)
    assert 'capabilityArgs' not in entry and 'cniArgs' not in entry
    assert json.loads(base64.b64decode(entry['config'])) == NETWORK


def test_cached_entries_lists_every_attachment_and_skips_the_rest(runtime, cache_dir):
    assert runtime.cached_entries() == []  # no cache directory yet
    runtime.add(NETWORK, 'ctr2', NETNS, 'eth0')
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    for name, text in (('junk', 'not json'), ('other-kind', '{"kind": "cniCacheV2"}'),
                       ('.cbr0-ctr3-eth0.x.tmp', '{"kind": "cniCacheV1"}'),
                       ('no-ifname', '{"kind": "cniCacheV1", "containerId": "c", "networkName": "n"}')):
        with open(os.path.join(cache_dir, name), 'w') as handle:
            handle.write(text)
    assert [[e['containerId'], e['ifName']] for e in runtime.cached_entries()] == [['ctr1', 'eth0'], ['ctr2', 'eth0']]


def test_cached_is_none_without_an_entry_and_refuses_a_broken_one(runtime, cache_dir):
    assert runtime.cached('cbr0', 'ctr1', 'eth0') is None
    os.makedirs(cache_dir)
    with open(os.path.join(cache_dir, 'cbr0-ctr1-eth0'), 'w') as handle:
        handle.write('{"result": {}}')
    with pytest.raises(CniError, match='is not a cniCacheV1 entry'):
        runtime.cached('cbr0', 'ctr1', 'eth0')
    with pytest.raises(CniConfigError):
        runtime.cached('cbr0', '../ctr1', 'eth0')


# --------------------------------------------------------------------------
# CHECK
# --------------------------------------------------------------------------

def test_check_runs_the_plugins_in_order_with_the_cached_result(runtime, plugins):
    result = runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=PORTS)
    del plugins.calls[:]
    assert runtime.check(NETWORK, 'ctr1', NETNS, 'eth0') is None

    assert plugins.commands() == [('CHECK', 'bridge'), ('CHECK', 'tuning'), ('CHECK', 'portmap')]
    for _command, _plugin, env, config in plugins.calls:
        assert config['prevResult'] == result
        assert env['CNI_COMMAND'] == 'CHECK'
    assert plugins.calls[2][3]['runtimeConfig'] == PORTS  # from the cache: the same parameters as ADD


def test_check_reports_the_first_plugin_that_finds_a_problem(runtime, plugins):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    plugins.fail('CHECK', 'tuning', code=999, msg='Interface name eth0 not found', details='')
    with pytest.raises(CniError) as caught:
        runtime.check(NETWORK, 'ctr1', NETNS, 'eth0')
    assert (caught.value.command, caught.value.plugin, caught.value.code) == ('CHECK', 'tuning', 999)
    assert str(caught.value) == "CHECK plugin 'tuning' failed (code 999): Interface name eth0 not found"
    assert plugins.commands()[-1] == ('CHECK', 'tuning')  # portmap not run


def test_check_without_a_cached_result_is_an_error(runtime, plugins):
    with pytest.raises(CniError, match='has no cached result') as caught:
        runtime.check(NETWORK, 'ctr1', NETNS, 'eth0')
    assert (caught.value.command, caught.value.code) == ('CHECK', None)
    assert plugins.calls == []


def test_check_needs_version_0_4_0(runtime, plugins):
    with pytest.raises(CniError, match='CHECK needs cniVersion 0.4.0'):
        runtime.check(dict(NETWORK, cniVersion='0.3.1'), 'ctr1', NETNS, 'eth0')
    assert plugins.calls == []


def test_check_runs_nothing_when_disabled(runtime, plugins):
    network = dict(NETWORK, disableCheck=True)
    runtime.add(network, 'ctr1', NETNS, 'eth0')
    del plugins.calls[:]
    assert runtime.check(network, 'ctr1', NETNS, 'eth0') is None
    assert plugins.calls == []


# --------------------------------------------------------------------------
# DEL
# --------------------------------------------------------------------------

def test_del_runs_the_plugins_in_reverse_order_with_the_cached_result_then_drops_the_cache(
        runtime, plugins, cache_dir):
    result = runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=PORTS)
    del plugins.calls[:]
    assert runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0') is None

    assert plugins.commands() == [('DEL', 'portmap'), ('DEL', 'tuning'), ('DEL', 'bridge')]
    for _command, _plugin, env, config in plugins.calls:
        assert config['prevResult'] == result and env['CNI_COMMAND'] == 'DEL'
    assert plugins.calls[0][3]['runtimeConfig'] == PORTS  # portmap removes its rules only when given them
    assert os.listdir(cache_dir) == []
    assert runtime.cached('cbr0', 'ctr1', 'eth0') is None


def test_del_without_a_cache_entry_still_runs_every_plugin(runtime, plugins, cache_dir):
    runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0')
    runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0')  # and again: DEL is idempotent
    assert plugins.commands() == [('DEL', 'portmap'), ('DEL', 'tuning'), ('DEL', 'bridge')] * 2
    assert not any('prevResult' in config or 'runtimeConfig' in config for _c, _p, _e, config in plugins.calls)
    assert not os.path.exists(cache_dir)


def test_del_with_given_capability_args_uses_those(runtime, plugins):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=PORTS)
    other = {'portMappings': [{'hostPort': 9090, 'containerPort': 90, 'protocol': 'udp'}]}
    runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=other)
    assert plugins.calls[-3][3]['runtimeConfig'] == other


def test_del_without_a_namespace_leaves_cni_netns_out(runtime, plugins):
    runtime.delete(NETWORK, 'ctr1', '', 'eth0')
    runtime.delete(NETWORK, 'ctr1', None, 'eth0')
    assert all('CNI_NETNS' not in env for _c, _p, env, _config in plugins.calls)


def test_del_before_0_4_0_passes_no_prev_result(runtime, plugins, cache_dir):
    network = dict(NETWORK, cniVersion='0.3.1')
    runtime.add(network, 'ctr1', NETNS, 'eth0')
    del plugins.calls[:]
    runtime.delete(network, 'ctr1', NETNS, 'eth0')
    assert not any('prevResult' in config for _c, _p, _e, config in plugins.calls)
    assert os.listdir(cache_dir) == []


def test_a_failed_del_keeps_the_cache_entry(runtime, plugins, cache_dir):
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    plugins.fail('DEL', 'tuning')
    with pytest.raises(CniError) as caught:
        runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0')
    assert (caught.value.command, caught.value.plugin) == ('DEL', 'tuning')
    assert plugins.commands()[-2:] == [('DEL', 'portmap'), ('DEL', 'tuning')]  # bridge not run
    assert os.listdir(cache_dir) == ['cbr0-ctr1-eth0']


def test_del_removes_a_broken_cache_entry_and_runs_without_prev_result(runtime, plugins, cache_dir):
    os.makedirs(cache_dir)
    with open(os.path.join(cache_dir, 'cbr0-ctr1-eth0'), 'w') as handle:
        handle.write('garbage')
    runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0')
    assert len(plugins.calls) == 3 and not any('prevResult' in c for _c, _p, _e, c in plugins.calls)
    assert os.listdir(cache_dir) == []


# --------------------------------------------------------------------------
# Plugins and bin dirs
# --------------------------------------------------------------------------

def test_missing_plugins_are_reported_before_anything_runs(runtime, plugins, bin_dir):
    runtime.add(NETWORK, 'ctr2', NETNS, 'eth0')  # for CHECK, which needs an ADDed attachment first
    del plugins.calls[:]
    os.unlink(os.path.join(bin_dir, 'tuning'))
    network = dict(NETWORK, plugins=NETWORK['plugins'] + [{'type': 'firewall'}, {'type': 'tuning'}])
    assert runtime.missing_plugins(network) == ['tuning', 'firewall']
    for call, container_id in ((runtime.add, 'ctr1'), (runtime.check, 'ctr2'), (runtime.delete, 'ctr2')):
        with pytest.raises(CniError) as caught:
            call(network, container_id, NETNS, 'eth0')
        assert caught.value.plugin == 'tuning' and caught.value.code is None
        assert 'not found in %s (CNI_PATH)' % bin_dir in str(caught.value)
    assert plugins.calls == []


def test_find_plugin_takes_the_first_bin_dir_with_an_executable(plugins, bin_dir, tmp_path, cache_dir):
    first, second = tmp_path / 'first', tmp_path / 'second'
    first.mkdir()
    second.mkdir()
    plugins.install('bridge', directory=str(first), mode=0o644)  # not executable: skipped
    plugins.install('bridge', directory=str(second))
    os.mkdir(os.path.join(str(first), 'portmap'))  # a directory: skipped
    runtime = Runtime(plugins, bin_dirs='%s:%s:%s' % (first, second, bin_dir), cache_dir=cache_dir)
    assert runtime.find_plugin('bridge') == os.path.join(str(second), 'bridge')
    assert runtime.find_plugin('portmap') == os.path.join(bin_dir, 'portmap')
    assert runtime.find_plugin('nothing') is None
    assert runtime.find_plugin('../bin/bridge') is None
    runtime.add(NETWORK, 'ctr1', NETNS, 'eth0')
    assert plugins.calls[0][2]['CNI_PATH'] == '%s:%s:%s' % (first, second, bin_dir)


def test_a_runtime_needs_a_bin_dir(plugins):
    with pytest.raises(CniConfigError, match='bin_dirs'):
        Runtime(plugins, bin_dirs=())


# --------------------------------------------------------------------------
# Input validation and check mode
# --------------------------------------------------------------------------

@pytest.mark.parametrize('container_id', ['', '-ctr', 'ctr 1', 'ctr/1', 'ctr;1', None, 7])
def test_bad_container_ids_are_refused(runtime, plugins, container_id):
    for call in (runtime.add, runtime.check, runtime.delete):
        with pytest.raises(CniConfigError, match='container id'):
            call(NETWORK, container_id, NETNS, 'eth0')
    assert plugins.calls == []


@pytest.mark.parametrize('ifname', ['', '.', '..', 'a' * 16, 'é' * 8, 'eth/0', 'eth 0', 'eth:0', 'eth\t0', None])
def test_bad_interface_names_are_refused(runtime, plugins, ifname):
    for call in (runtime.add, runtime.check, runtime.delete):
        with pytest.raises(CniConfigError, match='interface name'):
            call(NETWORK, 'ctr1', NETNS, ifname)
    assert plugins.calls == []


def test_interface_names_of_15_bytes_and_container_ids_with_dots_are_fine(runtime):
    runtime.add(NETWORK, 'k8s_POD.web-1', NETNS, 'a' * 15)


@pytest.mark.parametrize('netns', ['', 'red', 'run/netns/red', None])
def test_add_and_check_need_a_namespace_path(runtime, plugins, netns):
    for call in (runtime.add, runtime.check):
        with pytest.raises(CniConfigError, match='network namespace'):
            call(NETWORK, 'ctr1', netns, 'eth0')
    assert plugins.calls == []


@pytest.mark.parametrize('capability_args, message', [
    (['portMappings'], 'must be an object'),
    ({1: 'x'}, 'must be an object'),
    ({'portMappings': {1, 2}}, 'not JSON'),
])
def test_bad_capability_args_are_refused(runtime, plugins, capability_args, message):
    with pytest.raises(CniConfigError, match=message):
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=capability_args)
    assert plugins.calls == []


@pytest.mark.parametrize('cni_args', [[('K8S POD', 'x')], [('A', 'x;y')], [('A',)], [('A', 1)]])
def test_bad_cni_args_are_refused(runtime, plugins, cni_args):
    with pytest.raises(CniConfigError, match='CNI_ARGS'):
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', cni_args=cni_args)
    assert plugins.calls == []


def test_check_mode_executes_and_writes_nothing(plugins, bin_dir, cache_dir):
    runtime = Runtime(plugins, bin_dirs=(bin_dir,), cache_dir=cache_dir, check_mode=True)
    assert runtime.add(NETWORK, 'ctr1', NETNS, 'eth0', capability_args=PORTS) is None
    assert runtime.check(NETWORK, 'ctr1', NETNS, 'eth0') is None
    assert runtime.delete(NETWORK, 'ctr1', NETNS, 'eth0') is None
    assert plugins.calls == []
    assert not os.path.exists(cache_dir)
    with pytest.raises(CniConfigError):  # input is still checked
        runtime.add(NETWORK, 'ctr1', NETNS, 'eth/0')


# --------------------------------------------------------------------------
# parse_conflist
# --------------------------------------------------------------------------

def test_parse_conflist_returns_the_list():
    assert parse_conflist(json.dumps(NETWORK), '/etc/cni/net.d/10-cbr0.conflist') == NETWORK
    assert parse_conflist(json.dumps(NETWORK).encode()) == NETWORK
    assert parse_conflist(json.dumps(dict(NETWORK, disableCheck='true')))['disableCheck'] == 'true'


@pytest.mark.parametrize('text, message', [
    ('{"cniVersion": "1.0.0",', 'PATH: not valid JSON'),
    ('[]', 'PATH: a network configuration list is a JSON object, not a list'),
    ('{"name": "n", "plugins": [{"type": "bridge"}]}', 'PATH: cniVersion: is required'),
    ('{"cniVersion": 1, "name": "n", "plugins": [{"type": "bridge"}]}', 'PATH: cniVersion: must be a string, not a '
                                                                        'number'),
    ('{"cniVersion": "1.0", "name": "n", "plugins": [{"type": "bridge"}]}', "PATH: cniVersion: '1.0' is not a version"),
    ('{"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}', 'PATH: name: is required'),
    ('{"cniVersion": "1.0.0", "name": "-n", "plugins": [{"type": "bridge"}]}', "PATH: name: '-n' must start with"),
    ('{"cniVersion": "1.0.0", "name": "n", "type": "bridge"}', 'PATH: plugins: is required'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": {}}', 'PATH: plugins: must be a list, not an object'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": []}', 'PATH: plugins: must hold at least one'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": ["bridge"]}', 'PATH: plugins\\[0\\]: must be an object'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}, {}]}', 'PATH: plugins\\[1\\].type: is '
                                                                                  'required'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": null}]}', 'PATH: plugins\\[0\\].type: must be a '
                                                                          'string, not null'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../bridge"}]}', 'PATH: plugins\\[0\\].type: '
                                                                                 "'../bridge' is not a file name"),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "p", "capabilities": ["portMappings"]}]}',
     'PATH: plugins\\[0\\].capabilities: must be an object'),
    ('{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "p", "capabilities": {"portMappings": "yes"}}]}',
     'PATH: plugins\\[0\\].capabilities.portMappings: must be true or false'),
    ('{"cniVersion": "1.0.0", "name": "n", "disableCheck": 1, "plugins": [{"type": "p"}]}',
     'PATH: disableCheck: must be true or false'),
])
def test_parse_conflist_names_the_path_and_the_field(text, message):
    with pytest.raises(CniConfigError, match='^' + message) as caught:
        parse_conflist(text, 'PATH')
    assert isinstance(caught.value, ValueError) and caught.value.code is None


def test_runtime_methods_check_a_dict_list_too(runtime, plugins):
    with pytest.raises(CniConfigError, match='^<conflist>: plugins: must hold at least one'):
        runtime.add(dict(NETWORK, plugins=[]), 'ctr1', NETNS, 'eth0')
    with pytest.raises(CniConfigError, match='^<conflist>: not valid JSON'):
        runtime.missing_plugins('{')
    assert plugins.calls == []
