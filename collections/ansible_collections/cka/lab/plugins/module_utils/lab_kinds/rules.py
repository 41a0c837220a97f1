# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Kinds `chains` and `rules`: iptables chains of the lab's own, and rules written as a student types them.

Rules are compared by what they do (module_utils/netfilter.py parses them), a NAT
rule with `traffic` by what it does to one packet of the lesson (module_utils/nat.py
and lab_rules.py: a student's equivalent rule is taken over, never added twice).
Every rule the lab adds carries the comment ``cka-lab:MARK``; the record names the
iptables backend it went into, and a reset removes the lab's marked rules from
every backend in use.
"""
from __future__ import annotations

import shlex

from ansible_collections.cka.lab.plugins.module_utils import lab_rules
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.base import EngineError
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.look import covered_by, fail, need
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds.picture import ROOT
from ansible_collections.cka.lab.plugins.module_utils.lab_rules import RuleConflict, delete_rule
from ansible_collections.cka.lab.plugins.module_utils.lab_schema import IFNAME_SCHEMA, PORT_SCHEMA, item_schema, path_of
from ansible_collections.cka.lab.plugins.module_utils.nat import (
    HOOK_OF_CHAIN,
    NatError,
    Traffic,
    declared_rule,
    iptables_rule,
    read_ruleset,
)
from ansible_collections.cka.lab.plugins.module_utils.netfilter import BUILTIN_CHAINS, RuleError, parse_rule, plan_rules

KEYS = ('chains', 'rules')
# The record (lab_record.py): this kind's keys, their type and value in a new record (the iptables backend, null
# in a record older than version 2 until it is used; the rules taken over; the chains made; the tables used),
# and what it notes of the machine before the lab's first build (rules, chains, NAT, nftables chains).
RECORD = {'iptables': ('string', None), 'adopted': ('list', []), 'chains': ('list', []), 'tables': ('list', [])}
NOTED = {'rules': 'object', 'chains': 'object', 'nat': 'list', 'nft_chains': 'list'}

SCHEMA = {
    'chains': item_schema(['table', 'chain'], {
        'table': {'enum': sorted(BUILTIN_CHAINS)},
        'chain': {'type': 'string', 'pattern': r'^[A-Za-z0-9_-]{1,28}\Z'}}),
    'rules': item_schema(['table', 'rule'], {
        'table': {'enum': sorted(BUILTIN_CHAINS)}, 'rule': {'type': 'string'},
        'traffic': {'type': 'object', 'required': ['source', 'destination'],
                    'additionalProperties': False, 'properties': {
                        'hook': {'enum': ['prerouting', 'postrouting', 'output', 'input']},
                        'source': {'type': 'string'}, 'destination': {'type': 'string'},
                        'protocol': {'enum': ['tcp', 'udp']}, 'port': PORT_SCHEMA,
                        'in': IFNAME_SCHEMA, 'out': IFNAME_SCHEMA, 'local': {'type': 'boolean'},
                        'out_address': {'type': 'string'}}}}),
}


def stage_errors(machine, context):
    """Rules that parse, with ports TCP and UDP have, in a built-in chain or one the lab declares; a rule's
    traffic a packet it translates."""
    errors = []
    chains = {(c['table'], c['chain']) for c in machine.get('chains', [])}
    for i, item in enumerate(machine.get('rules', [])):
        where = path_of(item, 'rules', i) + '.rule'
        try:
            rule = parse_rule(item['table'], item['rule'])
        except RuleError as exc:
            errors.append("%s: '%s' %s" % (where, item['rule'], exc))
            continue
        for problem in _port_problems(rule):
            errors.append("%s: '%s' %s" % (where, item['rule'], problem))
        if rule.chain not in BUILTIN_CHAINS[item['table']] and (item['table'], rule.chain) not in chains:
            errors.append("%s: chain '%s' is neither a built-in chain of table %s (%s) nor declared in "
                          "machine.chains" % (where, rule.chain, item['table'],
                                              ', '.join(sorted(BUILTIN_CHAINS[item['table']]))))
        if 'traffic' in item:
            errors += _traffic_problems(path_of(item, 'rules', i), item)
    return errors


def _port(text):
    return text.isdigit() and 1 <= int(text) <= 65535


def _port_problems(rule):
    """Ports a rule names that TCP and UDP do not have (1-65535, RFC 793 and RFC 768)."""
    problems = []
    for match in rule.matches:
        option, _, value = match.lstrip('!').partition('=')
        if option in ('--dport', '--sport', '--destination-port', '--source-port'):
            if not all(_port(part) for part in value.split(':')):
                problems.append("has %s %s; allowed: a port 1-65535 or a range FIRST:LAST" % (option, value))
    for option, values in rule.target_options:
        if option in ('--to-destination', '--to-source') and values and ':' in values[0]:
            ports = values[0].rsplit(':', 1)[1]
            if not all(_port(part) for part in ports.split('-')):
                problems.append("has %s %s; allowed: ADDRESS:PORT with a port 1-65535" % (option, values[0]))
        if option == '--to-ports' and values and not all(_port(part) for part in values[0].split('-')):
            problems.append("has --to-ports %s; allowed: a port 1-65535" % values[0])
    return problems


def _traffic_problems(where, item):
    """A rule's `traffic` must be a packet its own rule translates (nat.py judges rules by it)."""
    if item['table'] != 'nat':
        return ["%s.traffic: only a rule of table nat is judged by its traffic; this one is in table %s"
                % (where, item['table'])]
    rule = iptables_rule('lab', 'nat', item['rule'], 0)
    try:
        traffic = Traffic.from_declaration(rule.chain, item['traffic'])
    except NatError as exc:
        return ['%s.traffic: %s' % (where, exc)]
    if rule.chain in HOOK_OF_CHAIN and traffic.hook != HOOK_OF_CHAIN[rule.chain]:
        return ["%s.traffic.hook: '%s' is not where the rule's chain %s is; allowed: %s (or leave it out)"
                % (where, traffic.hook, rule.chain, HOOK_OF_CHAIN[rule.chain])]
    if rule.action[0] not in ('dnat', 'snat', 'masquerade', 'redirect'):
        return ["%s.traffic: the rule's target is not DNAT, SNAT, MASQUERADE or REDIRECT; only those are judged "
                "by their traffic" % where]
    if rule.action[0] == 'masquerade' and not traffic.out_address:
        return ["%s.traffic.out_address: missing; MASQUERADE writes the out interface's address, which a rule "
                "typed as SNAT must match" % where]
    if rule.matches(traffic) is not True:
        return ["%s.traffic: the rule '%s' does not take this packet (%s); allowed: a packet of the lesson the "
                "rule translates" % (where, item['rule'], traffic.words())]
    return []


def tools(machine):
    return {'iptables': 'the iptables rules'} if machine.get('rules') or machine.get('chains') else {}


def snapshot(engine, every_stage):
    """The machine's rules, chains and NAT before the lab (a reset never removes one of them); picks the
    iptables backend the lab's rules go into (engine.iptables)."""
    engine.iptables = lab_rules.default_backend(engine)
    rules, chains = {}, {}
    for table in ('nat', 'filter'):
        listing = engine.iptables_listing(table)
        rules[table] = [rule.text for rule in listing[0]]
        chains[table] = listing[1]
    try:
        nat_rules, nft_chains = lab_rules.snapshot(engine)
    except RuleConflict as exc:
        if lab_rules.traffic_rules(every_stage):
            raise EngineError(exc.errors) from None
        nat_rules, nft_chains = [], []  # a lab with no rule judged by its traffic does not need them
    return {'rules': rules, 'chains': chains, 'nat': nat_rules, 'nft_chains': nft_chains}


def initial(engine):
    """The backend of a new record."""
    return {'iptables': engine.iptables}


def plan(engine, machine, record):
    """How each rule judged by its traffic is made: a student's equivalent rule taken over, or the lab's
    inserted before a rule that would take the packet first; refused when neither can be."""
    try:
        marks = {engine.comment} | ({engine.old_comment} if engine.old_comment else set())
        return lab_rules.plan_traffic(engine, machine, engine.iptables, marks, record['preexisting']), []
    except (RuleConflict, NatError) as exc:
        return ([], [], set()), getattr(exc, 'errors', [str(exc)])


def note(engine, machine, record, plan):
    record['tables'] = sorted(set(record['tables']) | {r['table'] for r in machine.get('rules', [])}
                              | {c['table'] for c in machine.get('chains', [])})


def withdraw(engine, machine, record, plan):
    """The rules of the lab's previous mark (its name changed) go; they are the lab's as before."""
    if engine.old_comment is not None:
        for table in sorted(set(record['tables']) | {'nat', 'filter'}):
            lab_rules.delete_marked(engine, table, engine.old_comment)


def remove(engine, record, also):
    comment = 'cka-lab:%s' % record['name']
    # The lab's marked rules in every iptables backend: the machine's `iptables` may have been switched since.
    for table in sorted(set(record['tables']) | {'nat', 'filter'}):
        lab_rules.delete_marked(engine, table, comment)
    try:
        lab_rules.remove_nat(engine, record['adopted'], also, record['preexisting'])
    except RuleConflict as exc:
        raise EngineError(exc.errors) from None
    for rule in _hand_made_rules(record, also):
        # In the lab's own backend, where its first build noted what the machine had (every copy goes).
        for found in engine.iptables_listing(rule.table)[0]:
            if found.comment is None and found == rule:
                delete_rule(engine, engine.iptables, rule.table, found)
    # Chains of the lab's names a student made by hand after the first build
    # (not in a record older than `preexisting.chains`: those are left alone).
    before_chains = record['preexisting']['chains']
    hand_chains = [{'table': c['table'], 'chain': c['chain']} for c in also.get('chains', [])
                   if before_chains is not None and c['table'] in before_chains
                   and c['chain'] not in before_chains[c['table']]]
    for chain in record['chains'] + [c for c in hand_chains if c not in record['chains']]:
        drop_chain(engine, chain['table'], chain['chain'], comment)


def remove_marked(engine, comment):
    """Nothing recorded: the lab's marked rules are still found by their comment."""
    for table in ('nat', 'filter'):
        lab_rules.delete_marked(engine, table, comment)


def _hand_made_rules(record, also):
    """The rules every stage declares that the machine did not have before the lab: typed by a student."""
    before = record['preexisting']
    if before['rules'] is None:
        return []
    rules = []
    for item in also.get('rules', []):
        rule = parse_rule(item['table'], item['rule'])
        if not any(parse_rule(item['table'], text) == rule for text in before['rules'].get(item['table'], [])):
            rules.append(rule)
    return rules


def build(engine, machine, record, plan):
    """The lab's chains, then its rules: a student's rule that does a rule's job is taken over, a rule
    that goes before another is inserted there; chains no longer declared go."""
    adopted, inserts, skip = plan
    chains = machine.get('chains', [])
    # A rule whose traffic a student's rule already handles is not added (nor kept twice), and one that
    # goes before another rule is inserted below.
    rules = [parse_rule(r['table'], r['rule']) for r in machine.get('rules', []) if r['rule'] not in skip]
    record['adopted'] = adopted
    created = {(c['table'], c['chain']) for c in record['chains']}
    listings = {table: engine.iptables_listing(table) for table in record['tables']}
    for item in chains:
        table, chain = item['table'], item['chain']
        if chain not in listings[table][1]:
            created.add((table, chain))
            record['chains'] = [{'table': t, 'chain': c} for t, c in sorted(created)]  # noted before it is made
            engine.change([engine.iptables, '-w', '-t', table, '-N', chain])
    for table in record['tables']:
        found = listings[table][0]
        before = [parse_rule(table, text) for text in (record['preexisting']['rules'] or {}).get(table, [])]
        adopt, add, delete = plan_rules([r for r in rules if r.table == table], found, engine.comment, before)
        for found_rule, number, rule in adopt:
            argv = rule.argv(engine.comment)
            engine.change([engine.iptables, '-w'] + argv[:2] + ['-R', rule.chain, str(number)] + argv[4:])
        delete_rules(engine, table, found, delete)
        for rule in add:
            engine.change([engine.iptables, '-w'] + rule.argv(engine.comment))
    for declared, other in inserts:
        lab_rules.insert_before(engine, engine.iptables, declared, other, engine.comment)
    wanted = {(c['table'], c['chain']) for c in chains}
    for table, chain in sorted(created - wanted):
        drop_chain(engine, table, chain, engine.comment)
    record['chains'] = [{'table': t, 'chain': c} for t, c in sorted(created & wanted)]


def delete_rules(engine, table, found, doomed):
    """Delete rules of `found` (a table's listing); see lab_rules.delete_rules."""
    lab_rules.delete_rules(engine, engine.iptables, table, found, doomed)


def drop_chain(engine, table, chain, comment):
    """Remove a chain the lab created, once nothing but the lab's rules use it."""
    rules, chains, _ = engine.iptables_listing(table)
    if chain not in chains:
        return
    delete_rules(engine, table, rules, [r for r in rules if r.comment == comment
                                         and (r.chain == chain or r.target == chain)])
    others = [r for r in rules if r.comment != comment and (r.chain == chain or r.target == chain)]
    if not others:
        engine.change([engine.iptables, '-w', '-t', table, '-X', chain])


# -- the picture (lab_drawing.py lays it out) --

def draw(machine, picture):
    """The NAT rules, as written and in their order, a note in the host's box (a lab's iptables rules are
    the root namespace's); filter rules are not drawn."""
    nat = [item['rule'] for item in machine.get('rules', []) if item.get('table') == 'nat']
    if nat:
        picture.note(ROOT, 'nat', ['iptables -t nat'] + nat)


# -- checks: the lesson's objects, as a student looks at them (checks/lab/test_lab.py) --

def check_chain(lab, item):
    command = "iptables -t %s -S %s" % (item["table"], shlex.quote(item["chain"]))
    if lab.run(command).rc != 0:
        fail("table %s has no chain %s - see `iptables -t %s -S`" % (item["table"], item["chain"], item["table"]))


def iptables_listings(lab, table):
    """`iptables -t TABLE -S` of every iptables backend with tables here: nf_tables, and legacy when loaded."""
    need(lab, "iptables", "reading the iptables rules")
    commands = ["iptables -w -t %s -S" % table]
    if lab.run("grep -qw %s /proc/net/ip_tables_names" % table).rc == 0:
        commands.append("iptables-legacy -w -t %s -S" % table)
    out = []
    for command in commands:
        result = lab.run(command)
        if result.rc != 0:
            fail("this check cannot run on %s: `%s` failed (rc %d): %s"
                 % (lab.name, command, result.rc, (result.stderr or result.stdout).strip() or "no message"))
        out.append(result.stdout)
    return out


def check_rule(lab, item):
    if item.get("traffic"):
        check_nat_rule(lab, item)
        return
    if not any(covered_by(item["table"], item["rule"], listing) for listing in iptables_listings(lab, item["table"])):
        fail("no rule in table %s does what `iptables -t %s %s` does - see `iptables -t %s -S`"
             % (item["table"], item["table"], item["rule"], item["table"]))


def check_nat_rule(lab, item):
    """A NAT rule of the lesson, judged by what the machine's rules (any tool) do to the lesson's packet."""
    need(lab, "iptables", "reading the NAT rules")
    try:
        ruleset = read_ruleset(lambda argv: tuple(getattr(lab.run(shlex.join(argv)), key)
                                                  for key in ("rc", "stdout", "stderr")))
    except NatError as exc:
        fail("the NAT rules cannot be read: %s" % exc)
    declared, traffic, wanted = declared_rule(item)
    found = ruleset.decide(traffic)
    if found.rule is not None and found.effect.same_as(wanted):
        return
    look = "iptables -t nat -S %s" % declared.chain
    if lab.run("command -v nft").rc == 0:
        look += "` and `nft list ruleset"
    unsure = ("; passed over, not understood by the grader: %s" % ", ".join(r.shown() for r in found.uncertain[:2])
              if found.uncertain else "")
    if found.rule is None:
        fail("no NAT rule takes the lesson's traffic (%s): the lesson's `iptables -t nat %s` %s%s - see `%s`"
             % (traffic.words(), item["rule"], wanted.words(), unsure, look))
    fail("the lesson's traffic (%s) is taken by %s, which %s; the lesson's `iptables -t nat %s` %s%s - see `%s`"
         % (traffic.words(), found.rule.shown(), found.effect.words(), item["rule"], wanted.words(), unsure, look))
