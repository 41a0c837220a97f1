"""The weave lab's probes (labs/weave_lab.yml, `probes:`), run on every node with real traffic.

Each probe is one test per node, named by the lab file. The traffic comes from the
probe pods (see weave_lab_helpers: one busybox web server per node, whose
/cgi-bin/addr answers with its client's address, behind the ClusterIP Service
`probe` and the NodePort Service `probe-nodeport`). Each failure says what is
missing and the command that shows it.
"""
import re

import pytest

from weave_lab_helpers import PROBE_NAMESPACE, PROBE_PORT, fail

LAB = "weave_lab"
SERVICES = {"ClusterIP": "probe", "NodePort": "probe-nodeport"}


@pytest.mark.each("probes")
def test_probe(lab, item, probes, cluster):
    for kind, run in (("pods", probe_pods), ("service", probe_service), ("cluster_dns", probe_cluster_dns)):
        if kind in item:
            run(lab, item[kind], probes, cluster)
            return
    fail("probe %r has no kind this grader knows (pods, service, cluster_dns) - see labs/%s.yml"
         % (item.get("name"), lab.data["lab"]))


def probe_pods(lab, spec, probes, cluster):
    """Lessons 213-214 and 220: the pod on this node reaches the pod on every other node by its address, and is
    seen there as itself (no NAT)."""
    source = probes.pods[lab.name]
    for node, target in sorted(probes.pods.items()):
        if node == lab.name:
            continue
        url = "http://%s:%d/cgi-bin/addr" % (target["ip"], PROBE_PORT)
        result = probes.exec(lab.name, "wget", "-q", "-O", "-", url)
        look = probes.exec_command(lab.name, "wget", "-qO-", url)
        if result.rc != 0:
            fail("the pod on %s (%s) cannot reach the pod on %s (%s): %s - see `%s`"
                 % (lab.name, source["ip"], node, target["ip"], result.stderr.strip() or "no answer", look))
        # busybox httpd writes an IPv4 client as [a.b.c.d] (or ::ffff:a.b.c.d on an IPv6 socket).
        seen = result.stdout.strip().strip("[]").replace("::ffff:", "")
        if seen != source["ip"]:
            fail("the pod on %s (%s) arrives at the pod on %s as %s: pods must reach each other without NAT - see `%s`"
                 % (lab.name, source["ip"], node, seen or "nothing", look))


def probe_service(lab, spec, probes, cluster):
    """Lessons 222-223: a Service answers through kube-proxy's rules, from a pod on another node, from the node
    itself, or (a NodePort) on the node's address."""
    name = SERVICES[spec["type"]]
    service = probes.services[name]
    shown = "`kubectl -n %s get service,endpointslices`" % PROBE_NAMESPACE
    if spec["type"] == "NodePort":
        port = service["ports"][0]["nodePort"]
        address = cluster.internal_ip(lab.name)
        url = "http://%s:%s/cgi-bin/addr" % (address, port)
        result = cluster.host.run("curl -sS -m 5 %s" % url)
        where = "the control plane"
        look = "curl %s` on the control plane and %s" % (url, shown)
    else:
        url = "http://%s/cgi-bin/addr" % service["clusterIP"]
        if spec["from"] == "the node":
            result = lab.run("curl -sS -m 5 %s", url)
            where = lab.name
            look = "curl %s` on %s and `iptables -t nat -S KUBE-SERVICES" % (url, lab.name)
        else:
            others = sorted(node for node in probes.pods if node != lab.name) or [lab.name]
            result = probes.exec(others[0], "wget", "-q", "-O", "-", url)
            where = "the pod on %s" % others[0]
            look = "%s` and %s" % (probes.exec_command(others[0], "wget", "-qO-", url), shown)
    if result.rc != 0:
        fail("the %s Service %s does not answer %s at %s: %s - see `%s"
             % (spec["type"], name, where, url, result.stderr.strip() or "no answer", look))


def resolved(result):
    """The addresses of busybox nslookup's answer (after the server's own lines)."""
    answer = result.stdout.split("Name:", 1)[1] if "Name:" in result.stdout else ""
    return set(re.findall(r"Address(?: \d+)?:\s*([0-9.]+)", answer))


def probe_cluster_dns(lab, spec, probes, cluster):
    """Lessons 200-201 and 221-222 in the cluster: the pod on this node asks CoreDNS (its resolv.conf's server)."""
    result = probes.exec(lab.name, "nslookup", spec["name"])
    if spec["answer"] not in resolved(result):
        fail("the pod on %s resolves %s to %s, not %s - see `%s`, `kubectl -n kube-system get pods -l "
             "k8s-app=kube-dns` and `kubectl -n kube-system get configmap coredns -o yaml`"
             % (lab.name, spec["name"], ", ".join(sorted(resolved(result))) or "nothing", spec["answer"],
                probes.exec_command(lab.name, "nslookup", spec["name"])))
