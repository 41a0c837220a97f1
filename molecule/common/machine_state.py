#!/usr/bin/env python3
"""Print, as JSON, the parts of a lab machine's state that a lab may change.

Molecule scenarios take this before converge and after reset and compare the
two: a reset must put back links, addresses, routes, namespaces, iptables
rules, ipsets, sysctls, systemd units and files. Counters, timestamps and runtime noise
(login sessions, journald, containerd's state) are left out.
"""
import hashlib
import json
import os
import re
import subprocess

FILE_TREES = ["/etc", "/opt", "/srv", "/usr/local", "/var/lib", "/run/netns"]
SKIP_TREES = ["/var/lib/systemd", "/var/lib/containerd", "/var/lib/apt", "/var/lib/dpkg"]
# Runtime noise: login sessions, journald, devices, and network-online.target,
# which stays active once any unit that wants it (the kubelet) has started: a
# record of the past, not of state. Mount units are left to `mounts` below:
# systemd follows /proc/self/mountinfo with a rate limit (systemd 248 and
# later), so right after a reset that deleted several namespaces it may still
# list run-netns.mount as active for a moment, when /run/netns is gone.
UNIT_NOISE = re.compile(r"^(session-\d+\.scope|user@\d+\.service|user-runtime-dir@\d+\.service|user-\d+\.slice|"
                        r"systemd-journald.*|sys-.*\.device|dev-.*\.device|.*\.mount|"
                        r"network-online\.target)$")


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout


def ip_json(*argv):
    out = run("ip", "-j", *argv)
    return json.loads(out) if out.strip() else []


def links():
    result = []
    for link in ip_json("-d", "addr", "show"):
        result.append({
            "name": link["ifname"],
            "kind": link.get("linkinfo", {}).get("info_kind"),
            "master": link.get("master"),
            "up": "UP" in link["flags"],
            # IPv6 link-local addresses follow the MAC, which Podman draws anew
            # when a machine restarts: not the lab's state.
            "addresses": sorted("%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])
                                if not a["local"].startswith("fe80:")),
        })
    return sorted(result, key=lambda link: link["name"])


def routes():
    keep = ("dst", "gateway", "dev", "table", "protocol", "scope", "type")
    return sorted(json.dumps({k: r[k] for k in keep if k in r}, sort_keys=True)
                  for family in ("-4", "-6") for r in ip_json(family, "route", "show", "table", "all")
                  if not r.get("dst", "").startswith("fe80:"))


def iptables():
    """Rules and chain policies per table, without counters.

    A table whose built-in chains all accept and hold no rule filters nothing:
    iptables-nft keeps such a table once it has been used, so it counts as
    absent, like a table never created."""
    tables, current = {}, None
    for line in run("iptables-save").splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
        elif line.startswith((":", "-A")):
            current.append(re.sub(r" \[\d+:\d+\]$", "", line))
    return {name: lines for name, lines in tables.items()
            if not all(re.match(r"^:\S+ ACCEPT$", line) for line in lines)}


def units():
    listed = run("systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager")
    states = []
    for line in listed.splitlines():
        fields = line.split()
        if fields and not UNIT_NOISE.match(fields[0]):
            states.append("%s %s" % (fields[0], fields[2]))
    files = run("systemctl", "list-unit-files", "--no-legend", "--no-pager").split("\n")
    return sorted(states), sorted(line.split()[0] + " " + line.split()[1] for line in files if line.strip())


def mounts():
    """The mount points of the machine's mount namespace, as the kernel lists them (proc(5), mountinfo),
    without systemd's credential mounts (made at boot)."""
    with open("/proc/self/mountinfo") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return sorted({p for p in points if not p.startswith("/run/credentials/")})


def ipsets():
    """The names of the machine's ipsets (a network policy controller's, such as weave-npc's)."""
    try:
        return sorted(run("ipset", "list", "-name").split())
    except (FileNotFoundError, subprocess.CalledProcessError):
        return []


def files():
    found = {}
    for tree in FILE_TREES:
        for root, dirs, names in os.walk(tree):
            dirs[:] = [d for d in dirs if os.path.join(root, d) not in SKIP_TREES]
            found[root + "/"] = "dir"
            for name in names:
                path = os.path.join(root, name)
                if os.path.islink(path):
                    found[path] = "-> " + os.readlink(path)
                elif os.path.isfile(path) and path.startswith("/etc/"):
                    with open(path, "rb") as handle:
                        found[path] = hashlib.sha256(handle.read()).hexdigest()
                else:
                    found[path] = "present"
    return found


def main():
    active, unit_files = units()
    state = {
        "namespaces": sorted(ns["name"] for ns in ip_json("netns", "list")),
        "links": links(),
        "routes": routes(),
        "iptables": iptables(),
        "ipsets": ipsets(),
        "sysctl": {name: open("/proc/sys/" + name.replace(".", "/")).read().strip()
                   for name in ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")},
        "units": active,
        "mounts": mounts(),
        "unit_files": unit_files,
        "files": files(),
    }
    print(json.dumps(state, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
