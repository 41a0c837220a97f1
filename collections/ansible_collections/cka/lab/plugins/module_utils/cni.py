# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A CNI runtime: runs the CNI plugins of a network configuration list the way a container runtime does.

Shapes
------
* A network configuration list is a JSON object (``parse_conflist()`` reads and
  checks one)::

      {"cniVersion": "1.0.0", "name": "cbr0", "disableCheck": false,
       "plugins": [{"type": "bridge", "bridge": "cni0", "ipam": {...}},
                   {"type": "portmap", "capabilities": {"portMappings": true}}]}

  ``Runtime`` methods take it as that dict or as its text (str or bytes); the
  text is what gets cached, as libcni caches the bytes of the file.
* An attachment is ``(network name, container id, ifname)`` plus the network
  namespace path (``/run/netns/NAME``, ``/proc/PID/ns/net``), the capability
  arguments (``{"portMappings": [{"hostPort": 8080, "containerPort": 80,
  "protocol": "tcp"}]}``) and the CNI_ARGS pairs (``[["K8S_POD_NAME", "web"]]``).
* ``run(argv, env, data) -> (rc, stdout, stderr)`` executes one plugin binary:
  argv is ``[path of the plugin]``, env exactly the CNI_* variables plus PATH,
  data the plugin's JSON configuration for its stdin. The runtime executes
  nothing by itself: it reads and writes only the bin dirs (to find plugins)
  and its cache directory.
* A cache entry is a dict, one JSON file per attachment in ``cache_dir``::

      {"kind": "cniCacheV1", "containerId": ..., "config": BASE64 OF THE LIST'S BYTES,
       "ifName": ..., "networkName": ..., "netns": ..., "cniArgs": [[K, V], ...],
       "capabilityArgs": {...}, "result": RESULT OF THE LAST PLUGIN'S ADD}

Errors
------
Everything raises :class:`CniError`: a plugin's failure carries the command,
the plugin type and the plugin's own ``code``, ``msg`` and ``details``; a
problem found by the runtime (a plugin not found, no cached result for CHECK,
a plugin that printed no result) has ``code`` None. Invalid input (the list,
a container id, an interface name, capability arguments) raises
:class:`CniConfigError`, which is a CniError and a ValueError, before any
plugin runs.

Where each fact comes from
--------------------------
The CNI specification, https://github.com/containernetworking/cni/blob/main/SPEC.md,
versions 0.4.0 and 1.0.0:

* parameters as environment variables CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
  CNI_IFNAME, CNI_ARGS ("FOO=BAR;ABC=123"), CNI_PATH (directories joined with
  ':'); CNI_NETNS optional for DEL (1.0.0 section 2); the configuration on stdin;
* container ids and network names start with an alphanumeric character,
  then alphanumerics, '_', '.' or '-'; interface names are not empty, not '.'
  or '..', shorter than 16 characters (IFNAMSIZ), without '/', ':' or
  whitespace (0.4.0 "Parameters", 1.0.0 section 3 "Attachment Parameters");
* a plugin's ``type`` names its executable, looked up in a list of
  directories; not found is an error (1.0.0 section 3);
* each plugin of a list gets its own object with the list's ``cniVersion`` and
  ``name``; ``runtimeConfig`` holds the capability arguments for the
  capabilities the plugin declares (``"capabilities": {"portMappings": true}``);
  ``capabilities`` itself is removed (1.0.0 section 3, "Deriving execution
  configuration"; libcni leaves it in, and the plugins ignore it either way);
* ADD runs the plugins in order, each with ``prevResult`` the previous one's
  result (none for the first); the last result is stored persistently;
  CHECK (0.4.0 and later; never when ``disableCheck`` is true) runs them in
  order and DEL in reverse order, both with ``prevResult`` the cached ADD result
  (for DEL only from 0.4.0 on, and only when known); the cached result is
  deleted after a successful DEL; the first error stops a list;
* a failure is a non-zero exit status with ``{"cniVersion", "code", "msg",
  "details"}`` on stdout ("Error", codes 0-99 well-known); after a failed ADD
  the runtime should DEL the whole list, in reverse order, including plugins
  that were not called (0.4.0 "Network Configuration List Error Handling",
  1.0.0 section 3 "a delete must still be executed even if the add fails");
* runtimes must not ADD an attachment twice without a DEL in between, nor
  CHECK one that was not ADDed (here: refused, with CniError).

libcni (github.com/containernetworking/cni, libcni/api.go), which containerd
and CRI-O use: the cache file ``<cache_dir>/<networkName>-<containerID>-<ifName>``
with kind "cniCacheV1" and the keys above (``config`` base64 as Go marshals
bytes; ``netns``, ``cniArgs``, ``capabilityArgs`` left out when empty),
directory 0700, file 0600; ``runtimeConfig`` added only when not empty; the
plugin's argv is its path alone and its stdin JSON has its keys sorted (Go
marshals a map so); CNI_ARGS joined from ``[key, value]`` pairs; a cache entry that cannot be read is removed
on DEL, which then runs without prevResult. Here the file is written
atomically (a temporary file, then os.replace), and CHECK and DEL without
capability arguments use those cached by ADD (the same attachment parameters,
as the specification asks: portmap removes its rules only when it is given the
port mappings).

Debian bookworm's containernetworking-plugins 1.1.1 installs the reference
plugins (bridge, host-local, portmap, loopback, ...) in /usr/lib/cni; the
upstream default directory is /opt/cni/bin. Its portmap fails CHECK for a pod
with port mappings and no IPv6 address (it looks for an IPv6 DNAT chain:
containernetworking/plugins issue #819, fixed in later releases); such a list
can set ``disableCheck``. Standard library only.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import os
import re
import tempfile

CACHE_KIND = 'cniCacheV1'
DEFAULT_BIN_DIRS = ('/opt/cni/bin',)
DEFAULT_CACHE_DIR = '/var/lib/cni/results'  # libcni: CacheDir /var/lib/cni, entries under results/
DEBIAN_BIN_DIR = '/usr/lib/cni'  # containernetworking-plugins on Debian 12
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'  # when the caller has no PATH
IFNAME_MAX = 15  # bytes: IFNAMSIZ (16) less the terminating NUL
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.\-]*$')  # container ids and network names (spec)
VERSION_RE = re.compile(r'^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$')
CNI_ARG_KEY_RE = re.compile(r'^[A-Za-z0-9_]+$')
_STDIN_JSON = {'sort_keys': True, 'separators': (',', ':')}  # as libcni re-marshals a Go map: keys sorted


class CniError(Exception):
    """A CNI operation failed.

    A plugin's failure: ``command`` (ADD, CHECK or DEL), ``plugin`` (its type),
    and ``code``, ``msg``, ``details`` from the error JSON it printed on stdout
    (spec "Error"); ``stderr`` what it logged. A problem the runtime itself
    found (plugin not found, bad input, no cached result) has ``code`` None.
    After a failed ADD, ``cleanup_error`` is the CniError of the DEL that
    followed it, if that failed too.
    """

    def __init__(self, msg, command=None, plugin=None, code=None, details=None, stderr=None):
        self.command = command
        self.plugin = plugin
        self.code = code
        self.msg = msg
        self.details = details
        self.stderr = stderr
        self.cleanup_error = None
        super().__init__(msg)

    def __str__(self):
        head = ' '.join(part for part in (
            self.command,
            'plugin %r' % self.plugin if self.plugin else None,
            'failed' if self.command or self.plugin else None,
            '(code %s)' % self.code if self.code is not None else None) if part)
        msg = str(self.msg).strip()
        text = '%s: %s' % (head, msg) if head else msg
        if self.details and str(self.details).strip() != msg:
            text += ': %s' % str(self.details).strip()
        if self.cleanup_error is not None:
            text += ' (and the DEL that followed failed too: %s)' % self.cleanup_error
        return text


class CniConfigError(CniError, ValueError):
    """Invalid input (network configuration list, attachment parameters): nothing was run."""


# --------------------------------------------------------------------------
# The network configuration list
# --------------------------------------------------------------------------

def _type_name(value):
    return {dict: 'an object', list: 'a list', str: 'a string', bool: 'a boolean', type(None): 'null'}.get(
        type(value), 'a number' if isinstance(value, (int, float)) else type(value).__name__)


def version_tuple(version):
    """(major, minor, patch) of a cniVersion string such as "1.0.0"."""
    match = VERSION_RE.match(version)
    if not match:
        raise CniConfigError('cniVersion %r is not a version MAJOR.MINOR.PATCH' % (version,))
    return tuple(int(part) for part in match.groups())


def validate_conflist(data, path='<conflist>'):
    """`data` (a parsed network configuration list) if it is one; CniConfigError naming path and field if not."""
    def fail(field, problem):
        raise CniConfigError('%s: %s%s' % (path, field + ': ' if field else '', problem))

    if not isinstance(data, dict):
        fail('', 'a network configuration list is a JSON object, not %s' % _type_name(data))
    for key in ('cniVersion', 'name'):
        if key not in data:
            fail(key, 'is required')
        if not isinstance(data[key], str):
            fail(key, 'must be a string, not %s' % _type_name(data[key]))
    if not VERSION_RE.match(data['cniVersion']):
        fail('cniVersion', '%r is not a version MAJOR.MINOR.PATCH (such as "1.0.0")' % data['cniVersion'])
    if not NAME_RE.match(data['name']):
        fail('name', '%r must start with a letter or digit, then letters, digits, "_", "." or "-"' % data['name'])
    disable_check = data.get('disableCheck', False)
    if not (isinstance(disable_check, bool) or disable_check in ('true', 'false')):  # 1.0.0 boolean, 0.4.0 string
        fail('disableCheck', 'must be true or false, not %r' % (disable_check,))
    if 'plugins' not in data:
        fail('plugins', 'is required (a list of plugin configurations; a single .conf is not a list)')
    plugins = data['plugins']
    if not isinstance(plugins, list):
        fail('plugins', 'must be a list, not %s' % _type_name(plugins))
    if not plugins:
        fail('plugins', 'must hold at least one plugin configuration')
    for index, plugin in enumerate(plugins):
        where = 'plugins[%d]' % index
        if not isinstance(plugin, dict):
            fail(where, 'must be an object, not %s' % _type_name(plugin))
        if 'type' not in plugin:
            fail(where + '.type', 'is required')
        kind = plugin['type']
        if not isinstance(kind, str):
            fail(where + '.type', 'must be a string, not %s' % _type_name(kind))
        if not plugin_type_ok(kind):
            fail(where + '.type', '%r is not a file name (empty, ".", "..", or with "/", "\\" or NUL)' % kind)
        capabilities = plugin.get('capabilities', {})
        if not isinstance(capabilities, dict):
            fail(where + '.capabilities', 'must be an object, not %s' % _type_name(capabilities))
        for name, supported in capabilities.items():
            if not isinstance(supported, bool):
                fail('%s.capabilities.%s' % (where, name), 'must be true or false, not %r' % (supported,))
    return data


def parse_conflist(text, path='<conflist>'):
    """The network configuration list in `text` (JSON, str or bytes), checked; CniConfigError naming `path`."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise CniConfigError('%s: not valid JSON: %s' % (path, exc)) from None
    return validate_conflist(data, path)


def plugin_types(conflist):
    """The plugin types a (validated) network configuration list runs, in order, each once: each plugin's
    `type`, then its IPAM plugin's (`ipam.type`, which the plugin runs itself from CNI_PATH; SPEC.md, IP
    Address Management)."""
    types = []
    for plugin in conflist['plugins']:
        ipam = plugin.get('ipam')
        for kind in (plugin['type'], ipam.get('type') if isinstance(ipam, dict) else None):
            if kind and kind not in types:
                types.append(kind)
    return types


def plugin_type_ok(kind):
    """True when a plugin type can name an executable in a directory."""
    return (isinstance(kind, str) and kind not in ('', '.', '..')
            and not any(char in kind for char in '/\\\0'))


def result_addresses(result):
    """The addresses (ipaddress interfaces) of an ADD result of any cniVersion: `ips` from 0.3.0 on, `ip4` and
    `ip6` before (spec, and SPEC.md of v0.2.0)."""
    found = []
    if not isinstance(result, dict):
        return found
    for entry in result.get('ips') or []:
        if isinstance(entry, dict) and entry.get('address'):
            found.append(ipaddress.ip_interface(entry['address']))
    for key in ('ip4', 'ip6'):
        entry = result.get(key)
        if isinstance(entry, dict) and entry.get('ip'):
            found.append(ipaddress.ip_interface(entry['ip']))
    return found


def conflist_of(entry):
    """The network configuration list a cache entry was made with (its ``config``, base64 of the list's bytes)."""
    where = 'cache entry %s-%s-%s' % (entry.get('networkName'), entry.get('containerId'), entry.get('ifName'))
    try:
        raw = base64.b64decode(entry.get('config') or '', validate=True)
    except (ValueError, TypeError) as exc:
        raise CniConfigError('%s: config is not base64: %s' % (where, exc)) from None
    return parse_conflist(raw, where + ' config')


# --------------------------------------------------------------------------
# Attachment parameters
# --------------------------------------------------------------------------

def _check_container_id(container_id):
    if not isinstance(container_id, str) or not NAME_RE.match(container_id):
        raise CniConfigError('container id %r must start with a letter or digit, then letters, digits, "_", "." '
                             'or "-" (CNI_CONTAINERID)' % (container_id,))


def _check_ifname(ifname):
    if not isinstance(ifname, str) or ifname in ('', '.', '..'):
        raise CniConfigError('interface name %r must be a non-empty name other than "." and ".." (CNI_IFNAME)'
                             % (ifname,))
    if len(ifname.encode('utf-8')) > IFNAME_MAX:
        raise CniConfigError('interface name %r is longer than %d bytes (IFNAMSIZ)' % (ifname, IFNAME_MAX))
    if any(char in '/:\0' or char.isspace() for char in ifname):
        raise CniConfigError("interface name %r must not contain '/', ':' or whitespace" % (ifname,))


def _check_netns(netns, command):
    if command == 'DEL' and netns in (None, ''):
        return ''  # optional for DEL (spec 1.0.0): plugins then clean up what they can
    if not isinstance(netns, str) or not netns.startswith('/') or '\0' in netns:
        raise CniConfigError('network namespace %r must be the path of a network namespace, such as '
                             '/run/netns/NAME or /proc/PID/ns/net (CNI_NETNS)' % (netns,))
    return netns


def _check_capability_args(capability_args):
    if capability_args is None:
        return {}
    if not isinstance(capability_args, dict) or not all(isinstance(key, str) for key in capability_args):
        raise CniConfigError('capability arguments must be an object keyed by capability name, not %r'
                             % (capability_args,))
    try:
        json.dumps(capability_args)
    except (TypeError, ValueError) as exc:
        raise CniConfigError('capability arguments are not JSON: %s' % exc) from None
    return copy.deepcopy(capability_args)


def _check_cni_args(cni_args):
    """[[key, value], ...] from a dict or a list of pairs; CniConfigError if CNI_ARGS cannot carry them."""
    if cni_args is None:
        return []
    pairs = list(cni_args.items()) if isinstance(cni_args, dict) else cni_args
    checked = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CniConfigError('CNI_ARGS: %r is not a (key, value) pair' % (pair,))
        key, value = pair
        if not isinstance(key, str) or not CNI_ARG_KEY_RE.match(key):
            raise CniConfigError('CNI_ARGS: key %r must be letters, digits and "_"' % (key,))
        if not isinstance(value, str) or any(char in value for char in ';=\0') or any(c.isspace() for c in value):
            raise CniConfigError('CNI_ARGS: value %r of %s must be a string without ";", "=" or whitespace'
                                 % (value, key))
        checked.append([key, value])
    return checked


# --------------------------------------------------------------------------
# Running plugins
# --------------------------------------------------------------------------

def _text(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode('utf-8', 'replace')
    return value or ''


def _plugin_error(command, kind, rc, stdout, stderr):
    """The CniError of a plugin that exited with status `rc`."""
    stdout, stderr = _text(stdout), _text(stderr)
    try:
        error = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        error = None
    if isinstance(error, dict) and ('code' in error or 'msg' in error):
        return CniError(error.get('msg') or 'no message', command, kind, error.get('code'), error.get('details'),
                        stderr)
    said = (stderr.strip() or stdout.strip() or 'nothing').splitlines()
    return CniError('exited with status %s and printed no error JSON; it said: %s' % (rc, ' / '.join(said[-5:])),
                    command, kind, stderr=stderr)


class Runtime:
    """Executes network configuration lists as a container runtime does (see the module's docstring).

    `run(argv, env, data) -> (rc, stdout, stderr)` executes a plugin;
    `bin_dirs` are searched in order (CNI_PATH; a string is split on ':');
    `cache_dir` holds one result file per attachment; with `check_mode`,
    input is checked and nothing is executed or written.
    """

    def __init__(self, run, bin_dirs=DEFAULT_BIN_DIRS, cache_dir=DEFAULT_CACHE_DIR, check_mode=False):
        if isinstance(bin_dirs, str):
            bin_dirs = bin_dirs.split(':')
        self.bin_dirs = tuple(directory for directory in bin_dirs if directory)
        if not self.bin_dirs:
            raise CniConfigError('bin_dirs: at least one directory to look for plugins in is needed')
        self.run = run
        self.cache_dir = cache_dir
        self.check_mode = check_mode

    # ---- plugins

    def find_plugin(self, plugin_type):
        """Path of the executable `plugin_type` in the first bin dir that has one, or None."""
        if not plugin_type_ok(plugin_type):
            return None
        for directory in self.bin_dirs:
            path = os.path.join(directory, plugin_type)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        return None

    def supported_versions(self, plugin_type, path=None):
        """The cniVersions a plugin (at `path`, else found in the bin dirs) says it supports
        (CNI_COMMAND=VERSION, spec "VERSION"), or None when it is not there or prints no answer. Nothing
        changes: VERSION only answers."""
        path = path or self.find_plugin(plugin_type)
        if path is None:
            return None
        env = {'CNI_COMMAND': 'VERSION', 'PATH': os.environ.get('PATH') or DEFAULT_PATH}
        try:
            # No standard input: some plugins answer VERSION without reading it, and a runtime writing it
            # to them would meet a closed pipe (the spec's stdin here is optional).
            rc, stdout, _stderr = self.run([path], env, None)
            answer = json.loads(_text(stdout)) if rc == 0 else None
        except (OSError, ValueError):
            return None
        versions = answer.get('supportedVersions') if isinstance(answer, dict) else None
        return [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else None

    def missing_plugins(self, conflist):
        """Plugin types of `conflist` that no bin dir holds, in list order, each once (the list's own plugins;
        `plugin_types` adds the IPAM plugins they run)."""
        data, _raw = self._load(conflist)
        kinds = list(dict.fromkeys(plugin['type'] for plugin in data['plugins']))
        return [kind for kind in kinds if self.find_plugin(kind) is None]

    # ---- the three operations

    def add(self, conflist, container_id, netns, ifname, capability_args=None, cni_args=None):
        """ADD the attachment: the plugins in order; the last plugin's result (a dict), cached.

        Refused (CniError) when the attachment is in the cache already: DEL it
        first. When a plugin fails, or the result cannot be cached, the whole
        list is DELeted (best effort) and the plugin's CniError raised.
        Check mode: None.
        """
        data, raw = self._load(conflist)
        netns = self._check_attachment('ADD', container_id, netns, ifname)
        capability_args = _check_capability_args(capability_args)
        cni_args = _check_cni_args(cni_args)
        if self.check_mode:
            return None
        if self.cached(data['name'], container_id, ifname) is not None:
            raise CniError('%s is attached already (cache entry %s); DEL it first' % (
                self._attachment_name(data, container_id, ifname), self._cache_path(data['name'], container_id,
                                                                                    ifname)), 'ADD')
        paths = self._plugin_paths('ADD', data)
        try:
            env = self._env('ADD', container_id, netns, ifname, cni_args)
            result = None
            for plugin, path in zip(data['plugins'], paths):
                result = self._exec('ADD', data, plugin, path, env, result, capability_args)
            try:
                self._write_cache(data, raw, container_id, netns, ifname, cni_args, capability_args, result)
            except OSError as exc:
                raise CniError('cannot cache the result in %s: %s' % (self.cache_dir, exc), 'ADD') from None
        except CniError as exc:
            try:  # what runtimes do: DEL the whole list, in reverse order, so nothing half-made stays
                self._run_del(data, paths, container_id, netns, ifname, cni_args, capability_args, None)
            except CniError as cleanup:
                exc.cleanup_error = cleanup
            raise
        return result

    def check(self, conflist, container_id, netns, ifname, capability_args=None, cni_args=None):
        """CHECK the attachment: the plugins in order with the cached result; None, or CniError.

        CniError too when the list's cniVersion is older than 0.4.0 or when
        the attachment has no cache entry (never ADDed, or DELeted). With
        ``disableCheck`` true no plugin runs. Without capability (CNI_ARGS)
        arguments, those cached by ADD are used.
        """
        data, _raw = self._load(conflist)
        netns = self._check_attachment('CHECK', container_id, netns, ifname)
        capability_args = None if capability_args is None else _check_capability_args(capability_args)
        cni_args = None if cni_args is None else _check_cni_args(cni_args)
        if self.check_mode:
            return None
        if version_tuple(data['cniVersion']) < (0, 4, 0):
            raise CniError('CHECK needs cniVersion 0.4.0 or later; %s has %s' % (data['name'], data['cniVersion']),
                           'CHECK')
        entry = self.cached(data['name'], container_id, ifname)
        if entry is None or 'result' not in entry:
            raise CniError('%s has no cached result (not ADDed, or DELeted since)' % self._attachment_name(
                data, container_id, ifname), 'CHECK')
        if data.get('disableCheck') in (True, 'true'):
            return None
        if capability_args is None:
            capability_args = entry.get('capabilityArgs') or {}
        if cni_args is None:
            cni_args = entry.get('cniArgs') or []
        paths = self._plugin_paths('CHECK', data)
        env = self._env('CHECK', container_id, netns, ifname, cni_args)
        for plugin, path in zip(data['plugins'], paths):
            self._exec('CHECK', data, plugin, path, env, entry['result'], capability_args)
        return None

    def delete(self, conflist, container_id, netns, ifname, capability_args=None, cni_args=None):
        """DEL the attachment: the plugins in reverse order with the cached result; then the cache entry goes.

        Idempotent: without a cache entry the plugins still run (without
        prevResult) and clean up what they find; `netns` may be a path that is
        gone, or '' (CNI_NETNS left out). Without capability (CNI_ARGS)
        arguments, those cached by ADD are used. A cache entry that cannot be
        read is removed first, as libcni does. CniError when a plugin fails
        (the cache entry then stays). Check mode: nothing happens.
        """
        data, _raw = self._load(conflist)
        netns = self._check_attachment('DEL', container_id, netns, ifname)
        capability_args = None if capability_args is None else _check_capability_args(capability_args)
        cni_args = None if cni_args is None else _check_cni_args(cni_args)
        if self.check_mode:
            return None
        try:
            entry = self.cached(data['name'], container_id, ifname)
        except CniError:
            self._remove_cache(data['name'], container_id, ifname)
            entry = None
        entry = entry or {}
        if capability_args is None:
            capability_args = entry.get('capabilityArgs') or {}
        if cni_args is None:
            cni_args = entry.get('cniArgs') or []
        prev_result = entry.get('result') if version_tuple(data['cniVersion']) >= (0, 4, 0) else None
        paths = self._plugin_paths('DEL', data)
        self._run_del(data, paths, container_id, netns, ifname, cni_args, capability_args, prev_result)
        self._remove_cache(data['name'], container_id, ifname)
        return None

    # ---- the cache

    def cached(self, network_name, container_id, ifname):
        """The cache entry of an attachment (a dict), or None; CniError when the file is not a cniCacheV1 entry."""
        if not isinstance(network_name, str) or not NAME_RE.match(network_name):
            raise CniConfigError('network name %r is not a CNI network name' % (network_name,))
        _check_container_id(container_id)
        _check_ifname(ifname)
        path = self._cache_path(network_name, container_id, ifname)
        try:
            with open(path, 'rb') as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CniError('cannot read cache entry %s: %s' % (path, exc)) from None
        entry = self._entry(raw)
        if entry is None:
            raise CniError('cache entry %s is not a %s entry' % (path, CACHE_KIND))
        return entry

    def cached_entries(self):
        """Every readable cache entry (dicts, by file name); files that are not cniCacheV1 entries are left out."""
        try:
            names = sorted(os.listdir(self.cache_dir))
        except FileNotFoundError:
            return []
        entries = []
        for name in names:
            if name.startswith('.'):  # a temporary file of a write in progress
                continue
            try:
                with open(os.path.join(self.cache_dir, name), 'rb') as handle:
                    entry = self._entry(handle.read())
            except OSError:
                continue
            if entry is not None and entry.get('containerId') and entry.get('ifName') and entry.get('networkName'):
                entries.append(entry)
        return entries

    # ---- helpers

    @staticmethod
    def _load(conflist):
        """(the list as a dict, the bytes to cache) of a dict or of its JSON text."""
        if isinstance(conflist, (str, bytes, bytearray)):
            raw = conflist.encode('utf-8') if isinstance(conflist, str) else bytes(conflist)
            return parse_conflist(raw), raw
        validate_conflist(conflist)
        return conflist, json.dumps(conflist, separators=(',', ':')).encode('utf-8')

    @staticmethod
    def _check_attachment(command, container_id, netns, ifname):
        _check_container_id(container_id)
        _check_ifname(ifname)
        return _check_netns(netns, command)

    @staticmethod
    def _attachment_name(data, container_id, ifname):
        return 'network %s, container %s, interface %s' % (data['name'], container_id, ifname)

    def _plugin_paths(self, command, data):
        """Path of every plugin of the list, looked up before any runs; CniError naming the first missing."""
        paths = []
        for plugin in data['plugins']:
            path = self.find_plugin(plugin['type'])
            if path is None:
                raise CniError('not found in %s (CNI_PATH)' % ':'.join(self.bin_dirs), command, plugin['type'])
            paths.append(path)
        return paths

    def _env(self, command, container_id, netns, ifname, cni_args):
        env = {'CNI_COMMAND': command, 'CNI_CONTAINERID': container_id, 'CNI_NETNS': netns, 'CNI_IFNAME': ifname,
               'CNI_PATH': ':'.join(self.bin_dirs), 'PATH': os.environ.get('PATH') or DEFAULT_PATH}
        if not netns:
            del env['CNI_NETNS']
        if cni_args:
            env['CNI_ARGS'] = ';'.join('%s=%s' % (key, value) for key, value in cni_args)
        return env

    @staticmethod
    def plugin_config(data, plugin, prev_result, capability_args):
        """What one plugin of list `data` gets on stdin (as a dict)."""
        config = copy.deepcopy(plugin)
        capabilities = config.pop('capabilities', None) or {}
        config['cniVersion'] = data['cniVersion']
        config['name'] = data['name']
        runtime_config = {name: copy.deepcopy(capability_args[name]) for name, supported in capabilities.items()
                          if supported is True and name in capability_args}
        if runtime_config:
            config['runtimeConfig'] = runtime_config
        if prev_result is not None:
            config['prevResult'] = copy.deepcopy(prev_result)
        return config

    def _exec(self, command, data, plugin, path, env, prev_result, capability_args):
        """Run one plugin; its result (a dict) for ADD, None otherwise; CniError when it fails."""
        kind = plugin['type']
        stdin = json.dumps(self.plugin_config(data, plugin, prev_result, capability_args), **_STDIN_JSON)
        try:
            rc, stdout, stderr = self.run([path], dict(env), stdin)
        except OSError as exc:
            raise CniError('could not be run: %s' % exc, command, kind) from None
        if rc != 0:
            raise _plugin_error(command, kind, rc, stdout, stderr)
        if command != 'ADD':
            return None
        try:
            result = json.loads(_text(stdout))
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise CniError('succeeded but printed no result object: %r' % _text(stdout)[:200], command, kind,
                           stderr=_text(stderr))
        return result

    def _run_del(self, data, paths, container_id, netns, ifname, cni_args, capability_args, prev_result):
        env = self._env('DEL', container_id, netns, ifname, cni_args)
        for plugin, path in reversed(list(zip(data['plugins'], paths))):
            self._exec('DEL', data, plugin, path, env, prev_result, capability_args)

    def _cache_path(self, network_name, container_id, ifname):
        return os.path.join(self.cache_dir, '%s-%s-%s' % (network_name, container_id, ifname))

    @staticmethod
    def _entry(raw):
        try:
            entry = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(entry, dict) or entry.get('kind') != CACHE_KIND:
            return None
        return entry

    def _write_cache(self, data, raw, container_id, netns, ifname, cni_args, capability_args, result):
        entry = {'kind': CACHE_KIND, 'containerId': container_id, 'config': base64.b64encode(raw).decode('ascii'),
                 'ifName': ifname, 'networkName': data['name']}
        if netns:
            entry['netns'] = netns
        if cni_args:
            entry['cniArgs'] = cni_args
        if capability_args:
            entry['capabilityArgs'] = capability_args
        if result is not None:
            entry['result'] = result
        os.makedirs(self.cache_dir, mode=0o700, exist_ok=True)
        path = self._cache_path(data['name'], container_id, ifname)
        fd, temporary = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=self.cache_dir)
        try:
            with os.fdopen(fd, 'w') as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(json.dumps(entry, separators=(',', ':')))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def _remove_cache(self, network_name, container_id, ifname):
        path = self._cache_path(network_name, container_id, ifname)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CniError('cannot remove cache entry %s: %s' % (path, exc), 'DEL') from None
