"""Lessons 200-201 and 221-223 on the cluster: Services and the cluster DNS, with real traffic.

The probe pods (see weave_lab_helpers) sit behind a ClusterIP Service `probe` and a
NodePort Service `probe-nodeport` in the namespace cka-lab-probe. Each check says
which command shows what it found.
"""
import re

from weave_lab_helpers import PROBE_NAMESPACE, fail

LAB = "weave_net"


def other_node(lab, probes):
    others = sorted(node for node in probes.pods if node != lab.name)
    return others[0] if others else lab.name


def test_cluster_ip_service_answers_from_a_pod_on_another_node(lab, probes):
    """Lesson 223: a Service's ClusterIP answers from any pod, on any node (kube-proxy's rules)."""
    address = probes.services["probe"]["clusterIP"]
    source = other_node(lab, probes)
    url = "http://%s/cgi-bin/addr" % address
    result = probes.exec(source, "wget", "-q", "-O", "-", url)
    if result.rc != 0:
        fail("the Service probe (ClusterIP %s) does not answer the pod on %s: %s - see `%s` and "
             "`kubectl -n %s get endpointslices`" % (address, source, result.stderr.strip() or "no answer",
                                                    probes.exec_command(source, "wget", "-qO-", url), PROBE_NAMESPACE))


def test_cluster_ip_service_answers_from_the_node(lab, probes):
    """Lesson 222: kube-proxy's rules serve the ClusterIP on every node, from the node itself."""
    address = probes.services["probe"]["clusterIP"]
    result = lab.run("curl -sS -m 5 http://%s/cgi-bin/addr", address)
    if result.rc != 0:
        fail("the Service probe (ClusterIP %s) does not answer on %s: %s - see `curl http://%s/` on %s and "
             "`iptables -t nat -S KUBE-SERVICES`" % (address, lab.name, result.stderr.strip(), address, lab.name))


def test_node_port_answers_on_the_nodes_address(lab, probes, cluster):
    """Lesson 222: a NodePort Service answers on every node's address."""
    port = probes.services["probe-nodeport"]["ports"][0]["nodePort"]
    address = cluster.internal_ip(lab.name)
    result = cluster.host.run("curl -sS -m 5 http://%s:%s/cgi-bin/addr" % (address, port))
    if result.rc != 0:
        fail("the NodePort Service probe-nodeport does not answer on %s:%s (%s): %s - see `curl http://%s:%s/` and "
             "`kubectl -n %s get service probe-nodeport`" % (address, port, lab.name, result.stderr.strip(), address,
                                                             port, PROBE_NAMESPACE))


def resolved(result):
    """The addresses of busybox nslookup's answer (after the server's own lines)."""
    answer = result.stdout.split("Name:", 1)[1] if "Name:" in result.stdout else ""
    return set(re.findall(r"Address(?: \d+)?:\s*([0-9.]+)", answer))


def test_pod_resolves_a_service_name(lab, probes):
    """Lesson 200-201 on the cluster: a pod resolves a Service's name through CoreDNS."""
    name = "probe.%s.svc.%s" % (PROBE_NAMESPACE, lab.data["dns_domain"])
    result = probes.exec(lab.name, "nslookup", name)
    wanted = probes.services["probe"]["clusterIP"]
    if wanted not in resolved(result):
        fail("the pod on %s cannot resolve %s to %s: %s - see `%s` and `kubectl -n kube-system get pods -l "
             "k8s-app=kube-dns`" % (lab.name, name, wanted, (result.stdout + result.stderr).strip() or "no answer",
                                     probes.exec_command(lab.name, "nslookup", name)))


def test_pod_resolves_the_lab_hosts(lab, probes):
    """Lessons 200-201: the names added to CoreDNS's hosts block resolve from a pod."""
    for name, address in sorted(lab.data["dns_hosts"].items()):
        result = probes.exec(lab.name, "nslookup", name)
        if address not in resolved(result):
            fail("the pod on %s resolves %s to %s, not %s - see `%s` and `kubectl -n kube-system get configmap "
                 "coredns -o yaml` (its hosts block)" % (lab.name, name, sorted(resolved(result)) or "nothing",
                                                         address, probes.exec_command(lab.name, "nslookup", name)))
