#!/usr/bin/env python3
"""Time the weave lab on the local lab machines and print the figures.

Not a test: it asserts nothing and is not run by scripts/test. It measures:
  bundle (warm)     playbooks/bundle.yml with the bundle in the cache
  bundle (cold)     the same with --cold: the bundle and Go's build cache removed
                    first (Go's module cache is kept: downloads are not the build)
  weave build cold  Weave Net's four executables built from its patched source
                    with an empty Go build cache of their own (GOCACHE in a
                    temporary folder), as on a new computer
  weave build warm  the same again with that cache filled
  converge (new)    playbooks/weave-lab.yml from no lab machines at all, until the
                    run ends (it ends once every node is Ready and Weave is ready on each)
  converge          playbooks/weave-lab.yml on prepared machines after a reset
  no-op             playbooks/weave-lab.yml again on the built lab
  reset             playbooks/reset.yml on the lab
Each of converge, no-op and reset is the median of --runs rounds; converge (new)
runs once (it rebuilds the machines).

Run from the checkout, after scripts/setup, with the local inventory's machines
(it creates them when missing):  .venv/bin/python benchmarks/weave_lab.py [--runs 3] [--cold] [--skip-new]
--cold removes ~/.cache/cka-lab/bundles, ~/.cache/cka-lab/build and Go's build
cache (`go clean -cache`): the next builds of anything in Go start from nothing.
Set CKA_LAB_UPSTREAM_MIRROR as for the playbooks when GitHub is out of reach.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "cka-lab"


def tool(name):
    return shutil.which(name, path=str(ROOT / ".venv" / "bin")) or name


def ansible_playbook(*args):
    started = time.perf_counter()
    result = subprocess.run([tool("ansible-playbook"), *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit("ansible-playbook %s failed:\n%s" % (" ".join(args), result.stdout[-3000:]))
    return elapsed


def control_plane_and_workers():
    out = subprocess.run([tool("ansible-inventory"), "--list"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    inventory = json.loads(out)
    return inventory["kube_control_plane"]["hosts"] + inventory["kube_workers"]["hosts"]


def weave_source():
    """The patched Weave source tree in the cache (the bundle must have been built)."""
    found = sorted(CACHE.glob("src/weave-*/.cka-lab-source"))
    if not found:
        sys.exit("no Weave source in %s: run playbooks/bundle.yml first" % (CACHE / "src"))
    return found[-1].parent


def weave_build(source, gocache, out):
    """Build Weave's executables as the bundle does; return the seconds it took."""
    script = ROOT / "roles" / "k8s_bundle" / "files" / "go_build.py"
    env = dict(os.environ, GOCACHE=str(gocache))
    started = time.perf_counter()
    for cgo, packages in ((["--cgo"], ["./prog/weaver"]),
                          ([], ["./prog/weave-npc", "./prog/kube-utils", "./prog/weaveutil"])):
        subprocess.run([sys.executable, str(script), "--source", str(source), "--out", str(out),
                        "--ldflags", "-s -w -X main.version=2.9.0", "--tags", "osusergo netgo", *cgo, *packages],
                       env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="remove the bundle and Go's build cache first")
    parser.add_argument("--skip-new", action="store_true", help="do not rebuild the lab machines from nothing")
    args = parser.parse_args()

    figures = {}
    if args.cold:
        for path in (CACHE / "bundles", CACHE / "build"):
            shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["go", "clean", "-cache"], check=True)
        figures["bundle (cold)"] = [ansible_playbook("playbooks/bundle.yml")]
    ansible_playbook("playbooks/bundle.yml")
    figures["bundle (warm)"] = [ansible_playbook("playbooks/bundle.yml")]

    with tempfile.TemporaryDirectory(prefix="cka-lab-weave-bench-") as scratch:
        source = weave_source()
        figures["weave build cold"] = [weave_build(source, pathlib.Path(scratch) / "gocache", pathlib.Path(scratch) / "a")]
        figures["weave build warm"] = [weave_build(source, pathlib.Path(scratch) / "gocache", pathlib.Path(scratch) / "b")]

    if not args.skip_new:
        # Only the weave lab's machines go (the role's host list, given as extra JSON).
        ansible_playbook("playbooks/machines.yml", "-e", "lab_machines_state=absent",
                         "-e", json.dumps({"lab_machines_hosts": control_plane_and_workers()}))
        figures["converge (new)"] = [ansible_playbook("playbooks/weave-lab.yml")]
    for name in ("converge", "no-op", "reset"):
        figures[name] = []
    ansible_playbook("playbooks/weave-lab.yml")
    for _ in range(args.runs):
        figures["reset"].append(ansible_playbook("playbooks/reset.yml", "--limit", "weave_lab"))
        figures["converge"].append(ansible_playbook("playbooks/weave-lab.yml"))
        figures["no-op"].append(ansible_playbook("playbooks/weave-lab.yml"))

    print("weave lab, medians of %d runs (seconds):" % args.runs)
    for name, values in figures.items():
        print("  %-17s %7.1f   (%s)" % (name, statistics.median(values), ", ".join("%.1f" % v for v in values)))


if __name__ == "__main__":
    main()
