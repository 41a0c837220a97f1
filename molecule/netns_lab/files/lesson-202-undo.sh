#!/bin/sh
# What a student typed by hand that the lab never took over, removed the way
# the student would: the web server and the lesson's DNAT without an interface.
pkill -f 'http.server 80' || true
while iptables -t nat -D PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80 2>/dev/null; do :; done
