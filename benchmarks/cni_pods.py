#!/usr/bin/env python3
"""How the CNI lab's cost grows with the pods on one node; prints the figures.

Not a test: it asserts nothing and is not run by scripts/test. On the local
node cni-node01 (labs/cni_lab.yml, stage node), for N pods (default 10, 50 and
200, without their servers, so that only CNI is measured), the medians of:
  attach   playbooks/cni-lab.yml from no pods to N: each pod a namespace, lo
           attached with loopback, eth0 with the bridge (host-local) and portmap
           (CNI ADD, executed as a container runtime does)
  no-op    the same again: CHECK for every pod, nothing changed
  detach   playbooks/reset.yml: DEL for every pod, then the rest of the lab
and the cost per pod over the run with no pods. There is one Ansible task per
node whatever N is (the pods are data of one lab_state call), so the cost
should grow linearly in N, by what the plugins themselves take.

Run from the checkout, after scripts/setup:
  .venv/bin/python benchmarks/cni_pods.py [--runs 3] [--pods 10,50,200]
"""
import argparse
import json
import os
import statistics
import sys

from labs import ansible_playbook  # benchmarks/labs.py: run one playbook from the checkout, timed

NODE = "cni-node01"


def pods(count):
    return json.dumps({"cni_lab_pods": [{"name": "bench-%03d" % i, "node": NODE, "server": False}
                                        for i in range(count)]})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pods", default="10,50,200")
    options = parser.parse_args()
    counts = [0] + [int(n) for n in options.pods.split(",")]
    build = ["playbooks/cni-lab.yml", "--limit", NODE, "-e", "cni_lab_stage=node"]
    reset = ["playbooks/reset.yml", "--limit", NODE]
    ansible_playbook(*build, "-e", pods(0))  # the machines exist and the SSH master connection is open
    ansible_playbook(*reset)
    print("cpus: %d, load: %.2f, %d runs each, node %s" % (os.cpu_count(), os.getloadavg()[0], options.runs, NODE))
    print("%6s %9s %9s %9s %15s %15s %15s" % ("pods", "attach", "no-op", "detach", "attach/pod", "no-op/pod",
                                             "detach/pod"))
    base = None
    for count in counts:
        times = {"attach": [], "no-op": [], "detach": []}
        for _ in range(options.runs):
            ansible_playbook(*build, "-e", pods(0))
            times["attach"].append(ansible_playbook(*build, "-e", pods(count))[0])
            elapsed, out = ansible_playbook(*build, "-e", pods(count))
            recap = next(line for line in out.split("PLAY RECAP")[-1].splitlines() if line.startswith(NODE))
            if "changed=0" not in recap:
                sys.exit("%d pods: the second run changed something:\n%s" % (count, out[-2000:]))
            times["no-op"].append(elapsed)
            times["detach"].append(ansible_playbook(*reset)[0])
        median = {name: statistics.median(values) for name, values in times.items()}
        if base is None:
            base = median
            print("%6d %7.2f s %7.2f s %7.2f s" % (count, median["attach"], median["no-op"], median["detach"]))
            continue
        print("%6d %7.2f s %7.2f s %7.2f s %11.1f ms %11.1f ms %11.1f ms" % (
            count, median["attach"], median["no-op"], median["detach"],
            *(1000 * (median[name] - base[name]) / count for name in ("attach", "no-op", "detach"))))


if __name__ == "__main__":
    main()
