"""The grader of every lab declared in labs/: what the lesson asks for, and what must work.

Each check reads one object of the stage being graded from the declaration that
playbooks/check.yml exported, and looks at the machine the way a student would,
with the commands a failing check names. Nothing here looks at the project's
own marks (rule comments, unit names, the engine's record): a namespace made by
hand, a rule typed without a comment or a web server started from a shell pass
the same checks as the lab's own. What a lab needs only to run on a lab machine
(`environment: true` in its declaration) is not graded.
"""
import ipaddress
import json
import shlex

import pytest

from lab_grading import covered_by, fail, file_lines_missing, json_differences, route_found, sockets_listening
from ansible_collections.cka.lab.plugins.module_utils.cni import plugin_types
from ansible_collections.cka.lab.plugins.module_utils.lab_engine import TOOL_PACKAGES
from ansible_collections.cka.lab.plugins.module_utils.nat import NatError, declared_rule, read_ruleset

LAB = "engine"


_HAVE = {}


def need(lab, tool, what):
    """Fail, naming the tool and its package, when `tool` is not on the machine: a check that cannot run
    must not blame the lesson."""
    if (lab.name, tool) not in _HAVE:
        _HAVE[(lab.name, tool)] = lab.run("command -v %s" % shlex.quote(tool)).rc == 0
    if not _HAVE[(lab.name, tool)]:
        package = TOOL_PACKAGES.get(tool, tool)
        fail("this check cannot run on %s: %s needs `%s`, which is not installed (Debian package %s: "
             "`apt-get install %s`) - see `command -v %s`" % (lab.name, what, tool, package, package, tool))


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
    namespace, name = item.get("namespace"), item["name"]
    data = links(lab, namespace)[name].get("linkinfo", {}).get("info_data", {})
    if data.get("stp_state", 0):
        fail("the bridge %s has STP on (stp_state %s): each port it gets waits about %d s (listening, then learning) "
             "before it forwards; the lesson's bridge has it off: `%s` - see `%s`"
             % (name, data["stp_state"], 2 * int(data.get("forward_delay", 1500)) // 100,
                ip(namespace, "link", "set", "dev", name, "type", "bridge", "stp_state", "0"),
                ip(namespace, "-d", "link", "show", name)))


@pytest.mark.each("machine.vxlans")
def test_vxlan(lab, item):
    check_link(lab, item, "vxlan")
    namespace, name = item.get("namespace"), item["name"]
    found = links(lab, namespace)[name]
    data = found.get("linkinfo", {}).get("info_data", {})
    look = ip(namespace, "-d", "link", "show", name)
    wanted = {"id": item["vni"], "port": item.get("dstport", 4789), "link": item["dev"]}
    if item.get("local"):
        wanted["local"] = item["local"]
    for key, value in wanted.items():
        if str(data.get(key)) != str(value):
            fail("%s in %s has %s %s; the lesson gives it %s %s - see `%s`"
                 % (name, ns_words(namespace), VXLAN_WORDS[key], data.get(key, "none"), VXLAN_WORDS[key], value, look))
    need(lab, "bridge", "reading the VXLAN flood list")
    fdb = "bridge%s fdb show dev %s" % (" -n %s" % shlex.quote(namespace) if namespace else "", shlex.quote(name))
    listing = lab.run(fdb).stdout
    flood = {line.split(" dst ")[1].split()[0] for line in listing.splitlines()
             if line.startswith("00:00:00:00:00:00") and " dst " in line}
    missing = sorted(set(item.get("remotes", [])) - flood)
    if missing:
        fail("%s does not send to the other nodes %s (no all-zeros forwarding entry with that dst) - see `%s`; add "
             "one with `bridge fdb append 00:00:00:00:00:00 dev %s dst %s`"
             % (name, ", ".join(missing), fdb, name, missing[0]))


VXLAN_WORDS = {"id": "VNI (id)", "port": "UDP port (dstport)", "link": "underlay link (dev)", "local": "local address"}


@pytest.mark.each("machine.pods")
def test_pod(lab, item):
    name, ifname = item["name"], item.get("ifname", "eth0")
    listed = {ns["name"] for ns in lab.json("ip -j netns list")}
    if name not in listed:
        fail("there is no pod %s: no network namespace of that name - see `ip netns`" % name)
    found = links(lab, name).get(ifname)
    if found is None:
        fail("pod %s has no %s: the network was not attached (CNI ADD) - see `%s`" % (name, ifname, ip(name, "link")))
    if "UP" not in found.get("flags", []):
        fail("%s of pod %s is down - see `%s`" % (ifname, name, ip(name, "addr", "show", ifname)))
    have = [a["local"] for a in found.get("addr_info", []) if a.get("family") == "inet"]
    if not have:
        fail("%s of pod %s has no IPv4 address - see `%s`" % (ifname, name, ip(name, "addr", "show", ifname)))
    if item.get("subnet") and not any(ipaddress.ip_address(a) in ipaddress.ip_network(item["subnet"]) for a in have):
        fail("pod %s has %s, outside its node's slice %s - see `%s` and the ranges in `cat %s`"
             % (name, ", ".join(have), item["subnet"], ip(name, "addr", "show", ifname), item["network"]))
    if not route_found(lab.json(ip(name, "-j", "route", "show")), {"dst": "default"}):
        fail("pod %s has no default route - see `%s`" % (name, ip(name, "route")))


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


def iptables_listings(lab, table):
    """`iptables -t TABLE -S` of every iptables backend with tables here: nf_tables, and legacy when loaded."""
    need(lab, "iptables", "reading the iptables rules")
    commands = ["iptables -w -t %s -S" % table]
    if lab.run("grep -qw %s /proc/net/ip_tables_names" % table).rc == 0:
        commands.append("iptables-legacy -w -t %s -S" % table)
    out = []
    for command in commands:
        result = lab.run(command)
        if result.rc != 0:
            fail("this check cannot run on %s: `%s` failed (rc %d): %s"
                 % (lab.name, command, result.rc, (result.stderr or result.stdout).strip() or "no message"))
        out.append(result.stdout)
    return out


@pytest.mark.each("machine.rules")
def test_rule(lab, item):
    if item.get("traffic"):
        check_nat_rule(lab, item)
        return
    if not any(covered_by(item["table"], item["rule"], listing) for listing in iptables_listings(lab, item["table"])):
        fail("no rule in table %s does what `iptables -t %s %s` does - see `iptables -t %s -S`"
             % (item["table"], item["table"], item["rule"], item["table"]))


def check_nat_rule(lab, item):
    """A NAT rule of the lesson, judged by what the machine's rules (any tool) do to the lesson's packet."""
    need(lab, "iptables", "reading the NAT rules")
    try:
        ruleset = read_ruleset(lambda argv: tuple(getattr(lab.run(shlex.join(argv)), key)
                                                  for key in ("rc", "stdout", "stderr")))
    except NatError as exc:
        fail("the NAT rules cannot be read: %s" % exc)
    declared, traffic, wanted = declared_rule(item)
    found = ruleset.decide(traffic)
    if found.rule is not None and found.effect.same_as(wanted):
        return
    look = "iptables -t nat -S %s" % declared.chain
    if lab.run("command -v nft").rc == 0:
        look += "` and `nft list ruleset"
    unsure = ("; passed over, not understood by the grader: %s" % ", ".join(r.shown() for r in found.uncertain[:2])
              if found.uncertain else "")
    if found.rule is None:
        fail("no NAT rule takes the lesson's traffic (%s): the lesson's `iptables -t nat %s` %s%s - see `%s`"
             % (traffic.words(), item["rule"], wanted.words(), unsure, look))
    fail("the lesson's traffic (%s) is taken by %s, which %s; the lesson's `iptables -t nat %s` %s%s - see `%s`"
         % (traffic.words(), found.rule.shown(), found.effect.words(), item["rule"], wanted.words(), unsure, look))


@pytest.mark.each("machine.files")
def test_file(lab, item):
    path = shlex.quote(item["path"])
    if "link" in item:
        # The lesson's binary at the path: linked or copied, it is the same file.
        if lab.run("cmp -s %s %s" % (path, shlex.quote(item["link"]))).rc != 0:
            fail("%s is not %s (link or copy it: `ln -s %s %s`) - see `ls -l %s`"
                 % (item["path"], item["link"], item["link"], item["path"], path))
        return
    result = lab.run("cat %s" % path)
    if result.rc != 0:
        fail("%s is missing - see `ls -l %s`" % (item["path"], path))
    if item.get("format") == "json":
        try:
            found = json.loads(result.stdout)
        except ValueError as exc:
            fail("%s is not JSON (%s) - see `cat %s`" % (item["path"], exc, path))
        wanted = json.loads(item["content"])
        if isinstance(wanted, dict) and "plugins" in wanted and isinstance(found, dict) \
                and found.get("cniVersion") not in (None, wanted.get("cniVersion")):
            # A network configuration list of another cniVersion is the lesson's when every plugin of it
            # supports that version (what each answers to CNI_COMMAND=VERSION).
            refused = cni_version_refused(lab, wanted, str(found["cniVersion"]))
            if refused:
                fail("%s has cniVersion %s, which %s - see `echo '{}' | CNI_COMMAND=VERSION /opt/cni/bin/%s`"
                     % (item["path"], found["cniVersion"], refused, plugin_types(wanted)[0]))
            wanted["cniVersion"] = found["cniVersion"]
        differences = json_differences(wanted, found)
        if differences:
            fail("%s differs from the lesson's: %s - see `cat %s`" % (item["path"], "; ".join(differences[:3]), path))
        return
    missing = file_lines_missing(item["content"], result.stdout)
    if missing:
        fail("%s lacks the line%s %s - see `cat %s`"
             % (item["path"], "s" if len(missing) > 1 else "", "; ".join(repr(m) for m in missing), item["path"]))


@pytest.mark.each("machine.services")
def test_service_listens(lab, item):
    need(lab, "ss", "listing listening sockets")
    namespace = item.get("namespace")
    for listen in item["listen"]:
        flag = "-ltn" if listen["protocol"] == "tcp" else "-lun"
        listing = lab.run(in_ns(namespace, "ss -H %s" % flag)).stdout
        if not sockets_listening(listing, listen["address"], listen["port"]):
            fail("nothing listens on %s port %s/%s in %s - see `%s`"
                 % (listen["address"], listen["port"], listen["protocol"], ns_words(namespace),
                    in_ns(namespace, "ss %sp" % flag)))


def cni_version_refused(lab, conflist, version, bin_dir="/opt/cni/bin"):
    """Why the plugins of `conflist` in `bin_dir` cannot run it at `version`, or None when all support it."""
    refusing = []
    for kind in plugin_types(conflist):
        result = lab.run("echo '{\"cniVersion\":\"1.0.0\"}' | CNI_COMMAND=VERSION %s/%s" % (bin_dir, shlex.quote(kind)))
        try:
            versions = json.loads(result.stdout).get("supportedVersions") or []
        except (ValueError, AttributeError):
            versions = []
        if version not in versions:
            refusing.append("%s (supports %s)" % (kind, ", ".join(versions) or "nothing it says"))
    if refusing:
        return "the plugin%s %s do%s not support" % ("s" if len(refusing) > 1 else "", "; ".join(refusing),
                                                    "" if len(refusing) > 1 else "es")
    return None


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
    except pytest.fail.Exception as exc:
        differences = environment_differences(lab)
        if not differences:
            raise
        fail("%s; note: this machine is not set up as the lesson's host: %s" % (exc.msg, "; ".join(differences)))
