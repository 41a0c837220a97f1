# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Types of a lab's variables: the `types:` block of labs/<lab>.yml, checked in one place.

A lab's variables arrive from the lab file's defaults, the inventory or ``-e``
(cka.lab.lab_declaration coerces each to its default's YAML type first). Their
types say what each value must be beyond that, so that the lab's ``require:``
block only states real relations between variables. Checked on the Ansible
computer before anything is rendered or changed; every problem is reported, as
``PATH: 'VALUE' is not ...; allowed: ...`` with PATH like
``netns_lab_namespaces[1].address``.

A type is written as
- a name: ``network`` (an IPv4 network in CIDR form, host bits zero), ``address``
  (an IPv4 address), ``destination`` (a route's: ``default`` or a network),
  ``interface`` (a Linux interface name), ``namespace`` (a
  network namespace name, as the declaration allows), ``port`` (1-65535),
  ``slug``, ``hostname`` (an RFC 1123 host name), ``domain`` (empty, or a DNS
  domain name), ``path`` (an absolute, normalised path), ``host`` (a machine of
  the lab's inventory group), ``text`` (any string), ``boolean``, ``integer``;
- ``address in VAR``: a host address of the network VAR (neither its network nor
  its broadcast address); ``network in VAR``: a network inside VAR;
- ``one of VAR.FIELD`` (or ``one of VAR`` for a list of plain values): one of
  the values another variable lists (FIELD of each of its entries);
- ``{choices: [a, b]}`` or ``{choices: {a: what a means, b: ...}}``, with ``what``
  naming the kind of value in messages (default: one of the choices);
- ``{fields: {NAME: TYPE, ...}, optional: [NAME, ...]}``: a mapping with these
  keys and no others, each needed unless listed in ``optional``;
- ``{list: TYPE, min: N, unique: [FIELD...] | true, disjoint: [FIELD...]}``: a list
  of values of TYPE, at least N of them, no two alike in each ``unique`` field
  (``true``: the values themselves), no two overlapping networks in each
  ``disjoint`` field.

The source of each rule: IPv4 forms from Python's ipaddress (RFC 4632 prefixes),
interface and namespace names from module_utils/lab_schema.py, host names
from RFC 1123 section 2.1.
"""
from __future__ import annotations

import ipaddress
import posixpath
import re

from ansible_collections.cka.lab.plugins.module_utils.lab_schema import (
    IFNAME, IFNAME_RULE, NETNS, NETNS_RULE, PATH_RULE, SLUG, SLUG_RULE)


class TypeSpecError(Exception):
    """A `types:` entry that is not a type (a mistake in the lab file, not in the user's values)."""


_HOSTNAME = re.compile(r'^(?!\d+\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z')
_DOMAIN = re.compile(r'^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z')
_RELATION = re.compile(r'^(address|network) in ([a-z][a-z0-9_]*)\Z')
_ONE_OF = re.compile(r'^one of ([a-z][a-z0-9_]*)(?:\.([a-z][a-z0-9_]*))?\Z')
BASE_TYPES = ('network', 'address', 'destination', 'interface', 'namespace', 'port', 'slug', 'hostname', 'domain',
              'path', 'host', 'text', 'boolean', 'integer')


def _quoted(value):
    return "'%s'" % value if isinstance(value, str) else repr(value)


def _network(value):
    try:
        return ipaddress.IPv4Network(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _address(value):
    try:
        return ipaddress.IPv4Address(value) if isinstance(value, str) else None
    except ValueError:
        return None


class Checker:
    """Check variables against their types.

    :param values: {variable: value} after coercion (the lab's variables).
    :param hosts: the machines of the lab's inventory group (for type ``host``).
    :param examples: {variable: the lab file's default}, quoted in messages as an example.
    """

    def __init__(self, values, hosts=(), examples=None):
        self.values = values
        self.hosts = list(hosts)
        self.examples = examples or {}
        self.errors = []

    def check(self, types):
        """Every problem of every typed variable, as a list of messages."""
        for name, spec in types.items():
            if name not in self.values:
                raise TypeSpecError('types.%s: not a variable of the lab (add it under variables:)' % name)
            self._check(name, name, self.values[name], spec)
        return self.errors

    # -- one value -----------------------------------------------------------
    def _fail(self, path, value, what, allowed):
        self.errors.append('%s: %s is not %s; allowed: %s' % (path, _quoted(value), what, allowed))

    def _check(self, variable, path, value, spec):
        if isinstance(spec, str):
            self._check_named(variable, path, value, spec)
        elif isinstance(spec, dict) and 'choices' in spec:
            self._check_choices(path, value, spec['choices'], spec.get('what') or 'one of the choices')
        elif isinstance(spec, dict) and 'fields' in spec:
            self._check_fields(variable, path, value, spec['fields'], spec.get('optional') or [])
        elif isinstance(spec, dict) and 'list' in spec:
            self._check_list(variable, path, value, spec)
        else:
            raise TypeSpecError('types.%s: %r is not a type; allowed: a name (%s), "address in VAR", "network in '
                                'VAR", "one of VAR.FIELD", or a mapping with choices, fields or list'
                                % (variable, spec, ', '.join(BASE_TYPES)))

    def _check_named(self, variable, path, value, spec):
        relation = _RELATION.match(spec)
        if relation:
            return self._check_relation(path, value, relation.group(1), relation.group(2))
        one_of = _ONE_OF.match(spec)
        if one_of:
            return self._check_one_of(path, value, one_of.group(1), one_of.group(2))
        if spec not in BASE_TYPES:
            raise TypeSpecError('types.%s: %r is not a type; allowed: %s, "address in VAR", "network in VAR", '
                                '"one of VAR.FIELD"' % (variable, spec, ', '.join(BASE_TYPES)))
        example = self.examples.get(path)
        like = ', like %s' % example if isinstance(example, (str, int)) and example != '' else ''
        if spec == 'network' and (_network(value) is None or value != str(_network(value))):
            self._fail(path, value, 'an IPv4 network in CIDR form with its host bits zero', 'a network' + like)
        elif spec == 'destination' and value != 'default' and (_network(value) is None
                                                                 or value != str(_network(value))):
            self._fail(path, value, 'a route destination',
                       'default, or an IPv4 network in CIDR form with its host bits zero, like 192.168.1.0/24')
        elif spec == 'address' and _address(value) is None:
            self._fail(path, value, 'an IPv4 address', 'an address' + like)
        elif spec == 'interface' and not (isinstance(value, str) and re.match(IFNAME, value)):
            self._fail(path, value, 'an interface name', IFNAME_RULE)
        elif spec == 'namespace' and not (isinstance(value, str) and re.match(NETNS, value)):
            self._fail(path, value, 'a namespace name', NETNS_RULE)
        elif spec == 'port' and not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535):
            self._fail(path, value, 'a port', 'a whole number 1-65535')
        elif spec == 'slug' and not (isinstance(value, str) and re.match(SLUG, value)):
            self._fail(path, value, 'a short name', SLUG_RULE)
        elif spec == 'hostname' and not (isinstance(value, str) and _HOSTNAME.match(value)):
            self._fail(path, value, 'a host name', "1-63 letters, digits or '-' (RFC 1123), not starting or ending "
                                                   "with '-', not all digits")
        elif spec == 'domain' and not (value == '' or (isinstance(value, str) and _DOMAIN.match(value))):
            self._fail(path, value, 'a domain name', "empty, or labels of lower-case letters, digits and '-' joined "
                                                     "by dots, like mycompany.com")
        elif spec == 'path' and not (isinstance(value, str) and value.startswith('/') and value != '/'
                                     and posixpath.normpath(value) == value and not re.search(r'\s', value)):
            self._fail(path, value, 'a usable path', PATH_RULE)
        elif spec == 'host' and value not in self.hosts:
            self._fail(path, value, "a machine of the lab's inventory group", ', '.join(self.hosts) or 'none')
        elif spec == 'text' and not isinstance(value, str):
            self._fail(path, value, 'a string', 'text')
        elif spec == 'boolean' and not isinstance(value, bool):
            self._fail(path, value, 'a boolean', 'true or false')
        elif spec == 'integer' and not (isinstance(value, int) and not isinstance(value, bool)):
            self._fail(path, value, 'a whole number', 'a whole number' + like)
        return None

    def _check_relation(self, path, value, kind, other):
        outer = _network(self.values.get(other))
        if kind == 'address':
            address = _address(value)
            if address is None:
                return self._fail(path, value, 'an IPv4 address', 'a host address of %s' % other)
            if outer is None:
                return None  # the network's own type check reports it
            if address not in outer or (outer.prefixlen < 31 and address in (outer.network_address,
                                                                               outer.broadcast_address)):
                self._fail(path, value, 'a host address of %s (%s)' % (other, outer),
                           'an address inside it, neither its network nor its broadcast address')
            return None
        network = _network(value)
        if network is None or value != str(network):
            return self._fail(path, value, 'an IPv4 network in CIDR form with its host bits zero',
                              'a network inside %s' % other)
        if outer is not None and not network.subnet_of(outer):
            self._fail(path, value, 'inside %s (%s)' % (other, outer), 'a network inside it')
        return None

    def _check_one_of(self, path, value, other, field):
        listed = self.values.get(other)
        if not isinstance(listed, list):
            return None  # the other variable's own type check reports it
        allowed = [item.get(field) if isinstance(item, dict) else None for item in listed] if field else listed
        if value not in allowed:
            where = '%s[*].%s' % (other, field) if field else other
            self._fail(path, value, 'in %s' % where, ', '.join(dict.fromkeys(str(a) for a in allowed)) or 'none')
        return None

    def _check_choices(self, path, value, choices, what):
        if value in choices:
            return
        if isinstance(choices, dict):
            allowed = ', '.join('%s (%s)' % item for item in choices.items())
        else:
            allowed = ', '.join(str(choice) for choice in choices)
        self._fail(path, value, what, allowed)

    def _check_fields(self, variable, path, value, fields, optional):
        if not isinstance(value, dict):
            return self._fail(path, value if not isinstance(value, (list, dict)) else type(value).__name__,
                              'a mapping', 'a mapping with keys %s' % ', '.join(fields))
        for key in sorted(set(value) - set(fields)):
            self.errors.append("%s: has the key '%s'; allowed keys: %s" % (path, key, ', '.join(sorted(fields))))
        for key, spec in fields.items():
            if key in value:
                self._check(variable, '%s.%s' % (path, key), value[key], spec)
            elif key not in optional:
                self.errors.append('%s: has no key %s; it is needed (keys: %s)' % (path, key, ', '.join(fields)))
        return None

    def _check_list(self, variable, path, value, spec):
        if not isinstance(value, list):
            return self._fail(path, type(value).__name__ if isinstance(value, dict) else value, 'a list', 'a list')
        if len(value) < spec.get('min', 0):
            self.errors.append('%s: has %d entries; at least %d are needed' % (path, len(value), spec['min']))
        for i, item in enumerate(value):
            self._check(variable, '%s[%d]' % (path, i), item, spec['list'])
        unique = spec.get('unique')
        for field in ([None] if unique is True else unique or []):
            seen = {}
            for i, item in enumerate(value):
                key = item if field is None else (item.get(field) if isinstance(item, dict) else None)
                if key is None or isinstance(key, (list, dict)):
                    continue
                if key in seen:
                    self.errors.append('%s[%d]%s: %s is also %s[%d]%s; allowed: each once'
                                       % (path, i, '.' + field if field else '', _quoted(key), path, seen[key],
                                          '.' + field if field else ''))
                else:
                    seen[key] = i
        for field in spec.get('disjoint') or []:
            networks = [(i, _network(item.get(field))) for i, item in enumerate(value) if isinstance(item, dict)]
            networks = [(i, net) for i, net in networks if net is not None]
            for n, (i, net) in enumerate(networks):
                for j, other in networks[:n]:
                    if net.overlaps(other):
                        self.errors.append('%s[%d].%s: %s overlaps %s[%d].%s (%s); allowed: separate networks, '
                                           'one each' % (path, i, field, net, path, j, field, other))
        return None


def check_types(types, values, hosts=(), examples=None):
    """Problems of `values` against `types` (see the module's documentation), as messages.

    :raises TypeSpecError: when `types` itself is not made of types (a mistake in the lab file).
    """
    if not isinstance(types, dict):
        raise TypeSpecError('types: must be a mapping of variable names to types')
    return Checker(values, hosts, examples).check(types)
