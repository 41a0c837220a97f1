#!/bin/sh
# Lesson 202 typed by hand on top of the lab's start stage (the LAN host on
# lan0 and the page in /srv/netns-lab exist), the way a student following the
# lesson does it: rules without comments, the lesson's DNAT without an
# interface, the default route written as 0.0.0.0/0, and a web server started
# from a shell. OMIT=<step> leaves one step out (masquerade, dnat, web, route,
# forward), as a student who forgot it.
set -eu
omit="${OMIT:-}"
step() { [ "$omit" != "$1" ]; }

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
if step route; then
  ip -n blue route add 192.168.1.0/24 via 192.168.15.5
  ip -n blue route add 0.0.0.0/0 via 192.168.15.5
fi
if step forward; then
  sysctl -q -w net.ipv4.ip_forward=1
fi
if step masquerade; then
  iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE
fi
if step dnat; then
  iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80
fi
if step web; then
  cd /srv/netns-lab
  setsid -f ip netns exec blue python3 -m http.server 80 </dev/null >/dev/null 2>&1
  # Wait until it listens, as a student would try it before moving on.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    ip netns exec blue ss -Hltn 'sport = :80' | grep -q . && break
    sleep 0.2
  done
fi
