#!/usr/bin/env python3
"""Time every lab of labs/ on its local lab machine and print the figures.

Not a test: it asserts nothing and is not run by scripts/test. For each lab, the
medians of several runs of:
  floor     Ansible's floor: a one-task no-op playbook against the lab's machine
  converge  playbooks/<lab>.yml on a machine without the lab
  no-op     the same playbook again (must change nothing)
  reset     playbooks/reset.yml limited to the lab's machines (cni_lab: its three nodes)
Targets (from the project's issue, stated for lesson 202, applied to all):
converge within 2 s of the floor, a no-op re-run within 1 s of it.

Run from the checkout, after scripts/setup:
  .venv/bin/python benchmarks/labs.py [--runs 3] [--labs netns_lab,routing_lab]
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Every lab of labs/ that the engine builds, in its playbook (playbooks/<lab with dashes>.yml, checked by
# tests/unit/test_lab_files.py); the weave lab has benchmarks/weave_lab.py.
PLAYBOOKS = {path.stem: path.stem.replace("_", "-") + ".yml" for path in sorted((ROOT / "labs").glob("*.yml"))
             if "playbook" not in yaml.safe_load(path.read_text(encoding="utf-8"))}
FLOOR = """---
- name: Measure Ansible's floor
  hosts: {group}
  gather_facts: false
  tasks:
    - name: Do nothing on the machine
      ansible.builtin.command: "true"
      changed_when: false
"""


def ansible_playbook(*args):
    exe = shutil.which("ansible-playbook", path=str(ROOT / ".venv" / "bin")) or "ansible-playbook"
    started = time.perf_counter()
    result = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit("ansible-playbook %s failed:\n%s" % (" ".join(args), result.stdout[-3000:]))
    return elapsed, result.stdout


def recap_changed(out, hosts):
    lines = [line for line in out.split("PLAY RECAP")[-1].splitlines() if line.split(" ")[0] in hosts]
    return any("changed=0" not in line for line in lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--labs", default=",".join(PLAYBOOKS))
    options = parser.parse_args()
    inventory = yaml.safe_load((ROOT / "inventory" / "local" / "hosts.yml").read_text())["all"]["children"]
    print("cpus: %d, load: %.2f, %d runs each" % (os.cpu_count(), os.getloadavg()[0], options.runs))
    print("%-12s %8s %8s %8s %8s %14s %14s" % ("lab", "floor", "converge", "no-op", "reset", "converge-floor",
                                              "no-op-floor"))
    for lab in options.labs.split(","):
        hosts = list(inventory[lab]["hosts"])
        playbook = "playbooks/" + PLAYBOOKS[lab]
        with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=ROOT / "benchmarks", delete=False) as floor:
            floor.write(FLOOR.format(group=lab))
        try:
            ansible_playbook(playbook)  # the machine exists and the SSH master connection is open
            ansible_playbook("playbooks/reset.yml", "--limit", lab)
            times = {name: [] for name in ("floor", "converge", "no-op", "reset")}
            for _ in range(options.runs):
                times["floor"].append(ansible_playbook(floor.name)[0])
                times["converge"].append(ansible_playbook(playbook)[0])
                elapsed, out = ansible_playbook(playbook)
                if recap_changed(out, hosts):
                    sys.exit("%s: the second run changed something:\n%s" % (lab, out[-2000:]))
                times["no-op"].append(elapsed)
                times["reset"].append(ansible_playbook("playbooks/reset.yml", "--limit", lab)[0])
        finally:
            os.unlink(floor.name)
        median = {name: statistics.median(values) for name, values in times.items()}
        print("%-12s %6.2f s %6.2f s %6.2f s %6.2f s %12.2f s %12.2f s" % (
            lab, median["floor"], median["converge"], median["no-op"], median["reset"],
            median["converge"] - median["floor"], median["no-op"] - median["floor"]))


if __name__ == "__main__":
    main()
