"""Lessons 206-209 and 222-223: a kubeadm node's ports, ranges and kube-proxy mode.

Every check compares a node with the cluster's exported declaration (kubeadm_cluster
role, tasks_from: export). Traffic goes only between the cluster's own nodes.
"""
import json
import re

import pytest

from weave_lab_helpers import fail, listening

LAB = "kubeadm_cluster"

API_SERVER_MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"


def require_control_plane(lab):
    if lab.data["role"] != "control-plane":
        pytest.skip("only the control plane runs the API server")


def how_to_see_component(name):
    """The command that shows the component behind a port: the kubelet is a systemd service, the rest
    of the control plane static pods the kubelet runs from /etc/kubernetes/manifests."""
    component = name.split()[0]  # "etcd clients" -> etcd
    if component == "kubelet":
        return "`systemctl status kubelet`"
    return "`crictl ps -a --name %s` (a static pod of /etc/kubernetes/manifests/%s.yaml)" % (component, component)


@pytest.mark.each("ports")
def test_node_listens_on_its_role_port(lab, item):
    """Lessons 206 and 209: each node listens on its role's ports (API server 6443, etcd 2379 and 2380,
    kubelet 10250, kube-scheduler 10259, kube-controller-manager 10257)."""
    if int(item["port"]) not in listening(lab, "tcp"):
        fail("nothing listens on TCP port %s (%s) on %s; lesson 209 has a %s node listen there - see "
             "`ss -tlnp | grep :%s` and %s" % (item["port"], item["name"], lab.name, lab.data["role"], item["port"],
                                                how_to_see_component(item["name"])))


def test_api_server_serves_the_service_range(lab):
    """Lessons 222-223: the API server's manifest sets the Service range (--service-cluster-ip-range)."""
    require_control_plane(lab)
    manifest = lab.host.file(API_SERVER_MANIFEST)
    if not manifest.exists:
        fail("%s has no kube-apiserver static pod manifest %s - see `ls /etc/kubernetes/manifests`"
             % (lab.name, API_SERVER_MANIFEST))
    flag = "--service-cluster-ip-range=%s" % lab.data["service_subnet"]
    content = manifest.content_string
    if flag not in content:
        found = re.search(r"--service-cluster-ip-range=\S+", content)
        fail("the API server's manifest on %s has %s; the lesson's Service range needs %s - see `grep "
             "service-cluster-ip-range %s`" % (lab.name, found.group(0) if found else "no --service-cluster-ip-range",
                                               flag, API_SERVER_MANIFEST))


def test_kube_proxy_runs_in_its_mode(lab):
    """Lesson 223: kube-proxy names its proxy mode on its metrics port (`curl http://127.0.0.1:10249/proxyMode`)."""
    result = lab.run("curl -sS -m 5 http://127.0.0.1:10249/proxyMode")
    if result.rc != 0:
        fail("kube-proxy on %s does not answer on its metrics port 127.0.0.1:10249: %s - see `curl "
             "http://127.0.0.1:10249/proxyMode` and `kubectl -n kube-system get pods -l k8s-app=kube-proxy -o wide`"
             % (lab.name, result.stderr.strip() or "no answer"))
    if result.stdout.strip() != lab.data["kube_proxy_mode"]:
        fail("kube-proxy on %s runs in mode %r; the lesson's mode is %s - see `curl http://127.0.0.1:10249/proxyMode` "
             "and `kubectl -n kube-system get configmap kube-proxy -o yaml` (its mode)"
             % (lab.name, result.stdout.strip(), lab.data["kube_proxy_mode"]))


def test_node_has_its_address(lab):
    """Lessons 206 and 209: every node holds its node IP."""
    addresses = {a["local"] for link in lab.json("ip -j addr show") for a in link.get("addr_info", [])}
    if lab.data["node_ip"] not in addresses:
        shown = sorted(a for a in addresses if ":" not in a and not a.startswith("127."))
        fail("%s does not hold its node IP %s (it holds %s) - see `ip addr`"
             % (lab.name, lab.data["node_ip"], ", ".join(shown) or "no IPv4 address"))


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
    """Lessons 222-223: a Service's ClusterIP is DNATed after routing: the node needs a route that covers it."""
    command = "ip -j route get %s" % lab.data["api_service_ip"]
    result = lab.run("ip -j route get %s", lab.data["api_service_ip"])
    route = []
    if result.rc == 0:
        try:
            route = lab.parse_json(result.stdout)
        except ValueError:
            fail("this check cannot run on %s: `%s` printed no JSON: %s" % (lab.name, command, result.stdout.strip()))
    if not route:
        fail("%s has no route to the Service range %s (none to the `kubernetes` Service's ClusterIP %s: %s); a "
             "ClusterIP is DNATed after routing, so the node needs one, e.g. a default route - see `ip route get %s` "
             "and `ip route`" % (lab.name, lab.data["service_subnet"], lab.data["api_service_ip"],
                                 (result.stderr or result.stdout).strip() or "no route", lab.data["api_service_ip"]))


def test_service_is_reachable_through_its_cluster_ip_from_a_worker(lab):
    """Lessons 222-223: the `kubernetes` Service, from a node that does not run the API server itself."""
    if lab.data["role"] != "worker":
        pytest.skip("checked from the workers")
    url = "https://%s/livez" % lab.data["api_service_ip"]
    result = lab.run("curl -sS -k -m 5 %s", url)
    if not (result.rc == 0 and result.stdout.strip() == "ok"):
        found = (result.stderr.strip() or "no answer") if result.rc != 0 else "it answered %r, not 'ok'" % (
            result.stdout.strip())
        fail("the `kubernetes` Service (ClusterIP %s, port 443) does not answer %s from %s: %s - see `curl -k %s` on "
             "%s, `kubectl get service kubernetes` and `iptables -t nat -S KUBE-SERVICES` on %s"
             % (lab.data["api_service_ip"], url, lab.name, found, url, lab.name, lab.name))


def test_kubelet_is_running(lab):
    """Lessons 206 and 209: the kubelet (port 10250) runs on every node, with the systemd cgroup driver."""
    if not lab.host.service("kubelet").is_running:
        fail("the kubelet is not running on %s - see `systemctl status kubelet` and `journalctl -u kubelet`"
             % lab.name)
    config = lab.host.file(KUBELET_CONFIG)
    if not config.exists:
        fail("%s has no kubelet configuration %s (`kubeadm init` or `kubeadm join` writes it) - see `ls "
             "/var/lib/kubelet`" % (lab.name, KUBELET_CONFIG))
    content = config.content_string
    if "cgroupDriver: systemd" not in content:
        found = re.search(r"cgroupDriver:.*", content)
        fail("the kubelet's configuration %s on %s has %s; the lesson's cluster needs `cgroupDriver: systemd` (the "
             "driver containerd's runc uses) - see `cat %s`"
             % (KUBELET_CONFIG, lab.name, "`%s`" % found.group(0).strip() if found else "no cgroupDriver line",
                KUBELET_CONFIG))


def test_containerd_uses_the_systemd_cgroup_driver(lab):
    """Lesson 209: containerd, the cluster's runtime, runs containers with runc and the systemd cgroup driver."""
    result = lab.run("crictl info")
    if result.rc != 0:
        fail("crictl cannot reach containerd's CRI (unix:///var/run/containerd/containerd.sock) on %s: %s - see "
             "`crictl info` and `systemctl status containerd`" % (lab.name, result.stderr.strip() or "no answer"))
    try:
        options = json.loads(result.stdout)["config"]["containerd"]["runtimes"]["runc"]["options"]
        systemd = options.get("SystemdCgroup")
    except (ValueError, KeyError, TypeError, AttributeError):
        fail("`crictl info` on %s shows no options of the runc runtime (config.containerd.runtimes.runc.options) - "
             "see `crictl info` and `containerd config dump | grep -A 20 runtimes.runc`" % lab.name)
    if systemd is not True:
        fail("containerd on %s runs runc with SystemdCgroup %s, not true (runc's options: %s) - see `crictl info | "
             "grep SystemdCgroup` and `grep SystemdCgroup /etc/containerd/config.toml`"
             % (lab.name, "unset" if systemd is None else json.dumps(systemd), json.dumps(options)))
