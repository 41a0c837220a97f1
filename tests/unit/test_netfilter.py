# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""iptables rules compared by what they do (module_utils/netfilter.py).

The listings below are what ``iptables -t TABLE -S`` prints (iptables 1.8,
nf_tables and legacy alike): ``-m tcp`` spelled out after ``-p tcp``, host
addresses with /32, comments as ``-m comment --comment TEXT``.
"""

import pytest

from ansible_collections.cka.lab.plugins.module_utils.netfilter import (
    Rule,
    RuleError,
    parse_listing,
    parse_rule,
    plan_rules,
)

MARK = 'cka-lab:netns-lab'

# What the lesson types, and what the lab declares.
MASQUERADE = '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'
LAB_DNAT = '-A PREROUTING -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80'
LESSON_DNAT = '-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80'


def nat(text):
    return parse_rule('nat', text)


def listed(*lines, table='nat', policies=True):
    """``iptables -t nat -S`` output with `lines` after the policies."""
    head = ['-P PREROUTING ACCEPT', '-P INPUT ACCEPT', '-P OUTPUT ACCEPT', '-P POSTROUTING ACCEPT'] if policies else []
    return parse_listing(table, '\n'.join(head + list(lines)) + '\n')[0]


# --------------------------------------------------------------------------
# parse_rule
# --------------------------------------------------------------------------

class TestParseRule:
    def test_the_parts_of_a_rule_are_read(self):
        rule = nat(LAB_DNAT)

        assert (rule.table, rule.chain, rule.target) == ('nat', 'PREROUTING', 'DNAT')
        assert rule.target_options == (('--to-destination', ('192.168.15.2:80',)),)
        assert rule.matches == frozenset({'--in-interface=lan0', '--protocol=tcp', '--dport=80'})
        assert rule.comment is None

    def test_short_and_long_options_are_one_rule(self):
        short = nat('-A PREROUTING -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80')
        long = nat('--append PREROUTING --in-interface lan0 --protocol tcp --dport 80 '
                   '--jump DNAT --to-destination 192.168.15.2:80')

        assert short == long

    @pytest.mark.parametrize('short, long', [
        ('-s 10.0.0.0/8', '--source 10.0.0.0/8'),
        ('-s 10.0.0.0/8', '--src 10.0.0.0/8'),
        ('-d 10.0.0.0/8', '--destination 10.0.0.0/8'),
        ('-d 10.0.0.0/8', '--dst 10.0.0.0/8'),
        ('-o eth0', '--out-interface eth0'),
        ('-i eth0', '--in-interface eth0'),
    ], ids=['-s', '--src', '-d', '--dst', '-o', '-i'])
    def test_each_short_option_is_its_long_name(self, short, long):
        assert parse_rule('filter', '-A FORWARD %s -j ACCEPT' % short) == \
            parse_rule('filter', '-A FORWARD %s -j ACCEPT' % long)

    def test_the_tcp_match_that_iptables_prints_is_implicit_in_the_declared_rule(self):
        printed = nat('-A PREROUTING -i lan0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80')

        assert printed == nat(LAB_DNAT)
        assert not any('tcp' in m and m.startswith('--match') for m in printed.matches)

    def test_a_host_address_with_and_without_32_is_one_address(self):
        assert parse_rule('filter', '-A FORWARD -d 192.168.15.2 -j ACCEPT') == \
            parse_rule('filter', '-A FORWARD -d 192.168.15.2/32 -j ACCEPT')

    def test_a_network_written_with_host_bits_is_the_network_iptables_prints(self):
        assert nat('-A POSTROUTING -s 192.168.15.7/24 -j MASQUERADE') == nat(MASQUERADE)

    def test_different_addresses_are_different_rules(self):
        assert nat('-A POSTROUTING -s 192.168.16.0/24 -j MASQUERADE') != nat(MASQUERADE)
        assert nat('-A POSTROUTING -s 192.168.15.0/25 -j MASQUERADE') != nat(MASQUERADE)

    def test_a_negated_condition_is_kept_apart_from_the_plain_one(self):
        negated = nat('-A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -j MASQUERADE')
        plain = nat('-A POSTROUTING -s 192.168.15.0/24 -d 192.168.15.0/24 -j MASQUERADE')

        assert '!--destination=192.168.15.0/24' in negated.matches
        assert '--destination=192.168.15.0/24' not in negated.matches
        assert negated != plain
        assert negated == nat('-A POSTROUTING --source 192.168.15.0/24 ! --destination 192.168.15.0/24 '
                              '-j MASQUERADE')

    def test_a_negated_match_option_after_m(self):
        rule = nat('-A PREROUTING -p tcp -m tcp ! --dport 22 -j DNAT --to-destination 192.168.15.2:80')

        assert '!--dport=22' in rule.matches

    def test_the_comment_is_read_but_is_not_part_of_what_the_rule_does(self):
        marked = nat('-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK)

        assert marked.comment == MARK
        assert marked == nat(MASQUERADE)
        assert not any('comment' in m for m in marked.matches)

    def test_a_quoted_comment_with_spaces(self):
        rule = nat('-A POSTROUTING -s 192.168.15.0/24 -m comment --comment "added by hand" -j MASQUERADE')

        assert rule.comment == 'added by hand'

    def test_the_protocol_is_compared_without_case(self):
        assert nat(LESSON_DNAT.replace('tcp', 'TCP')) == nat(LESSON_DNAT)

    def test_goto_is_another_target_than_jump(self):
        jump = parse_rule('filter', '-A FORWARD -i v-net-0 -j LAB')
        goto = parse_rule('filter', '-A FORWARD -i v-net-0 -g LAB')

        assert goto.target == 'goto:LAB'
        assert jump != goto

    def test_the_target_options_are_not_match_conditions(self):
        rule = nat(LAB_DNAT)

        assert not any('192.168.15.2:80' in m for m in rule.matches)

    def test_the_text_is_kept_for_deleting_the_rule_as_listed(self):
        text = '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK

        assert nat(text).text == text

    @pytest.mark.parametrize('text, says', [
        ('-A FORWARD -i v-net-0', "has no target: end it with '-j TARGET'"),
        ('-I FORWARD -j ACCEPT', "must start with '-A CHAIN'"),
        ('FORWARD -j ACCEPT', "must start with '-A CHAIN'"),
        ('-A', "must start with '-A CHAIN'"),
        ('-A FORWARD v-net-0 -j ACCEPT', "'v-net-0' is not an option"),
        ('-A FORWARD -j ACCEPT -j DROP', 'has two targets'),
        ('-A FORWARD -j', '-j takes one target name'),
        ("-A FORWARD -m comment --comment 'unclosed -j ACCEPT", 'cannot be split into words'),
    ], ids=['no target', '-I', 'no -A', 'only -A', 'a word that is no option', 'two targets',
            '-j without a name', 'an open quote'])
    def test_a_rule_that_cannot_be_read_says_why(self, text, says):
        with pytest.raises(RuleError) as caught:
            parse_rule('filter', text)

        assert says in str(caught.value)


# --------------------------------------------------------------------------
# parse_listing
# --------------------------------------------------------------------------

class TestParseListing:
    LISTING = '\n'.join([
        '-P PREROUTING ACCEPT',
        '-P INPUT ACCEPT',
        '-P OUTPUT ACCEPT',
        '-P POSTROUTING ACCEPT',
        '-N LAB-DNAT',
        '-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80',
        '-A PREROUTING -j LAB-DNAT',
        '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK,
        '-A LAB-DNAT -d 192.168.1.2/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 192.168.15.3:80',
        '',
    ])

    def test_rules_chains_and_policies(self):
        rules, chains, policies = parse_listing('nat', self.LISTING)

        assert [r.chain for r in rules] == ['PREROUTING', 'PREROUTING', 'POSTROUTING', 'LAB-DNAT']
        assert all(r.table == 'nat' for r in rules)
        assert chains == ['LAB-DNAT']
        assert policies == {'PREROUTING': 'ACCEPT', 'INPUT': 'ACCEPT', 'OUTPUT': 'ACCEPT', 'POSTROUTING': 'ACCEPT'}
        assert rules[0] == nat(LESSON_DNAT)
        assert rules[2].comment == MARK
        assert rules[3].matches == frozenset({'--destination=192.168.1.2/32', '--protocol=tcp', '--dport=8080'})

    def test_a_drop_policy_is_read(self):
        _, _, policies = parse_listing('filter', '-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n')

        assert policies['FORWARD'] == 'DROP'

    def test_warnings_and_blank_lines_are_not_rules(self):
        rules, chains, _ = parse_listing(
            'nat', '# Warning: iptables-legacy tables present, use iptables-legacy to see them\n\n'
            '-P POSTROUTING ACCEPT\n')

        assert (rules, chains) == ([], [])


# --------------------------------------------------------------------------
# covers
# --------------------------------------------------------------------------

class TestCovers:
    def test_a_dnat_that_names_no_interface_covers_the_one_for_lan0(self):
        assert nat(LESSON_DNAT).covers(nat(LAB_DNAT))

    def test_the_narrower_dnat_does_not_cover_the_broader_one(self):
        assert not nat(LAB_DNAT).covers(nat(LESSON_DNAT))

    def test_a_rule_covers_itself(self):
        assert nat(LAB_DNAT).covers(nat(LAB_DNAT))

    def test_another_destination_of_the_dnat_does_not_cover(self):
        other = nat('-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.3:80')

        assert not other.covers(nat(LAB_DNAT))

    def test_another_target_does_not_cover(self):
        assert not nat('-A POSTROUTING -s 192.168.15.0/24 -j SNAT --to-source 192.168.1.2').covers(nat(MASQUERADE))
        assert not nat('-A POSTROUTING -s 192.168.15.0/24 -j ACCEPT').covers(nat(MASQUERADE))

    def test_another_chain_or_table_does_not_cover(self):
        assert not nat('-A OUTPUT -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80').covers(nat(LAB_DNAT))
        assert not parse_rule('filter', '-A FORWARD -j ACCEPT').covers(parse_rule('mangle', '-A FORWARD -j ACCEPT'))

    def test_a_negated_condition_does_not_cover_the_plain_one(self):
        assert not nat('-A PREROUTING ! -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80') \
            .covers(nat(LAB_DNAT))

    def test_the_comment_does_not_matter(self):
        marked = nat('-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment other -j DNAT '
                     '--to-destination 192.168.15.2:80')

        assert marked.covers(nat(LAB_DNAT))


# --------------------------------------------------------------------------
# plan_rules
# --------------------------------------------------------------------------

class TestPlanRules:
    def test_nothing_found_adds_every_declared_rule(self):
        declared = [nat(MASQUERADE), nat(LAB_DNAT)]

        assert plan_rules(declared, [], MARK) == ([], declared, [])

    def test_the_rules_the_lab_added_before_are_kept(self):
        found = listed(
            '-A PREROUTING -i lan0 -p tcp -m tcp --dport 80 -m comment --comment %s -j DNAT '
            '--to-destination 192.168.15.2:80' % MARK,
            '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK)

        assert plan_rules([nat(MASQUERADE), nat(LAB_DNAT)], found, MARK) == ([], [], [])

    def test_a_masquerade_typed_by_hand_is_adopted_in_place_not_added(self):
        found = listed(
            '-A PREROUTING -p tcp -m tcp --dport 22 -j DNAT --to-destination 192.168.15.9:22',
            '-A POSTROUTING -o eth0 -j ACCEPT',
            '-A POSTROUTING -d 10.0.0.0/8 -j RETURN',
            '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE')
        declared = [nat(MASQUERADE)]

        adopt, add, delete = plan_rules(declared, found, MARK)

        assert add == [] and delete == []
        assert len(adopt) == 1
        found_rule, position, rule = adopt[0]
        assert found_rule is found[3]
        assert position == 3  # the third rule of POSTROUTING; the PREROUTING rule is not counted
        assert rule is declared[0]

    def test_the_adopted_position_is_counted_within_its_own_chain(self):
        found = listed(
            '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE',
            '-A OUTPUT -d 10.0.0.1/32 -j RETURN',
            '-A POSTROUTING -s 192.168.16.0/24 -j MASQUERADE')
        declared = [nat('-A POSTROUTING -s 192.168.16.0/24 -j MASQUERADE')]

        adopt, add, delete = plan_rules(declared, found, MARK)

        assert [(f.text, p) for f, p, _ in adopt] == [('-A POSTROUTING -s 192.168.16.0/24 -j MASQUERADE', 2)]
        assert (add, delete) == ([], [])

    def test_a_hand_typed_rule_with_its_own_comment_is_not_taken_over(self):
        found = listed('-A POSTROUTING -s 192.168.15.0/24 -m comment --comment mine -j MASQUERADE')

        assert plan_rules([nat(MASQUERADE)], found, MARK) == ([], [], [])

    def test_a_pasted_second_copy_of_a_marked_rule_is_deleted(self):
        line = '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK
        found = listed(line, line)

        adopt, add, delete = plan_rules([nat(MASQUERADE)], found, MARK)

        assert (adopt, add) == ([], [])
        assert len(delete) == 1 and delete[0] is found[1]

    def test_a_marked_rule_no_longer_declared_is_deleted(self):
        found = listed(
            '-A PREROUTING -i lan0 -p tcp -m tcp --dport 8080 -m comment --comment %s -j DNAT '
            '--to-destination 192.168.15.2:80' % MARK,
            '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK)

        adopt, add, delete = plan_rules([nat(MASQUERADE), nat(LAB_DNAT)], found, MARK)

        assert adopt == []
        assert delete == [found[0]] and delete[0] is found[0]
        assert add == [nat(LAB_DNAT)]

    def test_a_rule_marked_by_another_lab_is_left_alone(self):
        found = listed('-A POSTROUTING -s 10.10.0.0/24 -m comment --comment cka-lab:other -j MASQUERADE')

        assert plan_rules([nat(MASQUERADE)], found, MARK) == ([], [nat(MASQUERADE)], [])

    def test_a_broader_unmarked_dnat_makes_adding_the_narrower_one_unnecessary(self):
        found = listed('-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80')

        assert plan_rules([nat(LAB_DNAT)], found, MARK) == ([], [], [])

    def test_a_narrower_unmarked_dnat_does_not_replace_the_declared_broader_one(self):
        found = listed('-A PREROUTING -i lan0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80')

        assert plan_rules([nat(LESSON_DNAT)], found, MARK) == ([], [nat(LESSON_DNAT)], [])

    def test_a_broader_marked_rule_no_longer_declared_does_not_count_as_cover(self):
        found = listed('-A PREROUTING -p tcp -m tcp --dport 80 -m comment --comment %s -j DNAT '
                       '--to-destination 192.168.15.2:80' % MARK)

        adopt, add, delete = plan_rules([nat(LAB_DNAT)], found, MARK)

        assert (adopt, add, delete) == ([], [nat(LAB_DNAT)], [found[0]])

    def test_a_dnat_to_another_address_does_not_stop_the_declared_one(self):
        found = listed('-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.3:80')

        assert plan_rules([nat(LAB_DNAT)], found, MARK) == ([], [nat(LAB_DNAT)], [])

    def test_two_hand_typed_copies_one_is_adopted_and_the_other_goes(self):
        found = listed(MASQUERADE, MASQUERADE)

        adopt, add, delete = plan_rules([nat(MASQUERADE)], found, MARK)

        assert [(f is found[0], p) for f, p, _ in adopt] == [(True, 1)]
        assert add == [] and len(delete) == 1 and delete[0] is found[1]

    def test_a_marked_copy_is_kept_and_a_hand_typed_copy_of_it_goes(self):
        found = listed(MASQUERADE, '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK)

        adopt, add, delete = plan_rules([nat(MASQUERADE)], found, MARK)

        assert (adopt, add) == ([], []) and len(delete) == 1 and delete[0] is found[0]

    def test_a_copy_the_machine_had_before_the_lab_stays(self):
        found = listed(MASQUERADE, '-A POSTROUTING -s 192.168.15.0/24 -m comment --comment %s -j MASQUERADE' % MARK)

        assert plan_rules([nat(MASQUERADE)], found, MARK, preexisting=[nat(MASQUERADE)]) == ([], [], [])


# --------------------------------------------------------------------------
# Rule.argv
# --------------------------------------------------------------------------

class TestArgv:
    def test_without_a_comment_the_rule_as_written(self):
        assert nat(MASQUERADE).argv() == ['-t', 'nat', '-A', 'POSTROUTING', '-s', '192.168.15.0/24',
                                          '-j', 'MASQUERADE']

    def test_the_comment_goes_before_the_jump(self):
        assert nat(MASQUERADE).argv(MARK) == ['-t', 'nat', '-A', 'POSTROUTING', '-s', '192.168.15.0/24',
                                              '-m', 'comment', '--comment', MARK, '-j', 'MASQUERADE']

    def test_the_target_options_stay_after_the_jump(self):
        argv = nat(LAB_DNAT).argv(MARK)

        assert argv == ['-t', 'nat', '-A', 'PREROUTING', '-i', 'lan0', '-p', 'tcp', '--dport', '80',
                        '-m', 'comment', '--comment', MARK, '-j', 'DNAT', '--to-destination', '192.168.15.2:80']

    def test_the_comment_goes_before_a_long_jump_or_a_goto(self):
        assert parse_rule('filter', '-A FORWARD -i v-net-0 --jump ACCEPT').argv('c')[-4:] == \
            ['--comment', 'c', '--jump', 'ACCEPT']
        assert parse_rule('filter', '-A FORWARD -i v-net-0 -g LAB').argv('c')[-4:] == ['--comment', 'c', '-g', 'LAB']

    def test_a_negation_survives_the_round_trip(self):
        rule = nat('-A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -j MASQUERADE')

        assert rule.argv(MARK) == ['-t', 'nat', '-A', 'POSTROUTING', '-s', '192.168.15.0/24', '!', '-d',
                                   '192.168.15.0/24', '-m', 'comment', '--comment', MARK, '-j', 'MASQUERADE']

    def test_the_argv_with_the_comment_reads_back_as_the_same_rule_with_the_mark(self):
        argv = nat(LAB_DNAT).argv(MARK)
        again = nat(' '.join(argv[2:]))

        assert again == nat(LAB_DNAT) and again.comment == MARK

    def test_a_comment_with_a_space_is_one_argument(self):
        assert nat(MASQUERADE).argv('cka lab')[9] == 'cka lab'


def test_rules_are_values_that_ignore_comment_and_text():
    a = Rule('nat', 'POSTROUTING', 'MASQUERADE', (), frozenset({'--source=192.168.15.0/24'}), comment='x', text='a')
    b = Rule('nat', 'POSTROUTING', 'MASQUERADE', (), frozenset({'--source=192.168.15.0/24'}), comment=None, text='b')

    assert a == b and hash(a) == hash(b)
