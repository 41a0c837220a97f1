#!/bin/sh
# Lesson 202 as the plain shell commands a student types, for benchmarks/netns_lab.py
# to compare with the playbook. Runs on a lab machine as root.
set -e
i=1
for ns in red blue orange purple; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add v-net-0 type bridge
ip addr add 192.168.15.5/24 dev v-net-0
ip link set v-net-0 up
for ns in red blue orange purple; do
  ip link add "veth-$ns" type veth peer name "veth-$ns-br"
  ip link set "veth-$ns" netns "$ns"
  ip link set "veth-$ns-br" master v-net-0
  ip -n "$ns" addr add "192.168.15.$i/24" dev "veth-$ns"
  ip -n "$ns" link set "veth-$ns" up
  ip link set "veth-$ns-br" up
  i=$((i + 1))
done
ip netns add lan-host
ip -n lan-host link set lo up
ip link add lan0 type veth peer name eth0 netns lan-host
ip addr add 192.168.1.2/24 dev lan0
ip link set lan0 up
ip -n lan-host addr add 192.168.1.3/24 dev eth0
ip -n lan-host link set eth0 up
ip -n blue route add 192.168.1.0/24 via 192.168.15.5
ip -n blue route add default via 192.168.15.5
sysctl -q -w net.ipv4.ip_forward=1
iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE
iptables -t nat -A PREROUTING -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80
mkdir -p /run/netns-lab
echo "Hello from the web server in namespace blue" > /run/netns-lab/index.html
systemd-run --unit netns-lab-web-sh --quiet ip netns exec blue python3 -m http.server 80 --bind 192.168.15.2 --directory /run/netns-lab
