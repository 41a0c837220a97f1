# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""cka.lab.gc_freeze (plugins/callback/gc_freeze.py): a process forked after the plugin is loaded starts with
everything it inherited frozen (out of its garbage collections); the parent freezes once, when the playbook
starts."""

import gc
import os

from ansible_collections.cka.lab.plugins.callback.gc_freeze import CallbackModule


def test_a_forked_worker_starts_with_what_it_inherits_frozen():
    CallbackModule()
    gc.unfreeze()
    inherited = [object() for _ in range(100)]  # alive across the fork
    pid = os.fork()
    if pid == 0:  # the worker: exits 0 only when the objects it inherited are frozen
        os._exit(0 if gc.get_freeze_count() >= 100 else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0, len(inherited)
    assert gc.get_freeze_count() == 0  # the parent's own collections are left as they were


def test_the_playbooks_start_freezes_what_is_loaded():
    callback = CallbackModule()
    gc.unfreeze()
    try:
        callback.v2_playbook_on_start(None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
