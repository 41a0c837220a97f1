#!/usr/bin/env python3
"""What a binary in the cache reports, and whether the record of that still holds.

Usage::

    fingerprint.py measure BINARY
    fingerprint.py known BINARY RECORD

``measure`` prints one JSON object about BINARY: its ``stat`` (size, inode,
modification and change times; read first, so a binary changed while it is
measured no longer matches), ``sha256``, ``runnable`` (whether this computer can
run the machines' binaries: a Linux amd64 one) and, when it can, ``reported``: the
first line ``BINARY -version`` printed, or why it printed none (its exit status,
or the error that kept it from starting). A BINARY that cannot be read has no
``sha256`` and a ``reported`` that says why. The role writes this object as
BINARY's record once it has checked it.

``known`` prints RECORD when it is such an object and still describes BINARY (the
same ``stat``: a file written, replaced, touched or chmod-ed since has another
change time, which touch cannot set back), else ``{}``. It only reads, and is
cheap enough to run on every play: a record that holds spares running and
hashing the binary.

Exit status: 0, or 2 for bad arguments.
"""
import json
import os
import sys

FIELDS = ("stat", "sha256", "runnable")


def stat_of(binary):
    """Return what changes with ``binary``'s content or identity: size, inode, modification and change times."""
    stat = os.stat(binary)
    return [stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]


# hashlib, platform and subprocess are imported where ``measure`` needs them:
# ``known`` runs on every play, and starts in half the time without them.


def runnable_here():
    """Return whether this computer runs Linux amd64 binaries, as the lab machines do."""
    import platform

    return platform.system() == "Linux" and platform.machine().lower() in ("x86_64", "amd64")


def reported_version(binary):
    """Return the first line ``binary -version`` prints, or why there is none."""
    import subprocess

    try:
        result = subprocess.run([binary, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                timeout=60, check=False)
    except OSError as error:
        return "(it could not run: %s)" % (error.strerror or error)
    except subprocess.SubprocessError as error:
        return "(it could not run: %s)" % error
    lines = result.stdout.decode("utf-8", "replace").splitlines()
    if result.returncode != 0:
        return "(exit status %d%s)" % (result.returncode, ": " + lines[0] if lines else "")
    return lines[0] if lines else ""


def measure(binary):
    """Return the record of ``binary`` as it is now (without ``sha256`` when it cannot be read)."""
    import hashlib

    record = {"runnable": runnable_here()}
    try:
        stat = stat_of(binary)
        digest = hashlib.sha256()
        with open(binary, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        return dict(record, reported="(it could not be read: %s)" % (error.strerror or error))
    record.update(stat=stat, sha256=digest.hexdigest())
    if record["runnable"]:
        record["reported"] = reported_version(binary)
    return record


def known(binary, record_path):
    """Return the record at ``record_path`` if it describes ``binary`` as it is now, else ``{}``."""
    try:
        with open(record_path, encoding="utf-8") as stream:
            record = json.load(stream)
        stat = stat_of(binary)
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or any(field not in record for field in FIELDS) or record["stat"] != stat:
        return {}
    return record


def main(argv):
    if len(argv) == 2 and argv[0] == "measure":
        print(json.dumps(measure(argv[1]), sort_keys=True))
        return 0
    if len(argv) == 3 and argv[0] == "known":
        print(json.dumps(known(argv[1], argv[2]), sort_keys=True))
        return 0
    print("\n\n".join(__doc__.split("\n\n")[1:3]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
