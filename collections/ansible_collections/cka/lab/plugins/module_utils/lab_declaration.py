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

The part of the schema and of the rules that belongs to one kind of object
(``machine.bridges``, ``machine.rules``, ...) is that kind's, in lab_kinds/; this
module holds what is the lab's: its name, stages, probes and roles, and the
order the rules run in. The names and their limits are in lab_schema.py.
"""
from __future__ import annotations

import copy

from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import KINDS
# The names and their rules, imported by this module's users too.
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import (  # noqa: F401
    COMMON,
    IFNAME,
    IFNAME_RULE,
    IFNAME_SCHEMA,
    LAB_ID,
    LAB_ID_RULE,
    LINK_NAME,
    LINK_NAME_RULE,
    NETNS,
    NETNS_RULE,
    NETNS_SCHEMA,
    PORT_SCHEMA,
    ROLE,
    ROLE_RULE,
    SLUG,
    SLUG_RULE,
    STAGE,
    StageContext,
)

try:
    import jsonschema
except ImportError:  # only the controller validates
    jsonschema = None

PROBE_BASE = {'name': {'type': 'string', 'minLength': 1}, 'stages': COMMON['stages'], 'when': COMMON['when']}

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
        # The machines this machine's lab spans (inventory hostnames, itself among them): a classroom's
        # students each have their own; the checks that cross machines look only at these.
        'peers': {'type': 'array', 'items': {'type': 'string', 'minLength': 1}, 'minItems': 1, 'uniqueItems': True},
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
            # Each kind's items (lab_kinds/*.py: SCHEMA).
            'properties': {key: {'type': 'array', 'items': item}
                           for kind in KINDS for key, item in kind.SCHEMA.items()},
        },
        # Roles of this project run on the lab's machines beside the engine: before it builds one of
        # their stages, and (with `reset`, the role's tasks file that undoes it) after it removes the lab;
        # `export` writes what the lab's checks compare against (playbooks/check.yml).
        'roles': {'type': 'array', 'items': {
            'type': 'object', 'required': ['name'], 'additionalProperties': False, 'properties': {
                'name': {'type': 'string', 'pattern': ROLE}, 'stages': COMMON['stages'],
                'vars': {'type': 'object', 'propertyNames': {'pattern': ROLE}},
                'reset': {'type': 'string', 'pattern': ROLE}, 'export': {'type': 'string', 'pattern': ROLE}}}},
        'probes': {'type': 'array', 'items': {'type': 'object', 'required': ['name'], 'oneOf': [
            {'required': ['ping']}, {'required': ['tcp']}, {'required': ['http']}, {'required': ['dns']},
            {'required': ['pod']}, {'required': ['pods']}, {'required': ['service']}, {'required': ['cluster_dns']}],
            'additionalProperties': False, 'properties': dict(PROBE_BASE, **{
                'ping': {'type': 'object', 'required': ['address'], 'additionalProperties': False, 'properties': {
                    'from': NETNS_SCHEMA, 'address': {'type': 'string'}, 'expect': {'enum': ['reply', 'no reply']}}},
                'tcp': {'type': 'object', 'required': ['address'], 'additionalProperties': False, 'properties': {
                    'from': NETNS_SCHEMA, 'to': NETNS_SCHEMA, 'address': {'type': 'string'}, 'port': PORT_SCHEMA,
                    'source': {'type': 'string'}, 'expect': {'enum': ['connect', 'no connect']}}},
                'http': {'type': 'object', 'required': ['url'], 'additionalProperties': False, 'properties': {
                    'from': NETNS_SCHEMA, 'url': {'type': 'string', 'pattern': '^http://'},
                    'contains': {'type': 'string'},
                    # The server that must answer (a forward's target): graded by where the connection went.
                    'server': {'type': 'object', 'required': ['address', 'port'], 'additionalProperties': False,
                               'properties': {'namespace': NETNS_SCHEMA, 'address': {'type': 'string'},
                                              'port': PORT_SCHEMA}}}},
                'pod': {'type': 'object', 'required': ['from', 'to', 'port'], 'additionalProperties': False,
                        'properties': {
                            'from': NETNS_SCHEMA, 'to': {'type': 'string', 'pattern': NETNS}, 'port': PORT_SCHEMA,
                            'expect': {'enum': ['answer', 'no answer']},
                            'capture': {'type': 'object', 'required': ['interface'], 'additionalProperties': False,
                                        'properties': {'interface': IFNAME_SCHEMA, 'seen': {'type': 'string'},
                                                       'not_seen': {'type': 'string'}}}}},
                'dns': {'type': 'object', 'required': ['name', 'server'], 'additionalProperties': False,
                        'properties': {
                            'from': NETNS_SCHEMA, 'server': {'type': 'string'}, 'name': {'type': 'string'},
                            'protocol': {'enum': ['udp', 'tcp']}, 'answer': {'type': ['string', 'null']},
                            'resolver': {'type': 'boolean'}}},
                # A kubeadm cluster's (the weave lab): traffic from the probe pods the grader starts on every
                # node (checks/weave_lab/test_probes.py): between pods of different nodes, to a Service of a
                # type, and a name asked of the cluster DNS.
                'pods': {'type': 'object', 'required': ['between'], 'additionalProperties': False,
                         'properties': {'between': {'enum': ['nodes']}}},
                'service': {'type': 'object', 'required': ['type', 'from'], 'additionalProperties': False,
                            'properties': {'type': {'enum': ['ClusterIP', 'NodePort']},
                                           'from': {'enum': ['a pod on another node', 'the node', 'the control plane']}}},
                'cluster_dns': {'type': 'object', 'required': ['name', 'answer'], 'additionalProperties': False,
                                'properties': {'name': {'type': 'string', 'minLength': 1},
                                               'answer': {'type': 'string', 'minLength': 1}}},
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

def stage_errors(declaration):
    """Cross-field problems of one selected stage (see :func:`select_stage`): each kind's rules, in the
    kinds' order (the links' first: they note the addresses the others' rules look at), then the probes'."""
    machine = declaration['machine']
    context = StageContext(machine, declaration['stage'])
    errors = []
    for kind in KINDS:
        errors += kind.stage_errors(machine, context)
    for i, probe in enumerate(declaration.get('probes', [])):
        for kind in ('ping', 'tcp', 'http', 'dns', 'pod'):
            spec = probe.get(kind)
            if spec is None:
                continue
            for key in ('from', 'to') if kind != 'pod' else ('from',):
                errors += context.namespace_errors('%s.%s' % (probe.get('__path', 'probes[%d]' % i), kind),
                                                   spec.get(key), key)
    return errors


def validate(declaration):
    """Every problem of a rendered declaration: shape first, then each stage's cross-field rules."""
    errors = schema_errors(declaration)
    if errors:
        return errors
    if declaration['stage'] not in declaration['stages']:
        return ["%s_stage: '%s' is not a stage of lab %s; allowed: %s"
                % (declaration['lab'], declaration['stage'], declaration['lab'], ', '.join(declaration['stages']))]
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
