# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Read a practice test (labs/practice/ID.yml), check it, and render its questions for one machine."""
from __future__ import annotations

import os
import re

import yaml
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

from ansible_collections.cka.lab.plugins.module_utils.lab_practice import schema_errors

_ID = re.compile(r'^[0-9]{3}(-[0-9]{3})?\Z')


# Documented in plugins/modules/lab_practice.py (ansible-doc cka.lab.lab_practice).
class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        practice_dir = args.get('practice_dir')
        known = sorted(f[:-4] for f in os.listdir(practice_dir) if f.endswith('.yml')) \
            if practice_dir and os.path.isdir(practice_dir) else []
        practice_id = str(args.get('practice', ''))
        if not _ID.match(practice_id) or practice_id not in known:
            return dict(result, failed=True, msg="practice: '%s' is not a practice test of %s; allowed: %s"
                        % (practice_id, practice_dir, ', '.join(known) or 'none'))
        path = os.path.join(practice_dir, practice_id + '.yml')
        with open(path, encoding='utf-8') as handle:
            source = yaml.safe_load(handle)
        errors = schema_errors(source) if isinstance(source, dict) else ['(the file): not a mapping']
        if errors:
            return dict(result, failed=True, msg='%s: %s' % (path, '; '.join(errors)), errors=errors)
        variables = dict(task_vars, **(args.get('variables') or {}))
        templar = self._templar.copy_with_new_env(available_variables=variables)
        host = task_vars['inventory_hostname']
        rendered = dict(source, questions=[], ready=[])
        for part in ('ready', 'questions'):
            for i, item in enumerate(source.get(part) or []):
                out = {}
                for key, value in item.items():
                    try:
                        out[key] = self._render(templar, value)
                    except AnsibleError as exc:
                        errors.append('%s[%d].%s: %s cannot be rendered: %s' % (part, i, key, value, exc.message))
                out.setdefault('host', host)
                rendered[part].append(out)
        if errors:
            return dict(result, failed=True, msg='%s: %s' % (path, '; '.join(errors)), errors=errors)
        return dict(result, changed=False, practice=rendered,
                    mine=[q['id'] for q in rendered['questions'] if q['host'] == host],
                    ready=[r for r in rendered['ready'] if r['host'] == host])

    def _render(self, templar, value):
        if isinstance(value, str) and ('{{' in value or '{%' in value):
            return templar.template(trust_as_template(value))
        if isinstance(value, list):
            return [self._render(templar, v) for v in value]
        if isinstance(value, dict):
            return {k: self._render(templar, v) for k, v in value.items()}
        return value
