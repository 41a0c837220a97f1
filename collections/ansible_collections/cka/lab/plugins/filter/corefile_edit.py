# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
name: corefile_edit
short_description: Add a hosts block and a forward target to a CoreDNS Corefile, keeping the rest as it is
description:
  - Edits one server block of a CoreDNS Corefile (kubeadm's C(.:53) block by default) and returns the whole Corefile.
  - With O(hosts), writes a C(hosts) block that serves those names and falls through to the next plugins. The block is
    marked as managed, replaces an earlier managed one, and sits before C(forward). With O(hosts) empty, a managed block
    is removed and an unmanaged one is left alone.
  - With O(forward), replaces the upstreams of the C(forward .) directive and keeps its options block; with O(forward)
    empty, C(forward) is left as it is.
  - Everything else (directives, their order, comments, other server blocks) is kept byte for byte, so applying the
    result twice changes nothing.
author:
  - CKA networking labs maintainers
positional: _input
options:
  _input:
    description: The Corefile text, for example the C(Corefile) key of the C(coredns) ConfigMap.
    type: str
    required: true
  hosts:
    description: Names to serve, each mapped to an IPv4 or IPv6 address.
    type: dict
    default: {}
  forward:
    description: Upstreams of C(forward .), such as V(192.168.1.1) or V(/etc/resolv.conf).
    type: list
    elements: str
    default: []
  server:
    description: Key of the server block to edit.
    type: str
    default: ".:53"
"""

EXAMPLES = r"""
- name: Serve the lab's node names and forward the rest to the lab router
  ansible.builtin.set_fact:
    corefile: >-
      {{ current_corefile | cka.lab.corefile_edit(hosts={'node01': '10.213.0.21'}, forward=['10.213.0.1']) }}
"""

RETURN = r"""
_value:
  description: The edited Corefile.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

MANAGED_MARK = '# managed by Ansible (coredns_config): lab names'
_NESTED_INDENT = '   '  # kubeadm's Corefile indents nested lines by three more spaces


def _strip_comment(line):
    """The line without a trailing comment (Corefile comments start with # outside quotes)."""
    in_quotes = False
    for index, char in enumerate(line):
        if char == '"':
            in_quotes = not in_quotes
        elif char == '#' and not in_quotes:
            return line[:index]
    return line


def _brace_delta(line):
    code = _strip_comment(line)
    return code.count('{') - code.count('}')


def _find_server_block(lines, server):
    """Index of the opening line and of the closing line of the server block keyed `server`."""
    depth = 0
    start = None
    for index, line in enumerate(lines):
        code = _strip_comment(line).strip()
        if depth == 0 and start is None and code.endswith('{') and server in code[:-1].split():
            start = index
        depth += _brace_delta(line)
        if depth < 0:
            raise AnsibleFilterError('corefile_edit: unbalanced "}" on line %d of the Corefile' % (index + 1))
        if start is not None and depth == 0:
            return start, index
    if start is None:
        raise AnsibleFilterError('corefile_edit: the Corefile has no server block "%s {"' % server)
    raise AnsibleFilterError('corefile_edit: the server block "%s" is not closed' % server)


def _directives(lines, start, end):
    """Top-level directives of a block as [name, first line index, last line index]."""
    found = []
    depth = 0
    for index in range(start + 1, end):
        code = _strip_comment(lines[index]).strip()
        if depth == 0 and code:
            found.append([code.split()[0], index, index])
        elif depth > 0 and found:
            found[-1][2] = index
        depth += _brace_delta(lines[index])
    return found


def _is_managed(lines, first, last):
    return any(lines[index].strip() == MANAGED_MARK for index in range(first, last + 1))


def corefile_edit(corefile, hosts=None, forward=None, server='.:53'):
    if not isinstance(corefile, str):
        raise AnsibleFilterError('corefile_edit: the input must be the Corefile text, not %s' % type(corefile).__name__)
    hosts = dict(hosts or {})
    forward = [to_text(upstream) for upstream in (forward or [])]
    for name, address in hosts.items():
        if not re.match(r'^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$', to_text(name)):
            raise AnsibleFilterError('corefile_edit: hosts: "%s" is not a DNS name' % name)
        if not re.match(r'^[0-9A-Fa-f:.]+$', to_text(address)):
            raise AnsibleFilterError('corefile_edit: hosts: the address of "%s" ("%s") is not an IP address' % (name, address))
    for upstream in forward:
        if not upstream or re.search(r'[\s{}#"]', upstream):
            raise AnsibleFilterError('corefile_edit: forward: "%s" is not an upstream' % upstream)

    trailing_newline = corefile.endswith('\n')
    lines = corefile.split('\n')
    if trailing_newline:
        lines.pop()
    start, end = _find_server_block(lines, server)
    directives = _directives(lines, start, end)
    indent = re.match(r'\s*', lines[directives[0][1]]).group(0) if directives else '    '

    # forward: swap the upstreams of `forward .`, keep `{` and the options after them.
    if forward:
        forwards = [item for item in directives if item[0] == 'forward']
        if forwards:
            index = forwards[0][1]
            match = re.match(r'^(\s*forward\s+\S+\s+)(.*?)(\s*\{\s*)?$', lines[index])
            lines[index] = match.group(1) + ' '.join(forward) + (' {' if match.group(3) else '')
        else:
            lines.insert(end, '%sforward . %s' % (indent, ' '.join(forward)))
            end += 1
        directives = _directives(lines, start, end)

    # hosts: drop a managed block, then write the declared one before `forward`.
    for name, first, last in reversed(directives):
        if name == 'hosts' and _is_managed(lines, first, last):
            del lines[first:last + 1]
            end -= last - first + 1
    if hosts:
        unmanaged = [item for item in _directives(lines, start, end) if item[0] == 'hosts']
        if unmanaged:
            raise AnsibleFilterError(
                'corefile_edit: the server block "%s" already has a hosts directive that Ansible did not write '
                '(line %d); CoreDNS allows one per server block' % (server, unmanaged[0][1] + 1))
        block = ['%shosts {' % indent, '%s%s%s' % (indent, _NESTED_INDENT, MANAGED_MARK)]
        block += ['%s%s%s %s' % (indent, _NESTED_INDENT, address, name) for name, address in sorted(hosts.items())]
        block += ['%s%sfallthrough' % (indent, _NESTED_INDENT), '%s}' % indent]
        forwards = [item for item in _directives(lines, start, end) if item[0] == 'forward']
        position = forwards[0][1] if forwards else end
        lines[position:position] = block

    return '\n'.join(lines) + ('\n' if trailing_newline else '')


class FilterModule(object):
    def filters(self):
        return {'corefile_edit': corefile_edit}
