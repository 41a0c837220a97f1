# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""roles/coredns_binary's hash of the installed binary on a machine (vars/main.yml, __coredns_binary_hash_py),
run here with this Python on files of a temporary folder: hashed once, then read from its stat-keyed record
while the file keeps its size, inode and times; hashed again once it is written, replaced or touched."""
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import yaml

VARS = pathlib.Path(__file__).resolve().parents[2] / 'roles' / 'coredns_binary' / 'vars' / 'main.yml'
SCRIPT = yaml.safe_load(VARS.read_text())['__coredns_binary_hash_py']


def hashed(binary, record, write=True):
    return subprocess.run([sys.executable, '-c', SCRIPT, str(binary), str(record), '1' if write else '0'],
                          capture_output=True, text=True, check=True).stdout.split()


def test_the_hash_is_read_from_the_record_while_the_file_is_unchanged(tmp_path):
    binary, record = tmp_path / 'coredns', tmp_path / 'lib' / 'coredns-binary.json'
    binary.write_bytes(b'CoreDNS' * 1000)
    os.chmod(binary, 0o755)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    owner = [str(os.getuid()), str(os.getgid()), '0755']

    assert hashed(binary, record) == [digest] + owner
    assert json.loads(record.read_text())['sha256'] == digest
    # The record is what is read while the stat holds: a record saying another hash is believed.
    known = json.loads(record.read_text())
    record.write_text(json.dumps(dict(known, sha256='f' * 64)))
    assert hashed(binary, record) == ['f' * 64] + owner


def test_a_file_written_or_touched_since_is_hashed_again(tmp_path):
    binary, record = tmp_path / 'coredns', tmp_path / 'coredns-binary.json'
    binary.write_bytes(b'one')
    hashed(binary, record)
    record.write_text(json.dumps(dict(json.loads(record.read_text()), sha256='f' * 64)))
    stat = binary.stat()
    with open(binary, 'r+b') as stream:  # same size, same inode; times set back: the change time moves on
        stream.write(b'two')
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hashed(binary, record)[0] == hashlib.sha256(b'two').hexdigest()


def test_check_mode_writes_no_record_and_a_missing_file_is_a_dash(tmp_path):
    binary, record = tmp_path / 'coredns', tmp_path / 'coredns-binary.json'
    binary.write_bytes(b'x')
    assert hashed(binary, record, write=False)[0] == hashlib.sha256(b'x').hexdigest()
    assert not record.exists()
    assert hashed(tmp_path / 'missing', record) == ['-']
    (tmp_path / 'dir').mkdir()
    assert hashed(tmp_path / 'dir', record)[0] == '-'
