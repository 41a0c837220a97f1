# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Render and validate a lab declaration on the Ansible computer; nothing runs on the machine."""
from __future__ import annotations

import copy
import os
import re

import yaml
from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import LAB_ID, LAB_ID_RULE, select_stage, validate
from ansible_collections.cka.lab.plugins.module_utils.lab_types import TypeSpecError, check_types


_INDEX = re.compile(r'^(machine\.\w+|probes)\[(\d+)\]')
# libyaml's parser when PyYAML has it (the same data, about ten times faster than the pure-Python one).
_YAML_LOADER = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)
# A reference to a value: `{{ name }}`, `{{ item.address }}`, `{{ item[0].name }}`.
_PATH = r'[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*'
_REFERENCE = re.compile(r'\{\{ *(%s) *\}\}' % _PATH)
_WHOLE_REFERENCE = re.compile(r'\{\{ *(%s) *\}\}\Z' % _PATH)
_STEP = re.compile(r'\.(\w+)|\[(\d+)\]')
_NOT_DIRECT = object()


def _kind(value):
    """What a user calls the type of a value (ansible-core tags strings with classes of its own)."""
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def _argv_words(machine):
    """A number in a command line or a sysctl value is a word: 80 -> '80'."""
    def word(value):
        return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    for service in machine.get('services') or []:
        if isinstance(service, dict) and isinstance(service.get('command'), list):
            service['command'] = [word(v) for v in service['command']]
    for sysctl in machine.get('sysctls') or []:
        if isinstance(sysctl, dict) and 'value' in sysctl:
            sysctl['value'] = word(sysctl['value'])


def _follow(path, scope):
    """The value `path` (`item[0].name`) names in `scope`, or _NOT_DIRECT when it is not plainly there."""
    root = path.split('.')[0].split('[')[0]
    if root not in scope:
        return _NOT_DIRECT
    value = scope[root]
    for key, index in _STEP.findall(path[len(root):]):
        if key:
            # Jinja reads `.items` of a dict as its method: such names are left to it.
            if not isinstance(value, dict) or key not in value or hasattr(dict, key):
                return _NOT_DIRECT
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return _NOT_DIRECT
            value = value[int(index)]
    return value


def direct(text, scope):
    """`text` rendered without Jinja when it only places values of `scope` (the lab's variables, `item`,
    `index`), else _NOT_DIRECT.

    Ansible's templar compiles each template string again each time it renders it (ansible-core 2.19 keeps
    no compiled template), and a lab's loops render the same strings once per item: lesson 200's lab
    rendered 339 template strings, 44 of them different, and most only `{{ item[1].name }}`. The forms
    taken here give what Jinja gives (tests/roles/test_declaration_rendering.py renders every lab both ways):
    - the whole string one reference, `{{ item.address }}`: the value itself, in its type (a copy);
    - references in text on one line, `{{ item[0].name }} asks {{ item[1].name }}`: the text with each
      value written in, when every value is a string or a whole number.
    A name `scope` does not hold (a host variable, `groups`), a missing key or index, a dict's own
    attribute (`.items`), a filter or any other expression is left to Ansible's templar.
    """
    whole = _WHOLE_REFERENCE.match(text)
    if whole:
        value = _follow(whole.group(1), scope)
        return copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    # Anything besides plain references (a filter, a statement, a comment) or on several lines: Jinja's.
    if '\n' in text or any(mark in _REFERENCE.sub('', text) for mark in ('{{', '}}', '{%', '{#')):
        return _NOT_DIRECT
    values = [_follow(path, scope) for path in _REFERENCE.findall(text)]
    if any(isinstance(value, bool) or not isinstance(value, (str, int)) for value in values):
        return _NOT_DIRECT
    written = iter(values)
    return _REFERENCE.sub(lambda _: str(next(written)), text)


class _Scope:
    """What templates of one place render with: the variables, and Ansible's templar over the host's
    variables and these, made when a template first needs it."""

    def __init__(self, action, task_vars, variables):
        self.action, self.task_vars, self.variables = action, task_vars, variables
        self._templar = None

    def templar(self):
        if self._templar is None:
            self._templar = self.action._templar.copy_with_new_env(
                available_variables=dict(self.task_vars, **self.variables))
        return self._templar


# Documented in plugins/modules/lab_declaration.py (ansible-doc cka.lab.lab_declaration).


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    # Render plain references without Jinja (direct()); False renders every template with Ansible's templar.
    DIRECT_REFERENCES = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        lab = args.get('lab')
        if not isinstance(lab, str) or not re.match(LAB_ID, lab):
            return dict(result, failed=True, msg="lab: %r is not usable; allowed: %s" % (lab, LAB_ID_RULE))
        labs_dir = args.get('labs_dir')
        path = os.path.join(labs_dir, lab + '.yml')
        if not os.path.isfile(path):
            known = sorted(f[:-4] for f in os.listdir(labs_dir) if f.endswith('.yml')) if os.path.isdir(labs_dir) else []
            return dict(result, failed=True, msg="lab: '%s' has no file %s; labs: %s" % (lab, path, ', '.join(known)))
        with open(path, encoding='utf-8') as handle:
            source = yaml.load(handle, Loader=_YAML_LOADER)

        errors = []
        variables = self._variables(lab, source, task_vars, errors)
        if not errors:
            # Each variable's type (module_utils/lab_types.py), before anything is rendered with it.
            hosts = (task_vars.get('groups') or {}).get(source.get('group') or lab, [])
            try:
                errors = check_types(source.get('types') or {}, variables, hosts, source.get('variables') or {})
            except TypeSpecError as exc:
                errors = ['%s (in %s)' % (exc, path)]
        if errors:
            return dict(result, failed=True, msg='Lab %s: %s' % (lab, '; '.join(errors)), errors=errors)
        stage = args.get('stage') or variables[lab + '_stage']
        state = variables[lab + '_state']
        origins = {}
        for name, text in (source.get('let') or {}).items():
            variables[name] = self._render(_Scope(self, task_vars, variables), text, 'let.' + name, origins, errors)
        scope = _Scope(self, task_vars, variables)
        for i, item in enumerate(source.get('require') or []):
            # Every condition is tried; one that cannot even be rendered after
            # another failed is a consequence of that one, and not reported.
            where = 'require[%d]' % i
            failed_before = list(errors)
            holds = self._render(scope, item.get('that'), where + '.that', origins, errors)
            if failed_before and len(errors) > len(failed_before):
                del errors[len(failed_before):]
                continue
            if holds is not True and len(errors) == len(failed_before):
                message = self._render(scope, item.get('message') or '', where + '.message', origins, errors)
                errors.append(' '.join(str(message).split()) or '%s: %s does not hold' % (where, item.get('that')))
        if errors:
            return dict(result, failed=True, msg='Lab %s: %s' % (lab, '; '.join(errors)), errors=errors)
        machine = {kind: self._render_list(scope, items or [], 'machine.' + kind, origins, errors)
                   for kind, items in (source.get('machine') or {}).items()}
        probes = self._render_list(scope, source.get('probes') or [], 'probes', origins, errors)
        peers = self._render(scope, source['peers'], 'peers', origins, errors) if 'peers' in source else None
        roles = self._render_list(scope, source.get('roles') or [], 'roles', origins, errors)
        if errors:
            return dict(result, failed=True, msg='Lab %s: %s' % (lab, '; '.join(errors)), errors=errors)

        _argv_words(machine)
        whole = {key: source[key] for key in ('lab', 'lesson', 'title', 'group', 'guide', 'nodes', 'stages',
                                              'playbook', 'checks')
                 if key in source}
        whole.update(name=variables.get(lab + '_name', lab.replace('_', '-')), stage=stage, machine=machine,
                     probes=probes)
        if roles:
            whole['roles'] = roles
        if peers is not None:
            whole['peers'] = peers
        errors = [self._explain(error, origins) for error in validate(whole)]
        if state not in ('present', 'absent'):
            errors.insert(0, "%s_state: '%s' is not a state; allowed: present, absent" % (lab, state))
        elif state == 'present' and 'playbook' in source and boolean(args.get('build', False), strict=False):
            errors.insert(0, "lab_id: %s is built by playbooks/%s, not by the lab engine; run ansible-playbook "
                             "playbooks/%s (a reset: playbooks/reset.yml --limit %s)"
                          % (lab, source['playbook'], source['playbook'], lab))
        if errors:
            return dict(result, failed=True, msg='Lab %s: %s' % (lab, '; '.join(errors)), errors=errors)
        # The lab's own variables, for messages that name the one to change (a clash with another lab).
        own = {name: variables[name] for name in (source.get('variables') or {}) if name in variables}
        return dict(result, changed=False, declaration=select_stage(whole, stage), whole=whole, state=state,
                    variables=own)

    # -- variables ----------------------------------------------------------
    def _variables(self, lab, source, task_vars, errors):
        """The lab's variables: the host's value where set, else the file's default, in the default's type."""
        defaults = dict(source.get('variables') or {})
        defaults.setdefault(lab + '_state', 'present')
        defaults.setdefault(lab + '_stage', (source.get('stages') or ['full'])[-1])
        values = {}
        for name, default in defaults.items():
            value = default
            if name in task_vars:
                try:
                    value = self._templar.template(task_vars[name])
                except AnsibleError as exc:
                    errors.append('%s: cannot be rendered: %s' % (name, exc.message))
                    continue
            values[name] = self._coerce(name, value, default, errors)
        return values

    @staticmethod
    def _coerce(name, value, default, errors):
        """Values given with -e arrive as strings; take them in the type of the lesson's default."""
        if isinstance(default, bool):
            try:
                return boolean(value, strict=True)
            except TypeError:
                errors.append("%s: %r is not a boolean; allowed: true or false" % (name, value))
        elif isinstance(default, int):
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().isdigit():
                return int(value)
            errors.append("%s: %r is not a whole number like %d" % (name, value, default))
        elif isinstance(default, (list, dict)):
            if isinstance(value, type(default)):
                return value
            errors.append("%s: must be a %s like the lesson's (given %s); with -e pass it as JSON: -e '{\"%s\": ...}'"
                          % (name, type(default).__name__, _kind(value), name))
        elif isinstance(default, str):
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return str(value)
            errors.append("%s: %r is not a string" % (name, value))
        else:
            return value
        return default

    # -- rendering ----------------------------------------------------------
    def _render(self, scope, value, where, origins, errors):
        """`value` with every string rendered; records which template made each rendered string."""
        if isinstance(value, str):
            if '{{' not in value and '{%' not in value:
                return value
            rendered = direct(value, scope.variables) if self.DIRECT_REFERENCES else _NOT_DIRECT
            if rendered is not _NOT_DIRECT:
                origins[where] = value.strip()
                return rendered
            try:
                rendered = scope.templar().template(trust_as_template(value))
            except AnsibleError as exc:
                errors.append('%s: %s cannot be rendered: %s' % (where, value.strip(), exc.message))
                return None
            origins[where] = value.strip()
            return rendered
        if isinstance(value, list):
            return [self._render(scope, v, '%s[%d]' % (where, i), origins, errors) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self._render(scope, v, '%s.%s' % (where, k), origins, errors) for k, v in value.items()}
        return value

    def _render_list(self, scope, items, where, origins, errors):
        """Render a list of objects; an object with `loop` is repeated once per item of its rendered loop."""
        out = []
        for i, item in enumerate(items):
            source_where = '%s[%d]' % (where, i)
            if not isinstance(item, dict) or 'loop' not in item:
                rendered = self._render(scope, item, '%s[%d]' % (where, len(out)), origins, errors)
                origins.setdefault(('item', '%s[%d]' % (where, len(out))), source_where)
                out.append(rendered)
                continue
            loop = self._render(scope, item['loop'], source_where + '.loop', origins, errors)
            if not isinstance(loop, list):
                errors.append('%s.loop: %s must give a list (gave %s)'
                              % (source_where, item['loop'], type(loop).__name__))
                continue
            body = {k: v for k, v in item.items() if k != 'loop'}
            for n, element in enumerate(loop):
                looped = _Scope(self, scope.task_vars, dict(scope.variables, item=element, index=n))
                target = '%s[%d]' % (where, len(out))
                origins[('item', target)] = '%s (item %d of its loop %s)' % (source_where, n, item['loop'].strip())
                out.append(self._render(looped, body, target, origins, errors))
        return out

    @staticmethod
    def _explain(error, origins):
        """Name the object as written in the lab file and the template a bad value came from."""
        path = error.split(':', 1)[0]
        match = _INDEX.match(path)
        if match:
            source = origins.get(('item', match.group(0)))
            if source and source != match.group(0):
                error = '%s%s' % (source, error[len(match.group(0)):])
        template = origins.get(path)
        if template:
            error += ' (from %s)' % template
        return error
