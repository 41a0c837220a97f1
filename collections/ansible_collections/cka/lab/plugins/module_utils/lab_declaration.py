# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A lab declaration: its schema, its cross-field rules and its stages.

A lab file (``labs/<lab>.yml``, described in labs/README.md) is rendered by the
``cka.lab.lab_declaration`` action with the lab's variables; the result is a
plain dict in the shape of :data:`SCHEMA`. :func:`validate` checks it as a
whole and returns every problem at once, each naming the path in the
declaration, the value and what is allowed. :func:`select_stage` gives what one
stage of the lab declares.

Sources of the limits: interface names, IFNAMSIZ - 1 = 15 bytes (linux/if.h);
namespace names become files in /run/netns (ip-netns(8)); addresses, RFC 4632
(CIDR) and RFC 1122 (no network or broadcast address on a host); ports, RFC 793.
"""
from __future__ import annotations

import copy
import ipaddress
import json
import posixpath

from ansible_collections.cka.lab.plugins.module_utils.cni import plugin_types
from ansible_collections.cka.lab.plugins.module_utils.nat import HOOK_OF_CHAIN, NatError, Traffic, iptables_rule
from ansible_collections.cka.lab.plugins.module_utils.netfilter import BUILTIN_CHAINS, RuleError, parse_rule

try:
    import jsonschema
except ImportError:  # only the controller validates; lab machines never import this module
    jsonschema = None

# Names of interfaces, and of the links a lab makes (module_utils/topology.py checks these too):
# printable ASCII without '/' or ':', at most IFNAMSIZ - 1 = 15 bytes, not '.' or '..'.
_IFNAME_CHARS = r'[!-.0-9;-~]{1,15}'
IFNAME = r'^(?!\.\.?\Z)%s\Z' % _IFNAME_CHARS
IFNAME_RULE = ("Linux interface names are 1-15 characters without '/', ':' or whitespace, and not '.' or '..'; "
               "printable ASCII only, since the kernel's limit is 15 bytes")
LINK_NAME = r'^(?!(?:\.\.?|lo)\Z)%s\Z' % _IFNAME_CHARS
LINK_NAME_RULE = IFNAME_RULE + "; and a link the lab makes is not named 'lo', the loopback every namespace has"
NETNS = r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z'
NETNS_RULE = "namespace names are 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
LAB_ID = r'^[a-z][a-z0-9_]{0,31}\Z'
LAB_ID_RULE = "a lab id: 1-32 lower-case letters, digits or '_', starting with a letter (the file's name in labs/)"
SLUG = r'^[a-z][a-z0-9-]{0,23}\Z'
SLUG_RULE = "1-24 lower-case letters, digits or '-', starting with a letter"
STAGE = r'^[a-z][a-z0-9_-]{0,23}\Z'
ROLE = r'^[a-z][a-z0-9_]*\Z'
ROLE_RULE = "a role, tasks file or variable name: lower-case letters, digits or '_', starting with a letter"
PATH_RULE = ("an absolute, normalised path of at least two parts, like /srv/netns-lab/index.html, "
             "without whitespace, '..', '//' or a trailing '/'")

_COMMON = {
    'stages': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1, 'uniqueItems': True},
    'when': {'type': 'boolean'},
    'environment': {'type': 'boolean'},
}


def _object(required, properties):
    props = dict(_COMMON)
    props.update(properties)
    return {'type': 'object', 'required': required, 'additionalProperties': False, 'properties': props}


_IFNAME = {'type': 'string', 'pattern': IFNAME}
_LINK_NAME = {'type': 'string', 'pattern': LINK_NAME}
_NETNS = {'type': ['string', 'null'], 'pattern': NETNS}
_ADDRESSES = {'type': 'array', 'items': {'type': 'string'}}
_MAC = {'type': 'string', 'pattern': r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z'}
_END = {
    'name': _LINK_NAME, 'namespace': _NETNS, 'addresses': _ADDRESSES, 'master': {'type': ['string', 'null']},
    'mac': _MAC,
}
_PORT = {'type': 'integer', 'minimum': 1, 'maximum': 65535}
_PROBE_BASE = {'name': {'type': 'string', 'minLength': 1}, 'stages': _COMMON['stages'], 'when': _COMMON['when']}

SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    'type': 'object',
    'required': ['lab', 'lesson', 'title', 'group', 'name', 'stages', 'stage', 'machine'],
    'additionalProperties': False,
    'properties': {
        'lab': {'type': 'string', 'pattern': LAB_ID},
        'lesson': {'type': 'string', 'minLength': 1},
        'title': {'type': 'string', 'minLength': 1},
        'group': {'type': 'string', 'minLength': 1},
        'guide': {'type': 'string'},
        'nodes': {'type': 'boolean'},
        # A lab built by a playbook of its own (playbooks/NAME.yml) rather than by the engine: the weave lab.
        'playbook': {'type': 'string', 'pattern': r'^[a-z][a-z0-9-]*\.yml\Z'},
        # Its grader: a test file or folder under checks/ (default lab/test_lab.py, the engine's).
        'checks': {'type': 'string', 'pattern': r'^[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*(\.py)?)?\Z'},
        'name': {'type': 'string', 'pattern': SLUG},
        'stages': {'type': 'array', 'items': {'type': 'string', 'pattern': STAGE}, 'minItems': 1,
                   'uniqueItems': True},
        'stage': {'type': 'string'},
        'machine': {
            'type': 'object',
            'additionalProperties': False,
            'properties': {
                'namespaces': {'type': 'array', 'items': _object(['name'], {'name': {'type': 'string',
                                                                                      'pattern': NETNS}})},
                'bridges': {'type': 'array', 'items': _object(['name'], {
                    'name': _LINK_NAME, 'namespace': _NETNS, 'addresses': _ADDRESSES, 'mac': _MAC})},
                'veth_pairs': {'type': 'array', 'items': _object(['name', 'peer'], dict(_END, peer={
                    'type': 'object', 'required': ['name'], 'additionalProperties': False, 'properties': _END}))},
                'vxlans': {'type': 'array', 'items': _object(['name', 'vni', 'dev'], {
                    'name': _LINK_NAME, 'namespace': _NETNS, 'addresses': _ADDRESSES, 'mac': _MAC,
                    'vni': {'type': 'integer', 'minimum': 1, 'maximum': 16777215}, 'dev': _IFNAME,
                    'local': {'type': 'string'}, 'dstport': _PORT, 'learning': {'type': 'boolean'},
                    'remotes': {'type': 'array', 'items': {'type': 'string'}, 'uniqueItems': True},
                    'mtu': {'type': 'integer', 'minimum': 68, 'maximum': 65535}})},
                'routes': {'type': 'array', 'items': _object(['dst'], {
                    'namespace': _NETNS, 'dst': {'type': 'string'}, 'via': {'type': 'string'},
                    'dev': _IFNAME, 'metric': {'type': 'integer', 'minimum': 0}, 'onlink': {'type': 'boolean'}})},
                'sysctls': {'type': 'array', 'items': _object(['name', 'value'], {
                    'name': {'type': 'string', 'pattern': r'^[a-z0-9_]+(\.[a-z0-9_-]+)+\Z'},
                    'value': {'type': 'string'}, 'namespace': _NETNS, 'if_exists': {'type': 'boolean'}})},
                'chains': {'type': 'array', 'items': _object(['table', 'chain'], {
                    'table': {'enum': sorted(BUILTIN_CHAINS)},
                    'chain': {'type': 'string', 'pattern': r'^[A-Za-z0-9_-]{1,28}\Z'}})},
                'rules': {'type': 'array', 'items': _object(['table', 'rule'], {
                    'table': {'enum': sorted(BUILTIN_CHAINS)}, 'rule': {'type': 'string'},
                    'traffic': {'type': 'object', 'required': ['source', 'destination'],
                                'additionalProperties': False, 'properties': {
                                    'hook': {'enum': ['prerouting', 'postrouting', 'output', 'input']},
                                    'source': {'type': 'string'}, 'destination': {'type': 'string'},
                                    'protocol': {'enum': ['tcp', 'udp']}, 'port': _PORT,
                                    'in': _IFNAME, 'out': _IFNAME, 'local': {'type': 'boolean'},
                                    'out_address': {'type': 'string'}}}})},
                'files': {'type': 'array', 'items': dict(_object(['path'], {
                    'path': {'type': 'string'}, 'content': {'type': 'string'}, 'link': {'type': 'string'},
                    'format': {'enum': ['text', 'json']},
                    'mode': {'type': 'string', 'pattern': r'^0[0-7]{3}\Z'}}),
                    oneOf=[{'required': ['content']}, {'required': ['link']}])},
                'pods': {'type': 'array', 'items': _object(['name', 'network'], {
                    'name': {'type': 'string', 'pattern': NETNS}, 'network': {'type': 'string'},
                    'ifname': _IFNAME, 'subnet': {'type': 'string'},
                    'cni_path': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1},
                    'port_mappings': {'type': 'array', 'items': {
                        'type': 'object', 'required': ['hostPort', 'containerPort'], 'additionalProperties': False,
                        'properties': {'hostPort': _PORT, 'containerPort': _PORT,
                                       'protocol': {'enum': ['tcp', 'udp', 'sctp']},
                                       'hostIP': {'type': 'string'}}}}})},
                'services': {'type': 'array', 'items': _object(['name', 'command', 'listen'], {
                    'name': {'type': 'string', 'pattern': r'^[a-z][a-z0-9-]{0,23}\Z'},
                    'description': {'type': 'string'},
                    'namespace': _NETNS,
                    'command': {'type': 'array', 'items': {'type': 'string', 'minLength': 1}, 'minItems': 1},
                    'listen': {'type': 'array', 'minItems': 1, 'items': {
                        'type': 'object', 'required': ['protocol', 'address', 'port'], 'additionalProperties': False,
                        'properties': {'protocol': {'enum': ['tcp', 'udp']}, 'address': {'type': 'string'},
                                       'port': _PORT}}}})},
            },
        },
        # Roles of this project run on the lab's machines beside the engine: before it builds one of
        # their stages, and (with `reset`, the role's tasks file that undoes it) after it removes the lab;
        # `export` writes what the lab's checks compare against (playbooks/check.yml).
        'roles': {'type': 'array', 'items': {
            'type': 'object', 'required': ['name'], 'additionalProperties': False, 'properties': {
                'name': {'type': 'string', 'pattern': ROLE}, 'stages': _COMMON['stages'],
                'vars': {'type': 'object', 'propertyNames': {'pattern': ROLE}},
                'reset': {'type': 'string', 'pattern': ROLE}, 'export': {'type': 'string', 'pattern': ROLE}}}},
        'probes': {'type': 'array', 'items': {'type': 'object', 'required': ['name'], 'oneOf': [
            {'required': ['ping']}, {'required': ['tcp']}, {'required': ['http']}, {'required': ['dns']},
            {'required': ['pod']}],
            'additionalProperties': False, 'properties': dict(_PROBE_BASE, **{
                'ping': {'type': 'object', 'required': ['address'], 'additionalProperties': False, 'properties': {
                    'from': _NETNS, 'address': {'type': 'string'}, 'expect': {'enum': ['reply', 'no reply']}}},
                'tcp': {'type': 'object', 'required': ['address'], 'additionalProperties': False, 'properties': {
                    'from': _NETNS, 'to': _NETNS, 'address': {'type': 'string'}, 'port': _PORT,
                    'source': {'type': 'string'}, 'expect': {'enum': ['connect', 'no connect']}}},
                'http': {'type': 'object', 'required': ['url'], 'additionalProperties': False, 'properties': {
                    'from': _NETNS, 'url': {'type': 'string', 'pattern': '^http://'},
                    'contains': {'type': 'string'},
                    # The server that must answer (a forward's target): graded by where the connection went.
                    'server': {'type': 'object', 'required': ['address', 'port'], 'additionalProperties': False,
                               'properties': {'namespace': _NETNS, 'address': {'type': 'string'},
                                              'port': _PORT}}}},
                'pod': {'type': 'object', 'required': ['from', 'to', 'port'], 'additionalProperties': False,
                        'properties': {
                            'from': _NETNS, 'to': {'type': 'string', 'pattern': NETNS}, 'port': _PORT,
                            'expect': {'enum': ['answer', 'no answer']},
                            'capture': {'type': 'object', 'required': ['interface'], 'additionalProperties': False,
                                        'properties': {'interface': _IFNAME, 'seen': {'type': 'string'},
                                                       'not_seen': {'type': 'string'}}}}},
                'dns': {'type': 'object', 'required': ['name', 'server'], 'additionalProperties': False,
                        'properties': {
                            'from': _NETNS, 'server': {'type': 'string'}, 'name': {'type': 'string'},
                            'protocol': {'enum': ['udp', 'tcp']}, 'answer': {'type': ['string', 'null']},
                            'resolver': {'type': 'boolean'}}},
            })}},
    },
}


def _path_text(path):
    out = ''
    for part in path:
        out += '[%d]' % part if isinstance(part, int) else ('.' if out else '') + str(part)
    return out or '(the declaration)'


def schema_errors(declaration):
    """Problems with the shape of a rendered declaration, each as 'path: message'."""
    if jsonschema is None:
        raise RuntimeError('the jsonschema Python package is needed on the Ansible computer (pip install jsonschema)')
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = []
    for error in sorted(validator.iter_errors(declaration), key=lambda e: list(map(str, e.absolute_path))):
        value = error.instance
        shown = value if isinstance(value, (str, int, bool)) or value is None else type(value).__name__
        message = error.message
        if error.validator == 'pattern':
            message = "'%s' does not have the allowed form (%s)" % (value, _pattern_rule(error.schema['pattern']))
        elif error.validator == 'additionalProperties':
            allowed = sorted(error.schema.get('properties', {}))
            message = '%s; allowed keys: %s' % (error.message, ', '.join(allowed))
        elif error.validator == 'oneOf':
            message = ('must have exactly one of content or link' if 'content' in str(error.schema)
                       else 'must have exactly one of ping, tcp, http, dns or pod')
        elif error.validator in ('type', 'enum', 'minimum', 'maximum'):
            message = '%r: %s' % (shown, error.message.split(' is ', 1)[-1] if ' is ' in error.message
                                  else error.message)
        errors.append('%s: %s' % (_path_text(error.absolute_path), message))
    return errors


def _pattern_rule(pattern):
    rules = {IFNAME: IFNAME_RULE, LINK_NAME: LINK_NAME_RULE, NETNS: NETNS_RULE, SLUG: SLUG_RULE, LAB_ID: LAB_ID_RULE,
             ROLE: ROLE_RULE}
    return rules.get(pattern, 'pattern %s' % pattern)


def _stages_of(item, all_stages):
    return item.get('stages') or all_stages


def select_stage(declaration, stage, annotate=False):
    """What `stage` of the lab declares: the machine's objects and the probes, with
    `stages` and `when` resolved (objects whose `when` is false are left out).

    With `annotate`, each object keeps its path in the whole declaration under
    ``__path``, for error messages."""
    stages = declaration['stages']
    out = copy.deepcopy(declaration)
    out['stage'] = stage

    def pick(items, prefix):
        picked = []
        for i, item in enumerate(items):
            if stage in _stages_of(item, stages) and item.get('when', True):
                item = {k: v for k, v in item.items() if k not in ('stages', 'when')}
                if annotate:
                    item['__path'] = '%s[%d]' % (prefix, i)
                picked.append(item)
        return picked

    for kind, items in declaration['machine'].items():
        out['machine'][kind] = pick(items, 'machine.' + kind)
    out['probes'] = pick(declaration.get('probes', []), 'probes')
    out['roles'] = pick(declaration.get('roles', []), 'roles')
    return out


# --------------------------------------------------------------------------
# Cross-field rules
# --------------------------------------------------------------------------

def _interface(text):
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def _check_address(errors, where, text):
    """An address in CIDR form that a host may hold; returns the interface or None."""
    iface = _interface(text)
    if iface is None or '/' not in text:
        errors.append("%s: '%s' is not an address in CIDR form, like 192.168.15.5/24" % (where, text))
        return None
    net = iface.network
    if net.version == 4 and net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        errors.append("%s: '%s' is the %s address of %s; a host needs an address inside it (RFC 1122)"
                      % (where, text, 'network' if iface.ip == net.network_address else 'broadcast', net))
        return None
    return iface


def _ends(declaration):
    """(path, namespace, end) of every link end: bridges, VXLAN devices and both ends of each veth pair."""
    machine = declaration['machine']
    for i, bridge in enumerate(machine.get('bridges', [])):
        yield bridge.get('__path', 'machine.bridges[%d]' % i), bridge.get('namespace'), bridge, 'bridge'
    for i, vxlan in enumerate(machine.get('vxlans', [])):
        yield vxlan.get('__path', 'machine.vxlans[%d]' % i), vxlan.get('namespace'), vxlan, 'vxlan'
    for i, pair in enumerate(machine.get('veth_pairs', [])):
        where = pair.get('__path', 'machine.veth_pairs[%d]' % i)
        yield where, pair.get('namespace'), pair, 'veth'
        yield where + '.peer', pair['peer'].get('namespace'), pair['peer'], 'veth'


def _port(text):
    return text.isdigit() and 1 <= int(text) <= 65535


def _port_problems(rule):
    """Ports a rule names that TCP and UDP do not have (1-65535, RFC 793 and RFC 768)."""
    problems = []
    for match in rule.matches:
        option, _, value = match.lstrip('!').partition('=')
        if option in ('--dport', '--sport', '--destination-port', '--source-port'):
            if not all(_port(part) for part in value.split(':')):
                problems.append("has %s %s; allowed: a port 1-65535 or a range FIRST:LAST" % (option, value))
    for option, values in rule.target_options:
        if option in ('--to-destination', '--to-source') and values and ':' in values[0]:
            ports = values[0].rsplit(':', 1)[1]
            if not all(_port(part) for part in ports.split('-')):
                problems.append("has %s %s; allowed: ADDRESS:PORT with a port 1-65535" % (option, values[0]))
        if option == '--to-ports' and values and not all(_port(part) for part in values[0].split('-')):
            problems.append("has --to-ports %s; allowed: a port 1-65535" % values[0])
    return problems


def stage_errors(declaration):
    """Cross-field problems of one selected stage (see :func:`select_stage`)."""
    errors = []
    machine = declaration['machine']
    stage = declaration['stage']
    where_stage = " (stage '%s')" % stage
    namespaces = [ns['name'] for ns in machine.get('namespaces', [])]
    for name in sorted({n for n in namespaces if namespaces.count(n) > 1}):
        errors.append("machine.namespaces: '%s' is declared twice%s; each namespace once" % (name, where_stage))
    # A pod's namespace is made by the runtime: it counts as a namespace of the lab.
    pods = [pod['name'] for pod in machine.get('pods', [])]
    for i, pod in enumerate(machine.get('pods', [])):
        where = pod.get('__path', 'machine.pods[%d]' % i)
        if pod['name'] in namespaces:
            errors.append("%s.name: '%s' is also declared in machine.namespaces%s; a pod's namespace is made by "
                          "its runtime, declare it once, as a pod" % (where, pod['name'], where_stage))
        elif pods.count(pod['name']) > 1 and pods.index(pod['name']) != i:
            errors.append("%s.name: '%s' is declared twice%s; each pod once (its name is its namespace and "
                          "container ID)" % (where, pod['name'], where_stage))
    namespaces = namespaces + [p for p in pods if p not in namespaces]
    known_ns = set(namespaces)

    def check_ns(where, value):
        if value is not None and value not in known_ns:
            errors.append("%s.namespace: '%s' is not a namespace of the lab%s; declared: %s"
                          % (where, value, where_stage, ', '.join(namespaces) or 'none'))

    # Namespaces with a refused address: what depends on their addresses is
    # not judged again (one mistake, one message).
    links, segments, addresses, refused = {}, {}, [], set()
    bridges = {(b.get('namespace'), b['name']) for b in machine.get('bridges', [])}
    for where, ns, end, kind in _ends(declaration):
        check_ns(where, ns)
        key = (ns, end['name'])
        if key in links:
            errors.append("%s.name: '%s' is declared twice in %s%s"
                          % (where, end['name'], ns or 'the root namespace', where_stage))
        links[key] = where
        master = end.get('master')
        if master is not None and (ns, master) not in bridges:
            errors.append("%s.master: '%s' is not a bridge declared in %s%s"
                          % (where, master, ns or 'the root namespace', where_stage))
        for j, text in enumerate(end.get('addresses', [])):
            iface = _check_address(errors, '%s.addresses[%d]' % (where, j), text)
            if iface is not None:
                addresses.append(('%s.addresses[%d]' % (where, j), ns, end['name'], iface))
            else:
                refused.add(ns)
    # Which links share a layer-2 segment: a bridge with its ports and their
    # peers; a veth pair without a bridge on its own.
    for i, pair in enumerate(machine.get('veth_pairs', [])):
        ends = [(pair.get('namespace'), pair['name'], pair.get('master')),
                (pair['peer'].get('namespace'), pair['peer']['name'], pair['peer'].get('master'))]
        masters = [(ns, m) for ns, _, m in ends if m is not None]
        segment = ('bridge',) + masters[0] if masters else ('pair', i)
        for ns, name, _ in ends:
            segments[(ns, name)] = segment
    for b in machine.get('bridges', []):
        segments[(b.get('namespace'), b['name'])] = ('bridge', b.get('namespace'), b['name'])
    for v in machine.get('vxlans', []):
        segments[(v.get('namespace'), v['name'])] = ('vxlan', v.get('namespace'), v['name'])
    # On a bridge that has addresses, every address of its segment is in one of
    # its subnets: a namespace plugged into v-net-0 lives on 192.168.15.0/24.
    for b in machine.get('bridges', []):
        segment = ('bridge', b.get('namespace'), b['name'])
        nets = [i.network for w, n, name, i in addresses if (n, name) == (b.get('namespace'), b['name'])]
        if not nets:
            continue
        for where, ns, name, iface in addresses:
            if segments.get((ns, name)) == segment and not any(iface.ip in net for net in nets):
                errors.append("%s: %s is outside %s, the subnet of the bridge %s it is plugged into%s"
                              % (where, iface, ', '.join(map(str, nets)), b['name'], where_stage))
                refused.add(ns)
    seen = {}
    for where, ns, name, iface in addresses:
        if iface.ip in seen:
            errors.append("%s: %s is already held by %s%s; each address once"
                          % (where, iface.ip, seen[iface.ip], where_stage))
        seen[iface.ip] = where
    for a, (where_a, ns_a, name_a, iface_a) in enumerate(addresses):
        for where_b, ns_b, name_b, iface_b in addresses[a + 1:]:
            if segments.get((ns_a, name_a)) != segments.get((ns_b, name_b)) \
                    and iface_a.network.overlaps(iface_b.network):
                errors.append("%s: %s overlaps %s of %s, which is on another network%s; separate networks "
                              "need separate subnets" % (where_b, iface_b.network, iface_a.network, where_a,
                                                         where_stage))
    for i, route in enumerate(machine.get('routes', [])):
        where = route.get('__path', 'machine.routes[%d]' % i)
        check_ns(where, route.get('namespace'))
        dst = route['dst']
        if dst != 'default':
            try:
                ipaddress.ip_network(dst)
            except ValueError:
                errors.append("%s.dst: '%s' must be 'default' or a network with its host bits zero, like "
                              "192.168.1.0/24" % (where, dst))
        if 'via' not in route and 'dev' not in route:
            errors.append('%s: needs via (a gateway) or dev (a link)' % where)
        if 'via' in route:
            try:
                via = ipaddress.ip_address(route['via'])
            except ValueError:
                errors.append("%s.via: '%s' is not an IP address" % (where, route['via']))
                continue
            ns = route.get('namespace')
            connected = [iface.network for _, n, _, iface in addresses if n == ns]
            if ns is not None and ns not in refused and not any(via in net for net in connected):
                errors.append("%s.via: %s is in no subnet of namespace %s (%s)%s; a gateway must be on a "
                              "connected network" % (where, via, ns, ', '.join(map(str, connected)) or 'none',
                                                     where_stage))
    for i, sysctl in enumerate(machine.get('sysctls', [])):
        check_ns(sysctl.get('__path', 'machine.sysctls[%d]' % i), sysctl.get('namespace'))
    chains = {(c['table'], c['chain']) for c in machine.get('chains', [])}
    for i, item in enumerate(machine.get('rules', [])):
        where = item.get('__path', 'machine.rules[%d]' % i) + '.rule'
        try:
            rule = parse_rule(item['table'], item['rule'])
        except RuleError as exc:
            errors.append("%s: '%s' %s" % (where, item['rule'], exc))
            continue
        for problem in _port_problems(rule):
            errors.append("%s: '%s' %s" % (where, item['rule'], problem))
        if rule.chain not in BUILTIN_CHAINS[item['table']] and (item['table'], rule.chain) not in chains:
            errors.append("%s: chain '%s' is neither a built-in chain of table %s (%s) nor declared in "
                          "machine.chains" % (where, rule.chain, item['table'],
                                              ', '.join(sorted(BUILTIN_CHAINS[item['table']]))))
        if 'traffic' in item:
            errors += _traffic_problems(item.get('__path', 'machine.rules[%d]' % i), item)
    paths = [item['path'] for item in machine.get('files', [])]
    for i, item in enumerate(machine.get('files', [])):
        where = item.get('__path', 'machine.files[%d]' % i)
        for key in ('path', 'link'):
            if key in item and not _usable_path(item[key]):
                errors.append("%s.%s: '%s' is not usable; %s" % (where, key, item[key], PATH_RULE))
        if paths.count(item['path']) > 1 and paths.index(item['path']) != i:
            errors.append("%s.path: '%s' is declared twice%s; each file once" % (where, item['path'], where_stage))
        if item.get('format') == 'json' and 'content' in item:
            try:
                json.loads(item['content'])
            except ValueError as exc:
                errors.append("%s.content: is not JSON (%s), as its format says%s" % (where, exc, where_stage))
    for i, service in enumerate(machine.get('services', [])):
        where = service.get('__path', 'machine.services[%d]' % i)
        check_ns(where, service.get('namespace'))
        own = {iface.ip for _, n, _, iface in addresses if n == service.get('namespace')}
        for j, listen in enumerate(service['listen']):
            try:
                address = ipaddress.ip_address(listen['address'])
            except ValueError:
                errors.append("%s.listen[%d].address: '%s' is not an IP address" % (where, j, listen['address']))
                continue
            if not (address.is_unspecified or address.is_loopback or address in own
                    or service.get('namespace') is None or service.get('namespace') in refused):
                errors.append("%s.listen[%d].address: %s is not an address of namespace %s (%s)%s"
                              % (where, j, address, service.get('namespace'),
                                 ', '.join(sorted(map(str, own))) or 'none', where_stage))
    errors += _pod_errors(machine, where_stage)
    errors += _vxlan_errors(machine, where_stage)
    for i, probe in enumerate(declaration.get('probes', [])):
        for kind in ('ping', 'tcp', 'http', 'dns', 'pod'):
            spec = probe.get(kind)
            if spec is None:
                continue
            for key in ('from', 'to') if kind != 'pod' else ('from',):
                if spec.get(key) is not None and spec[key] not in known_ns:
                    errors.append("%s.%s.%s: '%s' is not a namespace of the lab%s; declared: %s"
                                  % (probe.get('__path', 'probes[%d]' % i), kind, key, spec[key], where_stage,
                                     ', '.join(namespaces) or 'none'))
    return errors


def _traffic_problems(where, item):
    """A rule's `traffic` must be a packet its own rule translates (nat.py judges rules by it)."""
    if item['table'] != 'nat':
        return ["%s.traffic: only a rule of table nat is judged by its traffic; this one is in table %s"
                % (where, item['table'])]
    rule = iptables_rule('lab', 'nat', item['rule'], 0)
    try:
        traffic = Traffic.from_declaration(rule.chain, item['traffic'])
    except NatError as exc:
        return ['%s.traffic: %s' % (where, exc)]
    if rule.chain in HOOK_OF_CHAIN and traffic.hook != HOOK_OF_CHAIN[rule.chain]:
        return ["%s.traffic.hook: '%s' is not where the rule's chain %s is; allowed: %s (or leave it out)"
                % (where, traffic.hook, rule.chain, HOOK_OF_CHAIN[rule.chain])]
    if rule.action[0] not in ('dnat', 'snat', 'masquerade', 'redirect'):
        return ["%s.traffic: the rule's target is not DNAT, SNAT, MASQUERADE or REDIRECT; only those are judged "
                "by their traffic" % where]
    if rule.action[0] == 'masquerade' and not traffic.out_address:
        return ["%s.traffic.out_address: missing; MASQUERADE writes the out interface's address, which a rule "
                "typed as SNAT must match" % where]
    if rule.matches(traffic) is not True:
        return ["%s.traffic: the rule '%s' does not take this packet (%s); allowed: a packet of the lesson the "
                "rule translates" % (where, item['rule'], traffic.words())]
    return []


def _usable_path(path):
    return not (not path.startswith('/') or path.startswith('//') or posixpath.normpath(path) != path
                or path.count('/') < 2 or any(c.isspace() for c in path) or '..' in path.split('/'))


def _json_file(machine, path):
    """The parsed content of a declared file, or None when it is not declared or not JSON."""
    for item in machine.get('files', []):
        if item['path'] == path and 'content' in item:
            try:
                return json.loads(item['content'])
            except ValueError:
                return None
    return None


def _pod_errors(machine, where_stage):
    """Pods: their network a declared configuration list whose plugins the stage installs, their slice a
    network, their published ports once per node."""
    errors = []
    files = {f['path']: f for f in machine.get('files', [])}
    published = {}
    for i, pod in enumerate(machine.get('pods', [])):
        where = pod.get('__path', 'machine.pods[%d]' % i)
        network = pod['network']
        conflist = _json_file(machine, network)
        if network not in files:
            errors.append("%s.network: '%s' is not a file declared in machine.files%s; a pod is attached to a "
                          "network configuration list the lab writes" % (where, network, where_stage))
        elif conflist is None or not isinstance(conflist, dict) or not isinstance(conflist.get('plugins'), list) \
                or not all(isinstance(p, dict) and isinstance(p.get('type'), str) for p in conflist['plugins']) \
                or not isinstance(conflist.get('name'), str) or not isinstance(conflist.get('cniVersion'), str):
            errors.append("%s.network: %s is not a network configuration list (JSON with cniVersion, name and "
                          "plugins, each with a type; CNI SPEC.md)%s" % (where, network, where_stage))
        else:
            cni_path = pod.get('cni_path') or ['/opt/cni/bin']
            installed = {posixpath.basename(path) for path in files
                         if posixpath.dirname(path) in cni_path}
            if installed:
                for plugin in plugin_types(conflist):
                    if plugin not in installed:
                        errors.append("%s.network: %s runs the plugin %s, which the lab does not install in %s "
                                      "(installed there: %s)%s" % (where, network, plugin, ':'.join(cni_path),
                                                                   ', '.join(sorted(installed)), where_stage))
        if 'subnet' in pod:
            try:
                ipaddress.ip_network(pod['subnet'])
            except ValueError:
                errors.append("%s.subnet: '%s' is not a network in CIDR form with its host bits zero, like "
                              "10.244.1.0/24" % (where, pod['subnet']))
        for j, mapping in enumerate(pod.get('port_mappings', [])):
            key = (mapping['hostPort'], mapping.get('protocol', 'tcp'))
            if key in published:
                errors.append("%s.port_mappings[%d].hostPort: %d/%s is already published for %s%s; a node port "
                              "once" % (where, j, key[0], key[1], published[key], where_stage))
            published.setdefault(key, pod['name'])
    return errors


def _vxlan_errors(machine, where_stage):
    errors = []
    for i, vxlan in enumerate(machine.get('vxlans', [])):
        where = vxlan.get('__path', 'machine.vxlans[%d]' % i)
        family = set()
        for key, values in (('local', [vxlan['local']] if 'local' in vxlan else []),
                            ('remotes', vxlan.get('remotes', []))):
            for j, text in enumerate(values):
                try:
                    family.add(ipaddress.ip_address(text).version)
                except ValueError:
                    errors.append("%s.%s: '%s' is not an IP address (a VXLAN tunnel end point, RFC 7348)%s"
                                  % (where, key if key == 'local' else '%s[%d]' % (key, j), text, where_stage))
        if len(family) > 1:
            errors.append("%s: local and remotes mix IPv4 and IPv6%s; one family" % (where, where_stage))
        if vxlan.get('local') in vxlan.get('remotes', []):
            errors.append("%s.remotes: holds the local address %s%s; remotes are the other nodes"
                          % (where, vxlan['local'], where_stage))
    return errors


def validate(declaration):
    """Every problem of a rendered declaration: shape first, then each stage's cross-field rules."""
    errors = schema_errors(declaration)
    if errors:
        return errors
    if declaration['stage'] not in declaration['stages']:
        return ["stage: '%s' is not a stage of lab %s; allowed: %s"
                % (declaration['stage'], declaration['lab'], ', '.join(declaration['stages']))]
    for part in ('probes', 'roles'):
        for i, item in enumerate(declaration.get(part, [])):
            for stage in item.get('stages', []):
                if stage not in declaration['stages']:
                    errors.append("%s[%d].stages: '%s' is not a stage of the lab; allowed: %s"
                                  % (part, i, stage, ', '.join(declaration['stages'])))
    for kind, items in declaration['machine'].items():
        for i, item in enumerate(items):
            for stage in item.get('stages', []):
                if stage not in declaration['stages']:
                    errors.append("machine.%s[%d].stages: '%s' is not a stage of the lab; allowed: %s"
                                  % (kind, i, stage, ', '.join(declaration['stages'])))
    if errors:
        return errors
    found = []
    for stage in declaration['stages']:
        for error in stage_errors(select_stage(declaration, stage, annotate=True)):
            if error not in found:
                found.append(error)
    return found
