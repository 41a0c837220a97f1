#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: ip_topology
short_description: Converge network namespaces, veth pairs, bridges, VXLAN links, addresses and routes
description:
  - Manages, as one declared state, the Linux network namespaces, bridges, veth pairs, VXLAN links, IP addresses and
    routes of a lab topology, using the C(ip) command of iproute2 (and its C(bridge) command for the flood lists of
    VXLAN links). One task converges the whole topology.
  - Reads the current state with C(ip -j) (and C(bridge -j fdb show)) and runs only the commands needed; the commands
    are returned, so they can be read as the equivalent manual steps.
  - Every link the module declares is brought up, and so is C(lo) in every declared namespace.
  - Addresses of declared links are exact (undeclared ones are removed, except IPv6 link-local addresses). Links,
    addresses and routes that are not declared are never touched.
  - In the root namespace, an existing interface is taken over only when it can be told to be the declared one, or
    when it is listed in O(owned); otherwise the module refuses, before any command runs.
  - A name of C(ip netns list) whose file C(/run/netns/NAME) is no longer a mount point (after
    C(umount /run/netns/NAME)) is a stale entry. It is never read; it is deleted (C(ip netns del)) and, when declared
    with O(state=present), created again.
  - All arguments are checked before any command runs; every problem found is reported at once.
author:
  - CKA networking labs maintainers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
requirements:
  - iproute2 with JSON output (C(ip -j)) on the managed host
options:
  state:
    description:
      - V(present) creates or repairs the declared objects so they match the declaration.
      - V(absent) removes the declared routes, VXLAN links, veth pairs, bridges and namespaces, in that order, and
        nothing else.
    type: str
    choices: [present, absent]
    default: present
  namespaces:
    description:
      - Named network namespaces (C(ip netns)). C(lo) is set up in each.
      - A stale entry of that name (its file in C(/run/netns) is no longer a mount point) is deleted and created again;
        with O(state=absent) it is deleted.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Namespace name, 1-255 characters without C(/) or whitespace.
        type: str
        required: true
  bridges:
    description:
      - Linux bridges. A link of the same name but of another kind is deleted and replaced.
      - In the root namespace, an existing link of the same name that is not a bridge is refused unless it is in
        O(owned). When O(owned) is given, an existing bridge not listed there is taken over only if its addresses
        (IPv6 link-local ones aside) are all among O(bridges[].addresses) (one built by hand for the lab); otherwise it
        is refused.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Interface name, 1-15 characters without C(/), C(:) or whitespace.
        type: str
        required: true
      namespace:
        description:
          - Namespace of the bridge, one of O(namespaces); omit or V(null) for the root namespace.
        type: str
      addresses:
        description:
          - Exact list of addresses in CIDR form, for example V(192.168.15.5/24) or V(fd00::5/64).
        type: list
        elements: str
        default: []
      mac:
        description:
          - MAC address given to the bridge when the module creates it, a unicast address such as V(02:42:ac:11:00:05).
            Quote it in YAML (an unquoted address of digits only, such as 02:42:11:00:00:05, is read as a number).
          - Never changed on a bridge that exists. A bridge created again by a repair gets the same address, so the
            neighbours' ARP caches stay right.
        type: str
  veth_pairs:
    description:
      - Virtual ethernet pairs, created with both ends directly in their namespaces.
      - A pair whose ends are missing, in the wrong namespace, or not each other's peer is deleted and created again.
      - In the root namespace, an existing end is deleted only when it is a veth paired with the declared peer (or with
        a link in one of O(namespaces)), or when it is in O(owned); any other link of that name is refused.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Interface name of this end.
        type: str
        required: true
      namespace:
        description:
          - Namespace of this end, one of O(namespaces); omit or V(null) for the root namespace.
        type: str
      addresses:
        description:
          - Exact list of addresses of this end in CIDR form.
        type: list
        elements: str
        default: []
      master:
        description:
          - Bridge to attach this end to; a bridge of O(bridges) in the same namespace as this end.
          - Omit or V(null) for no bridge (an end attached to one is detached).
        type: str
      mac:
        description:
          - MAC address given to this end when the module creates the pair, a unicast address such as
            V(02:42:ac:11:00:02).
          - Never changed on an end that exists. A pair created again by a repair gets the same addresses, so the
            neighbours' ARP caches stay right.
        type: str
      peer:
        description:
          - The other end of the pair.
        type: dict
        required: true
        suboptions:
          name:
            description:
              - Interface name of the peer end.
            type: str
            required: true
          namespace:
            description:
              - Namespace of the peer end; omit or V(null) for the root namespace.
            type: str
          addresses:
            description:
              - Exact list of addresses of the peer end in CIDR form.
            type: list
            elements: str
            default: []
          master:
            description:
              - Bridge to attach the peer end to, declared in the peer's namespace.
            type: str
          mac:
            description:
              - MAC address given to the peer end when the module creates the pair; see O(veth_pairs[].mac).
            type: str
  vxlans:
    description:
      - VXLAN links (RFC 7348), each an overlay of layer 2 over UDP across an underlay link, flooding to a list of
        remote VTEPs (head-end replication, as in the kernel's C(Documentation/networking/vxlan.rst)). Created with
        C(ip link add NAME [address MAC] type vxlan id VNI dev DEV [local IP] dstport PORT [nolearning]), then its
        flood list, MTU, addresses and C(up).
      - A vxlan whose O(vxlans[].vni), O(vxlans[].dev), O(vxlans[].local), O(vxlans[].dstport) or
        O(vxlans[].learning) differ from the declaration is deleted and created again (the kernel cannot change them
        in place). A link of the same name but of another kind is deleted and replaced.
      - In the root namespace, an existing link of the same name that is not a vxlan is refused unless it is in
        O(owned). When O(owned) is given, an existing vxlan not listed there is taken over only if its settings match
        and its addresses (IPv6 link-local ones aside) are all declared; otherwise it is refused.
      - Deleting the underlay link deletes its vxlans too (the kernel does); they are made again on the next run.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Interface name, 1-15 characters without C(/), C(:) or whitespace.
        type: str
        required: true
      namespace:
        description:
          - Namespace of the vxlan, one of O(namespaces); omit or V(null) for the root namespace.
        type: str
      vni:
        description:
          - VXLAN Network Identifier, 1-16777215 (24 bits, RFC 7348); iproute2's C(id).
          - Required with O(state=present).
          - In one namespace, two vxlans of one address family cannot share a VNI and O(vxlans[].dstport).
        type: int
      dev:
        description:
          - Underlay link the encapsulated packets go out by (iproute2's C(dev)), for example V(eth0), in the vxlan's
            namespace. It need not be declared here, but must exist when the vxlan is built (a link declared in
            O(bridges) or O(veth_pairs) is made first).
          - Required with O(state=present).
        type: str
      local:
        description:
          - Source address of the encapsulated packets (iproute2's C(local)), this machine's address on the underlay.
          - Omitted, the kernel picks it from the route to each remote, and the vxlan sends over IPv4; remotes that are
            IPv6 need an IPv6 O(vxlans[].local).
        type: str
      dstport:
        description:
          - UDP destination port, 1-65535. The default is VXLAN's port assigned by IANA (RFC 7348); the kernel's own
            default, 8472, is never used by this module.
        type: int
        default: 4789
      learning:
        description:
          - Whether the vxlan learns remote MAC addresses from the packets it receives; V(false) is iproute2's
            C(nolearning).
        type: bool
        default: true
      remotes:
        description:
          - The flood list, the underlay addresses of the other VTEPs; one all-zeros FDB entry each
            (C(bridge fdb append 00:00:00:00:00:00 dev NAME dst IP)), so broadcast, unknown unicast and multicast
            frames are sent to each.
          - Exact and unordered; missing entries are appended, others removed (C(bridge fdb del)).
          - Addresses of one family, that of O(vxlans[].local) when given; each once, and not O(vxlans[].local).
        type: list
        elements: str
        default: []
      addresses:
        description:
          - Exact list of addresses in CIDR form, for example V(10.244.1.0/32), as flannel gives its VXLAN link the
            first address of the node's pod subnet and reaches the other nodes by O(routes[].onlink) routes.
        type: list
        elements: str
        default: []
      mac:
        description:
          - MAC address given to the vxlan when the module creates it; see O(bridges[].mac). Never changed on a vxlan
            that exists; a vxlan created again gets the same address.
        type: str
      mtu:
        description:
          - MTU of the vxlan, 68-65535, at most the underlay's less 50 bytes (IPv4) or 70 (IPv6), the encapsulation's
            overhead (the kernel refuses more).
          - Omitted, the kernel's choice (the underlay's MTU less that overhead) is left alone.
        type: int
  routes:
    description:
      - Routes of the main table. A route is identified by namespace, O(routes[].dst) and O(routes[].metric); one that
        exists with another gateway or link, or with a different O(routes[].onlink) flag, is replaced. Undeclared routes
        are never deleted.
    type: list
    elements: dict
    default: []
    suboptions:
      namespace:
        description:
          - Namespace of the route, one of O(namespaces); omit or V(null) for the root namespace.
        type: str
      dst:
        description:
          - Destination network with the host bits zero (V(192.168.1.0/24)), or V(default).
          - V(0.0.0.0/0) and V(::/0) are the same route as V(default).
        type: str
        required: true
      via:
        description:
          - Gateway address. In a declared namespace it must lie in a subnet declared on one of its links.
          - At least one of O(routes[].via) and O(routes[].dev) is required.
        type: str
      dev:
        description:
          - Output link. In a declared namespace it must be a link declared there.
        type: str
      metric:
        description:
          - Route metric. Omitted means the kernel default (0 for IPv4, 1024 for IPv6).
        type: int
      onlink:
        description:
          - iproute2's C(onlink) nexthop flag, see ip-route(8). The gateway O(routes[].via) is taken as directly
            reachable on O(routes[].dev), even with no subnet there that holds it, as flannel routes a node's pod
            subnet (C(10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink)).
          - Requires O(routes[].via) and O(routes[].dev); the gateway is then not checked against the subnets
            declared on the link.
          - A route found without the flag (read from the C(flags) of C(ip -j route show)) does not match one
            declared with it, and the other way round; it is replaced.
        type: bool
        default: false
  owned:
    description:
      - Links (bridges, veth ends, vxlans) the caller made earlier on this machine (a lab engine records them), by name
        and namespace.
      - A declared root-namespace link listed here is never refused as foreign; when it does not match the declaration
        (for example a veth whose peer was left in an unnamed namespace, after its namespace was deleted with
        C(ip netns del) while a process still held it) it is deleted and created again.
      - With O(state=absent), a declared veth end listed here is deleted even when its peer cannot be found.
      - Links listed here but not declared are not touched.
      - Given at all (even empty), it also says the caller keeps track of what it made, so a root-namespace bridge
        that is not listed here and holds addresses the declaration does not give it is refused rather than taken
        over. Omitted, the module has no such record, and the addresses of a declared bridge are made exact.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Interface name.
        type: str
        required: true
      namespace:
        description:
          - Namespace of the link; omit or V(null) for the root namespace.
        type: str
notes:
  - Needs root privileges on the managed host (set C(become) to C(true) on the task or play).
  - A route is added after the addresses and links it needs; a gateway outside every connected subnet is refused by the
    kernel, unless the route is O(routes[].onlink).
  - The C(bridge) command of iproute2 is needed only when O(vxlans) are declared. Flood lists are read and changed
    with C(bridge [-n NS] -j fdb show dev NAME) and C(bridge [-n NS] fdb append|del); other FDB entries (learned or
    static MAC addresses) are left alone.
  - IPv4 and IPv6 are both supported. IPv6 link-local addresses that are not declared are ignored.
seealso:
  - name: ip-netns(8)
    description: The C(ip netns) manual page.
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
  - name: ip-link(8)
    description: The C(ip link) manual page, with the settings of C(type vxlan).
    link: https://man7.org/linux/man-pages/man8/ip-link.8.html
  - name: bridge(8)
    description: The C(bridge) manual page, with C(bridge fdb).
    link: https://man7.org/linux/man-pages/man8/bridge.8.html
  - name: Virtual eXtensible Local Area Networking documentation
    description: The kernel's VXLAN documentation, with the all-zeros FDB entries of head-end replication.
    link: https://docs.kernel.org/networking/vxlan.html
"""

EXAMPLES = r"""
- name: Two namespaces joined by one veth pair
  cka.lab.ip_topology:
    namespaces:
      - name: red
      - name: blue
    veth_pairs:
      - name: veth-red
        namespace: red
        addresses: [192.168.15.1/24]
        peer:
          name: veth-blue
          namespace: blue
          addresses: [192.168.15.2/24]
  become: true

- name: Namespaces on a bridge in the root namespace, with routes out of blue
  cka.lab.ip_topology:
    namespaces:
      - name: red
      - name: blue
    bridges:
      - name: v-net-0
        addresses: [192.168.15.5/24]
    veth_pairs:
      - name: veth-red
        namespace: red
        addresses: [192.168.15.1/24]
        peer:
          name: veth-red-br
          master: v-net-0
      - name: veth-blue
        namespace: blue
        addresses: [192.168.15.2/24]
        peer:
          name: veth-blue-br
          master: v-net-0
    routes:
      - namespace: blue
        dst: 192.168.1.0/24
        via: 192.168.15.5
      - namespace: blue
        dst: default
        via: 192.168.15.5
  become: true

- name: Repair the bridged topology after its namespace was deleted by hand, keeping the MAC addresses
  cka.lab.ip_topology:
    namespaces:
      - name: red
    bridges:
      - name: v-net-0
        mac: "02:42:c0:a8:0f:05"
        addresses: [192.168.15.5/24]
    veth_pairs:
      - name: veth-red
        namespace: red
        mac: "02:42:c0:a8:0f:01"
        addresses: [192.168.15.1/24]
        peer:
          name: veth-red-br
          mac: "02:42:c0:a8:0f:81"
          master: v-net-0
    # Made by an earlier run: replaced, not refused, if it no longer matches.
    owned:
      - name: v-net-0
      - name: veth-red-br
  become: true

- name: A node of a flannel-like overlay, pods reached over VXLAN across the node network
  cka.lab.ip_topology:
    vxlans:
      - name: vxlan0
        vni: 1
        dev: eth0
        local: 10.89.0.31
        remotes: [10.89.0.30, 10.89.0.32]
        addresses: [10.244.1.0/32]
        mtu: 1450
    routes:
      - dst: 10.244.0.0/24
        via: 10.244.0.0
        dev: vxlan0
        onlink: true
      - dst: 10.244.2.0/24
        via: 10.244.2.0
        dev: vxlan0
        onlink: true
  become: true

- name: Remove that overlay (its routes go with the link)
  cka.lab.ip_topology:
    state: absent
    vxlans:
      - name: vxlan0
  become: true

- name: Remove that topology again
  cka.lab.ip_topology:
    state: absent
    namespaces:
      - name: red
      - name: blue
    bridges:
      - name: v-net-0
  become: true
"""

RETURN = r"""
commands:
  description:
    - The C(ip) (and C(bridge)) commands that were run, or that would be run in check mode, in order.
  returned: always
  type: list
  elements: str
  sample:
    - ip netns add red
    - ip -n red link set lo up
    - ip link add veth-red netns red type veth peer name veth-red-br
    - ip -n red addr add 192.168.15.1/24 dev veth-red
    - ip -n red link set veth-red up
    - ip link add vxlan0 type vxlan id 1 dev eth0 local 10.89.0.31 dstport 4789
    - bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.89.0.30
diff:
  description:
    - The declared objects as found (C(before)) and as they are after the run (C(after)), each with the keys
      C(namespaces), C(links) and C(routes). A vxlan's entry also has C(vni), C(dev), C(local), C(dstport),
      C(learning), C(remotes) and C(mtu); a route with the C(onlink) flag has the key C(onlink), true.
  returned: when diff mode is enabled
  type: dict
  sample:
    before:
      namespaces: []
      links: []
      routes: []
    after:
      namespaces: [red]
      links:
        - namespace: red
          name: veth-red
          kind: veth
          master: null
          addresses: [192.168.15.1/24]
          up: true
          peer: {namespace: null, name: veth-red-br}
      routes: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cka.lab.plugins.module_utils.topology import (
    IpCommandError,
    TopologyError,
    command_string,
    describe,
    parse_topology,
    plan_absent,
    plan_present,
    read_state,
)

ADDRESSES = dict(type='list', elements='str', default=[])

ARGUMENT_SPEC = dict(
    state=dict(type='str', default='present', choices=['present', 'absent']),
    namespaces=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
    )),
    bridges=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
        namespace=dict(type='str'),
        addresses=ADDRESSES,
        mac=dict(type='str'),
    )),
    veth_pairs=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
        namespace=dict(type='str'),
        addresses=ADDRESSES,
        master=dict(type='str'),
        mac=dict(type='str'),
        peer=dict(type='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            namespace=dict(type='str'),
            addresses=ADDRESSES,
            master=dict(type='str'),
            mac=dict(type='str'),
        )),
    )),
    vxlans=dict(type='list', elements='dict', default=[], options=dict(
        name=dict(type='str', required=True),
        namespace=dict(type='str'),
        vni=dict(type='int'),  # required with state=present (parse_topology says so, naming the path)
        dev=dict(type='str'),  # likewise
        local=dict(type='str'),
        dstport=dict(type='int', default=4789),
        learning=dict(type='bool', default=True),
        remotes=dict(type='list', elements='str', default=[]),
        addresses=ADDRESSES,
        mac=dict(type='str'),
        mtu=dict(type='int'),
    )),
    routes=dict(type='list', elements='dict', default=[], options=dict(
        namespace=dict(type='str'),
        dst=dict(type='str', required=True),
        via=dict(type='str'),
        dev=dict(type='str'),
        metric=dict(type='int'),
        onlink=dict(type='bool', default=False),
    )),
    owned=dict(type='list', elements='dict', options=dict(
        name=dict(type='str', required=True),
        namespace=dict(type='str'),
    )),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        topology = parse_topology(module.params)
    except TopologyError as exc:
        module.fail_json(msg='Invalid topology: %s' % '; '.join(exc.errors), errors=exc.errors)

    bins = {'ip': module.get_bin_path('ip', required=True)}
    if topology.vxlans:  # their flood lists are read and changed with `bridge fdb`
        bins['bridge'] = module.get_bin_path('bridge', required=True)

    def run(argv):
        return module.run_command([bins[argv[0]]] + argv[1:], environ_update={'LC_ALL': 'C'})

    done = []
    try:
        state = read_state(run, topology)
        try:
            planner = plan_present(topology, state) if topology.state == 'present' else plan_absent(topology, state)
        except TopologyError as exc:
            module.fail_json(msg='Refused: %s' % '; '.join(exc.errors), errors=exc.errors)
        if not module.check_mode:
            for argv in planner.commands:
                rc, out, err = run(argv)
                if rc != 0:
                    raise IpCommandError(argv, rc, out, err)
                done.append(command_string(argv))
    except IpCommandError as exc:
        module.fail_json(msg=str(exc), cmd=command_string(exc.argv), rc=exc.rc, stdout=exc.stdout,
                         stderr=exc.stderr, commands=done, changed=bool(done))

    result = dict(changed=bool(planner.commands), commands=[command_string(argv) for argv in planner.commands])
    if module._diff:
        result['diff'] = dict(before=describe(topology, state), after=describe(topology, planner.model))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
