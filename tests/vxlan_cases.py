# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The two-node VXLAN topology the unit and kernel tests of module_utils/topology.py share.

Two namespaces, n1 and n2, stand for two nodes: a veth pair u1/u2 (192.0.2.1/24,
192.0.2.2/24) is the node network (the underlay), and a vxlan in each, flooding
to the other, carries the pod addresses 10.244.1.0/32 and 10.244.2.0/32, each
node reaching the other's pod subnet by an onlink route through its vxlan, as
flannel's vxlan backend does.
"""
import copy


def vxlan_item(namespace, dev, local, remotes, address, **more):
    return dict({'name': 'vxlan0', 'namespace': namespace, 'vni': 42, 'dev': dev, 'local': local,
                 'remotes': remotes, 'addresses': [address]}, **more)


def onlink_route(namespace, dst, via):
    return {'namespace': namespace, 'dst': dst, 'via': via, 'dev': 'vxlan0', 'onlink': True}


UNDERLAY = {
    'namespaces': [{'name': 'n1'}, {'name': 'n2'}],
    'veth_pairs': [{'name': 'u1', 'namespace': 'n1', 'addresses': ['192.0.2.1/24'],
                    'peer': {'name': 'u2', 'namespace': 'n2', 'addresses': ['192.0.2.2/24']}}],
}
VXLANS = [vxlan_item('n1', 'u1', '192.0.2.1', ['192.0.2.2'], '10.244.1.0/32'),
          vxlan_item('n2', 'u2', '192.0.2.2', ['192.0.2.1'], '10.244.2.0/32')]
ROUTES = [onlink_route('n1', '10.244.2.0/24', '10.244.2.0'), onlink_route('n2', '10.244.1.0/24', '10.244.1.0')]
OVERLAY = dict(UNDERLAY, vxlans=VXLANS, routes=ROUTES)


def with_vxlan(base, index, **changes):
    """`base` with changes to its vxlans[index]."""
    result = copy.deepcopy(base)
    result['vxlans'][index].update(changes)
    return result
