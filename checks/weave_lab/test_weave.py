"""Lessons 213-214 and 217-220: Weave Net on every node, and pod traffic between nodes.

Every check compares a node with Weave's exported declaration (weave_net role,
tasks_from: export) and looks at it as the lessons do: `kubectl get nodes`,
`kubectl -n kube-system get pods`, `ip addr show weave`, `ip route`, the conflist
in /etc/cni/net.d, Weave's log, and traffic between the probe pods (see
weave_lab_helpers), with tcpdump on the node's link.
"""
import ipaddress
import json
import re

import pytest

from weave_lab_helpers import PROBE_PORT, fail, listening, ready, why_not_ready

LAB = "weave_net"


def test_node_is_ready(lab, cluster):
    """Lesson 217: a node turns Ready once a CNI plugin is configured on it."""
    node = cluster.node(lab.name)
    condition = next((c for c in node["status"].get("conditions", []) if c["type"] == "Ready"), {})
    if condition.get("status") != "True":
        fail("%s is NotReady: %s - see `kubectl get nodes` and `kubectl describe node %s` (lesson 217: install a "
             "network add-on, `kubectl apply -f %s`)" % (lab.name, condition.get("message", "no Ready condition"),
                                                         lab.name, lab.data["manifest_path"]))


def test_weave_pod_is_ready(lab, cluster):
    """Lesson 219-220: the weave-net DaemonSet runs a ready pod (weave and weave-npc) on every node."""
    pods = cluster.pods("kube-system", "name=weave-net", node=lab.name)
    if not pods:
        fail("no weave-net pod runs on %s - see `kubectl -n kube-system get pods -l name=weave-net -o wide`" % lab.name)
    if not any(ready(pod) for pod in pods):
        fail("the weave-net pod on %s is not ready: %s - see `kubectl -n kube-system describe pod %s`"
             % (lab.name, why_not_ready(pods[0]), pods[0]["metadata"]["name"]))


def test_conflist_is_the_one_weave_writes(lab):
    """Lesson 220: /etc/cni/net.d/10-weave.conflist names the weave network and its plugin chain."""
    path = lab.data["conflist_path"]
    conflist = lab.host.file(path)
    if not conflist.exists:
        fail("%s is missing on %s - see `ls /etc/cni/net.d` (Weave's init container writes it)" % (path, lab.name))
    try:
        found = json.loads(conflist.content_string)
    except ValueError as err:
        fail("%s on %s is not JSON (%s) - see `cat %s`" % (path, lab.name, err, path))
    wanted = lab.data["conflist"]
    chain = [plugin.get("type") for plugin in found.get("plugins", [])]
    wanted_chain = [plugin["type"] for plugin in wanted["plugins"]]
    if found.get("name") != wanted["name"] or chain != wanted_chain:
        fail("%s on %s configures the network %r with the plugins %s; the lesson shows %r with %s - see `cat %s`"
             % (path, lab.name, found.get("name"), chain, wanted["name"], wanted_chain, path))
    portmap = next((plugin for plugin in found["plugins"] if plugin.get("type") == "portmap"), None)
    if portmap is None:
        fail("%s on %s has no portmap plugin (plugins %s) - see `cat %s`" % (path, lab.name, chain, path))
    if not portmap.get("capabilities", {}).get("portMappings"):
        fail("the portmap plugin in %s on %s lacks the portMappings capability - see `cat %s`" % (path, lab.name, path))


def test_cni_plugin_is_installed(lab):
    """Lesson 215: the binary the kubelet's runtime runs for the weave-net type, in /opt/cni/bin."""
    plugin = lab.host.file(lab.data["cni_plugin"])
    if not (plugin.exists and plugin.mode & 0o111):
        fail("%s is missing or not executable on %s - see `ls -l /opt/cni/bin`" % (lab.data["cni_plugin"], lab.name))


def weave_bridge_addresses(lab):
    result = lab.run("ip -j -d addr show dev %s", lab.data["bridge"])
    if result.rc != 0:
        fail("there is no %s interface on %s - see `ip link`" % (lab.data["bridge"], lab.name))
    try:
        (bridge,) = json.loads(result.stdout)
    except ValueError as err:
        fail("this check cannot run on %s: `ip -j -d addr show dev %s` printed no single interface (%s) - see "
             "`ip addr show %s`" % (lab.name, lab.data["bridge"], err, lab.data["bridge"]))
    if bridge.get("linkinfo", {}).get("info_kind") != "bridge":
        fail("%s on %s is a %s, not a bridge - see `ip -d link show %s`"
             % (lab.data["bridge"], lab.name, bridge.get("linkinfo", {}).get("info_kind") or "plain interface",
                lab.data["bridge"]))
    return [ipaddress.ip_interface("%s/%s" % (a["local"], a["prefixlen"]))
            for a in bridge.get("addr_info", []) if a["family"] == "inet"]


def test_weave_bridge_holds_an_address_of_the_range(lab):
    """Lesson 220: Weave's bridge `weave` on every node, with an address of IPALLOC_RANGE."""
    network = ipaddress.ip_network(lab.data["ipalloc_range"])
    addresses = weave_bridge_addresses(lab)
    if not any(address.network == network for address in addresses):
        fail("%s on %s holds %s, none in %s (IPALLOC_RANGE) - see `ip addr show %s`"
             % (lab.data["bridge"], lab.name, ", ".join(str(a) for a in addresses) or "no address", network,
                lab.data["bridge"]))


def test_range_is_routed_to_the_weave_bridge(lab):
    """Lesson 220: the pod range (IPALLOC_RANGE) is routed to Weave's bridge: `10.244.0.0/16 dev weave` in
    `ip route`."""
    routes = lab.json("ip -j route show")
    if {"dst": lab.data["ipalloc_range"], "dev": lab.data["bridge"]} not in [
            {"dst": r.get("dst"), "dev": r.get("dev")} for r in routes]:
        via = sorted({r.get("dev") for r in routes if r.get("dst") == lab.data["ipalloc_range"]} - {None})
        fail("%s has no route '%s dev %s'%s - see `ip route`"
             % (lab.name, lab.data["ipalloc_range"], lab.data["bridge"],
                " (it routes %s to %s)" % (lab.data["ipalloc_range"], ", ".join(via)) if via else ""))


@pytest.mark.each("ports")
def test_weave_listens(lab, item):
    """Lessons 214 and 219: Weave's control port (TCP 6783), status port (TCP 6784) and encapsulation ports
    (UDP 6783 sleeve, UDP 6784 fast datapath) on every node."""
    if int(item["port"]) not in listening(lab, item["protocol"]):
        fail("nothing listens on %s port %s (%s) on %s - see `ss -%slnp | grep :%s` and `kubectl -n kube-system "
             "get pods -l name=weave-net -o wide`" % (item["protocol"].upper(), item["port"], item["name"], lab.name,
                                                       item["protocol"][0], item["port"]))


def test_weave_log_names_its_ipalloc_range(lab, cluster):
    """Lesson 220: `kubectl logs weave-net-... -c weave -n kube-system | grep ipalloc-range`."""
    pods = cluster.pods("kube-system", "name=weave-net", node=lab.name)
    if not pods:
        fail("no weave-net pod runs on %s - see `kubectl -n kube-system get pods -l name=weave-net -o wide`" % lab.name)
    name = pods[0]["metadata"]["name"]
    log = cluster.run("--namespace", "kube-system", "logs", name, "--container", "weave")
    wanted = "ipalloc-range:%s" % lab.data["ipalloc_range"]
    if wanted not in log.stdout:
        found = re.search(r"ipalloc-range:\S+", log.stdout)
        fail("Weave's log on %s does not name %s (it says %s) - see `kubectl logs %s -c weave -n kube-system | grep "
             "ipalloc-range`" % (lab.name, wanted, found.group(0) if found else "nothing of it", name))


def test_pod_default_route_is_the_nodes_weave_address(lab, probes):
    """Lesson 220: a pod scheduled on a node leaves by its default route, via that node's weave address."""
    bridge = {str(address.ip) for address in weave_bridge_addresses(lab)}
    result = probes.exec(lab.name, "ip", "route", "show", "default")
    gateway = re.search(r"default via (\S+)", result.stdout)
    if not gateway or gateway.group(1) not in bridge:
        fail("the pod on %s has the default route %r, not via %s's weave address %s - see `%s` and `ip addr show "
             "weave` on %s" % (lab.name, result.stdout.strip() or result.stderr.strip(), lab.name,
                              ", ".join(sorted(bridge)) or "(none)", probes.exec_command(lab.name, "ip", "route"),
                              lab.name))


def node_link(lab, peer_ip):
    route = lab.json("ip -j route get %s", peer_ip)
    if not route or "dev" not in route[0]:
        fail("%s has no route to the other node %s - see `ip route get %s`" % (lab.name, peer_ip, peer_ip))
    return route[0]["dev"], route[0].get("prefsrc")


def test_traffic_between_nodes_is_encapsulated(lab, probes, cluster):
    """Lesson 214: between nodes, pod traffic travels inside Weave's UDP encapsulation (sleeve: port 6783)."""
    others = sorted(node for node in probes.pods if node != lab.name)
    if not others:
        pytest.skip("a single node sends nothing between nodes")
    peer = others[0]
    peer_ip = cluster.internal_ip(peer)
    link, own_ip = node_link(lab, peer_ip)
    pods_range = lab.data["ipalloc_range"]
    capture = "/tmp/cka-lab-encapsulation.pcap"
    lab.run("rm -f %s; (timeout 15 tcpdump -nn -i %s -w %s '(host %s and udp and (port 6783 or port 6784)) or net %s' "
            ">/dev/null 2>&1 &); sleep 1", capture, link, capture, peer_ip, pods_range)
    url = "http://%s:%d/cgi-bin/bytes" % (probes.pods[peer]["ip"], PROBE_PORT)
    probes.exec(lab.name, "wget", "-q", "-O", "/dev/null", url)
    lab.run("sleep 1; pkill -INT -f 'tcpdump -nn -i %s -w %s' ; sleep 1", link, capture)
    encapsulated = lab.run("tcpdump -nn -r %s 'udp port 6783 or udp port 6784' 2>/dev/null | wc -l", capture)
    clear = lab.run("tcpdump -nn -r %s 'net %s' 2>/dev/null | wc -l", capture, pods_range)
    lab.run("rm -f %s", capture)
    look = "tcpdump -nn -i %s host %s" % (link, peer_ip)
    if int(clear.stdout.strip() or 0) > 0:
        fail("%s packets with pod addresses (%s) crossed %s in the clear between %s and %s: pod traffic between nodes "
             "must travel inside Weave's encapsulation - see `%s`" % (clear.stdout.strip(), pods_range, link,
                                                                       lab.name, peer, look))
    if int(encapsulated.stdout.strip() or 0) == 0:
        fail("no Weave UDP packet (port 6783 or 6784) crossed %s while the pod on %s fetched from the pod on %s - "
             "see `%s` while pods talk" % (link, lab.name, peer, look))
