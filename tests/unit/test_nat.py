# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""NAT rules judged by what they do to a lesson's packet (module_utils/nat.py), from every tool's listing."""
import json

import pytest

from ansible_collections.cka.lab.plugins.module_utils.nat import (
    Effect,
    NatError,
    Traffic,
    iptables_rule,
    read_ruleset,
    ruleset_from,
)

# Lesson 202: what blue sends the LAN host, and what the LAN host sends port 80 of the host.
MASQ = Traffic('postrouting', '192.168.15.2', '192.168.1.3', in_interface='v-net-0', out_interface='lan0',
               out_address='192.168.1.2')
DNAT = Traffic('prerouting', '192.168.1.3', '192.168.1.2', port=80, in_interface='lan0', local=True)
MASQ_RULE = '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'
DNAT_RULE = '-A PREROUTING -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80'


def listing(*rules, chains=()):
    head = ['-P PREROUTING ACCEPT', '-P INPUT ACCEPT', '-P OUTPUT ACCEPT', '-P POSTROUTING ACCEPT']
    return '\n'.join(head + ['-N %s' % c for c in chains] + list(rules)) + '\n'


def wanted(rule, traffic):
    return iptables_rule('lab', 'nat', rule, 0).effect(traffic)


def decide(traffic, *rules, chains=(), legacy=None):
    return ruleset_from(None, listing(*rules, chains=chains), legacy).decide(traffic)


@pytest.mark.parametrize('rule', [
    MASQ_RULE,
    '-A POSTROUTING -o lan0 -j MASQUERADE',
    '-A POSTROUTING -s 192.168.15.0/24 -o lan0 -j MASQUERADE',
    '-A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -j MASQUERADE',
    '-A POSTROUTING -s 192.168.15.0/24 -j SNAT --to-source 192.168.1.2',
    '-A POSTROUTING -o lan+ -j SNAT --to-source 192.168.1.2',
    '-A POSTROUTING -s 192.168.15.2/32 -p tcp -j MASQUERADE',
])
def test_masquerade_typed_other_ways_does_the_lessons_job(rule):
    found = decide(MASQ, rule)
    assert found.rule is not None and found.effect.same_as(wanted(MASQ_RULE, MASQ))


@pytest.mark.parametrize('rule', [
    DNAT_RULE,
    '-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80',
    '-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2',
    '-A PREROUTING -d 192.168.1.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80',
    '-A PREROUTING -m addrtype --dst-type LOCAL -p tcp -m multiport --dports 80,443 -j DNAT --to-destination '
    '192.168.15.2:80',
    '-A PREROUTING -p tcp --dport 79:81 -j DNAT --to-destination 192.168.15.2:80',
])
def test_dnat_typed_other_ways_does_the_lessons_job(rule):
    found = decide(DNAT, rule)
    assert found.effect.same_as(wanted(DNAT_RULE, DNAT)), found


@pytest.mark.parametrize('rule, effect', [
    ('-A POSTROUTING -s 192.168.15.0/24 -j SNAT --to-source 192.168.1.9', Effect('snat', '192.168.1.9')),
    ('-A POSTROUTING -o v-net-0 -j MASQUERADE', None),
    ('-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE', None),
    ('-A POSTROUTING -p udp -j MASQUERADE', None),
])
def test_masquerade_that_does_something_else_or_nothing(rule, effect):
    found = decide(MASQ, rule)
    assert found.effect == effect
    assert found.effect is None or not found.effect.same_as(wanted(MASQ_RULE, MASQ))


@pytest.mark.parametrize('rule, effect', [
    ('-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.3:80', Effect('dnat', '192.168.15.3', 80)),
    ('-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:8080', Effect('dnat', '192.168.15.2',
                                                                                          8080)),
    ('-A PREROUTING -i eth9 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2', None),
    ('-A PREROUTING -p udp --dport 80 -j DNAT --to-destination 192.168.15.2', None),
    ('-A PREROUTING -p tcp ! --dport 80 -j DNAT --to-destination 192.168.15.2', None),
    ('-A PREROUTING -d 192.168.1.9 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2', None),
])
def test_dnat_that_does_something_else_or_nothing(rule, effect):
    assert decide(DNAT, rule).effect == effect


def test_the_first_rule_that_takes_the_packet_decides():
    earlier = '-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.3:80'
    found = decide(DNAT, earlier, DNAT_RULE)
    assert found.effect == Effect('dnat', '192.168.15.3', 80)
    assert found.rule.text == earlier and found.rule.position == 1
    assert decide(DNAT, DNAT_RULE, earlier).effect.same_as(wanted(DNAT_RULE, DNAT))


def test_jumps_returns_and_accept():
    rules = ['-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
             '-A DOCKER -i docker0 -j RETURN',
             '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80']
    found = decide(DNAT, *rules, chains=['DOCKER'])
    assert found.rule.chain == 'DOCKER' and found.effect == Effect('dnat', '192.168.15.2', 80)
    # RETURN before the DNAT: back in PREROUTING, nothing else takes it.
    assert decide(DNAT, rules[0], '-A DOCKER -j RETURN', rules[2], chains=['DOCKER']).rule is None
    # ACCEPT in the nat table: no NAT from this chain.
    assert decide(DNAT, '-A PREROUTING -i lan0 -j ACCEPT', DNAT_RULE).rule is None


def test_a_target_that_only_looks_passes_the_packet_on():
    found = decide(MASQ, '-A POSTROUTING -j LOG --log-prefix nat', MASQ_RULE)
    assert found.rule.position == 2


def test_a_condition_the_grader_cannot_read_is_passed_over_and_named():
    odd = '-A POSTROUTING -m owner --uid-owner 0 -j SNAT --to-source 192.168.1.9'
    found = decide(MASQ, odd, MASQ_RULE)
    assert found.rule.position == 2
    assert [r.text for r in found.uncertain] == [odd]
    assert decide(MASQ, '-A POSTROUTING -j CLASSIFY --set-class 1:1', MASQ_RULE).rule.position == 2


def test_legacy_tables_count_too():
    found = decide(MASQ, legacy=listing('-A POSTROUTING -o lan0 -j MASQUERADE'))
    assert found.rule.origin == 'iptables-legacy'
    assert found.rule.delete_argv() == ['iptables-legacy', '-w', '-t', 'nat', '-D', 'POSTROUTING', '-o', 'lan0',
                                        '-j', 'MASQUERADE']
    assert found.effect.same_as(wanted(MASQ_RULE, MASQ))


def nft(*entries):
    return json.dumps({'nftables': [{'metainfo': {'json_schema_version': 1}}] + list(entries)})


def chain(table, name, hook, prio, family='ip'):
    return {'chain': {'family': family, 'table': table, 'name': name, 'handle': 1, 'type': 'nat', 'hook': hook,
                      'prio': prio, 'policy': 'accept'}}


def rule(table, chain_name, handle, *expr, family='ip'):
    return {'rule': {'family': family, 'table': table, 'chain': chain_name, 'handle': handle, 'expr': list(expr)}}


def match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


SADDR = {'payload': {'protocol': 'ip', 'field': 'saddr'}}
OIF = {'meta': {'key': 'oifname'}}
DPORT = {'payload': {'protocol': 'tcp', 'field': 'dport'}}


def test_a_students_own_nftables_table():
    data = nft(chain('nat', 'postrouting', 'postrouting', 100),
               rule('nat', 'postrouting', 4, match(SADDR, {'prefix': {'addr': '192.168.15.0', 'len': 24}}),
                    match(OIF, 'lan0'), {'counter': {'packets': 0, 'bytes': 0}}, {'masquerade': None}),
               chain('nat', 'prerouting', 'prerouting', 'dstnat'),
               rule('nat', 'prerouting', 5, match(DPORT, {'set': [80, 443]}),
                    {'dnat': {'addr': '192.168.15.2', 'port': 80}}))
    ruleset = ruleset_from(data, listing())
    found = ruleset.decide(MASQ)
    assert found.rule.origin == 'nft' and found.effect.same_as(wanted(MASQ_RULE, MASQ))
    assert found.rule.text == 'ip saddr 192.168.15.0/24 oifname lan0 masquerade'
    assert found.rule.delete_argv() == ['nft', 'delete', 'rule', 'ip', 'nat', 'postrouting', 'handle', '4']
    assert ruleset.decide(DNAT).effect.same_as(wanted(DNAT_RULE, DNAT))
    # tcp dport also means the protocol
    assert ruleset.decide(Traffic('prerouting', '192.168.1.3', '192.168.1.2', protocol='udp', port=80)).rule is None


def test_iptables_nft_rules_in_nft_listing_keep_iptables_words_and_the_priority_order():
    # iptables-nft's DNAT shows only as an xt target in nft's JSON: its words come from iptables-nft -S.
    data = nft(chain('nat', 'PREROUTING', 'prerouting', -100),
               rule('nat', 'PREROUTING', 7, match(DPORT, 80), {'counter': None},
                    {'xt': {'type': 'target', 'name': 'DNAT'}}),
               chain('mine', 'pre', 'prerouting', -150),
               rule('mine', 'pre', 3, match(DPORT, 80), {'dnat': {'addr': '192.168.15.3'}}))
    ruleset = ruleset_from(data, listing('-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination '
                                         '192.168.15.2:80'))
    first = ruleset.decide(DNAT)
    assert first.rule.origin == 'nft' and first.effect == Effect('dnat', '192.168.15.3', 80)
    second = ruleset.decide(DNAT, skip=lambda r: r.origin == 'nft')
    assert second.rule.origin == 'iptables-nft' and second.rule.handle == 7
    assert second.effect.same_as(wanted(DNAT_RULE, DNAT))


def test_doing_lists_every_rule_that_would_do_the_job():
    ruleset = ruleset_from(None, listing(MASQ_RULE, '-A POSTROUTING -o lan0 -j SNAT --to-source 192.168.1.2',
                                         '-A POSTROUTING -o lan0 -j SNAT --to-source 192.168.1.9'))
    assert [r.position for r in ruleset.doing(MASQ, wanted(MASQ_RULE, MASQ))] == [1, 2]


def test_read_ruleset_asks_the_tools_that_are_there():
    calls = []

    def run(argv):
        calls.append(argv[0])
        if argv[0] == 'nft':
            return 127, '', 'nft: command not found'
        if argv[0] == 'cat':
            return 0, 'filter\nnat\n', ''
        if argv[0] == 'iptables-legacy':
            return 0, listing('-A POSTROUTING -o lan0 -j MASQUERADE'), ''
        return 0, listing(), ''

    assert read_ruleset(run).decide(MASQ).rule.origin == 'iptables-legacy'
    assert calls == ['nft', 'iptables-nft', 'cat', 'iptables-legacy']
    with pytest.raises(NatError, match='iptables-nft -w -t nat -S` failed'):
        read_ruleset(lambda argv: (1, '', 'permission denied') if argv[0] == 'iptables-nft' else (127, '', ''))


def test_traffic_from_a_declaration():
    traffic = Traffic.from_declaration('PREROUTING', {'source': '192.168.1.3', 'destination': '192.168.1.2',
                                                      'port': 80, 'in': 'lan0', 'local': True})
    assert traffic == DNAT
    assert traffic.words() == 'TCP from 192.168.1.3 to 192.168.1.2 port 80, in on lan0'
    assert MASQ.words() == 'TCP from 192.168.15.2 to 192.168.1.3, in on v-net-0, out by lan0'
    with pytest.raises(NatError, match="hook: 'None' is not a hook of the nat table.*DOCKER"):
        Traffic.from_declaration('DOCKER', {'source': '1.2.3.4', 'destination': '1.2.3.5'})
    with pytest.raises(NatError, match="source: 'lan-host' is not an IPv4 address"):
        Traffic.from_declaration('PREROUTING', {'source': 'lan-host', 'destination': '1.2.3.5'})


def test_effect_words():
    assert Effect('dnat', '192.168.15.2', 80).words() == 'sends it to 192.168.15.2:80'
    assert Effect('masquerade', '192.168.1.2').words() == 'rewrites its source to 192.168.1.2'
    assert Effect('masquerade', '192.168.1.2').same_as(Effect('snat', '192.168.1.2'))
    assert not Effect('masquerade', None).same_as(Effect('snat', '192.168.1.2'))


def test_a_named_set_or_odd_value_is_uncertain_not_a_crash():
    data = nft(chain('f2b', 'pre', 'prerouting', -150),
               rule('f2b', 'pre', 2, match(SADDR, '@addr-set-sshd'), {'dnat': {'addr': '192.168.15.9'}}),
               rule('f2b', 'pre', 3, match(SADDR, {'map': {'key': 'x'}}), {'drop': None}))
    found = ruleset_from(data, listing()).decide(DNAT)
    assert found.rule is None
    assert [r.handle for r in found.uncertain] == [2, 3]


def test_fib_daddr_type_local_as_nft_1_0_prints_it():
    fib = {'fib': {'result': 'type', 'flags': 'daddr'}}  # nft 1.0.6 (Debian 12): a one-flag list as a string
    data = nft(chain('mine', 'pre', 'prerouting', -100),
               rule('mine', 'pre', 4, match(fib, 'local'), match(DPORT, 80), {'dnat': {'addr': '192.168.15.2'}}))
    found = ruleset_from(data, listing()).decide(DNAT)
    assert found.rule.text == 'fib daddr type local tcp dport 80 dnat to 192.168.15.2'
    assert found.effect.same_as(wanted(DNAT_RULE, DNAT))


def test_a_negated_out_interface_holds_where_the_hook_knows_none():
    data = nft(chain('mine', 'pre', 'prerouting', -100),
               rule('mine', 'pre', 5, match(OIF, 'lan0', op='!='), match(DPORT, 80),
                    {'dnat': {'addr': '192.168.15.2', 'port': 80}}))
    assert ruleset_from(data, listing()).decide(DNAT).rule.handle == 5


def test_rules_of_plain_iptables_are_deleted_with_plain_iptables():
    found = ruleset_from(None, listing(MASQ_RULE), None, iptables_name='iptables').decide(MASQ)
    assert found.rule.delete_argv()[0] == 'iptables'
