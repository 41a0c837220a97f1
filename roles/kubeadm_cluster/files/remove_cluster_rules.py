#!/usr/bin/env python3
"""Remove the iptables chains and rules a Kubernetes node's components made.

kubeadm reset leaves them (it says so: "The reset process does not reset or clean
up iptables rules"); they are the chains kube-proxy and the kubelet create
(``KUBE-*``: KUBE-SERVICES, KUBE-POSTROUTING, KUBE-KUBELET-CANARY, ...) and Weave
Net's (``WEAVE*``). For IPv4 and IPv6, each table holding such a chain is read
with ``*-save``, those chains and every rule in or jumping to them are dropped,
and the table is written back with ``*-restore``: rules of anyone else stay as
they were (only their packet counters restart).

Weave Net also adds rules to the built-in chains that jump to no chain of its own
(net/bridge.go: ``FORWARD -i weave ! -o weave -j ACCEPT``, ``FORWARD -o weave -j
DROP``, ``INPUT ... --comment "Block non-local access to Weave Net control port"
-j DROP``): with ``--interfaces REGEX`` a rule whose ``-i`` or ``-o`` names an
interface the pattern matches whole goes too, and with ``--comment TEXT`` a rule
whose comment contains TEXT.

Usage: remove_cluster_rules.py [--interfaces REGEX] [--comment TEXT ...] [CHAIN_PREFIX ...]
(default prefixes: KUBE- WEAVE)
Prints JSON: {"changed": bool, "removed": {"iptables/nat": ["KUBE-SERVICES", ...]}}.
Exit status 1 with the tool's message when a save or restore fails.
"""
import argparse
import json
import re
import subprocess
import sys

TOOLS = (("iptables-save", "iptables-restore", "iptables"), ("ip6tables-save", "ip6tables-restore", "ip6tables"))


INTERFACE_RE = re.compile(r"(?:^|\s)-[io]\s+(\S+)")
COMMENT_RE = re.compile(r'--comment\s+("[^"]*"|\S+)')


def filter_table(lines, prefixes, interfaces=None, comments=()):
    """Return (kept lines, removed chain names) for the lines of one ``*-save`` table.

    ``interfaces``: a compiled pattern; a rule naming a matching interface with
    ``-i``/``-o`` is removed. ``comments``: a rule whose comment contains one is removed."""
    def owned(chain):
        return chain.startswith(prefixes)

    def owned_rule(line):
        if interfaces is not None and any(interfaces.fullmatch(name) for name in INTERFACE_RE.findall(line)):
            return True
        comment = COMMENT_RE.search(line)
        return bool(comment) and any(text in comment.group(1) for text in comments)

    removed = sorted({line[1:].split()[0] for line in lines if line.startswith(":") and owned(line[1:].split()[0])})
    kept = []
    for line in lines:
        if line.startswith(":") and owned(line[1:].split()[0]):
            continue
        if line.startswith("-A "):
            chain = line.split()[1]
            target = re.search(r"\s-[jg]\s+(\S+)", line)
            if owned(chain) or (target and owned(target.group(1))) or owned_rule(line):
                continue
        kept.append(line)
    return kept, removed


def tables(saved):
    """Split ``*-save`` output into {table: [lines between *table and COMMIT]}."""
    result, current = {}, None
    for line in saved.splitlines():
        if line.startswith("*"):
            current = line[1:]
            result[current] = []
        elif line == "COMMIT":
            current = None
        elif current is not None and not line.startswith("#"):
            result[current].append(line)
    return result


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interfaces", type=re.compile, help="rules in or out of matching interfaces go")
    parser.add_argument("--comment", action="append", default=[], help="rules whose comment contains this go")
    parser.add_argument("prefixes", nargs="*", default=["KUBE-", "WEAVE"])
    args = parser.parse_args(argv[1:])
    prefixes = tuple(args.prefixes)
    report = {"changed": False, "removed": {}}
    for save, restore, family in TOOLS:
        try:
            saved = subprocess.run([save], check=True, capture_output=True, text=True).stdout
        except FileNotFoundError:
            continue
        except subprocess.CalledProcessError as err:
            print(f"{save}: {err.stderr.strip()}", file=sys.stderr)
            return 1
        for table, lines in tables(saved).items():
            kept, removed = filter_table(lines, prefixes, args.interfaces, args.comment)
            if kept == lines:
                continue
            text = "*%s\n%s\nCOMMIT\n" % (table, "\n".join(kept))
            result = subprocess.run([restore, "--table", table], input=text, capture_output=True, text=True)
            if result.returncode != 0:
                print(f"{restore} --table {table}: {result.stderr.strip()}", file=sys.stderr)
                return 1
            report["changed"] = True
            report["removed"][f"{family}/{table}"] = removed
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
