# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The record of a checked CoreDNS binary (roles/coredns_binary/files/fingerprint.py).

A fake binary (a shell script printing a version line) stands for CoreDNS: the
record must hold while the file is untouched and stop holding as soon as it is
written, replaced or touched, even with its size and modification time put back.
"""
import importlib.util
import json
import os
import pathlib
import platform
import time

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "roles" / "coredns_binary" / "files" / "fingerprint.py"
spec = importlib.util.spec_from_file_location("fingerprint", SCRIPT)
fingerprint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fingerprint)

RUNS_HERE = platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64")


def fake_binary(path, first_line="CoreDNS-1.12.1", status=0):
    path.write_text("#!/bin/sh\necho '%s'\necho 'linux/amd64, go1.26.8, '\nexit %d\n" % (first_line, status))
    path.chmod(0o755)
    return path


def recorded(tmp_path, binary):
    record = tmp_path / ".coredns-checked.json"
    record.write_text(json.dumps(fingerprint.measure(str(binary))))
    return record


@pytest.mark.skipif(not RUNS_HERE, reason="the binary is run only on a Linux amd64 computer")
def test_measure_reports_the_first_line_and_the_sha256(tmp_path):
    binary = fake_binary(tmp_path / "coredns")
    record = fingerprint.measure(str(binary))
    assert record["reported"] == "CoreDNS-1.12.1"
    assert record["runnable"] is True
    assert len(record["sha256"]) == 64
    assert record["stat"][0] == binary.stat().st_size


@pytest.mark.skipif(not RUNS_HERE, reason="the binary is run only on a Linux amd64 computer")
@pytest.mark.parametrize("content, reported", [
    (b"\x00garbage", "(it could not run: Exec format error)"),
    (None, "(exit status 3: CoreDNS-1.12.1)"),
])
def test_measure_says_why_a_binary_reports_no_version(tmp_path, content, reported):
    binary = fake_binary(tmp_path / "coredns", status=3)
    if content is not None:
        binary.write_bytes(content)
    assert fingerprint.measure(str(binary))["reported"] == reported


def test_measure_of_a_missing_binary_has_no_sha256(tmp_path):
    record = fingerprint.measure(str(tmp_path / "coredns"))
    assert "sha256" not in record
    assert record["reported"] == "(it could not be read: No such file or directory)"


def test_a_record_holds_while_the_binary_is_untouched(tmp_path):
    binary = fake_binary(tmp_path / "coredns")
    record = recorded(tmp_path, binary)
    assert fingerprint.known(str(binary), str(record)) == json.loads(record.read_text())


@pytest.mark.parametrize("change", ["rewrite", "replace", "touch", "chmod"])
def test_a_record_no_longer_holds_once_the_binary_changed(tmp_path, change):
    binary = fake_binary(tmp_path / "coredns")
    record = recorded(tmp_path, binary)
    before = binary.stat()
    time.sleep(0.02)  # past the kernel's clock tick, where file times are coarse (before Linux 6.13)
    if change == "rewrite":  # the same size, the modification time put back: only the change time tells
        binary.write_text(binary.read_text().replace("1.12.1", "1.11.0"))
        os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif change == "replace":
        fake_binary(tmp_path / "other").replace(binary)
    elif change == "touch":
        os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    else:
        binary.chmod(0o700)
    assert fingerprint.known(str(binary), str(record)) == {}


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"sha256": "x"}'])
def test_an_unreadable_or_partial_record_does_not_hold(tmp_path, text):
    binary = fake_binary(tmp_path / "coredns")
    record = tmp_path / ".coredns-checked.json"
    record.write_text(text)
    assert fingerprint.known(str(binary), str(record)) == {}


def test_no_record_or_no_binary_is_known_as_nothing(tmp_path):
    binary = fake_binary(tmp_path / "coredns")
    assert fingerprint.known(str(binary), str(tmp_path / "missing.json")) == {}
    record = recorded(tmp_path, binary)
    binary.unlink()
    assert fingerprint.known(str(binary), str(record)) == {}


def test_the_command_line(tmp_path, capsys):
    binary = fake_binary(tmp_path / "coredns")
    assert fingerprint.main(["known", str(binary), str(tmp_path / "none.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {}
    assert fingerprint.main(["bogus"]) == 2
    assert "fingerprint.py measure BINARY" in capsys.readouterr().err
