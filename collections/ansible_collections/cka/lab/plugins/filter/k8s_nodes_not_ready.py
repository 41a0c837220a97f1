# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
name: k8s_nodes_not_ready
short_description: Names of the Kubernetes nodes that are not Ready
description:
  - Reads a NodeList (the output of C(kubectl get nodes -o json), as text or parsed) and returns, sorted, the names of
    the nodes whose C(Ready) condition is not C(True).
  - With O(expected), looks only at those names, and counts a name the list lacks (a node that has not registered yet)
    as not Ready.
  - An empty result means every node looked at is Ready; so C(until) loops can wait on C(| length == 0).
author:
  - CKA networking labs maintainers
positional: _input, expected
options:
  _input:
    description: The NodeList, as JSON text or as a dictionary.
    type: raw
    required: true
  expected:
    description: Node names that must be Ready; empty looks at every node in the list.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Wait until the three lab nodes are Ready
  ansible.builtin.command:
    argv: [kubectl, get, nodes, --output, json]
  register: nodes
  changed_when: false
  retries: 60
  delay: 5
  until: nodes.stdout | cka.lab.k8s_nodes_not_ready(['controlplane', 'node01', 'node02']) | length == 0
"""

RETURN = r"""
_value:
  description: Sorted names of the nodes that are missing or not Ready.
  type: list
  elements: str
"""

import json

from ansible.errors import AnsibleFilterError


def _is_ready(node):
    conditions = (node.get('status') or {}).get('conditions') or []
    return any(condition.get('type') == 'Ready' and condition.get('status') == 'True' for condition in conditions)


def k8s_nodes_not_ready(node_list, expected=None):
    if isinstance(node_list, (str, bytes)):
        try:
            node_list = json.loads(node_list)
        except ValueError as error:
            raise AnsibleFilterError('k8s_nodes_not_ready: the input is not JSON: %s' % error)
    if not isinstance(node_list, dict) or not isinstance(node_list.get('items'), list):
        raise AnsibleFilterError('k8s_nodes_not_ready: the input is not a NodeList (no "items" list)')
    readiness = {}
    for node in node_list['items']:
        name = (node.get('metadata') or {}).get('name')
        if name:
            readiness[name] = _is_ready(node)
    names = list(expected) if expected else list(readiness)
    return sorted(name for name in set(names) if not readiness.get(name, False))


class FilterModule(object):
    def filters(self):
        return {'k8s_nodes_not_ready': k8s_nodes_not_ready}
