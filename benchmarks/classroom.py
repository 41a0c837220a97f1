#!/usr/bin/env python3
"""Time a classroom of local lab machines: build, grade and reset a whole room, and what a machine costs.

Not a test: it asserts nothing and is not run by scripts/test. For each room size
(students of the inventory plugin cka.lab.classroom, inventory/rehearsal's
format, written to a temporary folder), with machines created first (timed
apart), the median of `--runs` runs of:
  build   playbooks/<lab>.yml on every student's machines (the lab absent before)
  grade   playbooks/check.yml -e check_labs=<lab>
  reset   playbooks/reset.yml
then each machine's memory (`podman stats`, after the build), the
inotify instances the room holds, and the CPU seconds the whole computer spent
per machine on each step (Ansible, SSH and the machines share its cores: a room
cannot take less than that times its machines over the cores), with, in brackets,
the part spent inside the machines (their cgroups: the module's Python, ip,
iptables, systemd). The target (from the issue): a room of 30
machines in at most 4 times the time of one. Machines are removed at the end.

Run from the checkout, after scripts/setup, as root:
  .venv/bin/python benchmarks/classroom.py --lab netns_lab --students 1,10,18
  .venv/bin/python benchmarks/classroom.py --lab cni_lab --students 1,3 --runs 1
  .venv/bin/python benchmarks/classroom.py --lab weave_lab --students 1,2 --runs 1   # kubeadm clusters
  ANSIBLE_FORKS=5 .venv/bin/python benchmarks/classroom.py --students 10     # a setting's effect
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROOM = """---
plugin: cka.lab.classroom
students: {students}
labs: [{lab}]
template: {template}
labs_dir: {labs}
first_address: 150
"""


def cpu_busy():
    """Seconds of CPU the whole computer has spent busy since boot (/proc/stat: all but idle and iowait):
    Ansible, its SSH connections and every lab machine's processes alike."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(n) for n in handle.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cgroup_cpu_files(names):
    """The file of each machine's cgroup that counts its CPU time: cpu.stat (cgroup v2) or cpuacct.usage (v1)."""
    paths = subprocess.run(["podman", "inspect", "--format", "{{.State.CgroupPath}}", *names],
                           capture_output=True, text=True, check=True).stdout.split()
    found = []
    for path in paths:
        v2 = "/sys/fs/cgroup%s/cpu.stat" % path
        found.append(v2 if os.path.exists(v2) else "/sys/fs/cgroup/cpuacct%s/cpuacct.usage" % path)
    return found


def machines_cpu(files):
    """CPU seconds the machines of `files` (cgroup_cpu_files()) have spent since they started."""
    total = 0.0
    for path in files:
        with open(path, encoding="ascii") as handle:
            text = handle.read()
        total += (int(re.search(r"usage_usec (\d+)", text).group(1)) / 1e6 if path.endswith("cpu.stat")
                  else int(text) / 1e9)
    return total


def playbook(inventory, name, *args, cpu=None, machines=()):
    """Wall seconds of one ansible-playbook run; with `cpu` (a list), the computer's busy CPU seconds appended,
    with the part of the machines whose cgroup files (cgroup_cpu_files()) are `machines`: (total, machines)."""
    exe = shutil.which("ansible-playbook", path=str(ROOT / ".venv" / "bin")) or "ansible-playbook"
    busy, inside = cpu_busy(), machines_cpu(machines)
    started = time.perf_counter()
    result = subprocess.run([exe, "-i", str(inventory), "playbooks/" + name, *args], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append((cpu_busy() - busy, machines_cpu(machines) - inside))
    if result.returncode != 0:
        sys.exit("ansible-playbook %s %s failed:\n%s" % (name, " ".join(args), result.stdout[-3000:]))
    return elapsed


def machine_memory(names):
    """Each machine's memory in MiB, as `podman stats` reports it (its cgroup's usage)."""
    stats = json.loads(subprocess.run(["podman", "stats", "--no-stream", "--format", "json", *names],
                                      capture_output=True, text=True, check=True).stdout)
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}
    out = []
    for entry in stats:
        used = entry["mem_usage"].split("/")[0].strip()
        number = used.rstrip("kMGiB")
        out.append(float(number) * units[used[len(number):]] / 2 ** 20)
    return out


def inotify_used():
    budget = subprocess.run(["python3", str(ROOT / "roles/lab_machines/files/inotify_budget.py")],
                            capture_output=True, text=True, check=True)
    return json.loads(budget.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="netns_lab")
    parser.add_argument("--students", default="1,10")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    lab_playbook = options.lab.replace("_", "-") + ".yml"
    print("cpus: %d, load: %.2f, lab %s, %d runs each, forks %s" % (
        os.cpu_count(), os.getloadavg()[0], options.lab, options.runs, os.environ.get("ANSIBLE_FORKS", "25")))
    print("%-9s %-9s %9s %9s %9s %9s %11s %9s   %s" % ("students", "machines", "create", "build", "grade", "reset",
                                                       "MiB/machine", "inotify", "CPU s/machine (in the machines): build grade reset"))
    for students in [int(n) for n in options.students.split(",")]:
        with tempfile.TemporaryDirectory(prefix="cka-lab-room-") as tmp:
            inventory = pathlib.Path(tmp) / "inventory"
            (inventory / "group_vars").mkdir(parents=True)
            (inventory / "classroom.yml").write_text(ROOM.format(
                students=students, lab=options.lab, template=ROOT / "inventory/local/hosts.yml", labs=ROOT / "labs"))
            # inventory/local's group variables (the weave lab's among them), the key's path made absolute.
            for source in (ROOT / "inventory/local/group_vars").glob("*.yml"):
                (inventory / "group_vars" / source.name).write_text(source.read_text().replace(
                    "{{ inventory_dir }}/../../.lab/id_ed25519", str(ROOT / ".lab/id_ed25519")))
            listed = json.loads(subprocess.run(
                [str(ROOT / ".venv/bin/ansible-inventory"), "-i", str(inventory), "--list"], cwd=ROOT,
                capture_output=True, text=True, check=True).stdout)
            hosts = listed["local_lab_machines"]["hosts"]
            try:
                create = playbook(inventory, "machines.yml")
                cgroups = cgroup_cpu_files(hosts)
                times = {name: [] for name in ("build", "grade", "reset")}
                cpu = {name: [] for name in times}
                for _ in range(options.runs):
                    times["build"].append(playbook(inventory, lab_playbook, cpu=cpu["build"], machines=cgroups))
                    memory = machine_memory(hosts)
                    times["grade"].append(playbook(inventory, "check.yml", "-e", "check_labs=" + options.lab,
                                                   "-e", "check_reports_dir=" + tmp, cpu=cpu["grade"],
                                                   machines=cgroups))
                    times["reset"].append(playbook(inventory, "reset.yml", cpu=cpu["reset"], machines=cgroups))
                budget = inotify_used()
            finally:
                playbook(inventory, "machines.yml", "-e", "lab_machines_state=absent")
            print("%-9d %-9d %7.1f s %7.1f s %7.1f s %7.1f s %11.0f %4d/%d   %s" % (
                students, len(hosts), create, *(statistics.median(times[k]) for k in ("build", "grade", "reset")),
                statistics.median(memory) if memory else float("nan"), budget["used"], budget["limit"],
                " ".join("%.2f (%.2f)" % (statistics.median(t for t, _ in cpu[k]) / len(hosts),
                                          statistics.median(m for _, m in cpu[k]) / len(hosts))
                         for k in ("build", "grade", "reset"))))


if __name__ == "__main__":
    main()
