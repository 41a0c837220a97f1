# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Keep Python's garbage collector off the objects Ansible's worker processes inherit."""
from __future__ import annotations

DOCUMENTATION = r"""
name: gc_freeze
type: aggregate
short_description: Keeps Python's garbage collector off the objects each worker process inherits
description:
  - Ansible runs every task of every host in a worker process forked from C(ansible-playbook). A worker inherits
    the whole heap of its parent (the loaded plugins, the inventory, the parsed playbooks), and each full garbage
    collection in the worker walks all of it, although the worker only runs one task and ends. Building a module's
    payload (the abstract syntax tree of each of its files) triggers such collections.
  - This callback freezes the collector's view in each worker right after the fork (C(gc.freeze()) in an
    C(os.register_at_fork) hook, the use CPython's documentation of C(gc.freeze) gives for processes that fork
    without exec), and once in C(ansible-playbook) itself when the playbook starts, after the playbooks, roles and
    inventory are loaded. Objects made later are collected as always.
  - "Measured on this project's no-op re-run of the lessons 200-201 lab (2 cores, ansible-core 2.19): the worker
    that builds cka.lab.lab_state's payload spent 110 ms of its 220 ms of parsing in two full collections (93 ms);
    with this callback, one of 19 ms."
  - It prints nothing and changes no result. Enabled in the project's C(ansible.cfg) (C(callbacks_enabled)).
author:
  - CKA networking labs maintainers
requirements:
  - Python 3.7 or later (gc.freeze, os.register_at_fork)
"""

import gc
import os

from ansible.plugins.callback import CallbackBase

_registered = False


def _register():
    """The hook, once per process, whatever the number of times the plugin is loaded."""
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=gc.freeze)
        _registered = True


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'cka.lab.gc_freeze'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _register()

    def v2_playbook_on_start(self, playbook):
        gc.freeze()
