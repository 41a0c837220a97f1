"""Lesson 202: network namespaces, veth pairs, a bridge, routing out, NAT and DNAT.

Every check compares the machine with the lab's exported declaration; the
traffic checks send packets only between the lab's own namespaces and host.
"""
import ipaddress
import shlex

import pytest

LAB = "netns_lab"



def prefix(lab):
    return ipaddress.ip_network(lab.data["subnet"]).prefixlen


def lan_prefix(lab):
    return ipaddress.ip_network(lab.data["lan"]["subnet"]).prefixlen


def links(lab, namespace=None):
    """{name: link} of a namespace from `ip -j addr show`."""
    ns = ["-n", namespace] if namespace else []
    return {link["ifname"]: link for link in lab.json(shlex.join(["ip", *ns, "-j", "-d", "addr", "show"]))}


def addresses(link):
    return {"%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", []) if a["family"] == "inet"}


def is_up(link):
    return "UP" in link["flags"]


def in_ns(namespace, command):
    return "ip netns exec %s %s" % (shlex.quote(namespace), command)


def require_full(lab):
    if lab.data["stage"] != "full":
        pytest.skip("the %s stage has no bridge, LAN, NAT or web server" % lab.data["stage"])


# --- namespaces and links -----------------------------------------------------

@pytest.mark.each("topology.namespaces")
def test_namespace_exists_with_loopback_up(lab, item):
    listed = {ns["name"] for ns in lab.json("ip -j netns list")}
    assert item["name"] in listed, "namespace %s is missing (ip netns list)" % item["name"]
    assert is_up(links(lab, item["name"])["lo"]), "lo is down in %s" % item["name"]


@pytest.mark.each("namespaces")
def test_namespace_end_has_its_address_and_is_up(lab, item):
    found = links(lab, item["name"])
    assert item["veth"] in found, "%s has no interface %s" % (item["name"], item["veth"])
    end = found[item["veth"]]
    assert end["linkinfo"]["info_kind"] == "veth"
    assert addresses(end) == {"%s/%d" % (item["address"], prefix(lab))}
    assert is_up(end)


def test_bridge_is_up_with_the_host_address(lab):
    require_full(lab)
    bridge = links(lab).get(lab.data["bridge"])
    assert bridge is not None, "bridge %s is missing (ip link)" % lab.data["bridge"]
    assert bridge["linkinfo"]["info_kind"] == "bridge"
    assert addresses(bridge) == {"%s/%d" % (lab.data["bridge_address"], prefix(lab))}
    assert is_up(bridge)


@pytest.mark.each("namespaces")
def test_bridge_port_is_plugged_into_the_bridge(lab, item):
    require_full(lab)
    port = links(lab).get(item["bridge_port"])
    assert port is not None, "%s is missing on the host" % item["bridge_port"]
    assert port.get("master") == lab.data["bridge"]
    assert is_up(port)


def test_first_stage_cable_joins_the_two_namespaces(lab):
    if lab.data["stage"] != "direct":
        pytest.skip("the full stage replaces the cable with the bridge")
    red, blue = lab.data["namespaces"][:2]
    end = links(lab, red["name"])[red["veth"]]
    peer = links(lab, blue["name"])[blue["veth"]]
    assert end["link_index"] == peer["ifindex"] and peer["link_index"] == end["ifindex"]


def test_lan_link_joins_host_and_lan_host(lab):
    require_full(lab)
    lan = lab.data["lan"]
    host_end = links(lab)[lan["interface"]]
    lan_end = links(lab, lan["host"])[lan["host_interface"]]
    assert addresses(host_end) == {"%s/%d" % (lan["address"], lan_prefix(lab))}
    assert addresses(lan_end) == {"%s/%d" % (lan["host_address"], lan_prefix(lab))}
    assert is_up(host_end) and is_up(lan_end)


# --- routes, forwarding, NAT ----------------------------------------------------

@pytest.mark.each("topology.routes")
def test_route_goes_via_the_host(lab, item):
    routes = lab.json(shlex.join(["ip", "-n", item["namespace"], "-j", "route", "show"]))
    gateways = {r.get("gateway") for r in routes if r["dst"] == item["dst"]}
    assert gateways == {item["via"]}, "ip -n %s route: %s should go via %s, found %s" % (
        item["namespace"], item["dst"], item["via"], sorted(filter(None, gateways)) or "no route")


def test_lan_host_knows_no_route_to_the_lab_subnet(lab):
    # Replies reach the namespaces only because the host masquerades them.
    require_full(lab)
    routes = lab.json(shlex.join(["ip", "-n", lab.data["lan"]["host"], "-j", "route", "show"]))
    assert all(r["dst"] in (lab.data["lan"]["subnet"],) for r in routes), routes


def test_host_forwards_packets(lab):
    require_full(lab)
    assert lab.host.check_output("cat /proc/sys/net/ipv4/ip_forward").strip() == "1"


@pytest.mark.each("nat_rules")
def test_nat_rule_is_in_place(lab, item):
    rules = lab.host.check_output("iptables -t nat -S %s", item["chain"]).splitlines()
    marked = [r for r in rules if '--comment "%s"' % item["comment"] in r]
    assert len(marked) == 1, "iptables -t nat -S %s has %d rules marked %r" % (item["chain"], len(marked), item["comment"])
    rule = marked[0].split()
    assert rule[rule.index("-j") + 1] == item["jump"]
    if "source" in item:
        assert rule[rule.index("-s") + 1] == item["source"]
    if "to_destination" in item:
        assert rule[rule.index("--to-destination") + 1] == item["to_destination"]
        assert rule[rule.index("--dport") + 1] == str(item["destination_port"])
        assert rule[rule.index("-i") + 1] == item["in_interface"]


def test_web_server_unit_is_running(lab):
    require_full(lab)
    assert lab.host.service(lab.data["web"]["unit"]).is_running


# --- traffic ------------------------------------------------------------------

def test_red_and_blue_reach_each_other(lab):
    red, blue = lab.data["namespaces"][:2]
    for src, dst in ((red, blue), (blue, red)):
        result = lab.run(in_ns(src["name"], "ping -c 1 -W 2 %s" % dst["address"]))
        assert result.rc == 0, "%s cannot ping %s (%s): %s" % (src["name"], dst["name"], dst["address"], result.stdout)


def test_ping_leaves_the_peer_in_the_arp_table(lab):
    red, blue = lab.data["namespaces"][:2]
    lab.run(in_ns(red["name"], "ping -c 1 -W 2 %s" % blue["address"]))
    neighbours = lab.json(shlex.join(["ip", "-n", red["name"], "-j", "neigh", "show"]))
    blue_mac = links(lab, blue["name"])[blue["veth"]]["address"]
    assert {(n["dst"], n.get("lladdr")) for n in neighbours} >= {(blue["address"], blue_mac)}


@pytest.mark.each("namespaces")
def test_namespace_reaches_the_host_on_the_bridge(lab, item):
    require_full(lab)
    result = lab.run(in_ns(item["name"], "ping -c 1 -W 2 %s" % lab.data["bridge_address"]))
    assert result.rc == 0, result.stdout


# A one-shot listener in the LAN host that prints the address a connection came from.
LISTEN_ONCE = (
    "python3 -c 'import socket,sys; s=socket.socket(); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2]))); "
    "s.listen(1); s.settimeout(5); c, a = s.accept(); print(a[0])' %s %s"
)
CONNECT = "python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)' %s %s"


def test_web_namespace_reaches_the_lan_host_masqueraded(lab):
    require_full(lab)
    lan, web = lab.data["lan"], lab.data["web"]
    port = 47202
    script = "%s & sleep 0.3; %s; wait" % (
        in_ns(lan["host"], LISTEN_ONCE % (lan["host_address"], port)),
        in_ns(web["namespace"], CONNECT % (lan["host_address"], port)))
    result = lab.run("timeout 10 sh -c %s", script)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == lan["address"], (
        "the LAN host saw %r; with MASQUERADE it sees the host's %s" % (result.stdout.strip(), lan["address"]))


def test_lan_host_reaches_the_web_server_through_the_host_port(lab):
    # What the LAN host gets from the host's port must be what the server in the
    # web namespace serves.
    require_full(lab)
    lan, web = lab.data["lan"], lab.data["web"]
    through_host = lab.run(in_ns(lan["host"], "curl -sS -f -m 5 http://%s:%s/" % (lan["address"], web["forwarded_port"])))
    assert through_host.rc == 0, "LAN host -> %s:%s: %s" % (lan["address"], web["forwarded_port"], through_host.stderr)
    direct = lab.run(in_ns(web["namespace"], "curl -sS -f -m 5 http://%s:%s/" % (web["address"], web["port"])))
    assert direct.rc == 0, direct.stderr
    assert through_host.stdout == direct.stdout
