"""Lessons 214 and 219-220: what Weave Net sets up on every node.

Every check compares a node with Weave's exported declaration (weave_net role,
tasks_from: export).
"""
import ipaddress
import json

import pytest

from weave_lab_helpers import listening

LAB = "weave_net"


def test_conflist_is_the_one_weave_writes(lab):
    conflist = lab.host.file(lab.data["conflist_path"])
    assert conflist.exists, "%s is missing" % lab.data["conflist_path"]
    assert json.loads(conflist.content_string) == lab.data["conflist"]


def test_cni_plugin_is_installed(lab):
    plugin = lab.host.file(lab.data["cni_plugin"])
    assert plugin.exists and plugin.mode & 0o111, "%s is missing or not executable" % lab.data["cni_plugin"]


def test_weave_bridge_holds_an_address_of_the_range(lab):
    result = lab.run("ip -j -d addr show dev %s", lab.data["bridge"])
    assert result.rc == 0, "there is no %s interface" % lab.data["bridge"]
    (bridge,) = json.loads(result.stdout)
    assert bridge.get("linkinfo", {}).get("info_kind") == "bridge", "%s is not a bridge" % lab.data["bridge"]
    network = ipaddress.ip_network(lab.data["ipalloc_range"])
    addresses = [ipaddress.ip_interface("%s/%s" % (a["local"], a["prefixlen"]))
                 for a in bridge.get("addr_info", []) if a["family"] == "inet"]
    assert any(address.network == network for address in addresses), \
        "%s holds %s, none in %s" % (lab.data["bridge"], [str(a) for a in addresses], network)


def test_range_is_routed_to_the_weave_bridge(lab):
    routes = lab.json("ip -j route show")
    assert {"dst": lab.data["ipalloc_range"], "dev": lab.data["bridge"]} in [
        {"dst": r.get("dst"), "dev": r.get("dev")} for r in routes], \
        "no '%s dev %s' in ip route" % (lab.data["ipalloc_range"], lab.data["bridge"])


@pytest.mark.each("ports")
def test_weave_listens(lab, item):
    assert int(item["port"]) in listening(lab, item["protocol"]), "nothing listens on %s %s (%s)" % (item["protocol"], item["port"], item["name"])
