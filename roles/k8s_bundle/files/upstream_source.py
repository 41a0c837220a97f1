#!/usr/bin/env python3
"""Fetch an upstream source tree pinned by git tree id, from its home or from a mirror.

Usage::

    upstream_source.py --name rajch-weave-v2.9.0 --url https://github.com/rajch/weave \\
        --commit 8397222003c0d8ca2bebf0ac5c64448a4796dd18 --ref v2.9.0 \\
        --tree 4971182d323950f14c1bef135c7264beea8e0841 --dest DIR \\
        [--mirror FOLDER_OR_URL] [--mirror-setting NAME] [--patch FILE.patch ...]

For sources that no package registry serves (Weave Net's module is refused by the
Go module proxy). The tree id, not the commit, is what is trusted: it is git's
hash of every file's path and content, so equal ids mean equal sources whatever
history a copy carries.

Where the source comes from:

* without ``--mirror``: ``git fetch --depth 1 URL COMMIT`` (GitHub and most git
  servers serve a commit by id);
* with ``--mirror``: ``NAME.bundle`` in that folder (or ``file://`` URL), or
  fetched from that http(s) URL, is a git bundle (``git bundle create``) holding
  ``REF`` (a tag or a branch); a classroom without internet keeps such a folder.

Then the commit's tree must be ``--tree``; each ``--patch`` is applied with
``git apply`` (the project's own changes, kept as files beside this script);
the result is written to ``DEST`` with a ``.cka-lab-source`` file naming the
tree, the origin and the patches. Work happens in ``DEST.partial``, renamed
only when complete: nothing half-fetched looks finished. A ``DEST`` that exists
is left alone (its name is keyed by the tree and the patches).

Exit status: 0 done; 2 refused (the source cannot be reached, its tree differs,
a patch does not apply, bad arguments), with a message that names the URL or
mirror, the setting to change, and what was expected.
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

OBJECT_ID_RE = re.compile(r"^[0-9a-f]{40}$")


class SourceError(Exception):
    """A source that cannot be used; the message says why and what to do."""


def git(*args, cwd=None):
    """Run git; return its standard output, or raise SourceError with its message."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SourceError((result.stderr or result.stdout).strip() or "git %s failed" % args[0])
    return result.stdout.strip()


def mirror_bundle(mirror, name, workdir):
    """Return the path of ``NAME.bundle`` from ``mirror`` (a folder, file:// or http(s) URL)."""
    parsed = urllib.parse.urlparse(mirror)
    if parsed.scheme in ("http", "https"):
        url = mirror.rstrip("/") + "/" + name + ".bundle"
        target = pathlib.Path(workdir) / (name + ".bundle")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as err:
            raise SourceError("cannot fetch %s: %s" % (url, getattr(err, "reason", err))) from err
        return target
    folder = pathlib.Path(parsed.path if parsed.scheme == "file" else mirror)
    path = folder / (name + ".bundle")
    if not path.is_file():
        raise SourceError("%s holds no %s.bundle" % (folder, name))
    return path


def fetch(args, repo):
    """Fetch the pinned commit into ``repo``; return (commit, a description of where it came from)."""
    git("init", "--quiet", str(repo))
    if args.mirror:
        bundle = mirror_bundle(args.mirror, args.name, repo.parent)
        git("fetch", "--quiet", "--no-tags", str(bundle), args.ref, cwd=repo)
        return git("rev-parse", "FETCH_HEAD^{commit}", cwd=repo), "%s (%s)" % (bundle, args.ref)
    git("fetch", "--quiet", "--depth", "1", "--no-tags", args.url, args.commit, cwd=repo)
    return git("rev-parse", "FETCH_HEAD^{commit}", cwd=repo), "%s (commit %s)" % (args.url, args.commit)


def get_source(args):
    dest = pathlib.Path(args.dest)
    if (dest / ".cka-lab-source").is_file():
        print("upstream_source: %s already holds tree %s" % (dest, args.tree))
        return
    setting = args.mirror_setting
    shutil.rmtree(dest, ignore_errors=True)  # no stamp: not ours, or not complete
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=dest.name + ".", suffix=".partial", dir=dest.parent) as work:
        repo = pathlib.Path(work) / "tree"
        try:
            commit, origin = fetch(args, repo)
        except SourceError as err:
            if args.mirror:
                raise SourceError("%s=%s: cannot read %s.bundle (ref %s) from it: %s; allowed: a folder or http(s) URL "
                                  "holding that git bundle" % (setting, args.mirror, args.name, args.ref, err)) from err
            raise SourceError("cannot fetch %s (commit %s): %s; without internet, set %s to a folder or http(s) URL "
                              "holding %s.bundle (a git bundle of %s)" % (args.url, args.commit, err, setting,
                                                                         args.name, args.ref)) from err
        tree = git("rev-parse", commit + "^{tree}", cwd=repo)
        if tree != args.tree:
            where = "%s=%s" % (setting, args.mirror) if args.mirror else args.url
            raise SourceError("%s: %s has tree %s, expected tree %s (%s %s); the source differs from the one this "
                              "project pins and is refused" % (where, origin, tree, args.tree, args.name, args.ref))
        git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=repo)
        for patch in args.patch:
            try:
                git("apply", "--whitespace=nowarn", str(pathlib.Path(patch).resolve()), cwd=repo)
            except SourceError as err:
                raise SourceError("the patch %s does not apply to tree %s: %s" % (patch, tree, err)) from err
        shutil.rmtree(repo / ".git")
        (repo / ".cka-lab-source").write_text(
            "name: %s\ntree: %s\norigin: %s\npatches: %s\n"
            % (args.name, tree, origin, ", ".join(pathlib.Path(p).name for p in args.patch) or "none"))
        repo.rename(dest)
    print("upstream_source: %s: tree %s from %s%s" % (dest, args.tree, origin,
                                                      ", patched" if args.patch else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="the source's name on a mirror: NAME.bundle")
    parser.add_argument("--url", required=True, help="the upstream git repository")
    parser.add_argument("--commit", required=True, help="the upstream commit (40 hex digits)")
    parser.add_argument("--ref", required=True, help="the tag or branch a mirror's bundle holds")
    parser.add_argument("--tree", required=True, help="the git tree id the source must have (40 hex digits)")
    parser.add_argument("--dest", required=True, help="directory to write the source tree to")
    parser.add_argument("--mirror", default="", help="folder or URL of a mirror of upstream sources")
    parser.add_argument("--mirror-setting", default="CKA_LAB_UPSTREAM_MIRROR",
                        help="the setting that names the mirror, for messages")
    parser.add_argument("--patch", action="append", default=[], help="a patch to apply (repeatable)")
    args = parser.parse_args(argv)
    try:
        for option in ("commit", "tree"):
            if not OBJECT_ID_RE.match(getattr(args, option)):
                raise SourceError("--%s %r is not a git object id (40 lowercase hex digits)" % (option, getattr(args, option)))
        for patch in args.patch:
            if not pathlib.Path(patch).is_file():
                raise SourceError("--patch %s: no such file" % patch)
        get_source(args)
    except SourceError as err:
        print("upstream_source: %s" % err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
