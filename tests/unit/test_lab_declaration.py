# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A lab declaration's schema and cross-field rules (module_utils/lab_declaration.py).

Each refusal is checked for what a user needs to fix it: the path of the bad
value in the declaration, the value itself, and what is allowed instead.
"""

import copy

import pytest

from ansible_collections.cka.lab.plugins.module_utils.lab_declaration import select_stage, validate


def declaration():
    """A small valid lab: two namespaces on a bridge, a LAN host beside the machine, one stage before them."""
    return copy.deepcopy({
        'lab': 'mini_lab', 'lesson': '202', 'title': 'Mini lab', 'group': 'mini_lab', 'name': 'mini-lab',
        'stages': ['start', 'full'], 'stage': 'full',
        'machine': {
            'namespaces': [{'name': 'lan-host'}, {'name': 'red', 'stages': ['full']},
                           {'name': 'blue', 'stages': ['full']}],
            'bridges': [{'name': 'v-net-0', 'addresses': ['192.168.15.5/24'], 'stages': ['full']}],
            'veth_pairs': [
                {'name': 'lan0', 'addresses': ['192.168.1.2/24'],
                 'peer': {'name': 'eth0', 'namespace': 'lan-host', 'addresses': ['192.168.1.3/24']}},
                {'name': 'veth-red', 'namespace': 'red', 'addresses': ['192.168.15.1/24'],
                 'peer': {'name': 'veth-red-br', 'master': 'v-net-0'}, 'stages': ['full']},
                {'name': 'veth-blue', 'namespace': 'blue', 'addresses': ['192.168.15.2/24'],
                 'peer': {'name': 'veth-blue-br', 'master': 'v-net-0'}, 'stages': ['full']},
            ],
            'routes': [{'namespace': 'blue', 'dst': 'default', 'via': '192.168.15.5', 'stages': ['full']}],
            'sysctls': [{'name': 'net.ipv4.ip_forward', 'value': '1', 'stages': ['full']},
                        {'name': 'net.bridge.bridge-nf-call-iptables', 'value': '0', 'if_exists': True}],
            'chains': [{'table': 'filter', 'chain': 'LAB-FORWARD', 'stages': ['full']}],
            'rules': [
                {'table': 'nat', 'rule': '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE', 'stages': ['full']},
                {'table': 'nat', 'rule': '-A PREROUTING -i lan0 -p tcp --dport 80 -j DNAT '
                                         '--to-destination 192.168.15.2:80', 'stages': ['full']},
                {'table': 'filter', 'rule': '-A FORWARD -j LAB-FORWARD', 'stages': ['full']},
                {'table': 'filter', 'rule': '-A LAB-FORWARD -i v-net-0 -j ACCEPT', 'stages': ['full']},
            ],
            'files': [{'path': '/srv/mini-lab/index.html', 'content': 'hello\n', 'mode': '0644'}],
            'services': [{'name': 'web', 'namespace': 'blue', 'stages': ['full'],
                          'command': ['python3', '-m', 'http.server', '80', '--bind', '192.168.15.2'],
                          'listen': [{'protocol': 'tcp', 'address': '192.168.15.2', 'port': 80}]}],
        },
        'probes': [
            {'name': 'red pings blue', 'ping': {'from': 'red', 'address': '192.168.15.2'}, 'stages': ['full']},
            {'name': 'the LAN host gets the page', 'http': {'from': 'lan-host', 'url': 'http://192.168.1.2/'}},
        ],
    })


def changed(edit):
    """The valid declaration with `edit(declaration, machine)` applied."""
    decl = declaration()
    edit(decl, decl['machine'])
    return decl


def assert_refused(decl, *parts):
    """validate() reports a problem whose message holds every one of `parts`."""
    errors = validate(decl)
    assert errors, 'the declaration was accepted'
    assert any(all(part in error for part in parts) for error in errors), \
        'no message holds all of %r:\n%s' % (parts, '\n'.join(errors))
    return errors


IFNAME_RULE = 'Linux interface names are 1-15 characters'
LINK_NAME_RULE = "a link the lab makes is not named 'lo'"
NETNS_RULE = "namespace names are 1-64 letters, digits, '.', '_' or '-'"
PATH_RULE = "an absolute, normalised path of at least two parts"


def test_a_small_valid_declaration_passes():
    assert validate(declaration()) == []


def test_every_problem_is_reported_at_once():
    decl = changed(lambda d, m: (m['routes'][0].update(via='192.168.16.5'),
                                 m['files'][0].update(path='/srv//index.html')))

    errors = validate(decl)

    assert sorted(e.split(':', 1)[0] for e in errors) == ['machine.files[0].path', 'machine.routes[0].via'], errors


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

@pytest.mark.parametrize('edit, path, value', [
    (lambda d, m: m['bridges'][0].update(name='v-net-0-16-chars'), 'machine.bridges[0].name', 'v-net-0-16-chars'),
    (lambda d, m: m['veth_pairs'][1].update(name='veth-red-16charx'), 'machine.veth_pairs[1].name',
     'veth-red-16charx'),
    (lambda d, m: m['veth_pairs'][2]['peer'].update(name='veth-blue-br-16c'), 'machine.veth_pairs[2].peer.name',
     'veth-blue-br-16c'),
    (lambda d, m: m['routes'][0].update(dev='v-net-0-16-chars'), 'machine.routes[0].dev', 'v-net-0-16-chars'),
], ids=['bridge', 'veth end', 'veth peer', 'route dev'])
def test_an_interface_name_of_16_characters_is_refused(edit, path, value):
    assert len(value) == 16

    assert_refused(changed(edit), path, "'%s'" % value, IFNAME_RULE)


def test_an_interface_name_of_15_characters_passes():
    decl = changed(lambda d, m: (m['bridges'][0].update(name='v-net-0-15chars'),
                                 [p['peer'].update(master='v-net-0-15chars') for p in m['veth_pairs'][1:]]))

    assert validate(decl) == []


@pytest.mark.parametrize('name', ['red ns', 'red\tns', ' red', ''], ids=['space', 'tab', 'leading space', 'empty'])
def test_a_namespace_name_with_whitespace_or_empty_is_refused(name):
    decl = changed(lambda d, m: m['namespaces'][1].update(name=name))

    assert_refused(decl, 'machine.namespaces[1].name', "'%s'" % name, NETNS_RULE)


def test_a_namespace_name_with_a_slash_is_refused():
    decl = changed(lambda d, m: m['namespaces'][1].update(name='red/x'))

    assert_refused(decl, 'machine.namespaces[1].name', "'red/x'", NETNS_RULE)


def test_an_interface_name_with_a_slash_is_refused():
    decl = changed(lambda d, m: m['veth_pairs'][1].update(name='veth/red'))

    assert_refused(decl, 'machine.veth_pairs[1].name', "'veth/red'", IFNAME_RULE, "'/'")


@pytest.mark.parametrize('edit, path', [
    (lambda d, m: m['bridges'][0].update(name='lo'), 'machine.bridges[0].name'),
    (lambda d, m: m['veth_pairs'][0]['peer'].update(name='lo'), 'machine.veth_pairs[0].peer.name'),
], ids=['bridge', 'veth peer'])
def test_a_link_the_lab_makes_is_not_named_lo(edit, path):
    assert_refused(changed(edit), path, "'lo'", IFNAME_RULE, LINK_NAME_RULE)


def test_a_route_may_go_out_by_lo():
    decl = changed(lambda d, m: m['routes'].append({'namespace': 'red', 'dst': '10.9.0.0/16', 'dev': 'lo',
                                                    'stages': ['full']}))

    assert validate(decl) == []


def test_an_interface_name_outside_printable_ascii_is_refused():
    name = 'br\u00fccke-\u00fcber-dem'  # 15 characters, 17 bytes: the kernel counts bytes
    assert len(name) == 15

    assert_refused(changed(lambda d, m: m['routes'][0].update(dev=name)), 'machine.routes[0].dev', IFNAME_RULE,
                   'printable ASCII')


def test_a_namespace_of_a_link_with_a_slash_is_refused():
    decl = changed(lambda d, m: m['veth_pairs'][1].update(namespace='red/x'))

    assert_refused(decl, 'machine.veth_pairs[1].namespace', "'red/x'", NETNS_RULE)


def test_a_lab_name_with_a_slash_is_refused():
    decl = changed(lambda d, m: d.update(name='mini/lab'))

    assert_refused(decl, 'name', "'mini/lab'", "1-24 lower-case letters, digits or '-'")


@pytest.mark.parametrize('edit, path', [
    (lambda d, m: m['veth_pairs'][1].update(name='veth-red\n'), 'machine.veth_pairs[1].name'),
    (lambda d, m: (m['namespaces'][1].update(name='red\n'), m['veth_pairs'][1].update(namespace='red\n'),
                   d['probes'][0]['ping'].update({'from': 'red\n'})), 'machine.namespaces[1].name'),
    (lambda d, m: d.update(name='mini-lab\n'), 'name'),
], ids=['interface', 'namespace', 'lab name'])
def test_a_name_ending_in_a_newline_is_refused(edit, path):
    assert_refused(changed(edit), path)


@pytest.mark.parametrize('name', ['.', '..'])
def test_an_interface_name_the_kernel_refuses_is_refused(name):
    decl = changed(lambda d, m: m['veth_pairs'][1].update(name=name))

    assert_refused(decl, 'machine.veth_pairs[1].name', "'%s'" % name)


# --------------------------------------------------------------------------
# Addresses and networks
# --------------------------------------------------------------------------

@pytest.mark.parametrize('address', ['192.168.15.1', '192.168.15.1/33', '192.168.15.300/24', 'red'],
                         ids=['no prefix', 'prefix 33', 'octet 300', 'a word'])
def test_an_address_not_in_cidr_form_is_refused(address):
    decl = changed(lambda d, m: m['veth_pairs'][1].update(addresses=[address]))

    assert_refused(decl, 'machine.veth_pairs[1].addresses[0]', "'%s'" % address, 'CIDR form, like 192.168.15.5/24')


@pytest.mark.parametrize('address, which', [('192.168.15.0/24', 'network'), ('192.168.15.255/24', 'broadcast')])
def test_the_network_or_broadcast_address_is_refused(address, which):
    decl = changed(lambda d, m: m['veth_pairs'][1].update(addresses=[address]))

    assert_refused(decl, 'machine.veth_pairs[1].addresses[0]', "'%s'" % address,
                   'is the %s address of 192.168.15.0/24' % which, 'a host needs an address inside it')


def test_a_point_to_point_31_may_use_both_addresses():
    decl = changed(lambda d, m: (m['veth_pairs'][0].update(addresses=['192.168.1.0/31']),
                                 m['veth_pairs'][0]['peer'].update(addresses=['192.168.1.1/31'])))

    assert validate(decl) == []


def test_the_lan_subnet_equal_to_the_lab_subnet_is_refused():
    """The LAN beside the machine and the bridge are different segments: one subnet on both is refused."""
    decl = changed(lambda d, m: (m['veth_pairs'][0].update(addresses=['192.168.15.6/24']),
                                 m['veth_pairs'][0]['peer'].update(addresses=['192.168.15.7/24'])))

    assert_refused(decl, 'machine.veth_pairs[0].addresses[0]', '192.168.15.0/24',
                   'machine.bridges[0].addresses[0]', "(stage 'full')", 'separate networks need separate subnets')


def test_overlapping_subnets_of_different_sizes_on_two_segments_are_refused():
    decl = changed(lambda d, m: (m['veth_pairs'][0].update(addresses=['192.168.0.2/16']),
                                 m['veth_pairs'][0]['peer'].update(addresses=['192.168.0.3/16'])))

    assert_refused(decl, '192.168.0.0/16', 'overlaps 192.168.15.0/24', 'separate networks need separate subnets')


def test_the_overlap_counts_only_in_the_stages_where_both_exist():
    """In stage start there is no bridge: the LAN's subnet alone is fine there, and refused for full."""
    decl = changed(lambda d, m: (m['veth_pairs'][0].update(addresses=['192.168.15.6/24']),
                                 m['veth_pairs'][0]['peer'].update(addresses=['192.168.15.7/24'])))

    errors = validate(decl)

    assert errors and all("(stage 'full')" in e for e in errors), errors


def test_one_subnet_on_the_ports_of_one_bridge_passes():
    assert validate(declaration()) == []  # red, blue and the bridge share 192.168.15.0/24


def test_an_address_held_twice_is_refused():
    decl = changed(lambda d, m: m['veth_pairs'][2].update(addresses=['192.168.15.1/24']))

    assert_refused(decl, 'machine.veth_pairs[2].addresses[0]', '192.168.15.1', 'machine.veth_pairs[1].addresses[0]',
                   'each address once')


def test_an_address_outside_the_subnet_of_its_segment_is_refused():
    decl = changed(lambda d, m: m['veth_pairs'][1].update(addresses=['192.168.16.1/24']))

    assert_refused(decl, 'machine.veth_pairs[1].addresses[0]', '192.168.16.1', '192.168.15.0/24')


# --------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------

def test_a_gateway_in_no_subnet_of_its_namespace_is_refused():
    decl = changed(lambda d, m: m['routes'][0].update(via='192.168.16.5'))

    assert_refused(decl, 'machine.routes[0].via', '192.168.16.5', 'in no subnet of namespace blue',
                   '(192.168.15.0/24)', 'a gateway must be on a connected network')


def test_a_gateway_in_a_subnet_of_another_namespace_is_refused():
    decl = changed(lambda d, m: m['routes'][0].update(via='192.168.1.2'))

    assert_refused(decl, 'machine.routes[0].via', '192.168.1.2', 'in no subnet of namespace blue')


@pytest.mark.parametrize('dst', ['0.0.0.0/0', 'default', '192.168.1.0/24'])
def test_a_route_to_everything_or_a_network_is_accepted(dst):
    assert validate(changed(lambda d, m: m['routes'][0].update(dst=dst))) == []


def test_a_route_destination_with_host_bits_is_refused():
    decl = changed(lambda d, m: m['routes'][0].update(dst='192.168.1.1/24'))

    assert_refused(decl, 'machine.routes[0].dst', "'192.168.1.1/24'", "must be 'default' or a network")


def test_a_route_in_an_undeclared_namespace_is_refused():
    decl = changed(lambda d, m: m['routes'][0].update(namespace='green'))

    assert_refused(decl, 'machine.routes[0].namespace', "'green'", 'declared: lan-host, red, blue')


def test_a_route_with_neither_gateway_nor_link_is_refused():
    decl = changed(lambda d, m: m['routes'][0].pop('via'))

    assert_refused(decl, 'machine.routes[0]', 'needs via (a gateway) or dev (a link)')


# --------------------------------------------------------------------------
# iptables rules
# --------------------------------------------------------------------------

def test_a_rule_without_a_target_is_refused():
    decl = changed(lambda d, m: m['rules'][0].update(rule='-A POSTROUTING -s 192.168.15.0/24'))

    assert_refused(decl, 'machine.rules[0].rule', "'-A POSTROUTING -s 192.168.15.0/24'", "end it with '-j TARGET'")


def test_a_rule_on_an_undeclared_chain_is_refused():
    decl = changed(lambda d, m: m['rules'][0].update(rule='-A LAB-NAT -s 192.168.15.0/24 -j MASQUERADE'))

    assert_refused(decl, 'machine.rules[0].rule', "chain 'LAB-NAT'",
                   'built-in chain of table nat (INPUT, OUTPUT, POSTROUTING, PREROUTING)', 'machine.chains')


def test_a_rule_on_a_chain_of_another_table_is_refused():
    decl = changed(lambda d, m: m['rules'][0].update(table='filter'))

    assert_refused(decl, 'machine.rules[0].rule', "chain 'POSTROUTING'", 'table filter (FORWARD, INPUT, OUTPUT)')


def test_a_rule_on_a_declared_chain_passes():
    assert validate(declaration()) == []  # -A LAB-FORWARD ... with LAB-FORWARD in machine.chains


MASQ_TRAFFIC = {'source': '192.168.15.2', 'destination': '192.168.1.3', 'in': 'v-net-0', 'out': 'lan0',
                'out_address': '192.168.1.2'}
DNAT_TRAFFIC = {'source': '192.168.1.3', 'destination': '192.168.1.2', 'port': 80, 'in': 'lan0', 'local': True}


def test_nat_rules_with_the_traffic_they_take_pass():
    decl = changed(lambda d, m: (m['rules'][0].update(traffic=dict(MASQ_TRAFFIC)),
                                 m['rules'][1].update(traffic=dict(DNAT_TRAFFIC))))
    assert validate(decl) == []


@pytest.mark.parametrize('index, change, parts', [
    (1, {'in': 'eth9'}, ("machine.rules[1].traffic: the rule '-A PREROUTING -i lan0 -p tcp --dport 80",
                         'does not take this packet', 'in on eth9')),
    (0, {'source': '10.0.0.1'}, ('machine.rules[0].traffic', 'does not take this packet',
                                 'TCP from 10.0.0.1 to 192.168.1.3')),
    (0, {'out_address': None}, ('machine.rules[0].traffic.out_address: missing', "out interface's address")),
    (1, {'port': 8080}, ('machine.rules[1].traffic', 'does not take this packet', 'port 8080')),
    (1, {'destination': 'the-host'}, ("machine.rules[1].traffic: destination: 'the-host' is not an IPv4 address",)),
    (1, {'hook': 'postrouting'}, ("machine.rules[1].traffic.hook: 'postrouting'", 'chain PREROUTING',
                                  'allowed: prerouting')),
])
def test_nat_traffic_its_rule_does_not_take_is_refused(index, change, parts):
    traffic = dict((MASQ_TRAFFIC, DNAT_TRAFFIC)[index], **change)
    traffic = {k: v for k, v in traffic.items() if v is not None}
    decl = changed(lambda d, m: m['rules'][index].update(traffic=traffic))
    assert_refused(decl, *parts)


def test_traffic_on_a_filter_rule_is_refused():
    decl = changed(lambda d, m: m['rules'][2].update(traffic=dict(MASQ_TRAFFIC)))
    assert_refused(decl, 'machine.rules[2].traffic: only a rule of table nat is judged by its traffic')


def test_traffic_on_a_rule_that_translates_nothing_is_refused():
    decl = changed(lambda d, m: (m['chains'].append({'table': 'nat', 'chain': 'LAB'}),
                                 m['rules'].append({'table': 'nat', 'rule': '-A PREROUTING -j LAB',
                                                    'traffic': dict(DNAT_TRAFFIC)})))
    assert_refused(decl, 'machine.rules[4].traffic', 'not DNAT, SNAT, MASQUERADE or REDIRECT')


def test_a_rule_in_an_unknown_table_is_refused():
    decl = changed(lambda d, m: m['rules'][0].update(table='nats'))

    assert_refused(decl, 'machine.rules[0].table', "'nats'", "'filter'", "'nat'")


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

@pytest.mark.parametrize('path', ['/srv//index.html', '/run/', 'srv/mini-lab/index.html', '/srv/../etc/passwd',
                                  '/index.html', '/srv/mini lab/index.html'],
                         ids=['double slash', 'trailing slash', 'relative', 'dot-dot', 'one part', 'space'])
def test_a_file_path_that_is_not_plain_is_refused(path):
    decl = changed(lambda d, m: m['files'][0].update(path=path))

    assert_refused(decl, 'machine.files[0].path', "'%s'" % path, PATH_RULE)


def test_a_file_path_starting_with_two_slashes_is_refused():
    decl = changed(lambda d, m: m['files'][0].update(path='//srv/index.html'))

    assert_refused(decl, 'machine.files[0].path', "'//srv/index.html'", PATH_RULE)


def test_a_file_mode_that_is_not_octal_is_refused():
    decl = changed(lambda d, m: m['files'][0].update(mode='644'))

    assert_refused(decl, 'machine.files[0].mode', "'644'")


# --------------------------------------------------------------------------
# Services and probes
# --------------------------------------------------------------------------

def test_a_service_listening_on_an_address_not_in_its_namespace_is_refused():
    decl = changed(lambda d, m: m['services'][0]['listen'][0].update(address='192.168.15.1'))

    assert_refused(decl, 'machine.services[0].listen[0].address', '192.168.15.1',
                   'is not an address of namespace blue', '(192.168.15.2)')


@pytest.mark.parametrize('address', ['0.0.0.0', '127.0.0.1', '192.168.15.2'])
def test_a_service_listening_on_any_loopback_or_its_own_address_passes(address):
    assert validate(changed(lambda d, m: m['services'][0]['listen'][0].update(address=address))) == []


def test_a_service_port_out_of_range_is_refused():
    decl = changed(lambda d, m: m['services'][0]['listen'][0].update(port=65536))

    assert_refused(decl, 'machine.services[0].listen[0].port', '65536', '65535')


@pytest.mark.parametrize('kind, key', [('ping', 'from'), ('tcp', 'to')])
def test_a_probe_naming_an_unknown_namespace_is_refused(kind, key):
    spec = {'ping': {'from': 'green', 'address': '192.168.15.2'},
            'tcp': {'from': 'red', 'to': 'green', 'address': '192.168.15.2', 'port': 80}}[kind]
    decl = changed(lambda d, m: d['probes'].append({'name': 'to green', kind: spec}))

    assert_refused(decl, 'probes[2].%s.%s' % (kind, key), "'green'", 'is not a namespace of the lab',
                   'declared: lan-host, red, blue')


def test_a_probe_with_two_kinds_is_refused():
    decl = changed(lambda d, m: d['probes'][0].update(tcp={'address': '192.168.15.2'}))

    assert_refused(decl, 'probes[0]', 'exactly one of ping, tcp, http, dns or pod')


# --------------------------------------------------------------------------
# Stages and shape
# --------------------------------------------------------------------------

def test_an_unknown_stage_in_the_stages_of_an_object_is_refused():
    decl = changed(lambda d, m: m['routes'][0].update(stages=['full', 'nope']))

    assert_refused(decl, 'machine.routes[0].stages', "'nope'", 'allowed: start, full')


def test_an_unknown_stage_in_the_stages_of_a_probe_is_refused():
    decl = changed(lambda d, m: d['probes'][0].update(stages=['nope']))

    assert_refused(decl, 'probes[0].stages', "'nope'", 'allowed: start, full')


def test_an_unknown_selected_stage_is_refused():
    decl = changed(lambda d, m: d.update(stage='nope'))

    assert_refused(decl, 'stage', "'nope'", 'allowed: start, full')


def test_an_unknown_key_is_refused_with_the_keys_allowed():
    decl = changed(lambda d, m: m['bridges'][0].update(adress=['192.168.15.5/24']))

    assert_refused(decl, 'machine.bridges[0]', "'adress'", 'allowed keys:', 'addresses')


def test_a_value_of_the_wrong_type_is_refused():
    decl = changed(lambda d, m: m['sysctls'][0].update(value=1))

    assert_refused(decl, 'machine.sysctls[0].value', '1', "'string'")


# --------------------------------------------------------------------------
# select_stage
# --------------------------------------------------------------------------

class TestSelectStage:
    def test_objects_of_other_stages_are_dropped(self):
        start = select_stage(declaration(), 'start')

        assert start['stage'] == 'start'
        assert [ns['name'] for ns in start['machine']['namespaces']] == ['lan-host']
        assert start['machine']['bridges'] == []
        assert [p['name'] for p in start['machine']['veth_pairs']] == ['lan0']
        assert start['machine']['routes'] == [] and start['machine']['rules'] == []
        assert [p['name'] for p in start['probes']] == ['the LAN host gets the page']

    def test_objects_without_stages_are_in_every_stage(self):
        full = select_stage(declaration(), 'full')

        assert [ns['name'] for ns in full['machine']['namespaces']] == ['lan-host', 'red', 'blue']
        assert [f['path'] for f in full['machine']['files']] == ['/srv/mini-lab/index.html']
        assert len(full['probes']) == 2

    def test_objects_whose_when_is_false_are_dropped(self):
        decl = changed(lambda d, m: (m['rules'][0].update(when=False), m['files'][0].update(when=False),
                                     m['rules'][1].update(when=True), d['probes'][1].update(when=False)))

        full = select_stage(decl, 'full')

        assert [r['rule'] for r in full['machine']['rules']][:1] == [decl['machine']['rules'][1]['rule']]
        assert len(full['machine']['rules']) == 3
        assert full['machine']['files'] == []
        assert [p['name'] for p in full['probes']] == ['red pings blue']

    def test_stages_and_when_are_resolved_away(self):
        full = select_stage(changed(lambda d, m: m['rules'][1].update(when=True)), 'full')

        for items in list(full['machine'].values()) + [full['probes']]:
            for item in items:
                assert 'stages' not in item and 'when' not in item, item

    def test_annotate_keeps_the_path_in_the_whole_declaration(self):
        full = select_stage(declaration(), 'start', annotate=True)

        assert full['machine']['veth_pairs'][0]['__path'] == 'machine.veth_pairs[0]'
        assert full['probes'][0]['__path'] == 'probes[1]'

    def test_the_whole_declaration_is_not_changed(self):
        decl = declaration()

        select_stage(decl, 'start', annotate=True)

        assert decl == declaration()


def test_a_refused_address_brings_no_false_problems_with_it():
    decl = changed(lambda d, m: m['veth_pairs'][2].update(addresses=['192.168.15.0/24']))

    errors = validate(decl)

    assert [e.split(':', 1)[0] for e in errors] == ['machine.veth_pairs[2].addresses[0]'], errors


def with_pod(decl, machine, **pod):
    machine['files'].append({'path': '/etc/cni/net.d/10-podnet.conflist', 'format': 'json', 'content': (
        '{"cniVersion": "1.0.0", "name": "podnet", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}},'
        ' {"type": "portmap"}]}')})
    for plugin in ('bridge', 'host-local', 'portmap', 'loopback'):
        machine['files'].append({'path': '/opt/cni/bin/' + plugin, 'link': '/usr/lib/cni/' + plugin})
    machine['pods'] = [dict({'name': 'pod-a', 'network': '/etc/cni/net.d/10-podnet.conflist'}, **pod)]


def test_a_pod_on_a_declared_network_whose_plugins_are_installed_is_accepted():
    assert validate(changed(with_pod)) == []


def test_a_pod_counts_as_a_namespace_for_services_and_probes():
    def edit(decl, machine):
        with_pod(decl, machine)
        machine['services'][0]['namespace'] = 'pod-a'
        machine['services'][0]['listen'][0]['address'] = '0.0.0.0'
        decl['probes'].append({'name': 'a pod reaches another', 'pod': {'from': 'pod-a', 'to': 'pod-x', 'port': 80}})
    assert validate(changed(edit)) == []


def test_a_pod_whose_network_runs_a_plugin_the_lab_does_not_install_is_refused():
    def edit(decl, machine):
        with_pod(decl, machine)
        machine['files'] = [f for f in machine['files'] if f['path'] != '/opt/cni/bin/portmap']
    assert_refused(changed(edit), 'machine.pods[0].network', 'runs the plugin portmap',
                   'installed there: bridge, host-local, loopback')


def test_a_pod_on_an_undeclared_network_is_refused():
    assert_refused(changed(lambda d, m: with_pod(d, m, network='/etc/cni/net.d/99-other.conflist')),
                   "machine.pods[0].network: '/etc/cni/net.d/99-other.conflist' is not a file declared")


def test_two_pods_with_one_name_and_a_pod_named_as_a_namespace_are_refused():
    def edit(decl, machine):
        with_pod(decl, machine)
        machine['pods'] += [dict(machine['pods'][0]), dict(machine['pods'][0], name='red')]
    errors = assert_refused(changed(edit), "machine.pods[1].name: 'pod-a' is declared twice")
    assert any("machine.pods[2].name: 'red' is also declared in machine.namespaces" in e for e in errors), errors


def test_a_port_published_twice_on_a_node_is_refused():
    def edit(decl, machine):
        with_pod(decl, machine, port_mappings=[{'hostPort': 8080, 'containerPort': 80}])
        machine['pods'].append(dict(machine['pods'][0], name='pod-b'))
    assert_refused(changed(edit), 'machine.pods[1].port_mappings[0].hostPort: 8080/tcp is already published')


def test_a_file_is_content_or_a_link_not_both():
    assert_refused(changed(lambda d, m: m['files'][0].update(link='/usr/lib/cni/bridge')),
                   'machine.files[0]', 'exactly one of content or link')


def test_a_json_file_that_is_not_json_is_refused():
    assert_refused(changed(lambda d, m: m['files'][0].update(format='json')),
                   'machine.files[0].content: is not JSON')


def test_a_vxlan_with_a_bad_remote_or_its_own_address_among_the_remotes_is_refused():
    def edit(decl, machine):
        machine['vxlans'] = [{'name': 'vxlan0', 'vni': 1, 'dev': 'eth0', 'local': '10.0.0.1',
                              'remotes': ['10.0.0.1', '10.0.0.300']}]
    errors = assert_refused(changed(edit), "machine.vxlans[0].remotes[1]: '10.0.0.300' is not an IP address")
    assert any('machine.vxlans[0].remotes: holds the local address 10.0.0.1' in e for e in errors), errors


@pytest.mark.parametrize('vni', [0, 16777216])
def test_a_vni_out_of_range_is_refused(vni):
    assert_refused(changed(lambda d, m: m.update(vxlans=[{'name': 'vxlan0', 'vni': vni, 'dev': 'eth0'}])),
                   'machine.vxlans[0].vni', str(vni))


def test_a_lab_id_ending_in_a_newline_is_refused_with_the_one_rule():
    decl = changed(lambda d, m: d.update(lab='mini_lab\n'))
    assert_refused(decl, 'lab:', "a lab id: 1-32 lower-case letters, digits or '_', starting with a letter")
