"""Helpers the weave lab's checks share: what a node listens on, kubectl on the
control plane as the lessons type it, and the probe pods that carry real traffic.

The probes are a DaemonSet of busybox pods in the namespace ``cka-lab-probe``
(one per node, the control plane's included), each a web server whose
``/cgi-bin/addr`` answers with the address its client came from (so a check sees
whether pod traffic was NATed) and ``/cgi-bin/bytes`` with 1 MiB, plus a ClusterIP
and a NodePort Service in front of them. The checks start them once per run and
delete the namespace at the end; they run only on the cluster's own nodes and
reach only the cluster's own addresses.
"""
import json
import shlex
import time

import pytest

PROBE_NAMESPACE = "cka-lab-probe"
PROBE_PORT = 8080
# Seconds to wait for every probe pod to be Ready (their image is on the nodes).
PROBE_TIMEOUT = 180

# The probe pod's web server: /cgi-bin/addr names the client, /cgi-bin/bytes sends 1 MiB.
PROBE_SCRIPT = r"""
mkdir -p /www/cgi-bin
printf '#!/bin/busybox sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/addr
printf '#!/bin/busybox sh\necho Content-Type: application/octet-stream\necho\n/bin/busybox dd if=/dev/zero bs=1024 count=1024 2>/dev/null\n' > /www/cgi-bin/bytes
/bin/busybox chmod 755 /www/cgi-bin/addr /www/cgi-bin/bytes
exec /bin/busybox httpd -f -p %d -h /www
""" % PROBE_PORT


def fail(message):
    """Fail a check with a message for a student, without a Python traceback."""
    pytest.fail(message, pytrace=False)


def listening(lab, protocol):
    """Ports a node listens on (any address) for `tcp` or `udp`, from `ss`; fails the check with ss's message
    when ss cannot answer."""
    flag = "-tlnH" if protocol == "tcp" else "-ulnH"
    result = lab.host.run("ss %s", flag)
    if result.rc != 0:
        fail("this check cannot run on %s: `ss %s` failed (rc %d): %s - see `command -v ss` (Debian package iproute2)"
             % (lab.name, flag, result.rc, (result.stderr or result.stdout).strip() or "no message"))
    return {int(line.split()[3].rsplit(":", 1)[1]) for line in result.stdout.splitlines()}


class Cluster:
    """kubectl on the control plane with the admin kubeconfig, as the lessons type it."""

    def __init__(self, host, kubeconfig):
        self.host = host
        self.kubeconfig = kubeconfig

    def command(self, *args):
        """The command line a student would type (without --kubeconfig)."""
        return shlex.join(["kubectl", *args])

    def run(self, *args, stdin=None):
        argv = ["kubectl", "--kubeconfig", self.kubeconfig, *args]
        line = shlex.join(argv)
        if stdin is not None:
            line = "printf %%s %s | %s" % (shlex.quote(stdin), line)
        return self.host.run(line)

    def json(self, *args):
        """kubectl ... -o json, parsed; fails the check with kubectl's message when it cannot answer."""
        result = self.run(*args, "--output", "json")
        if result.rc != 0:
            fail("kubectl cannot answer on the control plane: %s - see `%s`"
                 % (result.stderr.strip() or result.stdout.strip(), self.command(*args)))
        try:
            return json.loads(result.stdout)
        except ValueError as err:
            fail("kubectl on the control plane printed no JSON (%s): %s - see `%s`"
                 % (err, result.stdout.strip()[:200] or "nothing", self.command(*args, "-o", "json")))

    def node(self, name):
        return self.json("get", "node", name)

    def internal_ip(self, name):
        """A node's InternalIP, as `kubectl get nodes -o wide` shows it; fails the check when it has none."""
        address = next((a["address"] for a in self.node(name).get("status", {}).get("addresses", [])
                        if a.get("type") == "InternalIP"), None)
        if address is None:
            fail("the node %s has no InternalIP address - see `kubectl get nodes -o wide` and `kubectl describe "
                 "node %s`" % (name, name))
        return address

    def pods(self, namespace, selector, node=None):
        args = ["--namespace", namespace, "get", "pods", "--selector", selector]
        if node:
            args += ["--field-selector", "spec.nodeName=%s" % node]
        return self.json(*args)["items"]


def ready(pod):
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return bool(statuses) and all(status.get("ready") for status in statuses)


def why_not_ready(pod):
    """What keeps a pod from running, in kubectl's words (phase, waiting reasons, the last event-like message)."""
    status = pod.get("status", {})
    words = [status.get("phase", "Unknown")]
    for container in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        waiting = container.get("state", {}).get("waiting")
        if waiting:
            words.append("%s: %s %s" % (container["name"], waiting.get("reason", ""), waiting.get("message", "")))
    for condition in status.get("conditions", []):
        if condition.get("status") != "True" and condition.get("message"):
            words.append(condition["message"])
    return "; ".join(word.strip() for word in words if word.strip())


def probe_manifest(image):
    """The probes as one kubectl List: a namespace, a DaemonSet on every node, a ClusterIP and a NodePort Service."""
    labels = {"app": "cka-lab-probe"}
    port = {"name": "http", "port": 80, "targetPort": PROBE_PORT, "protocol": "TCP"}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": "probe", "namespace": PROBE_NAMESPACE},
         "spec": {"selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {"terminationGracePeriodSeconds": 0,
                      "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                      "containers": [{"name": "web", "image": image, "imagePullPolicy": "IfNotPresent",
                                      "command": ["/bin/busybox", "sh", "-c", PROBE_SCRIPT],
                                      "ports": [{"containerPort": PROBE_PORT}],
                                      "readinessProbe": {"tcpSocket": {"port": PROBE_PORT},
                                                         "periodSeconds": 2}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe", "namespace": PROBE_NAMESPACE},
         "spec": {"selector": labels, "ports": [port]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "probe-nodeport", "namespace": PROBE_NAMESPACE},
         "spec": {"type": "NodePort", "selector": labels, "ports": [port]}},
    ]})


class Probes:
    """The probe pods of one cluster: started once, then used by every check that needs traffic."""

    def __init__(self, cluster, image, nodes):
        self.cluster = cluster
        self.image = image
        self.nodes = sorted(nodes)
        self.pods = {}
        self.services = {}
        self.problem = None

    def start(self):
        # An earlier run's probes may still be going away (their namespace is deleted without waiting).
        self.cluster.run("wait", "--for=delete", "namespace/%s" % PROBE_NAMESPACE, "--timeout=120s")
        result = self.cluster.run("apply", "--filename", "-", stdin=probe_manifest(self.image))
        if result.rc != 0:
            self.problem = "the probe pods cannot be created: %s" % (result.stderr.strip() or result.stdout.strip())
            return
        deadline = time.monotonic() + PROBE_TIMEOUT
        while True:
            found = {}
            result = self.cluster.run("--namespace", PROBE_NAMESPACE, "get", "pods", "--output", "json")
            try:
                items = json.loads(result.stdout)["items"] if result.rc == 0 else []
            except (ValueError, KeyError, TypeError) as err:
                self.problem = "`kubectl -n %s get pods -o json` printed no list of pods (%s)" % (PROBE_NAMESPACE, err)
                return
            for pod in items:
                if pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                    found[pod["spec"]["nodeName"]] = pod
            if all(node in found and ready(found[node]) for node in self.nodes):
                break
            if time.monotonic() > deadline:
                waiting = {node: why_not_ready(found[node]) if node in found else "no pod scheduled"
                           for node in self.nodes if node not in found or not ready(found[node])}
                self.problem = "pods cannot run on %s (%s)" % (
                    ", ".join(sorted(waiting)), "; ".join("%s: %s" % item for item in sorted(waiting.items())))
                return
            time.sleep(2)
        self.pods = {node: {"name": pod["metadata"]["name"], "ip": pod["status"]["podIP"]} for node, pod in found.items()}
        for name in ("probe", "probe-nodeport"):
            result = self.cluster.run("--namespace", PROBE_NAMESPACE, "get", "service", name, "--output", "json")
            try:
                self.services[name] = json.loads(result.stdout)["spec"] if result.rc == 0 else None
            except (ValueError, KeyError, TypeError):
                self.services[name] = None
            if self.services[name] is None:
                self.problem = "the Service %s cannot be read: %s (see `kubectl -n %s get service %s -o yaml`)" % (
                    name, result.stderr.strip() or result.stdout.strip()[:200] or "no answer", PROBE_NAMESPACE, name)
                return

    def stop(self):
        self.cluster.run("delete", "namespace", PROBE_NAMESPACE, "--ignore-not-found", "--wait=false")

    def require(self):
        if self.problem:
            fail("%s - see `kubectl -n %s get pods -o wide` and `kubectl -n %s describe pods`"
                 % (self.problem, PROBE_NAMESPACE, PROBE_NAMESPACE))

    def exec_command(self, node, *argv):
        """What a student would type to run ``busybox ARGV`` in the probe pod on ``node``."""
        return "kubectl -n %s exec %s -- %s" % (PROBE_NAMESPACE, self.pods[node]["name"], shlex.join(argv))

    def exec(self, node, *argv, timeout=10):
        """Run ``busybox ARGV`` in the probe pod on ``node``; the result has rc, stdout, stderr."""
        return self.cluster.run("--namespace", PROBE_NAMESPACE, "exec", self.pods[node]["name"], "--",
                                "/bin/busybox", "timeout", str(timeout), "/bin/busybox", *argv)
