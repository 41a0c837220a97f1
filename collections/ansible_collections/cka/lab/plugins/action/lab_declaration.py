# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Render and validate a lab declaration on the Ansible computer; nothing runs on the machine."""
from __future__ import annotations

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


# Documented in plugins/modules/lab_declaration.py (ansible-doc cka.lab.lab_declaration).


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

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
            source = yaml.safe_load(handle)

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
        templar = self._templar.copy_with_new_env(available_variables=dict(task_vars, **variables))
        origins = {}
        for name, text in (source.get('let') or {}).items():
            variables[name] = self._render(templar, text, 'let.' + name, origins, errors)
            templar = self._templar.copy_with_new_env(available_variables=dict(task_vars, **variables))
        for i, item in enumerate(source.get('require') or []):
            # Every condition is tried; one that cannot even be rendered after
            # another failed is a consequence of that one, and not reported.
            where = 'require[%d]' % i
            failed_before = list(errors)
            holds = self._render(templar, item.get('that'), where + '.that', origins, errors)
            if failed_before and len(errors) > len(failed_before):
                del errors[len(failed_before):]
                continue
            if holds is not True and len(errors) == len(failed_before):
                message = self._render(templar, item.get('message') or '', where + '.message', origins, errors)
                errors.append(' '.join(str(message).split()) or '%s: %s does not hold' % (where, item.get('that')))
        if errors:
            return dict(result, failed=True, msg='Lab %s: %s' % (lab, '; '.join(errors)), errors=errors)
        machine = {kind: self._render_list(templar, task_vars, variables, items or [], 'machine.' + kind, origins,
                                           errors)
                   for kind, items in (source.get('machine') or {}).items()}
        probes = self._render_list(templar, task_vars, variables, source.get('probes') or [], 'probes', origins,
                                   errors)
        roles = self._render_list(templar, task_vars, variables, source.get('roles') or [], 'roles', origins, errors)
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
    def _render(self, templar, value, where, origins, errors):
        """`value` with every string rendered; records which template made each rendered string."""
        if isinstance(value, str):
            if '{{' not in value and '{%' not in value:
                return value
            try:
                rendered = templar.template(trust_as_template(value))
            except AnsibleError as exc:
                errors.append('%s: %s cannot be rendered: %s' % (where, value.strip(), exc.message))
                return None
            origins[where] = value.strip()
            return rendered
        if isinstance(value, list):
            return [self._render(templar, v, '%s[%d]' % (where, i), origins, errors) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self._render(templar, v, '%s.%s' % (where, k), origins, errors) for k, v in value.items()}
        return value

    def _render_list(self, templar, task_vars, variables, items, where, origins, errors):
        """Render a list of objects; an object with `loop` is repeated once per item of its rendered loop."""
        out = []
        for i, item in enumerate(items):
            source_where = '%s[%d]' % (where, i)
            if not isinstance(item, dict) or 'loop' not in item:
                rendered = self._render(templar, item, '%s[%d]' % (where, len(out)), origins, errors)
                origins.setdefault(('item', '%s[%d]' % (where, len(out))), source_where)
                out.append(rendered)
                continue
            loop = self._render(templar, item['loop'], source_where + '.loop', origins, errors)
            if not isinstance(loop, list):
                errors.append('%s.loop: %s must give a list (gave %s)'
                              % (source_where, item['loop'], type(loop).__name__))
                continue
            body = {k: v for k, v in item.items() if k != 'loop'}
            for n, element in enumerate(loop):
                looped = self._templar.copy_with_new_env(
                    available_variables=dict(task_vars, **dict(variables, item=element, index=n)))
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
