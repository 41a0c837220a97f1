#!/usr/bin/env python3
"""Print, as JSON, what `ip -j` shows in the root namespace and in every named one.

The scenario's assertions read this, never the module's own return value. Each
namespace (the root one under the key "root"; no test namespace has that name) has:

  links   name -> kind, up, master, addresses (CIDR, IPv6 link-local left out),
          ifindex and the raw veth peer fields: link (peer in the same namespace),
          link_index and link_netnsid (peer in another namespace)
  routes  main-table IPv4 and IPv6 routes: family, dst, gateway, dev, metric, protocol
  nsids   the namespace ids this namespace knows, as `ip netns list-id` prints them,
          each with the named namespace it stands for, or null
  lo_up   whether lo is up

Nothing volatile (counters, address lifetimes, DAD flags) is kept, so two reads of an
unchanged machine are equal.
"""
import ipaddress
import json
import os
import subprocess

ROOT = "root"


def ip_json(namespace, *argv):
    prefix = ["ip"] if namespace == ROOT else ["ip", "-n", namespace]
    out = subprocess.run(prefix + ["-j"] + list(argv), check=True, capture_output=True, text=True,
                         env={**os.environ, "LC_ALL": "C"}).stdout
    return json.loads(out) if out.strip() else []


def addresses(item):
    found = []
    for addr in item.get("addr_info", []):
        if addr.get("family") not in ("inet", "inet6"):
            continue
        interface = ipaddress.ip_interface("%s/%s" % (addr["local"], addr["prefixlen"]))
        if interface.version == 6 and interface.ip.is_link_local:
            continue
        found.append(str(interface))
    return sorted(found)


def links(namespace):
    result = {}
    for item in ip_json(namespace, "-d", "addr", "show"):
        result[item["ifname"]] = {
            "kind": (item.get("linkinfo") or {}).get("info_kind"),
            "up": "UP" in item.get("flags", []),
            "master": item.get("master"),
            "addresses": addresses(item),
            "ifindex": item["ifindex"],
            "link": item.get("link"),
            "link_index": item.get("link_index"),
            "link_netnsid": item.get("link_netnsid"),
            "mac": item.get("address"),
            "mtu": item.get("mtu"),
        }
    return result


def routes(namespace):
    result = []
    for family, flag in ((4, "-4"), (6, "-6")):
        for item in ip_json(namespace, flag, "route", "show"):
            result.append({
                "family": family,
                "dst": item["dst"],
                "gateway": item.get("gateway"),
                "dev": item.get("dev"),
                "metric": item.get("metric", 0),
                "protocol": item.get("protocol", "boot"),
                "type": item.get("type", "unicast"),
            })
    return sorted(result, key=lambda r: json.dumps(r, sort_keys=True))


def namespace_state(namespace):
    found = links(namespace)
    return {
        "links": found,
        "routes": routes(namespace),
        "nsids": {str(item["nsid"]): item.get("name") for item in ip_json(namespace, "netns", "list-id")},
        "lo_up": found.get("lo", {}).get("up", False),
    }


def main():
    names = sorted(item["name"] for item in ip_json(ROOT, "netns", "list"))
    state = {"namespaces": names, "by_namespace": {ROOT: namespace_state(ROOT)}}
    for name in names:
        state["by_namespace"][name] = namespace_state(name)
    print(json.dumps(state, sort_keys=True))


if __name__ == "__main__":
    main()
