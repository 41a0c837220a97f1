# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Test-only: cka.lab.lab_declaration with every template rendered by Ansible's templar (no direct()).

The reference tests/roles/test_declaration_rendering.py compares the real action with; Ansible loads it
from action_plugins/ beside the test's playbook."""
from __future__ import annotations

from ansible_collections.cka.lab.plugins.action.lab_declaration import ActionModule as LabDeclaration


class ActionModule(LabDeclaration):
    DIRECT_REFERENCES = False
