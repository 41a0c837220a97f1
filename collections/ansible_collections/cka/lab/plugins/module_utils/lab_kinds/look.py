# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""How a check looks at a lab machine, as a student would: the commands it types, and what it compares.

Used by each kind's checks (``check_*`` functions of lab_kinds/*.py) and by the
grader, checks/lab/test_lab.py, on the Ansible computer, never on a lab machine.
``lab`` is the grader's view of one machine (checks/conftest.py ``Lab``: ``name``,
``run(command)`` with ``rc``/``stdout``/``stderr``, ``json(command)``,
``parse_json(text)``, ``host`` a Testinfra host). A check that finds something
missing calls :func:`fail` with the lesson's words and the command that shows it;
the grader makes that a failed check (set_fail), elsewhere it raises
:class:`Missing`.
"""
from __future__ import annotations

import ipaddress
import json
import shlex

from ansible_collections.cka.lab.plugins.module_utils.netfilter import RuleError, parse_listing, parse_rule


class Missing(Exception):
    """What a check found missing or wrong, in the lesson's words."""


def _raise(message):
    raise Missing(message)


_FAIL = [_raise]


def set_fail(function):
    """Have :func:`fail` call `function(message)` (the grader: pytest.fail without a traceback)."""
    _FAIL[0] = function


def fail(message):
    _FAIL[0](message)
    raise Missing(message)


# The Debian package of each command a lab's build or check runs, for the message when one is missing.
TOOL_PACKAGES = {'ip': 'iproute2', 'bridge': 'iproute2', 'ss': 'iproute2', 'iptables': 'iptables',
                 'iptables-nft': 'iptables', 'iptables-legacy': 'iptables', 'nft': 'nftables',
                 'python3': 'python3', 'socat': 'socat', 'curl': 'curl', 'systemd-run': 'systemd',
                 'journalctl': 'systemd', 'sysctl': 'procps', 'conntrack': 'conntrack', 'tcpdump': 'tcpdump',
                 'dig': 'dnsutils', 'ping': 'iputils-ping', 'coredns': 'the lab (playbooks/dns-lab.yml builds it)'}

_HAVE = {}


def need(lab, tool, what):
    """Fail, naming the tool and its package, when `tool` is not on the machine: a check that cannot run
    must not blame the lesson."""
    if (lab.name, tool) not in _HAVE:
        _HAVE[(lab.name, tool)] = lab.run("command -v %s" % shlex.quote(tool)).rc == 0
    if not _HAVE[(lab.name, tool)]:
        package = TOOL_PACKAGES.get(tool, tool)
        fail("this check cannot run on %s: %s needs `%s`, which is not installed (Debian package %s: "
             "`apt-get install %s`) - see `command -v %s`" % (lab.name, what, tool, package, package, tool))


def namespace_words(namespace):
    return "namespace %s" % namespace if namespace else "the host (the root namespace)"


def ip(namespace, *args):
    """`ip [-n NS] ARGS` as a student types it."""
    return shlex.join(["ip", *(["-n", namespace] if namespace else []), *args])


def in_ns(namespace, command):
    return ("ip netns exec %s %s" % (shlex.quote(namespace), command)) if namespace else command


def links_in(lab, namespace):
    result = lab.run(ip(namespace, "-j", "-d", "addr", "show"))
    if result.rc != 0:
        fail("%s cannot be looked into (%s): %s" % (namespace_words(namespace), ip(namespace, "addr"), result.stderr.strip()))
    return {link["ifname"]: link for link in lab.parse_json(result.stdout)}


def addresses(link):
    return {"%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])}


def check_link(lab, end, kind):
    namespace, name = end.get("namespace"), end["name"]
    look = ip(namespace, "addr", "show", name)
    found = links_in(lab, namespace).get(name)
    if found is None:
        fail("%s has no interface %s - see `%s`" % (namespace_words(namespace), name, ip(namespace, "link")))
    found_kind = found.get("linkinfo", {}).get("info_kind")
    if found_kind != kind:
        fail("%s in %s is a %s, the lesson makes it a %s - see `%s`"
             % (name, namespace_words(namespace), found_kind or "plain interface", kind, ip(namespace, "-d", "link", "show", name)))
    missing = sorted(set(end.get("addresses", [])) - addresses(found))
    if missing:
        fail("%s in %s lacks the address %s - see `%s`" % (name, namespace_words(namespace), ", ".join(missing), look))
    if "UP" not in found.get("flags", []):
        fail("%s in %s is down - see `%s` (bring it up with `%s`)"
             % (name, namespace_words(namespace), look, ip(namespace, "link", "set", name, "up")))
    master = end.get("master")
    if master and found.get("master") != master:
        fail("%s is not plugged into the bridge %s - see `%s`"
             % (name, master, ip(namespace, "link", "show", "master", master)))


def covered_by(table, rule_text, listing):
    """True when a rule of `listing` (iptables -t TABLE -S) does what `rule_text` does."""
    wanted = parse_rule(table, rule_text)
    try:
        rules = parse_listing(table, listing)[0]
    except RuleError:
        return False
    return any(found.covers(wanted) for found in rules)


def _net(text):
    if text in ("default", "0.0.0.0/0"):
        return ipaddress.ip_network("0.0.0.0/0")
    if text == "::/0":
        return ipaddress.ip_network("::/0")
    return ipaddress.ip_network(text, strict=False)


def route_found(routes, wanted):
    """`wanted` ({dst, via?, dev?}) among `ip -j route show` entries; `default` and 0.0.0.0/0 are one."""
    dst = _net(wanted["dst"])
    for route in routes:
        found = route["dst"]
        if found == "default":
            found = "::/0" if dst.version == 6 else "0.0.0.0/0"
        try:
            if _net(found) != dst:
                continue
        except ValueError:
            continue
        if wanted.get("via") and route.get("gateway") != wanted["via"]:
            continue
        if wanted.get("dev") and route.get("dev") != wanted["dev"]:
            continue
        return True
    return False


def file_lines_missing(wanted, found):
    """Lines of `wanted` (ignoring blank and # lines, spacing) that `found` lacks."""
    def lines(text):
        return [" ".join(line.split()) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    have = set(lines(found))
    return [line for line in lines(wanted) if line not in have]


def sockets_listening(ss_output, address, port):
    """True when `ss -H -l -n` output has a socket on `port` at `address` or a wildcard."""
    wanted = ipaddress.ip_address(address)
    for line in ss_output.splitlines():
        for field in line.split():
            if ":" not in field or not field.rsplit(":", 1)[1].isdigit():
                continue
            host, found_port = field.rsplit(":", 1)
            if int(found_port) != int(port):
                continue
            host = host.strip("[]").split("%")[0]
            try:
                found = ipaddress.ip_address("0.0.0.0" if host in ("*", "") else host)
            except ValueError:
                continue
            if found == wanted or found.is_unspecified:
                return True
    return False


def json_differences(wanted, found, where="$"):
    """How `found` (parsed JSON) falls short of `wanted`: every key `wanted` has, with its value; lists
    element by element. Keys `found` has beyond those are allowed."""
    if isinstance(wanted, dict):
        if not isinstance(found, dict):
            return ["%s is %s, not an object" % (where, type(found).__name__)]
        out = []
        for key, value in wanted.items():
            if key not in found:
                out.append("%s.%s is missing (the lesson has %s)" % (where, key, json.dumps(value)))
            else:
                out += json_differences(value, found[key], "%s.%s" % (where, key))
        return out
    if isinstance(wanted, list):
        if not isinstance(found, list) or len(found) != len(wanted):
            return ["%s is %s (the lesson has %s)" % (where, json.dumps(found), json.dumps(wanted))]
        return [d for i, (w, f) in enumerate(zip(wanted, found)) for d in json_differences(w, f, "%s[%d]" % (where, i))]
    if wanted != found:
        return ["%s is %s (the lesson has %s)" % (where, json.dumps(found), json.dumps(wanted))]
    return []
