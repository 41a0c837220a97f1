#!/bin/sh
# What a student typed by hand for lessons 205 and 211 (files/lesson-211-by-hand.sh)
# that the lab's reset leaves, removed the way the student would: the pods'
# servers stopped, each pod deleted with CNI DEL (its address goes back to
# host-local's pool) and its namespace removed, then the bridge the plugin made,
# the plugins' state, the routes, the network configuration list, the links to
# the plugins and the server script. The pods are the lab's names, but they
# are pods, not declared namespaces: the reset does not delete them (nor the
# bridge, host-local's leases, the files and the routes the lab never made).
#   PODS     the pods of this node                   "pod-a pod-b"
#   OTHERS   the other nodes: SLICE=NODEADDR ...     (only the slices are used)
set -eu
pods="${PODS:-}"
others="${OTHERS:-}"
conf=/etc/cni/net.d/10-podnet.conflist
bin=/opt/cni/bin

cni() {  # cni COMMAND POD IFNAME PLUGIN: the configuration on stdin
  CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="/run/netns/$2" CNI_IFNAME="$3" \
    CNI_PATH="$bin" "$bin/$4"
}

plugin_conf() {  # plugin_conf INDEX: one plugin's configuration from the list
  python3 -c 'import json, sys; l = json.load(open(sys.argv[1])); i = int(sys.argv[2])
print(json.dumps(dict(l["plugins"][i], cniVersion=l["cniVersion"], name=l["name"])))' "$conf" "$1"
}

for pod in $pods; do
  [ -e "/run/netns/$pod" ] || continue
  # The server: the processes in the pod's namespace.
  for pid in $(ip netns pids "$pod"); do
    kill "$pid" 2>/dev/null || true
  done
  # DEL in reverse order: portmap, the bridge (and host-local), loopback.
  if [ -f "$conf" ] && [ -x "$bin/bridge" ]; then
    plugin_conf 1 | cni DEL "$pod" eth0 portmap || true
    plugin_conf 0 | cni DEL "$pod" eth0 bridge || true
    echo '{"cniVersion": "1.0.0", "name": "lo", "type": "loopback"}' | cni DEL "$pod" lo loopback || true
  fi
  ip netns del "$pod"
done
rm -rf /root/cni

if ip link show cni0 >/dev/null 2>&1; then
  ip link del cni0
fi
rm -rf /var/lib/cni
for other in $others; do
  if [ -n "$(ip route show "${other%%=*}")" ]; then
    ip route del "${other%%=*}"
  fi
done
rm -f "$conf"
rm -rf /opt/cni /srv/cni-lab
# `ip netns add` mounted /run/netns on a node that had none: gone with the last namespace.
if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
  while mountpoint -q /run/netns; do umount /run/netns; done
  rmdir /run/netns
fi
