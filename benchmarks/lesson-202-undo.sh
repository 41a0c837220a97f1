#!/bin/sh
# Undo benchmarks/lesson-202.sh (not timed).
systemctl stop netns-lab-web-sh 2>/dev/null
iptables -t nat -D POSTROUTING -s 192.168.15.0/24 -j MASQUERADE 2>/dev/null
iptables -t nat -D PREROUTING -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80 2>/dev/null
for ns in red blue orange purple lan-host; do ip netns del "$ns" 2>/dev/null; done
ip link del v-net-0 2>/dev/null
rm -rf /run/netns-lab
true
