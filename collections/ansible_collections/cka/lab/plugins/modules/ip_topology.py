#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: ip_topology
short_description: Converge a topology of network namespaces, veth pairs, bridges, addresses and routes
description:
  - Manages, as one declared state, the Linux network namespaces, bridges, veth pairs, IP addresses and routes of a lab
    topology, using the C(ip) command of iproute2. One task converges the whole topology.
  - Reads the current state with C(ip -j) and runs only the C(ip) commands needed; the commands are returned, so they can
    be read as the equivalent manual steps.
  - Every link the module declares is brought up, and so is C(lo) in every declared namespace.
  - Addresses of declared links are exact (undeclared ones are removed, except IPv6 link-local addresses). Links, addresses
    and routes that are not declared are never touched.
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
      - V(absent) removes the declared routes, veth pairs, bridges and namespaces, in that order, and nothing else.
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
  routes:
    description:
      - Routes of the main table. A route is identified by namespace, O(routes[].dst) and O(routes[].metric); one that
        exists with another gateway or link is replaced. Undeclared routes are never deleted.
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
  owned:
    description:
      - Links the caller made earlier on this machine (a lab engine records them), by name and namespace.
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
    kernel.
  - IPv4 and IPv6 are both supported. IPv6 link-local addresses that are not declared are ignored.
seealso:
  - name: ip-netns(8)
    description: The C(ip netns) manual page.
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
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
    - The C(ip) commands that were run, or that would be run in check mode, in order.
  returned: always
  type: list
  elements: str
  sample:
    - ip netns add red
    - ip -n red link set lo up
    - ip link add veth-red netns red type veth peer name veth-red-br
    - ip -n red addr add 192.168.15.1/24 dev veth-red
    - ip -n red link set veth-red up
diff:
  description:
    - The declared objects as found (C(before)) and as they are after the run (C(after)), each with the keys
      C(namespaces), C(links) and C(routes).
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
    routes=dict(type='list', elements='dict', default=[], options=dict(
        namespace=dict(type='str'),
        dst=dict(type='str', required=True),
        via=dict(type='str'),
        dev=dict(type='str'),
        metric=dict(type='int'),
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

    ip = module.get_bin_path('ip', required=True)

    def run(argv):
        return module.run_command([ip] + argv[1:], environ_update={'LC_ALL': 'C'})

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
