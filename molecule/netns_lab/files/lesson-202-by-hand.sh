#!/bin/sh
# Lesson 202 typed by hand on top of the lab's start stage (the LAN host on
# lan0), in the order and with the commands of the course's notes: red and
# blue on one cable first (pinged, then deleted), then the bridge v-net-0, four
# namespaces plugged into it, the host's 192.168.15.5/24 on the bridge, blue's
# route to the LAN, the masquerade, blue's default route, the DNAT for port
# 80 (no interface named), and a web server in blue serving the student's own
# folder, started as docs/netns-lab.md says (it outlives the shell). Nothing
# sets ip_forward: the lesson's host forwards already.
# OMIT=<step> leaves one step out (masquerade, dnat, web, route), as a student
# who forgot it.
set -eu
omit="${OMIT:-}"
step() { [ "$omit" != "$1" ]; }

ip netns add red
ip netns add blue
ip link add veth-red type veth peer name veth-blue
ip link set veth-red netns red
ip link set veth-blue netns blue
ip -n red addr add 192.168.15.1/24 dev veth-red
ip -n blue addr add 192.168.15.2/24 dev veth-blue
ip -n red link set veth-red up
ip -n blue link set veth-blue up
ip netns exec red ping -c 1 -W 2 192.168.15.2 >/dev/null
ip -n red link del veth-red

ip netns add orange
ip netns add purple
ip link add v-net-0 type bridge
ip link set dev v-net-0 up
i=1
for ns in red blue orange purple; do
  ip link add "veth-$ns" type veth peer name "veth-$ns-br"
  ip link set "veth-$ns" netns "$ns"
  ip link set "veth-$ns-br" master v-net-0
  ip -n "$ns" addr add "192.168.15.$i/24" dev "veth-$ns"
  ip -n "$ns" link set "veth-$ns" up
  ip link set "veth-$ns-br" up
  i=$((i + 1))
done
ip addr add 192.168.15.5/24 dev v-net-0
if step route; then
  ip netns exec blue ip route add 192.168.1.0/24 via 192.168.15.5
fi
if step masquerade; then
  iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE
fi
if step route; then
  ip netns exec blue ip route add default via 192.168.15.5
fi
if step dnat; then
  iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80
fi
if step web; then
  mkdir -p /root/site && echo "blue's own page" > /root/site/index.html
  cd /root/site
  ip netns exec blue setsid python3 -m http.server 80 >/var/log/web.log 2>&1 </dev/null &
  # Wait until it listens, as a student would try it before moving on.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    ip netns exec blue ss -Hltn 'sport = :80' | grep -q . && break
    sleep 0.2
  done
fi
