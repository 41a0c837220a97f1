"""Lessons 206-209 and 222-223: a kubeadm node's ports, ranges and kube-proxy mode.

Every check compares a node with the cluster's exported declaration (kubeadm_cluster
role, tasks_from: export). Traffic goes only between the cluster's own nodes.
"""
import json
import re

import pytest

from weave_lab_helpers import fail, listening

LAB = "kubeadm_cluster"


def require_control_plane(lab):
    if lab.data["role"] != "control-plane":
        pytest.skip("only the control plane runs the API server")


@pytest.mark.each("ports")
def test_node_listens_on_its_role_port(lab, item):
    assert int(item["port"]) in listening(lab, "tcp"), "%s (%s) does not listen on TCP %s" % (
        lab.name, item["name"], item["port"])


def test_api_server_serves_the_service_range(lab):
    require_control_plane(lab)
    manifest = lab.host.file("/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert manifest.exists, "no kube-apiserver static pod manifest"
    flag = "--service-cluster-ip-range=%s" % lab.data["service_subnet"]
    assert flag in manifest.content_string, "the API server manifest lacks %s" % flag


def test_kube_proxy_runs_in_its_mode(lab):
    result = lab.run("curl -sS -m 5 http://127.0.0.1:10249/proxyMode")
    assert result.rc == 0, "kube-proxy's metrics endpoint does not answer: %s" % result.stderr
    assert result.stdout.strip() == lab.data["kube_proxy_mode"], "kube-proxy runs in mode %r" % result.stdout


def test_node_has_its_address(lab):
    addresses = {a["local"] for link in lab.json("ip -j addr show") for a in link.get("addr_info", [])}
    assert lab.data["node_ip"] in addresses, "%s does not hold its node IP %s" % (lab.name, lab.data["node_ip"])


def test_node_interface_has_its_address_and_a_mac(lab):
    """Lessons 206 and 209: the interface that carries the node's address, its MAC, and its state."""
    links = lab.json("ip -j addr show")
    holder = next((link for link in links if any(a["local"] == lab.data["node_ip"] for a in link.get("addr_info", []))),
                  None)
    if holder is None:
        fail("no interface of %s holds its node address %s - see `ip addr`" % (lab.name, lab.data["node_ip"]))
    mac = holder.get("address", "")
    if not mac or mac == "00:00:00:00:00:00" or "UP" not in holder.get("flags", []):
        fail("%s (%s on %s) is down or has no MAC (%r) - see `ip link show %s`"
             % (holder["ifname"], lab.data["node_ip"], lab.name, mac, holder["ifname"]))


def test_node_has_a_default_route(lab):
    """Lesson 209: the route a packet to the internet takes (`ip route show default`)."""
    if not lab.json("ip -j route show default"):
        fail("%s has no default route - see `ip route show default`" % lab.name)


def test_kube_proxy_log_names_its_mode(lab):
    """Lesson 223: `kubectl logs -n kube-system kube-proxy-... | grep -i proxier` names the proxy mode."""
    require_control_plane(lab)
    mode = lab.data["kube_proxy_mode"]
    command = "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system logs -l k8s-app=kube-proxy --tail=-1"
    result = lab.run(command)
    if not re.search(r"Using %s [Pp]rox" % re.escape(mode), result.stdout):
        fail("kube-proxy's logs do not say it uses the %s proxier: %s - see `kubectl -n kube-system logs -l "
             "k8s-app=kube-proxy | grep -i proxier`" % (mode, result.stderr.strip() or "no such line"))


def test_node_routes_the_service_range(lab):
    """A Service's ClusterIP is DNATed after routing: the node needs a route that covers it."""
    route = lab.json("ip -j route get %s", lab.data["api_service_ip"])
    assert route, "no route to the Service range (%s): add a default route" % lab.data["service_subnet"]


def test_service_is_reachable_through_its_cluster_ip_from_a_worker(lab):
    """The `kubernetes` Service, from a node that does not run the API server itself."""
    if lab.data["role"] != "worker":
        pytest.skip("checked from the workers")
    url = "https://%s/livez" % lab.data["api_service_ip"]
    result = lab.run("curl -sS -k -m 5 %s", url)
    assert result.rc == 0 and result.stdout.strip() == "ok", "%s from %s: %s%s" % (
        url, lab.name, result.stdout, result.stderr)


def test_kubelet_is_running(lab):
    assert lab.host.service("kubelet").is_running, "the kubelet is not running on %s" % lab.name
    config = lab.host.file("/var/lib/kubelet/config.yaml")
    assert config.exists and "cgroupDriver: systemd" in config.content_string


def test_containerd_uses_the_systemd_cgroup_driver(lab):
    result = lab.run("crictl info")
    assert result.rc == 0, "crictl cannot reach containerd's CRI: %s" % result.stderr
    runc = json.loads(result.stdout)["config"]["containerd"]["runtimes"]["runc"]
    assert runc["options"].get("SystemdCgroup") is True, "runc runs with %s" % json.dumps(runc["options"])
