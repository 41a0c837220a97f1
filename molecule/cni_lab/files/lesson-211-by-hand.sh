#!/bin/sh
# Lessons 205 and 211 typed by hand on one node that comes as Debian installs
# it (the reference plugins in /usr/lib/cni, nothing configured): the plugins
# where a runtime looks for them, a network configuration list written with an
# editor, forwarding on, each pod made and attached by running the plugins as
# the CNI specification says, a server in each pod, and routes to the other
# nodes' pod slices.
#
#   NODE     this node (for the messages)           cni-node01
#   SLICE    this node's pod slice                   10.244.1.0/24
#   GATEWAY  the bridge's address in it              10.244.1.1
#   OTHERS   the other nodes: SLICE=NODEADDR ...     "10.244.0.0/24=10.213.0.30 10.244.2.0/24=10.213.0.32"
#   PODS     the pods of this node                   "pod-a pod-b"
#   PUBLISH  POD:HOSTPORT published with portmap     "pod-c:30080" (or empty)
#   OMIT     one step left out, as a student who forgot it:
#            plugins, conflist, ip_forward, pods, portmap, servers, routes
set -eu
node="${NODE:-$(hostname)}"
slice="${SLICE:?SLICE is this node's pod slice, like 10.244.1.0/24}"
gateway="${GATEWAY:?GATEWAY is the bridge's address, like 10.244.1.1}"
others="${OTHERS:-}"
pods="${PODS:-}"
publish="${PUBLISH:-}"
omit="${OMIT:-}"
step() { [ "$omit" != "$1" ]; }
say() { echo "$node: $*"; }

conf=/etc/cni/net.d/10-podnet.conflist
bin=/opt/cni/bin

# 1. The plugins where runtimes look for them.
if step plugins; then
  mkdir -p "$bin"
  for plugin in bridge host-local portmap loopback; do
    ln -sf "/usr/lib/cni/$plugin" "$bin/$plugin"
  done
  say "plugins linked into $bin"
fi

# 2. The network configuration list, written by hand.
if step conflist; then
  mkdir -p /etc/cni/net.d
  cat > "$conf" <<EOF
{
  "name" : "podnet",
  "cniVersion" : "1.0.0",
  "plugins" : [
    {
      "type" : "bridge",
      "bridge" : "cni0",
      "isGateway" : true,
      "ipMasq" : false,
      "hairpinMode" : true,
      "forceAddress" : false,
      "ipam" : {
        "type" : "host-local",
        "routes" : [ { "dst" : "0.0.0.0/0" } ],
        "ranges" : [
          [ { "gateway" : "$gateway", "subnet" : "$slice" } ]
        ]
      }
    },
    {
      "snat" : true,
      "type" : "portmap",
      "capabilities" : { "portMappings" : true }
    }
  ]
}
EOF
  say "wrote $conf"
fi

# 3. The node forwards between its bridge and the node network.
if step ip_forward; then
  sysctl -w net.ipv4.ip_forward=1
fi

# 4. The pods: a namespace each, lo and eth0 attached by the plugins.
# One plugin's configuration from the list: the plugin, cniVersion and name,
# and for portmap the bridge's result and the port mappings.
plugin_conf() {
  python3 - "$conf" "$@" <<'EOF'
import json, sys
netlist = json.load(open(sys.argv[1]))
index = int(sys.argv[2])
conf = dict(netlist["plugins"][index], cniVersion=netlist["cniVersion"], name=netlist["name"])
if len(sys.argv) > 3:
    conf["prevResult"] = json.load(open(sys.argv[3]))
if len(sys.argv) > 4 and sys.argv[4]:
    conf["runtimeConfig"] = {"portMappings": [
        {"hostPort": int(sys.argv[4]), "containerPort": 8080, "protocol": "tcp"}]}
print(json.dumps(conf))
EOF
}

cni() {  # cni COMMAND POD IFNAME PLUGIN: the configuration on stdin
  CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="/run/netns/$2" CNI_IFNAME="$3" \
    CNI_PATH="$bin" "$bin/$4"
}

if step pods; then
  mkdir -p /root/cni
  for pod in $pods; do
    [ -e "/run/netns/$pod" ] || ip netns add "$pod"
    if ip -n "$pod" link show eth0 >/dev/null 2>&1; then
      say "$pod already has eth0"
      continue
    fi
    echo '{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}' | cni ADD "$pod" lo loopback >/dev/null
    plugin_conf 0 | cni ADD "$pod" eth0 bridge > "/root/cni/$pod.json"
    if step portmap; then
      port=""
      for p in $publish; do
        [ "${p%%:*}" = "$pod" ] && port="${p#*:}"
      done
      plugin_conf 1 "/root/cni/$pod.json" "$port" | cni ADD "$pod" eth0 portmap > "/root/cni/$pod-portmap.json"
    fi
    say "$pod: $(ip -n "$pod" -br addr show eth0)"
  done
fi

# 5. A server in each pod, answering with the address the client comes from.
if step servers; then
  if [ ! -x /srv/cni-lab/answer ]; then
    mkdir -p /srv/cni-lab
    cat > /srv/cni-lab/answer <<'EOF'
#!/bin/sh
# One HTTP exchange on standard input and output (socat EXEC): read the
# request up to its blank line, answer with the client's address.
read -r request
while read -r header && [ "${#header}" -gt 1 ]; do :; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%s answers %s\n' "$1" "$SOCAT_PEERADDR"
EOF
    chmod 755 /srv/cni-lab/answer
  fi
  for pod in $pods; do
    if ip netns exec "$pod" ss -Hltn 'sport = :8080' | grep -q .; then
      continue
    fi
    # setsid: the server stays when this shell logs out.
    setsid -f ip netns exec "$pod" socat TCP-LISTEN:8080,fork,reuseaddr EXEC:"/srv/cni-lab/answer $pod" \
      </dev/null >/dev/null 2>&1
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      ip netns exec "$pod" ss -Hltn 'sport = :8080' | grep -q . && break
      sleep 0.2
    done
  done
fi

# 6. Lesson 211: the other nodes' pod slices via their node addresses.
if step routes; then
  for other in $others; do
    if [ -z "$(ip route show "${other%%=*}")" ]; then
      ip route add "${other%%=*}" via "${other#*=}" dev eth0
    fi
  done
  ip route
fi
