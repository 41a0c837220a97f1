# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The picture of a lab (module_utils/lab_drawing.py and the cka.lab.lab_drawing action), read as a reader sees it.

The pictures are laid out by the real Graphviz ``dot``. What a reader sees is taken
from dot's own account of its drawing (``dot -Tjson``: each box with its label
and what it holds, each line with its two ends and its style) and from the SVG."""
import copy
import json
import re
import shutil
import xml.etree.ElementTree as ET
from unittest import mock

import pytest

from ansible_collections.cka.lab.plugins.action.lab_drawing import ActionModule
from ansible_collections.cka.lab.plugins.module_utils.lab_drawing import to_dot, to_svg

graphviz = pytest.importorskip('graphviz')
pytestmark = pytest.mark.skipif(shutil.which('dot') is None, reason="Graphviz's dot is not installed")

HOST = 'host (root namespace)'
SVG = '{http://www.w3.org/2000/svg}'


def stage_of(machine, stage='full'):
    return {'lab': 'tiny_lab', 'lesson': '999', 'title': 'Tiny', 'group': 'tiny_lab', 'name': 'tiny-lab',
            'stages': [stage], 'stage': stage, 'machine': machine, 'probes': []}


# Two namespaces on a bridge of the host, a cable straight between them, and a
# namespace with nothing in it yet.
MACHINE = {
    'namespaces': [{'name': 'red'}, {'name': 'blue'}, {'name': 'spare'}],
    'bridges': [{'name': 'br0', 'addresses': ['10.0.0.254/24']}],
    'veth_pairs': [
        {'name': 'veth-red', 'namespace': 'red', 'addresses': ['10.0.0.1/24'],
         'peer': {'name': 'veth-red-br', 'master': 'br0'}},
        {'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['10.0.0.2/24'],
         'peer': {'name': 'veth-blue-br', 'master': 'br0'}},
        {'name': 'cable-r', 'namespace': 'red', 'addresses': ['10.9.0.1/30'],
         'peer': {'name': 'cable-b', 'namespace': 'blue', 'addresses': ['10.9.0.2/30']}},
    ],
    'routes': [
        {'namespace': 'blue', 'dst': '192.168.1.0/24', 'via': '10.0.0.254'},
        {'namespace': 'blue', 'dst': 'default', 'via': '10.0.0.254'},
    ],
    'sysctls': [
        {'name': 'net.ipv4.ip_forward', 'value': '1'},
        {'name': 'net.bridge.bridge-nf-call-iptables', 'value': '0', 'environment': True, 'if_exists': True},
    ],
    'rules': [
        {'table': 'nat', 'rule': '-A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE'},
        {'table': 'nat', 'rule': '-A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.2:80'},
        {'table': 'filter', 'rule': '-A FORWARD -i br0 -j ACCEPT', 'environment': True},
    ],
    'services': [{'name': 'web', 'namespace': 'blue', 'command': ['python3', '-m', 'http.server', '80'],
                  'listen': [{'protocol': 'tcp', 'address': '10.0.0.2', 'port': 80}]}],
}


def lines(label):
    """The lines of a Graphviz label as they appear on the picture."""
    return [line.replace('\xa0', ' ').strip() for line in re.split(r'\\[nlr]', label) if line.strip()]


def drawing(declaration):
    """What the picture shows: {box heading: [its items' lines]}, the box labels, and the visible lines
    between items, each as (style, (box, first line of item), (box, first line of item))."""
    laid_out = json.loads(graphviz.Source(to_dot(declaration)).pipe(format='json', engine='dot'))
    objects = laid_out['objects']
    box_of, boxes, headings = {}, {}, {}
    for obj in objects:
        if 'nodes' in obj:
            heading = lines(obj['label'])[0]
            headings[heading] = lines(obj['label'])
            boxes[heading] = []
            for gvid in obj['nodes']:
                box_of[gvid] = heading
                boxes[heading].append(lines(objects[gvid]['label']))
    edges = set()
    for edge in laid_out.get('edges', []):
        if edge.get('style') == 'invis':
            continue
        ends = [(box_of.get(edge[k]), lines(objects[edge[k]]['label'])[0]) for k in ('tail', 'head')]
        edges.add((edge.get('style', 'solid'), tuple(sorted(ends))))
    return {'boxes': boxes, 'headings': headings, 'edges': edges,
            'title': lines(laid_out.get('label', ''))}


@pytest.fixture(scope='module')
def picture():
    return drawing(stage_of(MACHINE))


def test_each_namespace_and_the_host_is_a_box_labelled_with_its_name(picture):
    assert sorted(picture['boxes']) == sorted([HOST, 'namespace red', 'namespace blue', 'namespace spare'])


def test_each_interface_is_in_the_box_of_its_namespace_with_its_addresses(picture):
    boxes = picture['boxes']
    assert ['veth-red', '10.0.0.1/24'] in boxes['namespace red']
    assert ['cable-r', '10.9.0.1/30'] in boxes['namespace red']
    assert ['veth-blue', '10.0.0.2/24'] in boxes['namespace blue']
    assert ['cable-b', '10.9.0.2/30'] in boxes['namespace blue']
    assert ['br0', 'bridge', '10.0.0.254/24'] in boxes[HOST]
    assert ['veth-red-br'] in boxes[HOST] and ['veth-blue-br'] in boxes[HOST]


def test_a_namespace_with_no_interface_says_so(picture):
    assert picture['boxes']['namespace spare'] == [['(no interfaces)']]


def test_one_solid_line_per_veth_pair_joining_its_two_ends(picture):
    solid = {ends for style, ends in picture['edges'] if style == 'solid'}
    assert solid == {
        ((HOST, 'veth-red-br'), ('namespace red', 'veth-red')),
        ((HOST, 'veth-blue-br'), ('namespace blue', 'veth-blue')),
        (('namespace blue', 'cable-b'), ('namespace red', 'cable-r')),
    }


def test_a_dashed_line_joins_each_bridge_port_to_its_bridge(picture):
    dashed = {ends for style, ends in picture['edges'] if style == 'dashed'}
    assert dashed == {((HOST, 'br0'), (HOST, 'veth-red-br')), ((HOST, 'br0'), (HOST, 'veth-blue-br'))}
    assert 'dashed line: a port of a bridge' in picture['title'][-1]


def test_routes_are_listed_under_the_namespace_name(picture):
    assert picture['headings']['namespace blue'] == [
        'namespace blue', 'routes:', '192.168.1.0/24 via 10.0.0.254', 'default via 10.0.0.254']
    assert picture['headings']['namespace red'] == ['namespace red']


def test_the_lessons_sysctls_are_listed_but_not_those_of_the_environment(picture):
    assert picture['headings'][HOST] == [HOST, 'sysctls:', 'net.ipv4.ip_forward = 1']


def test_nat_rules_are_a_note_in_the_host_and_filter_rules_are_not_shown(picture):
    notes = [item for item in picture['boxes'][HOST] if item[0] == 'iptables -t nat']
    assert len(notes) == 1
    text = ' '.join(notes[0])
    assert '-A POSTROUTING -s 10.0.0.0/24 -j MASQUERADE' in text
    assert text.index('POSTROUTING') < text.index('PREROUTING')  # in the order declared
    assert '--to-destination 10.0.0.2:80' in text
    assert 'FORWARD' not in repr(picture)


def test_a_service_is_a_note_in_its_namespace_with_what_it_listens_on(picture):
    assert ['service web', 'tcp 10.0.0.2:80'] in picture['boxes']['namespace blue']


def test_the_title_names_the_lesson_and_the_stage(picture):
    assert picture['title'][0] == 'Lesson 999: Tiny (lab tiny_lab, stage full)'


def test_a_stage_without_bridges_has_no_key_for_dashed_lines():
    machine = {'namespaces': [{'name': 'a'}, {'name': 'b'}],
               'veth_pairs': [{'name': 'ea', 'namespace': 'a', 'peer': {'name': 'eb', 'namespace': 'b'}}]}
    shown = drawing(stage_of(machine, 'direct'))
    assert shown['title'] == ['Lesson 999: Tiny (lab tiny_lab, stage direct)', 'thick line: a veth pair']
    assert shown['boxes'][HOST] == [['(no interfaces)']]


def test_namespaces_on_one_bridge_are_drawn_side_by_side_so_lines_do_not_cross():
    # a -- switch1 -- router -- switch2 -- b: the router belongs between a and b, whatever the names.
    def plugged(namespace, name, address, switch):
        return {'name': name, 'namespace': namespace, 'addresses': [address],
                'peer': {'name': 'v-%s-%s' % (namespace, name), 'master': switch}}

    machine = {'namespaces': [{'name': 'a'}, {'name': 'b'}, {'name': 'router'}],
               'bridges': [{'name': 'switch1'}, {'name': 'switch2'}],
               'veth_pairs': [plugged('a', 'eth0', '10.1.0.10/24', 'switch1'),
                              plugged('b', 'eth0', '10.2.0.10/24', 'switch2'),
                              plugged('router', 'eth0', '10.1.0.1/24', 'switch1'),
                              plugged('router', 'eth1', '10.2.0.1/24', 'switch2')]}
    laid_out = json.loads(graphviz.Source(to_dot(stage_of(machine))).pipe(format='json', engine='dot'))
    left = {lines(o['label'])[0]: float(o['bb'].split(',')[0]) for o in laid_out['objects'] if 'nodes' in o}
    assert sorted(['namespace a', 'namespace router', 'namespace b'], key=left.get)[1] == 'namespace router'


def test_the_same_declaration_gives_the_same_picture_whatever_its_order():
    shuffled = copy.deepcopy(MACHINE)
    for kind in ('namespaces', 'bridges', 'veth_pairs', 'services'):
        shuffled[kind].reverse()
    first = to_dot(stage_of(MACHINE))
    assert to_dot(stage_of(MACHINE)) == first
    assert to_dot(stage_of(shuffled)) == first
    assert to_svg(first) == to_svg(to_dot(stage_of(shuffled)))


def test_routes_and_rules_keep_their_declared_order():
    swapped = copy.deepcopy(MACHINE)
    swapped['rules'].reverse()
    swapped['routes'].reverse()
    shown = drawing(stage_of(swapped))
    assert shown['headings']['namespace blue'][2] == 'default via 10.0.0.254'
    note = ' '.join(next(item for item in shown['boxes'][HOST] if item[0] == 'iptables -t nat'))
    assert note.index('PREROUTING') < note.index('POSTROUTING')


def test_quotes_backslashes_and_angle_brackets_are_shown_as_written():
    machine = copy.deepcopy(MACHINE)
    machine['rules'] = [{'table': 'nat', 'rule': r'-A POSTROUTING -m comment --comment "a \"b\" <c>" -j RETURN'}]
    svg = to_svg(to_dot(stage_of(machine)))
    texts = ''.join(t.text or '' for t in ET.fromstring(svg).iter(SVG + 'text'))
    assert '"a \\"b\\" <c>"' in texts


def svg_texts(svg):
    """The lines of text of an SVG picture."""
    root = ET.fromstring(svg)
    assert root.tag == SVG + 'svg'
    return [(t.text or '').replace('\xa0', ' ').strip() for t in root.iter(SVG + 'text')]


def test_the_svg_shows_the_names_and_addresses():
    svg = to_svg(to_dot(stage_of(MACHINE)))
    texts = svg_texts(svg)
    for shown in ('namespace red', 'namespace blue', HOST, 'veth-red', '10.0.0.1/24', 'br0', '10.0.0.254/24',
                  'service web', 'tcp 10.0.0.2:80'):
        assert shown in texts
    assert re.search(rb'\d{4}-\d{2}-\d{2}', svg) is None  # no date in the picture


# -- the action ----------------------------------------------------------

def whole():
    machine = copy.deepcopy(MACHINE)
    machine['namespaces'][2]['stages'] = ['full']
    machine['veth_pairs'][1]['stages'] = ['full']
    machine['veth_pairs'][2]['stages'] = ['start']
    declaration = stage_of(machine)
    declaration['stages'] = ['start', 'full']
    return declaration


def run_action(args, check_mode=False):
    task = mock.MagicMock(args=args, async_val=0, check_mode=check_mode, action='cka.lab.lab_drawing')
    action = ActionModule(task, mock.MagicMock(), mock.MagicMock(), None, None, None)
    return action.run(task_vars={})


def test_the_action_draws_each_stage_once_and_rewrites_only_what_changed(tmp_path):
    dest = tmp_path / 'docs' / 'labs'
    result = run_action({'declaration': whole(), 'dest': str(dest)})
    assert result['changed'] is True
    assert sorted(p.name for p in dest.iterdir()) == ['tiny_lab-full.svg', 'tiny_lab-start.svg']
    start = svg_texts((dest / 'tiny_lab-start.svg').read_bytes())
    full = svg_texts((dest / 'tiny_lab-full.svg').read_bytes())
    assert 'Lesson 999: Tiny (lab tiny_lab, stage start)' in start
    assert 'cable-r' in start and 'cable-r' not in full  # each picture shows only what its stage declares
    assert 'veth-blue' in full and 'veth-blue' not in start
    assert 'namespace spare' in full and 'namespace spare' not in start

    again = run_action({'declaration': whole(), 'dest': str(dest)})
    assert again['changed'] is False and again['changed_files'] == []

    changed = whole()
    changed['machine']['veth_pairs'][1]['addresses'] = ['10.0.0.253/24']  # in stage full only
    check = run_action({'declaration': changed, 'dest': str(dest)}, check_mode=True)
    assert check['changed'] is True and check['changed_files'] == [str(dest / 'tiny_lab-full.svg')]
    assert '10.0.0.253/24' not in svg_texts((dest / 'tiny_lab-full.svg').read_bytes())  # check mode: no write
    run_action({'declaration': changed, 'dest': str(dest)})
    assert '10.0.0.253/24' in svg_texts((dest / 'tiny_lab-full.svg').read_bytes())


def test_the_action_refuses_what_is_not_a_whole_declaration(tmp_path):
    result = run_action({'declaration': {'machine': {}}, 'dest': str(tmp_path)})
    assert result['failed'] is True and 'whole rendered declaration' in result['msg']


NODE = {
    'files': [{'path': '/etc/cni/net.d/10-podnet.conflist', 'format': 'json', 'content': json.dumps({
        'cniVersion': '1.0.0', 'name': 'podnet', 'plugins': [
            {'type': 'bridge', 'bridge': 'cni0', 'isGateway': True,
             'ipam': {'type': 'host-local', 'ranges': [[{'subnet': '10.244.1.0/24', 'gateway': '10.244.1.1'}]]}},
            {'type': 'portmap', 'capabilities': {'portMappings': True}}]})}],
    'pods': [{'name': 'pod-a', 'network': '/etc/cni/net.d/10-podnet.conflist', 'subnet': '10.244.1.0/24'}],
    'vxlans': [{'name': 'vxlan0', 'vni': 1, 'dev': 'eth0', 'dstport': 4789, 'remotes': ['10.213.0.32'],
                'addresses': ['10.244.1.0/32']}],
    'routes': [{'dst': '10.244.2.0/24', 'via': '10.244.2.0', 'dev': 'vxlan0', 'onlink': True}],
}


def test_a_node_shows_its_pods_on_the_bridge_their_network_makes_and_its_vxlan():
    decl = dict(stage_of(NODE), node='node01')
    picture = drawing(decl)

    assert 'pod pod-a' in picture['boxes']
    assert ['eth0', '(CNI ADD, network podnet)', 'an address of 10.244.1.0/24'] in picture['boxes']['pod pod-a']
    assert ['cni0', 'bridge', '10.244.1.1/24'] in picture['boxes'][HOST]
    assert ['vxlan0', 'vxlan, VNI 1, UDP 4789 over eth0', 'to 10.213.0.32', '10.244.1.0/32'] in picture['boxes'][HOST]
    assert ('solid', ((HOST, 'cni0'), ('pod pod-a', 'eth0'))) in picture['edges']
    assert '10.244.2.0/24 via 10.244.2.0 dev vxlan0 onlink' in picture['headings'][HOST]
    assert 'node node01' in ' '.join(picture['title'])


def test_a_machine_now_is_drawn_beside_the_stage_with_the_differences_marked():
    """Declared and missing: red, dashed, "(missing)"; there and not declared: orange, "(not in the lab)";
    other addresses: orange, the lab's beside; the kinds not observed (the NAT note) drawn as declared."""
    from ansible_collections.cka.lab.plugins.module_utils.lab_drawing import compared
    machine = {
        'namespaces': [{'name': 'red'}, {'name': 'blue'}],
        'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.5/24']}],
        'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
                        'peer': {'name': 'veth-red-br', 'master': 'v-net-0'}},
                       {'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['192.168.15.2/24'],
                        'peer': {'name': 'veth-blue-br', 'master': 'v-net-0'}}],
        'routes': [{'namespace': 'blue', 'dst': 'default', 'via': '192.168.15.5'}],
        'rules': [{'table': 'nat', 'rule': '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'}],
    }
    observed = {
        'namespaces': [{'name': 'red'}, {'name': 'stray'}],
        'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.6/24']}],
        'vxlans': [],
        'veth_pairs': [{'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
                        'peer': {'name': 'veth-red-br', 'master': 'v-net-0', 'addresses': []}}],
        'routes': [{'dst': 'default', 'dev': 'eth0'}],
    }
    picture = compared(machine, observed)

    assert picture.status[('ns', 'blue')] == 'missing' and picture.status[('ns', 'stray')] == 'extra'
    assert ('ns', 'red') not in picture.status
    assert picture.status[('if', 'blue', 'veth-blue')] == 'missing'
    assert picture.status[('if', None, 'v-net-0')] == 'differs'
    assert 'the lab: 192.168.15.5/24' in picture.interfaces[None]['v-net-0'][1]
    assert picture.status[('pair', ('blue', 'veth-blue'), (None, 'veth-blue-br'))] == 'missing'
    assert ('pair', ('red', 'veth-red'), (None, 'veth-red-br')) not in picture.status
    assert dict(picture.sections[None])['routes:'] == ['+ default dev eth0']
    assert dict(picture.sections['blue'])['routes:'] == ['- default via 192.168.15.5']
    assert picture.notes[None][0][1][1] == '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'

    dot = to_dot({'lab': 'netns_lab', 'lesson': '202', 'stage': 'full', 'node': 'netns-host', 'machine': machine},
                 observed)
    assert 'namespace blue (missing)' in dot and 'namespace stray (not in the lab)' in dot
    assert 'red, dashed: declared but missing' in dot and 'what the machine has now' in dot
