# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A picture of one stage of a lab: its topology in the Graphviz DOT language.

:func:`to_dot` takes one stage of a rendered lab declaration (what
:func:`~ansible_collections.cka.lab.plugins.module_utils.lab_declaration.select_stage`
returns) and gives the DOT text of its picture; :func:`to_svg` lays it out with
Graphviz's ``dot`` and gives the SVG. The ``cka.lab.lab_drawing`` action writes
one picture per stage, for the lesson's guide (docs/labs/LAB-STAGE.svg).

Each kind of object draws its part (``draw(machine, picture)`` in lab_kinds/,
into a lab_kinds.picture.Picture); this module lays the parts out. What the
picture shows, and how:

* Each network namespace is a box (a DOT *cluster*) labelled ``namespace NAME``;
  the lab machine's root namespace is the box ``host (root namespace)``. Under
  the name, the box's label lists the namespace's routes (``DST via GATEWAY``,
  with ``dev`` and ``metric`` when declared) and the sysctls the lesson sets
  (those marked ``environment`` are there for the machine, not the lesson, and
  are left out). The host's label is at the bottom of its box, out of the way
  of the lines coming in from the namespaces. A namespace with no interface
  shows ``(no interfaces)``.
* A bridge is a filled, bold box: its name, ``bridge`` and its addresses.
* A veth end is a rounded box: the interface name and its addresses.
* A veth pair is a thick solid line from one end to its peer (the end in a
  namespace written first when the other is in the host: dot draws an edge's
  first node above its second, so the namespaces are drawn above the host).
* A port of a bridge (a veth end with ``master``) is joined to its bridge by
  a dashed line.
* Notes (the folded-corner shape): the NAT rules (``machine.rules`` of table
  ``nat``, as written, in their order) in the host's box, since iptables rules
  of a lab live in the root namespace, below its interfaces; each service in its namespace's box,
  with what it listens on (``tcp ADDRESS:PORT``).
* The picture's title names the lesson, the lab and the stage, with a key to
  the kinds of line it has.

The host's box comes first. The namespaces' boxes are placed so that those
sharing a bridge or a veth pair sit side by side and few lines cross (a walk
through the links, from the least connected namespace); interfaces are sorted
by name, bridges first. The output is deterministic: the order of the
namespaces, interfaces and edges depends on their names and links only, not on
the order they are declared in; node ids are derived from names (``host/v-net-0``, ``ns.red/veth-red``,
``ns.blue#service.web``), and nothing depends on time or on dict order. Routes
and rules keep the order they are declared in (the order of iptables rules
matters). Text widths in the SVG depend on the fonts installed where it is
rendered.

Source: the DOT language and its attributes, https://graphviz.org/doc/info/lang.html,
https://graphviz.org/doc/info/attrs.html and https://graphviz.org/doc/info/shapes.html
(``box``, ``note``, ``plaintext``; ``\\n`` and ``\\l`` end centred and left-justified
lines of a label); clusters are subgraphs whose names begin with ``cluster``.
The DOT text is built with the ``graphviz`` Python package (https://graphviz.readthedocs.io/).
"""
from __future__ import annotations

import textwrap

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import KINDS
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.picture import ROOT, Picture

try:
    import graphviz
except ImportError:  # only the Ansible computer draws; lab machines never import this module
    graphviz = None

INDENT = '\u00a0'  # a no-break space
NOTE_WIDTH = 60  # characters per line of a note before a rule is wrapped

_FONT = 'Helvetica'
_GRAPH = {'fontname': _FONT, 'fontsize': '13', 'labelloc': 't', 'rankdir': 'TB', 'nodesep': '0.35',
          'ranksep': '0.7', 'newrank': 'true', 'pad': '0.3'}
_NODE = {'fontname': _FONT, 'fontsize': '11', 'shape': 'box', 'margin': '0.15,0.06'}
_EDGE = {'fontname': _FONT, 'fontsize': '10'}
_HOST_CLUSTER = {'style': 'rounded,filled', 'fillcolor': '#eef3f8', 'color': '#4a6d8c', 'penwidth': '1.5'}
_NS_CLUSTER = {'style': 'rounded,filled', 'fillcolor': '#fbf7ee', 'color': '#9c7a3c', 'penwidth': '1.2'}
_BRIDGE = {'shape': 'box', 'style': 'filled,bold', 'fillcolor': '#cfe2f3', 'color': '#2f5d8a'}
_VETH = {'shape': 'box', 'style': 'rounded,filled', 'fillcolor': '#ffffff', 'color': '#555555'}
_VXLAN = {'shape': 'box', 'style': 'filled,bold,dashed', 'fillcolor': '#e2f0d9', 'color': '#3c7a3c'}
_NOTE = {'shape': 'note', 'style': 'filled', 'fillcolor': '#f4f4f4', 'color': '#888888', 'fontsize': '10'}
_EMPTY = {'shape': 'plaintext', 'fontcolor': '#777777'}
_STYLES = {'bridge': _BRIDGE, 'vxlan': _VXLAN, 'veth': _VETH}
# Beside what a machine has now: declared and missing; there and not declared; there with other addresses.
_STATUS = {'missing': {'color': '#c00000', 'fontcolor': '#c00000', 'style': 'dashed', 'penwidth': '2'},
           'extra': {'color': '#d9822b', 'fontcolor': '#a35a10', 'penwidth': '2'},
           'differs': {'color': '#d9822b', 'penwidth': '2'}}
_MARK = {'missing': ' (missing)', 'extra': ' (not in the lab)'}
_PAIR_EDGE = {'penwidth': '2.2', 'color': '#333333'}
_PORT_EDGE = {'style': 'dashed', 'color': '#2f5d8a', 'penwidth': '1.3'}


def _text(value):
    """One line of text for a DOT label: backslashes kept literal, runs of whitespace made one space; an
    indentation is kept as no-break spaces (SVG viewers drop ordinary leading spaces)."""
    value = str(value)
    indent = len(value) - len(value.lstrip(' '))
    return INDENT * indent + ' '.join(value.replace('\\', '\\\\').split())


def _label(lines, left=False):
    """A label of several lines, centred (``\\n``) or left-justified (``\\l``)."""
    lines = [_text(line) for line in lines]
    if left:
        return ''.join(line + '\\l' for line in lines)
    return '\\n'.join(lines)


def _prefix(namespace):
    return 'host' if namespace is ROOT else 'ns.' + namespace


def _cluster(namespace):
    return 'cluster_' + _prefix(namespace)


def _node_id(namespace, name):
    """A stable id for an interface: namespace names have no '/' and no '#', interface names have no '/'."""
    return '%s/%s' % (_prefix(namespace), name)


def _note_id(namespace, what):
    return '%s#%s' % (_prefix(namespace), what)


def _wrapped(text, width=NOTE_WIDTH):
    return textwrap.wrap(' '.join(text.split()), width=width, subsequent_indent='    ',
                         break_long_words=False, break_on_hyphens=False) or ['']


def _order(picture):
    """The namespaces in the order they are drawn: the host first; then, so that few lines cross, those that
    share a segment side by side: a depth-first walk through the segments, in each group of connected
    namespaces from the least connected one (then by name), and the groups by their first name."""
    others = sorted(n for n in picture.namespaces if n is not ROOT)
    neighbours = {n: set() for n in others}
    for _, members in sorted(picture.segments.items()):
        members = [m for m in members if m is not ROOT and m in neighbours]
        for member in members:
            neighbours[member].update(m for m in members if m != member)
    groups, seen = [], set()
    for name in others:
        if name in seen:
            continue
        group, stack = set(), [name]
        while stack:
            current = stack.pop()
            if current not in group:
                group.add(current)
                stack.extend(neighbours[current] - group)
        seen |= group
        groups.append(group)
    order = [ROOT]
    for group in groups:
        walk, stack = [], [min(group, key=lambda n: (len(neighbours[n]), n))]
        while stack:
            current = stack.pop()
            if current not in walk:
                walk.append(current)
                stack.extend(sorted(neighbours[current] - set(walk), reverse=True))
        order.extend(walk)
    return order


def _drawn(machine, kinds):
    picture = Picture()
    for kind in kinds:
        if hasattr(kind, 'draw'):
            kind.draw(machine, picture)
    return picture


def compared(machine, observed):
    """One Picture of a stage beside what a machine has now (`observed`, lab_state state=observed): the kinds
    that can be observed drawn from both, each object marked in `picture.status` {('ns', namespace) |
    ('if', namespace, name) | ('pair', end, peer) | ('port', port, bridge): 'missing' (declared, not there),
    'extra' (there, not declared) or 'differs' (there, with other addresses)}, a section's lines marked
    `- ` (missing) and `+ ` (not declared); the other kinds drawn from the declaration as they are."""
    observable = [kind for kind in KINDS if set(kind.KEYS) <= set(observed)]
    declared, now = _drawn(machine, observable), _drawn(observed, observable)
    picture = _drawn(machine, [kind for kind in KINDS if kind not in observable])
    status = {}
    for name in set(declared.namespaces) | set(now.namespaces):
        picture.namespaces[name] = now.namespaces.get(name) or declared.namespaces[name]
        if name not in now.namespaces:
            status[('ns', name)] = 'missing'
        elif name not in declared.namespaces:
            status[('ns', name)] = 'extra'
    for namespace in set(declared.interfaces) | set(now.interfaces):
        mine, theirs = declared.interfaces.get(namespace, {}), now.interfaces.get(namespace, {})
        for name in set(mine) | set(theirs):
            if name not in theirs:
                picture.interface(namespace, name, *mine[name])
                status[('if', namespace, name)] = 'missing'
            elif name not in mine:
                picture.interface(namespace, name, *theirs[name])
                status[('if', namespace, name)] = 'extra'
            else:
                style, lines = theirs[name]
                if sorted(lines) != sorted(mine[name][1]):
                    status[('if', namespace, name)] = 'differs'
                    lines = lines + ['the lab: ' + line for line in mine[name][1] if line not in lines]
                picture.interface(namespace, name, style, lines)
    for attr, tag in (('pairs', 'pair'), ('ports', 'port')):
        mine, theirs = getattr(declared, attr), getattr(now, attr)
        getattr(picture, attr).update(mine | theirs)
        status.update({(tag,) + edge: 'missing' for edge in mine - theirs})
        status.update({(tag,) + edge: 'extra' for edge in theirs - mine})
    for key, members in list(declared.segments.items()) + list(now.segments.items()):
        picture.segment(key, members)
    for namespace in set(declared.sections) | set(now.sections):
        mine, theirs = dict(declared.sections.get(namespace, [])), dict(now.sections.get(namespace, []))
        for heading in list(mine) + [h for h in theirs if h not in mine]:
            lines = [line if line in mine.get(heading, []) else '+ ' + line for line in theirs.get(heading, [])]
            lines += ['- ' + line for line in mine.get(heading, []) if line not in theirs.get(heading, [])]
            picture.section(namespace, heading, lines)
    picture.status = status
    return picture


def to_dot(declaration, observed=None):
    """The DOT text of the picture of one selected stage of a rendered lab declaration; with `observed` (what
    a machine has now, lab_state state=observed), that beside the stage, the differences marked (see
    :func:`compared`): red and dashed what is declared and missing, orange what is there and not declared or
    has other addresses."""
    if graphviz is None:
        raise RuntimeError('the graphviz Python package is needed on the Ansible computer (pip install graphviz)')
    machine = declaration.get('machine') or {}
    lab = declaration.get('lab', 'lab')
    stage = declaration.get('stage', '')
    picture = _drawn(machine, KINDS) if observed is None else compared(machine, observed)
    status = getattr(picture, 'status', {})
    pairs = sorted(((_node_id(*end), _node_id(*peer)), status.get(('pair', end, peer)))
                   for end, peer in picture.pairs)
    ports = sorted(((_node_id(*port), _node_id(*bridge)), status.get(('port', port, bridge)))
                   for port, bridge in picture.ports)

    node = ', node %s' % declaration['node'] if declaration.get('node') else ''
    if observed is not None:
        node += ', what the machine has now'
    title = 'Lesson %s: %s (lab %s, stage %s%s)' % (declaration.get('lesson', '?'), declaration.get('title', lab),
                                                   lab, stage, node)
    key = '; '.join(text for text, shown in (('thick line: a veth pair', pairs),
                                              ('dashed line: a port of a bridge', ports),
                                              ('red, dashed: declared but missing', 'missing' in status.values()),
                                              ('orange: there but not declared, or other addresses',
                                               {'extra', 'differs'} & set(status.values())),
                                              ('in a list, + there but not declared, - declared but missing',
                                               observed is not None)) if shown)
    graph = graphviz.Graph(name='%s-%s' % (lab, stage),
                           graph_attr=dict(_GRAPH, label=_label([title, key] if key else [title])),
                           node_attr=_NODE, edge_attr=_EDGE)

    for namespace in _order(picture):
        marked = status.get(('ns', namespace))
        kind = picture.namespaces[namespace]
        heading = 'host (root namespace)' if namespace is ROOT else '%s %s' % (kind, namespace)
        lines = [heading + _MARK.get(marked, '')]
        for section, items in picture.sections.get(namespace, []):
            lines.append(section)
            lines.extend('  ' + text for text in items)
        # The host's label at the bottom: the lines from the namespaces come in at the top.
        attrs = dict(_HOST_CLUSTER if namespace is ROOT else _NS_CLUSTER, labeljust='l',
                     labelloc='b' if namespace is ROOT else 't', label=_label(lines, left=len(lines) > 1),
                     **_STATUS.get(marked, {}))
        with graph.subgraph(name=_cluster(namespace), graph_attr=attrs) as cluster:
            own = picture.interfaces.get(namespace, {})
            # Bridges first, then the other links, each by name.
            for name in sorted(own, key=lambda n: (own[n][0] != 'bridge', n)):
                style, lines = own[name]
                marked = status.get(('if', namespace, name))
                if marked in _MARK:
                    lines = [lines[0] + _MARK[marked]] + lines[1:]
                cluster.node(_node_id(namespace, name), graphviz.nohtml(_label(lines)),
                             **dict(_STYLES[style], **_STATUS.get(marked, {})))
            if not own:
                cluster.node(_note_id(namespace, 'empty'), '(no interfaces)', **_EMPTY)
            notes = []
            for what, lines in picture.notes.get(namespace, []):
                notes.append(_note_id(namespace, what))
                wrapped = [piece for line in lines for piece in _wrapped(line)]
                cluster.node(notes[-1], graphviz.nohtml(_label(wrapped, left=True)), **_NOTE)
            if namespace is ROOT:
                # The host's notes below its interfaces, out of the way of the lines from the namespaces.
                for note in notes:
                    for name in sorted(own):
                        cluster.edge(_node_id(namespace, name), note, style='invis')

    for (end, peer), marked in pairs:
        graph.edge(end, peer, **dict(_PAIR_EDGE, **_STATUS.get(marked, {})))
    for (port, bridge), marked in ports:
        graph.edge(port, bridge, **dict(_PORT_EDGE, **_STATUS.get(marked, {})))
    return graph.source


def to_svg(dot):
    """The SVG picture of DOT text, laid out by Graphviz's ``dot`` (Debian package graphviz)."""
    if graphviz is None:
        raise RuntimeError('the graphviz Python package is needed on the Ansible computer (pip install graphviz)')
    return graphviz.Source(dot).pipe(format='svg', engine='dot')
