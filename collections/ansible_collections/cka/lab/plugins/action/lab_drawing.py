# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Draw each stage of a rendered lab declaration as an SVG picture, on the Ansible computer."""
from __future__ import annotations

import os
import re
import tempfile

from ansible.plugins.action import ActionBase

from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import select_stage
from ansible_collections.cka.lab.plugins.module_utils.lab_drawing import to_dot, to_svg

try:
    from graphviz import CalledProcessError, ExecutableNotFound
except ImportError:  # to_dot reports what to install
    class ExecutableNotFound(Exception):
        """Not raised without the graphviz package."""

    class CalledProcessError(Exception):
        """Not raised without the graphviz package."""


def _write(path, content):
    """Write `content` (bytes) to `path` through a temporary file in its directory."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.' + os.path.basename(path) + '.')
    try:
        with os.fdopen(handle, 'wb') as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# Documented in plugins/modules/lab_drawing.py (ansible-doc cka.lab.lab_drawing).


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(('declaration', 'dest', 'node', 'observed', 'stage'))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        declaration = self._task.args.get('declaration')
        dest = self._task.args.get('dest')
        node = self._task.args.get('node')
        if node is not None and (not isinstance(node, str) or not re.match(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', node)):
            return dict(result, failed=True, msg="node: %r is not usable in a file name; allowed: letters, digits, "
                                                 "'.', '_' and '-', like node01" % (node,))
        if not isinstance(declaration, dict) or not isinstance(declaration.get('machine'), dict) \
                or not declaration.get('stages') or not declaration.get('lab'):
            return dict(result, failed=True,
                        msg='declaration: must be the whole rendered declaration of a lab (lab, stages, machine), '
                            'as cka.lab.lab_declaration returns it in `whole`')
        if not isinstance(dest, str) or not dest:
            return dict(result, failed=True, msg='dest: the directory to write the pictures to is required')
        dest = os.path.abspath(os.path.expanduser(dest))
        observed = self._task.args.get('observed')
        stages = declaration['stages']
        if observed is not None:
            stage = self._task.args.get('stage')
            if not isinstance(observed, dict) or stage not in stages or not node:
                return dict(result, failed=True, msg='observed: a picture of a machine now needs observed (what '
                                                     'cka.lab.lab_state state=observed returns), node (the machine) '
                                                     'and stage (one of %s)' % ', '.join(stages))
            stages = [stage]
        files, changed = [], []
        for stage in stages:
            selected = select_stage(declaration, stage)
            if node:
                selected['node'] = node
            try:
                svg = to_svg(to_dot(selected, observed))
            except ExecutableNotFound:  # a RuntimeError: before the next
                return dict(result, failed=True, msg="Graphviz's dot program is needed on the Ansible computer "
                                                     "(apt-get install graphviz, or run scripts/setup)")
            except RuntimeError as exc:
                return dict(result, failed=True, msg=str(exc))
            except CalledProcessError as exc:
                stderr = exc.stderr.decode('utf-8', 'replace') if isinstance(exc.stderr, bytes) else exc.stderr
                return dict(result, failed=True, msg='dot could not draw stage %s of lab %s: %s'
                            % (stage, declaration['lab'], (stderr or str(exc)).strip()))
            path = os.path.join(dest, '%s-%s%s.svg' % (declaration['lab'], node + '-' if node else '',
                                                      'now' if observed is not None else stage))
            files.append(path)
            try:
                with open(path, 'rb') as handle:
                    same = handle.read() == svg
            except FileNotFoundError:
                same = False
            if same:
                continue
            changed.append(path)
            if not self._task.check_mode:
                os.makedirs(dest, exist_ok=True)
                _write(path, svg)
        return dict(result, changed=bool(changed), files=files, changed_files=changed)
