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

from lab_grading import covered_by, fail, file_lines_missing, route_found, sockets_listening

LAB = "engine"


def ns_words(namespace):
    return "namespace %s" % namespace if namespace else "the host (the root namespace)"


def ip(namespace, *args):
    """`ip [-n NS] ARGS` as a student types it."""
    return shlex.join(["ip", *(["-n", namespace] if namespace else []), *args])


def in_ns(namespace, command):
    return ("ip netns exec %s %s" % (shlex.quote(namespace), command)) if namespace else command


def links(lab, namespace):
    result = lab.run(ip(namespace, "-j", "-d", "addr", "show"))
    if result.rc != 0:
        fail("%s cannot be looked into (%s): %s" % (ns_words(namespace), ip(namespace, "addr"), result.stderr.strip()))
    return {link["ifname"]: link for link in lab.parse_json(result.stdout)}


def addresses(link):
    return {"%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])}


def check_link(lab, end, kind):
    namespace, name = end.get("namespace"), end["name"]
    look = ip(namespace, "addr", "show", name)
    found = links(lab, namespace).get(name)
    if found is None:
        fail("%s has no interface %s - see `%s`" % (ns_words(namespace), name, ip(namespace, "link")))
    found_kind = found.get("linkinfo", {}).get("info_kind")
    if found_kind != kind:
        fail("%s in %s is a %s, the lesson makes it a %s - see `%s`"
             % (name, ns_words(namespace), found_kind or "plain interface", kind, ip(namespace, "-d", "link", "show", name)))
    missing = sorted(set(end.get("addresses", [])) - addresses(found))
    if missing:
        fail("%s in %s lacks the address %s - see `%s`" % (name, ns_words(namespace), ", ".join(missing), look))
    if "UP" not in found.get("flags", []):
        fail("%s in %s is down - see `%s` (bring it up with `%s`)"
             % (name, ns_words(namespace), look, ip(namespace, "link", "set", name, "up")))
    master = end.get("master")
    if master and found.get("master") != master:
        fail("%s is not plugged into the bridge %s - see `%s`"
             % (name, master, ip(namespace, "link", "show", "master", master)))


# --- what the lesson builds -----------------------------------------------------

@pytest.mark.each("machine.namespaces")
def test_namespace(lab, item):
    listed = {ns["name"] for ns in lab.json("ip -j netns list")}
    if item["name"] not in listed:
        fail("there is no network namespace %s - see `ip netns`" % item["name"])


@pytest.mark.each("machine.bridges")
def test_bridge(lab, item):
    check_link(lab, item, "bridge")


@pytest.mark.each("machine.veth_pairs")
def test_veth_pair(lab, item):
    check_link(lab, item, "veth")
    check_link(lab, item["peer"], "veth")
    end = links(lab, item.get("namespace"))[item["name"]]
    peer = links(lab, item["peer"].get("namespace"))[item["peer"]["name"]]
    # Each end's peer index is the other's own index (ip -d link shows it as NAME@ifN).
    if end.get("link_index", peer["ifindex"]) != peer["ifindex"] or peer.get("link_index", end["ifindex"]) != end["ifindex"]:
        fail("%s and %s are not the two ends of one veth pair - see `%s` and `%s`"
             % (item["name"], item["peer"]["name"], ip(item.get("namespace"), "link", "show", item["name"]),
                ip(item["peer"].get("namespace"), "link", "show", item["peer"]["name"])))


@pytest.mark.each("machine.routes")
def test_route(lab, item):
    namespace = item.get("namespace")
    family = ["-6"] if ":" in item.get("via", "") or ":" in item["dst"] else []
    routes = lab.json(ip(namespace, *family, "-j", "route", "show"))
    if not route_found(routes, item):
        wanted = "%s%s%s" % (item["dst"], " via %s" % item["via"] if item.get("via") else "",
                             " dev %s" % item["dev"] if item.get("dev") else "")
        fail("%s has no route %s - see `%s`" % (ns_words(namespace), wanted, ip(namespace, *family, "route")))


@pytest.mark.each("machine.sysctls")
def test_sysctl(lab, item):
    namespace = item.get("namespace")
    command = in_ns(namespace, "sysctl -n %s" % shlex.quote(item["name"]))
    result = lab.run(command)
    if result.rc != 0:
        fail("%s has no setting %s - see `%s`" % (ns_words(namespace), item["name"], command))
    if result.stdout.split() != str(item["value"]).split():
        fail("%s is %s in %s; the lesson sets it to %s - see `%s`"
             % (item["name"], result.stdout.strip(), ns_words(namespace), item["value"], command))


@pytest.mark.each("machine.chains")
def test_chain(lab, item):
    command = "iptables -t %s -S %s" % (item["table"], shlex.quote(item["chain"]))
    if lab.run(command).rc != 0:
        fail("table %s has no chain %s - see `iptables -t %s -S`" % (item["table"], item["chain"], item["table"]))


@pytest.mark.each("machine.rules")
def test_rule(lab, item):
    listing = lab.host.check_output("iptables -t %s -S" % item["table"])
    if not covered_by(item["table"], item["rule"], listing):
        fail("no rule in table %s does what `iptables -t %s %s` does - see `iptables -t %s -S`"
             % (item["table"], item["table"], item["rule"], item["table"]))


@pytest.mark.each("machine.files")
def test_file(lab, item):
    result = lab.run("cat %s" % shlex.quote(item["path"]))
    if result.rc != 0:
        fail("%s is missing - see `ls -l %s`" % (item["path"], shlex.quote(item["path"])))
    missing = file_lines_missing(item["content"], result.stdout)
    if missing:
        fail("%s lacks the line%s %s - see `cat %s`"
             % (item["path"], "s" if len(missing) > 1 else "", "; ".join(repr(m) for m in missing), item["path"]))


@pytest.mark.each("machine.services")
def test_service_listens(lab, item):
    namespace = item.get("namespace")
    for listen in item["listen"]:
        flag = "-ltn" if listen["protocol"] == "tcp" else "-lun"
        listing = lab.run(in_ns(namespace, "ss -H %s" % flag)).stdout
        if not sockets_listening(listing, listen["address"], listen["port"]):
            fail("nothing listens on %s port %s/%s in %s - see `%s`"
                 % (listen["address"], listen["port"], listen["protocol"], ns_words(namespace),
                    in_ns(namespace, "ss %sp" % flag)))


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
    command = in_ns(spec.get("from"), "ping -c 1 -W 2 %s" % spec["address"])
    replied = lab.run(command).rc == 0
    if spec.get("expect", "reply") == "reply" and not replied:
        fail("%s gets no reply from %s - see `%s`" % (ns_words(spec.get("from")), spec["address"], command))
    if spec.get("expect") == "no reply" and replied:
        fail("%s still reaches %s, which the lesson says it must not - see `%s`"
             % (ns_words(spec.get("from")), spec["address"], command))


def probe_tcp(lab, spec):
    require_namespaces(lab, spec.get("from"), spec.get("to"))
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
    require_namespaces(lab, spec.get("from"))
    command = in_ns(spec.get("from"), "curl -sS -m 5 %s" % shlex.quote(spec["url"]))
    result = lab.run(command)
    if result.rc != 0:
        fail("%s gets no answer from %s (%s) - see `%s`"
             % (ns_words(spec.get("from")), spec["url"], result.stderr.strip(), command))
    if spec.get("contains") and spec["contains"] not in result.stdout:
        fail("%s gets an answer from %s without %r - see `%s`"
             % (ns_words(spec.get("from")), spec["url"], spec["contains"], command))


def probe_dns(lab, spec):
    require_namespaces(lab, spec.get("from"))
    name, answer = spec["name"], spec.get("answer")
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


@pytest.mark.each("probes")
def test_probe(lab, item):
    for kind, run in (("ping", probe_ping), ("tcp", probe_tcp), ("http", probe_http), ("dns", probe_dns)):
        if kind in item:
            run(lab, item[kind])
