# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""What every kind of lab object shares: the engine's error, records, and the other labs on a machine."""
from __future__ import annotations

import json
import os


class EngineError(Exception):
    """A problem the engine can explain; `errors` are the lines of the explanation."""

    def __init__(self, errors):
        super().__init__('; '.join(errors))
        self.errors = errors


def write_record(path, record):
    """Write a lab's record whole: aside first, then renamed over the old one."""
    with open(path + '.tmp', 'w', encoding='utf-8') as handle:
        json.dump(record, handle, indent=1, sort_keys=True)
    os.replace(path + '.tmp', path)


def other_labs(engine):
    """[(lab, record, path)] of the other labs built on this machine (their records beside this lab's, read with
    engine.read_record: in the current shape)."""
    out = []
    if not os.path.isdir(engine.record_dir):
        return out
    for name in sorted(os.listdir(engine.record_dir)):
        path = os.path.join(engine.record_dir, name)
        if not name.endswith('.json') or name == engine.lab + '.json':
            continue
        try:
            out.append((name[:-5], engine.read_record(path), path))
        except (OSError, EngineError):
            continue  # not a record this checkout can read: that lab's own build or reset says so
    return out


def held_by_other_labs(engine, namespace, name):
    """The other labs' records that hold a setting (namespace, name) on this machine."""
    return [(lab, record, path) for lab, record, path in other_labs(engine)
            if any((e.get('namespace'), e['name']) == (namespace, name) for e in record['sysctls'])]


def ns_words(namespace):
    return 'namespace %s' % namespace if namespace else 'the root namespace'


def strip(item):
    """A declared item as recorded: without the declaration's annotations and `environment`."""
    return {k: v for k, v in item.items() if not k.startswith('__') and k != 'environment'}
