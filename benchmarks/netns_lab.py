#!/usr/bin/env python3
"""Time lesson 202 on one local lab machine and print the figures.

Not a test: it asserts nothing and is not run by scripts/test. It measures, with
the medians of several runs:
  shell     the lesson's commands as a plain shell script (benchmarks/lesson-202.sh)
  floor     Ansible's floor: a one-task no-op playbook (benchmarks/floor.yml)
  converge  playbooks/netns-lab.yml on a machine without the lab
  no-op     playbooks/netns-lab.yml again
  reset     playbooks/reset.yml on a machine with the lab
Targets (from the project's issue): converge within 2 s of the floor, a no-op
re-run within 1 s of it, reset within 2 s.

Run from the checkout, after scripts/setup:  .venv/bin/python benchmarks/netns_lab.py [--runs 5]
"""
import argparse
import functools
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOST = "netns-host"


def ansible_playbook(*args, check=True):
    exe = shutil.which("ansible-playbook", path=str(ROOT / ".venv" / "bin")) or "ansible-playbook"
    started = time.perf_counter()
    result = subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if check and result.returncode != 0:
        sys.exit("ansible-playbook %s failed:\n%s" % (" ".join(args), result.stdout[-3000:]))
    return elapsed, result.stdout


@functools.cache
def machine_address():
    """The lab machine's address, from the inventory."""
    out = subprocess.run(
        [shutil.which("ansible-inventory", path=str(ROOT / ".venv" / "bin")) or "ansible-inventory",
         "--host", HOST], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["ansible_host"]


def on_machine(script):
    """Run a shell script on the lab machine over SSH, as Ansible reaches it."""
    argv = ["ssh", "-i", str(ROOT / ".lab" / "id_ed25519"), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ControlMaster=auto", "-o", "ControlPersist=120s",
            "-o", "ControlPath=/tmp/cka-lab-bench-%C", "root@" + machine_address(), "sh", "-s"]
    started = time.perf_counter()
    subprocess.run(argv, input=script.read_text(), text=True, check=True, capture_output=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    here = ROOT / "benchmarks"

    # The machine must exist and carry no lab before the first measurement
    # (netns-lab.yml creates only this lab's machine when it is missing).
    ansible_playbook("playbooks/netns-lab.yml")
    ansible_playbook("playbooks/reset.yml", "--limit", HOST)
    on_machine(here / "lesson-202-undo.sh")  # also opens the SSH master connection

    times = {name: [] for name in ("shell", "floor", "converge", "no-op", "reset")}
    for _ in range(runs):
        times["shell"].append(on_machine(here / "lesson-202.sh"))
        on_machine(here / "lesson-202-undo.sh")
        times["floor"].append(ansible_playbook("benchmarks/floor.yml")[0])
        elapsed, out = ansible_playbook("playbooks/netns-lab.yml")
        times["converge"].append(elapsed)
        elapsed, out = ansible_playbook("playbooks/netns-lab.yml")
        if "changed=0" not in out.split("PLAY RECAP")[-1].split(HOST)[1].splitlines()[0]:
            sys.exit("the second run changed something:\n" + out[-2000:])
        times["no-op"].append(elapsed)
        times["reset"].append(ansible_playbook("playbooks/reset.yml", "--limit", HOST)[0])

    median = {name: statistics.median(values) for name, values in times.items()}
    floor = median["floor"]
    targets = {"converge": ("floor + 2 s", floor + 2), "no-op": ("floor + 1 s", floor + 1), "reset": ("2 s", 2.0)}
    print("lesson 202 on %s, median of %d runs (cpus: %d, load: %.2f)" % (
        HOST, runs, os.cpu_count(), os.getloadavg()[0]))
    print("%-9s %8s %8s %8s %16s" % ("", "median", "min", "max", "target"))
    for name, values in times.items():
        target = targets.get(name)
        verdict = ""
        if target:
            verdict = "%6.2f s %s" % (target[1], "met" if median[name] <= target[1] else "MISSED")
        print("%-9s %6.2f s %6.2f s %6.2f s   %s" % (name, median[name], min(values), max(values), verdict))
    print("converge - floor: %.2f s; no-op - floor: %.2f s" % (median["converge"] - floor, median["no-op"] - floor))


if __name__ == "__main__":
    main()
