#!/usr/bin/env python3
"""Time the weave lab on the local lab machines and print the figures.

Not a test: it asserts nothing and is not run by scripts/test. It measures:
  bundle (warm)  playbooks/bundle.yml with the bundle in the cache
  bundle (cold)  the same with --cold: the bundle and Go's build cache removed
                 first (Go's module cache is kept: downloads are not the build)
  converge       playbooks/weave-lab-no-cni.yml on prepared nodes without a cluster
  registered     seconds from the start of that converge until every node is
                 registered and its kubelet reports (Ready needs a CNI, which this
                 machine cannot build: see docs/weave-lab.md)
  no-op          playbooks/weave-lab-no-cni.yml again
  reset          playbooks/reset.yml on the cluster (kubeadm reset and the rest)
Each of converge, no-op and reset is the median of --runs rounds.

Run from the checkout, after scripts/setup, with the local inventory's machines
(it creates them when missing):  .venv/bin/python benchmarks/weave_lab.py [--runs 3] [--cold]
--cold removes ~/.cache/cka-lab/bundles, ~/.cache/cka-lab/build and Go's build
cache (`go clean -cache`): the next builds of anything in Go start from nothing.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import threading
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


def control_plane():
    out = subprocess.run([tool("ansible-inventory"), "--list"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    inventory = json.loads(out)
    name = inventory["kube_control_plane"]["hosts"][0]
    return inventory["_meta"]["hostvars"][name]["ansible_host"], len(
        inventory["kube_control_plane"]["hosts"] + inventory["kube_workers"]["hosts"])


def registered_nodes(address):
    """Nodes whose kubelet has posted a Ready condition (True or False), or 0 without an API server."""
    argv = ["ssh", "-i", str(ROOT / ".lab" / "id_ed25519"), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
            "root@" + address, "kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "nodes",
            "--output", "json", "--request-timeout", "3s"]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        return 0
    nodes = json.loads(result.stdout)["items"]
    return sum(1 for node in nodes
               if any(c["type"] == "Ready" for c in node.get("status", {}).get("conditions", [])))


def converge_and_watch(address, count):
    """Run the converge; return (its seconds, seconds until every node is registered)."""
    started = time.perf_counter()
    seen = {}

    def watch():
        while "at" not in seen and time.perf_counter() - started < 900:
            if registered_nodes(address) == count:
                seen["at"] = time.perf_counter() - started
            time.sleep(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    elapsed = ansible_playbook("playbooks/weave-lab-no-cni.yml")
    watcher.join()
    return elapsed, seen.get("at", float("nan"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="remove the bundle and Go's build cache first")
    args = parser.parse_args()

    figures = {}
    if args.cold:
        for path in (CACHE / "bundles", CACHE / "build"):
            shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["go", "clean", "-cache"], check=True)
        figures["bundle (cold)"] = [ansible_playbook("playbooks/bundle.yml")]
    ansible_playbook("playbooks/bundle.yml")
    figures["bundle (warm)"] = [ansible_playbook("playbooks/bundle.yml")]

    address, count = control_plane()
    # Prepared nodes without a cluster: what each round starts from.
    ansible_playbook("playbooks/weave-lab-nodes.yml", "-e", "weave_lab_install_cni=false")
    ansible_playbook("playbooks/reset.yml", "--limit", "weave_lab")
    for name in ("converge", "registered", "no-op", "reset"):
        figures[name] = []
    for _ in range(args.runs):
        elapsed, registered = converge_and_watch(address, count)
        figures["converge"].append(elapsed)
        figures["registered"].append(registered)
        figures["no-op"].append(ansible_playbook("playbooks/weave-lab-no-cni.yml"))
        figures["reset"].append(ansible_playbook("playbooks/reset.yml", "--limit", "weave_lab"))

    print("weave lab, %d nodes, medians of %d runs (seconds):" % (count, args.runs))
    for name, values in figures.items():
        print("  %-14s %7.1f   (%s)" % (name, statistics.median(values), ", ".join("%.1f" % v for v in values)))


if __name__ == "__main__":
    main()
