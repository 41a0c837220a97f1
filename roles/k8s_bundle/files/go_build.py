#!/usr/bin/env python3
"""Build commands from a published Go module, through a wrapper module of our own.

Usage::

    go_build.py --module k8s.io/kubernetes --version v1.34.4 --work DIR --out DIR \\
        [--ldflags FLAGS] [--tags TAGS] [--cgo] [--patch FILE.py] [--stamp FILE] PACKAGE [PACKAGE ...]
    go_build.py --source DIR --out DIR [--ldflags FLAGS] [--tags TAGS] [--cgo] [--stamp FILE] PACKAGE [PACKAGE ...]

Builds each main PACKAGE (``k8s.io/kubernetes/cmd/kubeadm``) of MODULE at VERSION
into ``--out``, one executable per package, named as the go command names it (the
last path element, or the one before a ``/vN`` suffix) or NAME for ``PACKAGE=NAME``,
inside a wrapper module written to ``--work``:

* ``go.mod`` requires MODULE at VERSION and copies the ``go`` and ``godebug``
  lines of MODULE's own go.mod (only the main module's godebug applies).
* For ``k8s.io/kubernetes``, which requires its staging modules (k8s.io/api,
  k8s.io/client-go, ...) at v0.0.0 and replaces them with ``./staging/`` paths that
  the published zip does not hold (kubernetes/kubernetes#79384), every module the
  release's go.mod replaces with a ``./staging/`` path is replaced with its
  published ``v0.MINOR.PATCH``. The list is read from that go.mod, never typed.
* ``--patch FILE.py`` vendors the dependencies (``go mod vendor``) and runs FILE.py
  with the vendor directory as its argument before building: the way the bundle
  makes a small, named change to a dependency's source without committing it.
* ``--source DIR`` builds from a source tree that carries its dependencies in
  ``vendor/`` (``-mod=vendor``, nothing downloaded), for modules the proxy does
  not serve (Weave Net, fetched by upstream_source.py); PACKAGE is then relative
  to DIR (``./prog/weaver``).
* Builds run with ``GOTOOLCHAIN=local``, ``-trimpath`` and ``CGO_ENABLED=0`` unless
  ``--cgo``. Executables are written under a temporary name and renamed when
  all are built, so an interrupted build leaves nothing that looks finished;
  ``--stamp FILE`` is written last, with the module and version, for ``creates:``.

Progress goes to standard output, one line per step. Exit status: 0 built;
2 bad arguments or a module the proxy does not serve (the message says which);
1 a failed build (the go command's output is shown).
Needs ``go`` on PATH and the Go module proxy (or a filled GOMODCACHE).
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

STAGING_RE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/src/", re.M)
DIRECTIVE_RE = re.compile(r"^(go|godebug)\s+\S.*$", re.M)
K8S_VERSION_RE = re.compile(r"^v1\.(\d+)\.(\d+)$")


class BuildError(Exception):
    """A build that cannot go on; ``status`` is the exit status to use."""

    def __init__(self, message, status=1):
        super().__init__(message)
        self.status = status


def staging_replaces(version, gomod_text):
    """Return ``{module: version}`` for the staging modules of k8s.io/kubernetes ``version``.

    ``version`` is ``v1.MINOR.PATCH``; each staging module is published as
    ``v0.MINOR.PATCH``. Raises BuildError when the version is malformed or the
    go.mod replaces nothing with ``./staging/``.
    """
    match = K8S_VERSION_RE.match(version)
    if not match:
        raise BuildError(f"k8s.io/kubernetes version {version!r} is not of the form v1.MINOR.PATCH", 2)
    modules = sorted(set(STAGING_RE.findall(gomod_text)))
    if not modules:
        raise BuildError(f"the go.mod of k8s.io/kubernetes {version} replaces no module with ./staging/", 2)
    return {module: "v0.%s.%s" % match.groups() for module in modules}


def render_gomod(module, version, gomod_text):
    """Return the wrapper's go.mod for ``module`` at ``version``, whose own go.mod is ``gomod_text``."""
    directives = [m.group(0) for m in DIRECTIVE_RE.finditer(gomod_text)]
    replaces = staging_replaces(version, gomod_text) if module == "k8s.io/kubernetes" else {}
    lines = [f"// Written by go_build.py: a wrapper that builds {module} {version}.",
             "module cka.lab/go-build", "", *directives, "", f"require {module} {version}", ""]
    if replaces:
        lines += ["replace (", *[f"\t{m} => {m} {v}" for m, v in replaces.items()], ")", ""]
    return "\n".join(lines)


def render_tools(packages):
    """Return a Go file that imports ``packages``, so that ``go mod tidy`` keeps what they need."""
    imports = "".join(f'\t_ "{p}"\n' for p in packages)
    return f"//go:build tools\n\n// Package tools names the commands this module builds.\npackage tools\n\nimport (\n{imports})\n"


def split_package(spec):
    """Return ``(package, executable name)`` for ``PACKAGE`` or ``PACKAGE=NAME``."""
    package, _, name = spec.partition("=")
    if not name:
        parts = package.split("/")
        name = parts[-2] if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]) else parts[-1]
    return package, name


def go_default_name(package):
    """Return the name ``go build -o DIR/`` gives the executable of ``package``."""
    return split_package(package)[1]


def run(argv, cwd, env, what):
    """Run ``argv``; print ``what`` and its duration; raise BuildError with the output on failure."""
    print(f"go_build: {what} ...", flush=True)
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        output = result.stdout.strip()
        status = 2 if ("403 Forbidden" in output or "not available" in output or "unknown revision" in output) else 1
        raise BuildError(f"{what} failed ({' '.join(argv[:3])} ...):\n{output[-6000:]}", status)
    print(f"go_build: {what}: done in {time.monotonic() - started:.0f} s", flush=True)
    return result.stdout


def prepare_module(args, env):
    """Write the wrapper module of ``args.module`` at ``args.version`` and resolve (or vendor) its dependencies."""
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(run(["go", "mod", "download", "-json", f"{args.module}@{args.version}"], work, env,
                          f"download {args.module} {args.version} from the module proxy"))
    if "Error" in info:
        raise BuildError(f"{args.module} {args.version}: {info['Error']}", 2)
    gomod = render_gomod(args.module, args.version, pathlib.Path(info["GoMod"]).read_text())
    (work / "go.mod").write_text(gomod)
    (work / "go.sum").unlink(missing_ok=True)
    targets = [split_package(spec) for spec in args.packages]
    packages = [package for package, _ in targets]
    (work / "tools.go").write_text(render_tools(packages))
    run(["go", "mod", "tidy"], work, env, "resolve the dependencies (go mod tidy)")
    if args.patch:
        shutil.rmtree(work / "vendor", ignore_errors=True)
        run(["go", "mod", "vendor"], work, env, "vendor the dependencies to patch them")
        run([sys.executable, args.patch, str(work / "vendor")], work, env, f"apply {pathlib.Path(args.patch).name}")
        env["GOFLAGS"] = "-mod=vendor"
    return work, targets, packages


def prepare_source(args, env):
    """Check that ``args.source`` is a module tree with its dependencies vendored."""
    source = pathlib.Path(args.source)
    for needed in ("go.mod", "vendor/modules.txt"):
        if not (source / needed).is_file():
            raise BuildError(f"--source {source}: no {needed} (a source tree with its dependencies in vendor/)", 2)
    env["GOFLAGS"] = "-mod=vendor"
    targets = [split_package(spec) for spec in args.packages]
    return source, targets, [package for package, _ in targets]


def build(args):
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", CGO_ENABLED="1" if args.cgo else "0")
    out = pathlib.Path(args.out)
    work, targets, packages = prepare_source(args, env) if args.source else prepare_module(args, env)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    names = ", ".join(name for _, name in targets)
    tags = ["-tags", args.tags] if args.tags else []
    run(["go", "build", "-trimpath", *tags, "-ldflags", args.ldflags, "-o", str(staging) + "/", *packages], work, env,
        f"compile {names} (cold: minutes to tens of minutes)")
    for package, name in targets:
        (staging / go_default_name(package)).replace(out / name)
    shutil.rmtree(staging)
    if args.stamp:
        pathlib.Path(args.stamp).write_text(f"{args.source}\n" if args.source else f"{args.module} {args.version}\n")
    print(f"go_build: built {names} in {out}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", help="the published module to build from")
    parser.add_argument("--version", help="the module's version")
    parser.add_argument("--work", help="directory of the wrapper module")
    parser.add_argument("--source", help="a source tree with vendor/, instead of --module, --version and --work")
    parser.add_argument("--out", required=True, help="directory the executables go to")
    parser.add_argument("--ldflags", default="-s -w")
    parser.add_argument("--tags", default="", help="build tags, comma- or space-separated")
    parser.add_argument("--cgo", action="store_true", help="build with cgo (CGO_ENABLED=1)")
    parser.add_argument("--patch", help="Python script run on the vendor directory before building")
    parser.add_argument("--stamp", help="file written once everything is built")
    parser.add_argument("packages", nargs="+", metavar="PACKAGE")
    args = parser.parse_args(argv)
    if args.source and (args.module or args.version or args.work or args.patch):
        parser.error("--source builds a vendored tree: it takes no --module, --version, --work or --patch")
    if not args.source and not (args.module and args.version and args.work):
        parser.error("--module, --version and --work are required without --source")
    try:
        build(args)
    except BuildError as err:
        print(f"go_build: {err}", file=sys.stderr)
        return err.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
