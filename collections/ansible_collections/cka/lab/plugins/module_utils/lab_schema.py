# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The building blocks of a lab declaration's schema and rules, shared by every kind of object.

Names and their rules (one definition each: the declaration, the types of a lab's
variables and module_utils/topology.py use them), the keys every object may
carry (``stages``, ``when``, ``environment``), and what one stage's cross-field
rules share (:class:`StageContext`). Sources of the limits: interface names,
IFNAMSIZ - 1 = 15 bytes (linux/if.h); namespace names become files in /run/netns
(ip-netns(8)); addresses, RFC 4632 (CIDR) and RFC 1122 (no network or broadcast
address on a host); ports, RFC 793.
"""
from __future__ import annotations

import ipaddress
import posixpath

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

COMMON = {
    'stages': {'type': 'array', 'items': {'type': 'string'}, 'minItems': 1, 'uniqueItems': True},
    'when': {'type': 'boolean'},
    'environment': {'type': 'boolean'},
}


def item_schema(required, properties):
    props = dict(COMMON)
    props.update(properties)
    return {'type': 'object', 'required': required, 'additionalProperties': False, 'properties': props}


IFNAME_SCHEMA = {'type': 'string', 'pattern': IFNAME}
LINK_NAME_SCHEMA = {'type': 'string', 'pattern': LINK_NAME}
NETNS_SCHEMA = {'type': ['string', 'null'], 'pattern': NETNS}
ADDRESSES_SCHEMA = {'type': 'array', 'items': {'type': 'string'}}
MAC_SCHEMA = {'type': 'string', 'pattern': r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z'}
PORT_SCHEMA = {'type': 'integer', 'minimum': 1, 'maximum': 65535}


def interface(text):
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def check_address(errors, where, text):
    """An address in CIDR form that a host may hold; returns the interface or None."""
    iface = interface(text)
    if iface is None or '/' not in text:
        errors.append("%s: '%s' is not an address in CIDR form, like 192.168.15.5/24" % (where, text))
        return None
    net = iface.network
    if net.version == 4 and net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        errors.append("%s: '%s' is the %s address of %s; a host needs an address inside it (RFC 1122)"
                      % (where, text, 'network' if iface.ip == net.network_address else 'broadcast', net))
        return None
    return iface


def usable_path(path):
    return not (not path.startswith('/') or path.startswith('//') or posixpath.normpath(path) != path
                or path.count('/') < 2 or any(c.isspace() for c in path) or '..' in path.split('/'))


def path_of(item, kind, index):
    """An object's path in the whole declaration (select_stage notes it), else in the stage."""
    return item.get('__path', 'machine.%s[%d]' % (kind, index))


class StageContext:
    """What the cross-field rules of one stage share. `namespaces`: every namespace the stage declares, a pod's
    included (its runtime makes it); `addresses`: (path, namespace, link, interface) of every address the
    links hold, and `refused`, the namespaces with an address refused (what depends on their addresses is not
    judged again: one mistake, one message); both filled by the links' rules, which come first."""

    def __init__(self, machine, stage):
        self.where_stage = " (stage '%s')" % stage
        namespaces = [ns['name'] for ns in machine.get('namespaces', [])]
        self.namespaces = namespaces + [p['name'] for p in machine.get('pods', []) if p['name'] not in namespaces]
        self.known = set(self.namespaces)
        self.addresses = []
        self.refused = set()

    def namespace_errors(self, where, value, key='namespace'):
        if value is not None and value not in self.known:
            return ["%s.%s: '%s' is not a namespace of the lab%s; declared: %s"
                    % (where, key, value, self.where_stage, ', '.join(self.namespaces) or 'none')]
        return []
