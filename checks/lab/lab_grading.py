"""What the lab checks compare, kept apart from the machine so it can be unit-tested."""
import ipaddress
import json
import pathlib
import sys

import pytest

# The checks compare iptables rules the way the lab engine does (by what they do).
_COLLECTIONS = pathlib.Path(__file__).resolve().parents[2] / "collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))

from ansible_collections.cka.lab.plugins.module_utils.netfilter import RuleError, parse_listing, parse_rule  # noqa: E402


def fail(message):
    """Fail a check with a message for a student, without a Python traceback."""
    pytest.fail(message, pytrace=False)


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
