"""The grader of every lab declared in labs/: what the lesson asks for, and what must work.

Each check reads one object of the stage being graded from the declaration that
playbooks/check.yml exported, and looks at the machine the way a student would,
with the commands a failing check names. Nothing here looks at the project's
own marks (rule comments, unit names, the engine's record): a namespace made by
hand, a rule typed without a comment or a web server started from a shell pass
the same checks as the lab's own. What a lab needs only to run on a lab machine
(`environment: true` in its declaration) is not graded.
"""
import shlex

import pytest

from lab_grading import fail
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import files, links, look, pods, rules, services, sysctls
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import in_ns, ip, need, sockets_listening
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import namespace_words as ns_words

LAB = "engine"

# A kind's check that finds something missing fails the check with its message, without a traceback.
look.set_fail(fail)


# --- what the lesson builds: each kind's checks (lab_kinds/*.py, check_*) ------------------------

@pytest.mark.each("machine.namespaces")
def test_namespace(lab, item):
    links.check_namespace(lab, item)


@pytest.mark.each("machine.bridges")
def test_bridge(lab, item):
    links.check_bridge(lab, item)


@pytest.mark.each("machine.vxlans")
def test_vxlan(lab, item):
    links.check_vxlan(lab, item)


@pytest.mark.each("machine.pods")
def test_pod(lab, item):
    pods.check_pod(lab, item)


@pytest.mark.each("machine.veth_pairs")
def test_veth_pair(lab, item):
    links.check_veth_pair(lab, item)


@pytest.mark.each("machine.routes")
def test_route(lab, item):
    links.check_route(lab, item)


@pytest.mark.each("machine.sysctls")
def test_sysctl(lab, item):
    sysctls.check_sysctl(lab, item)


@pytest.mark.each("machine.chains")
def test_chain(lab, item):
    rules.check_chain(lab, item)


@pytest.mark.each("machine.rules")
def test_rule(lab, item):
    rules.check_rule(lab, item)


@pytest.mark.each("machine.files")
def test_file(lab, item):
    files.check_file(lab, item)


@pytest.mark.each("machine.services")
def test_service_listens(lab, item):
    services.check_service(lab, item)


# --- what must work ----------------------------------------------------------------

# A one-shot TCP listener that prints the address a connection came from, and a client.
LISTEN_ONCE = ("python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET6 if \":\" in sys.argv[1] else socket.AF_INET); "
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2]))); "
               "s.listen(1); s.settimeout(5); c, a = s.accept(); print(a[0])' %s %s")
CONNECT = ("python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)' %s %s")


def require_namespaces(lab, *names):
    """A probe from or to a namespace that is not there proves nothing, whatever it expects."""
    listed = {ns["name"] for ns in lab.json("ip -j netns list")}
    for name in names:
        if name is not None and name not in listed:
            fail("there is no network namespace %s to try this from - see `ip netns`" % name)


def probe_ping(lab, spec):
    require_namespaces(lab, spec.get("from"))
    need(lab, "ping", "a ping")
    command = in_ns(spec.get("from"), "ping -c 1 -W 2 %s" % spec["address"])
    replied = lab.run(command).rc == 0
    if spec.get("expect", "reply") == "reply" and not replied:
        fail("%s gets no reply from %s - see `%s`" % (ns_words(spec.get("from")), spec["address"], command))
    if spec.get("expect") == "no reply" and replied:
        fail("%s still reaches %s, which the lesson says it must not - see `%s`"
             % (ns_words(spec.get("from")), spec["address"], command))


def probe_tcp(lab, spec):
    require_namespaces(lab, spec.get("from"), spec.get("to"))
    need(lab, "python3", "a TCP connection (its client and server)")
    port = spec.get("port", 47199)
    listen_on = spec.get("listen", "0.0.0.0")
    client = in_ns(spec.get("from"), CONNECT % (spec["address"], port))
    script = "%s & sleep 0.4; %s; wait" % (in_ns(spec.get("to"), LISTEN_ONCE % (listen_on, port)), client)
    result = lab.run("timeout 10 sh -c %s" % shlex.quote(script))
    seen = result.stdout.strip()
    if spec.get("expect") == "no connect":
        if seen:
            fail("%s reaches %s port %s, which the lesson says it must not - see `%s`"
                 % (ns_words(spec.get("from")), spec["address"], port, client))
        return
    if not seen:
        fail("%s cannot open a TCP connection to %s port %s - see `%s` (ping it, then look at routes and `iptables -t nat -S`)"
             % (ns_words(spec.get("from")), spec["address"], port,
                in_ns(spec.get("from"), "ping -c1 %s" % spec["address"])))
    if spec.get("source") and seen != spec["source"]:
        fail("a connection from %s arrives in %s from %s; the lesson has it arrive from %s - see `iptables -t nat -S POSTROUTING`"
             % (ns_words(spec.get("from")), ns_words(spec.get("to")), seen, spec["source"]))


def probe_http(lab, spec):
    """An HTTP request. With `server` ({namespace, address, port}), the answer must come from that server
    (conntrack shows where the connection went), and a failure says which part is wrong: nothing listens,
    the server listens but does not answer, or the way to it (the forward) is wrong."""
    require_namespaces(lab, spec.get("from"))
    need(lab, "curl", "an HTTP request")
    if spec.get("server"):
        need(lab, "conntrack", "seeing which server answered")
    command = in_ns(spec.get("from"), "curl -sS -m 5 %s" % shlex.quote(spec["url"]))
    result = lab.run(in_ns(spec.get("from"), "curl -sS -m 5 -w '\\n%%{local_port}' %s" % shlex.quote(spec["url"])))
    body, _, local_port = result.stdout.rpartition("\n")
    server = spec.get("server")
    if result.rc != 0:
        if server:
            diagnose_server(lab, spec, server, result.stderr.strip())
        fail("%s gets no answer from %s (%s) - see `%s`"
             % (ns_words(spec.get("from")), spec["url"], result.stderr.strip(), command))
    if spec.get("contains") and spec["contains"] not in body:
        fail("%s gets an answer from %s without %r - see `%s`"
             % (ns_words(spec.get("from")), spec["url"], spec["contains"], command))
    if server and local_port.strip().isdigit():
        answered = answered_by(lab, int(local_port))
        wanted = (server["address"], str(server["port"]))
        if answered is None:
            fail("cannot tell who answered %s: conntrack (package conntrack) shows no connection from port %s "
                 "- see `conntrack -L -p tcp`" % (spec["url"], local_port.strip()))
        if answered != wanted:
            fail("%s's request to %s is answered by %s:%s, not by the server in %s (%s:%s) - see `iptables -t nat "
                 "-S PREROUTING` and `conntrack -L -p tcp --sport %s`"
                 % (ns_words(spec.get("from")), spec["url"], answered[0], answered[1],
                    ns_words(server.get("namespace")), server["address"], server["port"], local_port.strip()))


def answered_by(lab, local_port):
    """(address, port) that answered the TCP connection from `local_port`, from conntrack's reply tuple."""
    result = lab.run("conntrack -L -p tcp --sport %d" % local_port)
    for line in result.stdout.splitlines():
        # tcp 6 119 TIME_WAIT src=CLIENT dst=ADDRESS sport=P dport=80 src=SERVER dst=CLIENT sport=80 dport=P ...
        sources = [f.split("=", 1)[1] for f in line.split() if f.startswith("src=")]
        ports = [f.split("=", 1)[1] for f in line.split() if f.startswith("sport=")]
        if len(sources) == 2 and len(ports) == 2 and ports[0] == str(local_port):
            return sources[1], ports[1]
    return None


def diagnose_server(lab, spec, server, error):
    """Fail with which part of the way to `server` is wrong."""
    namespace, address, port = server.get("namespace"), server["address"], server["port"]
    listing = lab.run(in_ns(namespace, "ss -H -ltn")).stdout
    if not sockets_listening(listing, address, port):
        fail("%s gets no answer from %s (%s): nothing listens on %s port %s/tcp in %s - see `%s`"
             % (ns_words(spec.get("from")), spec["url"], error, address, port, ns_words(namespace),
                in_ns(namespace, "ss -ltnp")))
    # Asked from the machine's root namespace, across the link the lesson made to it (inside its own
    # namespace the server is reached through `lo`, which the lesson need not bring up).
    direct = "curl -sS -m 5 -o /dev/null http://%s:%s/" % (address, port)
    if lab.run("ip route get %s" % shlex.quote(address)).rc != 0:
        fail("%s gets no answer from %s (%s), and the machine itself has no route to the server at %s to tell "
             "why - see `%s`" % (ns_words(spec.get("from")), spec["url"], error, address,
                                 in_ns(spec.get("from"), "curl -v %s" % shlex.quote(spec["url"]))))
    result = lab.run(direct)
    if result.rc != 0:
        fail("the server in %s listens on %s port %s but does not answer (%s); one cause: a server started with "
             "`&` from a shell that has closed since fails at every request, so start it so that it outlives the "
             "shell (`setsid ... >/var/log/web.log 2>&1 < /dev/null &`) - see `%s`"
             % (ns_words(namespace), address, port, result.stderr.strip() or "no reply", direct))
    fail("the server in %s answers on %s port %s, but %s gets no answer from %s (%s): the way there (the "
         "forward) is wrong - see `iptables -t nat -S PREROUTING` and `%s`"
         % (ns_words(namespace), address, port, ns_words(spec.get("from")), spec["url"], error,
            in_ns(spec.get("from"), "curl -v %s" % shlex.quote(spec["url"]))))


def probe_dns(lab, spec):
    require_namespaces(lab, spec.get("from"))
    name, answer = spec["name"], spec.get("answer")
    if not spec.get("resolver"):
        need(lab, "dig", "a DNS question")
    if spec.get("resolver"):
        command = in_ns(spec.get("from"), "getent ahostsv4 %s" % shlex.quote(name))
        result = lab.run(command)
        got = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    else:
        tcp = " +tcp" if spec.get("protocol") == "tcp" else ""
        command = in_ns(spec.get("from"), "dig +short +time=2 +tries=1%s @%s %s A" % (tcp, spec["server"], shlex.quote(name)))
        result = lab.run(command)
        if result.rc != 0:
            fail("%s gets no DNS answer from %s over %s - see `%s`"
                 % (ns_words(spec.get("from")), spec["server"], spec.get("protocol", "udp").upper(), command))
        got = {line.strip() for line in result.stdout.splitlines() if line.strip()}
    if answer is None:
        if got:
            fail("%s resolves %s to %s; the lesson's DNS does not know that name - see `%s`"
                 % (ns_words(spec.get("from")), name, ", ".join(sorted(got)), command))
    elif answer not in got:
        fail("%s does not resolve %s to %s (got %s) - see `%s`"
             % (ns_words(spec.get("from")), name, answer, ", ".join(sorted(got)) or "nothing", command))


def pod_address(lab, peers, name):
    """(machine, IPv4 address) of a pod of the lab, on whichever machine it runs."""
    for other in peers:
        for pod in other.data.get("machine", {}).get("pods", []):
            if pod["name"] == name:
                ifname = pod.get("ifname", "eth0")
                result = other.run(ip(name, "-j", "addr", "show", "dev", ifname))
                found = [a["local"] for link in (other.parse_json(result.stdout) if result.rc == 0 else [])
                         for a in link.get("addr_info", []) if a.get("family") == "inet"]
                if not found:
                    fail("pod %s on %s has no address on %s - see `%s` there"
                         % (name, other.name, ifname, ip(name, "addr", "show", ifname)))
                return other, found[0]
    fail("no machine of the lab runs a pod %s" % name)


# tcpdump drops root for its own user unless told otherwise (-Z), and could then not write to mktemp's file;
# --immediate-mode hands each packet over at once, not when the capture buffer fills or times out.
CAPTURE = ("pcap=$(mktemp 2>&1) || {{ echo \"cannot=mktemp: $pcap\"; exit 0; }}; timeout 20 tcpdump -Z root --immediate-mode -i {interface} -n -U -w $pcap >/dev/null 2>&1 & dump=$!; sleep 1; "
           "{request} >$pcap.out 2>&1; rc=$?; sleep 0.5; kill -INT $dump; wait $dump; "
           "echo seen=$(tcpdump -n -r $pcap {seen} 2>/dev/null | wc -l) "
           "not_seen=$(tcpdump -n -r $pcap {not_seen} 2>/dev/null | wc -l) rc=$rc; cat $pcap.out; rm -f $pcap $pcap.out")


def probe_pod(lab, spec, peers):
    """A request from one pod to another's server, which answers with the address it sees: without NAT
    that is the sender's own. With `capture`, tcpdump on the node's link shows how the packets travelled."""
    require_namespaces(lab, spec["from"])
    need(lab, "curl", "a request between pods")
    if spec.get("capture"):
        need(lab, "tcpdump", "watching the node's link")
    _, source = pod_address(lab, [lab], spec["from"])
    where, target = pod_address(lab, peers, spec["to"])
    command = in_ns(spec["from"], "curl -sS -m 5 http://%s:%s/" % (target, spec["port"]))
    capture = spec.get("capture")
    counts = {}
    if capture:
        script = CAPTURE.format(interface=shlex.quote(capture["interface"]), request=command,
                                seen=shlex.quote(capture.get("seen") or "ip"),
                                not_seen=shlex.quote(capture.get("not_seen") or "ip"))
        run = lab.run("sh -c %s" % shlex.quote(script))
        first, _, answer = run.stdout.partition("\n")
        if first.startswith("cannot="):
            fail("this check cannot run on %s: it captures packets into a file in /tmp, and %s - see `df -h /tmp`"
                 % (lab.name, first.split("=", 1)[1]))
        counts = dict(part.split("=", 1) for part in first.split() if "=" in part)
        if "seen" not in counts:
            fail("this check cannot run on %s: the capture on %s printed no count (%s) - see `tcpdump -n -i %s`"
                 % (lab.name, capture["interface"], (run.stdout + run.stderr).strip()[:200] or "nothing",
                    capture["interface"]))
        result = type("Result", (), {"rc": int(counts.get("rc", 1)), "stdout": answer, "stderr": answer})
    else:
        result = lab.run(command)
    if spec.get("expect") == "no answer":
        if result.rc == 0:
            fail("pod %s already reaches pod %s (%s on %s), which the lesson says it must not yet - see `%s`"
                 % (spec["from"], spec["to"], target, where.name, command))
        return
    if result.rc != 0:
        fail("pod %s gets no answer from pod %s (%s on %s): %s - see `%s`, then `ip route` on both nodes"
             % (spec["from"], spec["to"], target, where.name, result.stderr.strip(), command))
    seen = result.stdout.split(" answers ")[-1].strip()
    if seen != source:
        fail("pod %s (%s) arrives at pod %s as %s: pods must reach each other without NAT - see `%s` and "
             "`iptables -t nat -S POSTROUTING`" % (spec["from"], source, spec["to"], seen or "nothing", command))
    look = "tcpdump -n -i %s" % capture["interface"] if capture else ""
    if capture and capture.get("seen") and int(counts.get("seen", 0)) == 0:
        fail("no packet matching `%s` crossed %s while pod %s talked to pod %s - see `%s %s`"
             % (capture["seen"], capture["interface"], spec["from"], spec["to"], look, capture["seen"]))
    if capture and capture.get("not_seen") and int(counts.get("not_seen", 0)) > 0:
        fail("%s packets matching `%s` crossed %s in the clear while pod %s talked to pod %s - see `%s %s`"
             % (counts["not_seen"], capture["not_seen"], capture["interface"], spec["from"], spec["to"], look,
                capture["not_seen"]))


def environment_differences(lab):
    """The machine settings the lesson's host has (`environment: true` sysctls) that this machine lacks:
    not graded, but a probe that fails because of one says so."""
    out = []
    for item in lab.data.get("machine", {}).get("sysctls", []):
        if not item.get("environment") or item.get("namespace"):
            continue
        result = lab.run("sysctl -n %s" % shlex.quote(item["name"]))
        if result.rc == 0 and result.stdout.split() != str(item["value"]).split():
            out.append("%s is %s here, %s on the lesson's host (`sysctl -w %s=%s`)"
                       % (item["name"], result.stdout.strip(), item["value"], item["name"], item["value"]))
    return out


@pytest.mark.each("probes")
def test_probe(lab, item, peers):
    try:
        for kind, run in (("ping", probe_ping), ("tcp", probe_tcp), ("http", probe_http), ("dns", probe_dns)):
            if kind in item:
                run(lab, item[kind])
        if "pod" in item:
            probe_pod(lab, item["pod"], peers)
        if not {"ping", "tcp", "http", "dns", "pod"} & set(item):
            fail("probe %r is of a kind only a kubeadm cluster's grader runs (%s); a lab the engine builds "
                 "probes with ping, tcp, http, dns or pod - see labs/README.md" % (item["name"], ", ".join(
                     sorted(set(item) - {"name", "stages", "when", "__path"}))))
    except pytest.fail.Exception as exc:
        differences = environment_differences(lab)
        if not differences:
            raise
        fail("%s; note: this machine is not set up as the lesson's host: %s" % (exc.msg, "; ".join(differences)))
