# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Kind `files`: whole files (`content`, `mode`) and symbolic links (`link`) at absolute paths.

What was at a path before the lab wrote it (content, or a link's target) is
recorded first and put back on reset; the directories the lab made for a file go
once empty, deepest first.
"""
from __future__ import annotations

import json
import os
import shlex

from ansible_collections.cka.lab.plugins.module_utils.cni import plugin_types
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import fail, file_lines_missing, json_differences
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import PATH_RULE, item_schema, path_of, usable_path

KEYS = ('files',)
# The record (lab_record.py): this kind's keys, their type and value in a new record (the files written, with what was there
# before), and what it notes of the machine before the lab's first build.
RECORD = {'files': ('list', [])}
NOTED = {'paths': 'object'}

SCHEMA = {'files': dict(item_schema(['path'], {
    'path': {'type': 'string'}, 'content': {'type': 'string'}, 'link': {'type': 'string'},
    'format': {'enum': ['text', 'json']},
    'mode': {'type': 'string', 'pattern': r'^0[0-7]{3}\Z'}}),
    oneOf=[{'required': ['content']}, {'required': ['link']}])}


def stage_errors(machine, context):
    """Paths absolute and normalised, each once; a file whose format is json holds JSON."""
    errors = []
    paths = [item['path'] for item in machine.get('files', [])]
    for i, item in enumerate(machine.get('files', [])):
        where = path_of(item, 'files', i)
        for key in ('path', 'link'):
            if key in item and not usable_path(item[key]):
                errors.append("%s.%s: '%s' is not usable; %s" % (where, key, item[key], PATH_RULE))
        if paths.count(item['path']) > 1 and paths.index(item['path']) != i:
            errors.append("%s.path: '%s' is declared twice%s; each file once"
                          % (where, item['path'], context.where_stage))
        if item.get('format') == 'json' and 'content' in item:
            try:
                json.loads(item['content'])
            except ValueError as exc:
                errors.append("%s.content: is not JSON (%s), as its format says%s" % (where, exc, context.where_stage))
    return errors


def snapshot(engine, every_stage):
    """Which of the paths any stage declares (and their directories) existed: a reset may remove a
    student's file, never the machine's."""
    paths = {}
    for item in every_stage.get('files', []):
        path = item['path']
        while path not in ('/', '') and path not in paths:
            paths[path] = os.path.lexists(path)
            path = os.path.dirname(path)
    return {'paths': paths}


def plan(engine, machine, record):
    """A link to a target this machine does not have is refused before any change."""
    errors = []
    for item in machine.get('files', []):
        if 'link' in item and not os.path.exists(item['link']):
            errors.append("file %s: links to %s, which this machine does not have (see: ls -l %s)"
                          % (item['path'], item['link'], os.path.dirname(item['link'])))
    return None, errors


def withdraw(engine, machine, record, plan):
    """Put back the files the lab wrote and the stage no longer declares."""
    recorded = {f['path']: f for f in record['files']}
    wanted = {f['path'] for f in machine.get('files', [])}
    gone = [entry for path, entry in sorted(recorded.items()) if path not in wanted]
    for entry in gone:
        del recorded[entry['path']]
    restore_files(engine, gone, keep=list(recorded.values()))
    record['files'] = sorted(recorded.values(), key=lambda f: f['path'])


def build(engine, machine, record, plan):
    """Write each declared file or link, noting what was there before first."""
    recorded = {f['path']: f for f in record['files']}
    for item in machine.get('files', []):
        if 'link' in item:
            _build_link(engine, item, recorded, record)
            continue
        path, content = item['path'], item['content']
        mode = int(item.get('mode', '0644'), 8)
        current = None if os.path.islink(path) else read_file(path)
        if path not in recorded:
            recorded[path] = {'path': path, 'before': current, 'dirs': missing_dirs(path),
                              'before_link': os.readlink(path) if os.path.islink(path) else None}
            record['files'] = sorted(recorded.values(), key=lambda f: f['path'])  # noted before it is written
        if current != content or (os.path.exists(path) and (os.stat(path).st_mode & 0o7777) != mode):
            engine.commands.append('write %s (mode %04o)' % (path, mode))
            if not engine.check_mode:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if os.path.islink(path):
                    os.unlink(path)
                with open(path, 'w', encoding='utf-8') as handle:
                    handle.write(content)
                os.chmod(path, mode)
    record['files'] = sorted(recorded.values(), key=lambda f: f['path'])


def remove(engine, record, also):
    restore_files(engine, record['files'])
    _remove_hand_made(engine, record, also)


def read_file(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', errors='surrogateescape')
    except FileNotFoundError:
        return None


def _build_link(engine, item, recorded, record):
    """A symbolic link `path` -> `link` (ln -sfn); what was at `path` before is noted first."""
    path, target = item['path'], item['link']
    current = os.readlink(path) if os.path.islink(path) else None
    if path not in recorded:
        recorded[path] = {'path': path, 'before': None if current is not None else read_file(path),
                          'before_link': current, 'dirs': missing_dirs(path)}
        record['files'] = sorted(recorded.values(), key=lambda f: f['path'])  # noted before it is made
    if current != target:
        engine.commands.append('ln -sfn %s %s' % (target, path))
        if not engine.check_mode:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + '.cka-lab-new'
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, path)


def missing_dirs(path):
    missing = []
    parent = os.path.dirname(path)
    while parent != '/' and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    return missing


def restore_files(engine, entries, keep=()):
    """Put back `entries`, then remove the directories they made, deepest first, once empty.

    A directory made for one file is recorded with that file only, and may hold
    other files of the lab (/etc/netns/NS/hosts and resolv.conf): it is removed
    after all of them. One still holding a file the lab keeps (`keep`) passes
    to that file's entry, to go with it."""
    for entry in entries:
        _restore_file(engine, entry)
    for directory in sorted({d for e in entries for d in e.get('dirs', [])}, key=lambda d: (-d.count('/'), d)):
        if os.path.isdir(directory) and not os.listdir(directory):
            engine.commands.append('rmdir %s' % directory)
            if not engine.check_mode:
                os.rmdir(directory)
            continue
        heir = next((e for e in keep if e['path'].startswith(directory + '/')), None)
        if heir is not None and directory not in heir.setdefault('dirs', []):
            heir['dirs'].append(directory)


def _restore_file(engine, entry):
    """Put one file back as it was; the directories made for it are left to restore_files."""
    path, before, before_link = entry['path'], entry['before'], entry.get('before_link')
    current_link = os.readlink(path) if os.path.islink(path) else None
    current = None if current_link is not None else read_file(path)
    if before_link is not None:
        if current_link != before_link:
            engine.commands.append('ln -sfn %s %s' % (before_link, path))
            if not engine.check_mode:
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(before_link, path)
    elif before is None:
        if os.path.lexists(path):
            engine.commands.append('rm %s' % path)
            if not engine.check_mode:
                os.unlink(path)
    elif current != before:
        engine.commands.append('restore %s' % path)
        if not engine.check_mode:
            if current_link is not None:
                os.unlink(path)
            with open(path, 'w', encoding='utf-8') as handle:
                handle.write(before)


def _remove_hand_made(engine, record, also):
    """Files and links at paths the lab declares that a student made by hand (not written by the lab, not
    on the machine before it), then the directories made for them, deepest first, once empty."""
    before = record['preexisting']['paths']
    if before is None:
        return
    recorded = {entry['path'] for entry in record['files']}
    for item in also.get('files', []):
        path = item['path']
        if path not in recorded and before.get(path) is False and os.path.lexists(path):
            engine.commands.append('rm %s' % path)
            if not engine.check_mode:
                os.unlink(path)
    for directory in sorted((p for p, existed in before.items() if not existed), key=lambda p: -p.count('/')):
        if os.path.isdir(directory) and not os.path.islink(directory) and not os.listdir(directory):
            engine.commands.append('rmdir %s' % directory)
            if not engine.check_mode:
                os.rmdir(directory)


# -- checks: the lesson's objects, as a student looks at them (checks/lab/test_lab.py) --

def check_file(lab, item):
    path = shlex.quote(item["path"])
    if "link" in item:
        # The lesson's binary at the path: linked or copied, it is the same file.
        if lab.run("cmp -s %s %s" % (path, shlex.quote(item["link"]))).rc != 0:
            fail("%s is not %s (link or copy it: `ln -s %s %s`) - see `ls -l %s`"
                 % (item["path"], item["link"], item["link"], item["path"], path))
        return
    result = lab.run("cat %s" % path)
    if result.rc != 0:
        fail("%s is missing - see `ls -l %s`" % (item["path"], path))
    if item.get("format") == "json":
        try:
            found = json.loads(result.stdout)
        except ValueError as exc:
            fail("%s is not JSON (%s) - see `cat %s`" % (item["path"], exc, path))
        wanted = json.loads(item["content"])
        if isinstance(wanted, dict) and "plugins" in wanted and isinstance(found, dict) \
                and found.get("cniVersion") not in (None, wanted.get("cniVersion")):
            # A network configuration list of another cniVersion is the lesson's when every plugin of it
            # supports that version (what each answers to CNI_COMMAND=VERSION).
            refused = cni_version_refused(lab, wanted, str(found["cniVersion"]))
            if refused:
                fail("%s has cniVersion %s, which %s - see `echo '{}' | CNI_COMMAND=VERSION /opt/cni/bin/%s`"
                     % (item["path"], found["cniVersion"], refused, plugin_types(wanted)[0]))
            wanted["cniVersion"] = found["cniVersion"]
        differences = json_differences(wanted, found)
        if differences:
            fail("%s differs from the lesson's: %s - see `cat %s`" % (item["path"], "; ".join(differences[:3]), path))
        return
    missing = file_lines_missing(item["content"], result.stdout)
    if missing:
        fail("%s lacks the line%s %s - see `cat %s`"
             % (item["path"], "s" if len(missing) > 1 else "", "; ".join(repr(m) for m in missing), item["path"]))


def cni_version_refused(lab, conflist, version, bin_dir="/opt/cni/bin"):
    """Why the plugins of `conflist` in `bin_dir` cannot run it at `version`, or None when all support it."""
    refusing = []
    for kind in plugin_types(conflist):
        result = lab.run("echo '{\"cniVersion\":\"1.0.0\"}' | CNI_COMMAND=VERSION %s/%s" % (bin_dir, shlex.quote(kind)))
        try:
            versions = json.loads(result.stdout).get("supportedVersions") or []
        except (ValueError, AttributeError):
            versions = []
        if version not in versions:
            refusing.append("%s (supports %s)" % (kind, ", ".join(versions) or "nothing it says"))
    if refusing:
        return "the plugin%s %s do%s not support" % ("s" if len(refusing) > 1 else "", "; ".join(refusing),
                                                    "" if len(refusing) > 1 else "es")
    return None
