# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""What a picture of one stage of a lab holds, as each kind draws its part (``draw(machine, picture)``).

Plain data, with no layout: module_utils/lab_drawing.py lays it out in DOT. A
namespace is a name, or ``None`` for the machine's root namespace; an interface
belongs to one namespace and has a ``style`` (``bridge``, ``vxlan`` or ``veth``,
how it is drawn) and the lines of its label.
"""
from __future__ import annotations

ROOT = None  # the root namespace, as the declaration writes it (no `namespace`)


class Picture:
    """One stage of a lab, as the kinds describe it for drawing.

    - ``namespaces``: {namespace: 'namespace' or 'pod'} (the root namespace is always there);
    - ``interfaces``: {namespace: {name: (style, [label line, ...])}};
    - ``pairs``: {((namespace, name), (namespace, name))}, a veth pair's ends, the
      end drawn above (in a namespace) first;
    - ``ports``: {((namespace, port), (namespace, bridge))}, a bridge's ports;
    - ``segments``: {key: {namespace, ...}}, the namespaces on one layer-2
      segment (a bridge or a lone veth pair), to place them side by side;
    - ``sections``: {namespace: [(heading, [line, ...])]}, listed under its name
      ('routes:', 'sysctls:');
    - ``notes``: {namespace: [(id, [line, ...])]}, boxes of text in its box (a
      service, the NAT rules).
    """

    def __init__(self):
        self.namespaces = {ROOT: 'namespace'}
        self.interfaces = {}
        self.pairs = set()
        self.ports = set()
        self.segments = {}
        self.sections = {}
        self.notes = {}

    def namespace(self, name, kind='namespace'):
        """A box; a pod's namespace is drawn as a pod even when also declared as a namespace."""
        if kind != 'namespace' or name not in self.namespaces:
            self.namespaces[name] = kind

    def interface(self, namespace, name, style, lines):
        self.namespace(namespace)
        self.interfaces.setdefault(namespace, {})[name] = (style, list(lines))

    def pair(self, end, peer):
        """A veth pair: `end` and `peer` are (namespace, name); the end in a namespace is drawn above."""
        if end[0] is ROOT and peer[0] is not ROOT:
            end, peer = peer, end
        self.pairs.add((end, peer))

    def port(self, namespace, name, bridge):
        self.ports.add(((namespace, name), (namespace, bridge)))

    def segment(self, key, namespaces):
        self.segments.setdefault(key, set()).update(namespaces)

    def section(self, namespace, heading, lines):
        if lines:
            self.namespace(namespace)
            self.sections.setdefault(namespace, []).append((heading, list(lines)))

    def note(self, namespace, what, lines):
        self.namespace(namespace)
        self.notes.setdefault(namespace, []).append((what, list(lines)))


def link_lines(end, *about):
    """The label of a link: its name, what it is (`about`), its addresses and its MAC when declared."""
    return [end['name']] + list(about) + list(end.get('addresses') or []) + ([end['mac']] if end.get('mac') else [])
