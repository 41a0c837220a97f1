# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""The lab engine's NAT rules judged by what they do to the lesson's traffic.

A lab's NAT rule may carry ``traffic:`` (labs/README.md): one packet of the
lesson it is for. For such a rule a build asks the machine's whole NAT ruleset
(nat.py: iptables-nft, iptables-legacy, nftables) which rule takes that packet:

- a rule of the student's that does the same to it (``-o lan0 -j MASQUERADE``
  for the lesson's ``-s 192.168.15.0/24 -j MASQUERADE``, an nftables
  ``masquerade`` of their own table) is *taken over*: the lab adds no second
  rule, and notes the rule in its record so that a reset removes it;
- a rule that does something else to it before the lab's rule could (a DNAT to
  another address) is passed by inserting the lab's rule before it, in the same
  chain; where that cannot be done (another tool's chain, another table) the
  build refuses before anything changes, naming the rule and how to delete it;
- otherwise the lab's rule is added as any other.

A reset removes, besides the lab's own marked rules in every iptables backend,
the rules it took over and any rule made later that does the lab's job to the
lab's traffic, never one the machine had before the lab's first build.
"""
from __future__ import annotations

import os
import shlex

from ansible_collections.cka.lab.plugins.module_utils.nat import NatError, declared_rule, read_ruleset
from ansible_collections.cka.lab.plugins.module_utils.netfilter import parse_rule

BACKENDS = ('iptables-nft', 'iptables-legacy')


class RuleConflict(Exception):
    """A rule the build cannot get past; `errors` say which and how to remove it."""

    def __init__(self, errors):
        super().__init__('; '.join(errors))
        self.errors = errors


def default_backend(engine):
    """Which iptables the machine's `iptables` command is: iptables-nft or iptables-legacy (or plain iptables)."""
    rc, out, _ = engine.read(['readlink', '-f', engine.which('iptables') or 'iptables'], ok=(0, 1))
    target = os.path.basename(out.strip()) if rc == 0 else ''
    name = 'iptables-legacy' if 'legacy' in target else 'iptables-nft'
    return name if engine.which(name) else 'iptables'


def backends_in_use(engine, table):
    """The iptables commands whose `table` may hold rules here: nf_tables always, legacy when that table of it
    is loaded (listing it otherwise would load it)."""
    out = []
    for name in BACKENDS:
        if not engine.which(name):
            continue
        if name == 'iptables-legacy':
            rc, names, _ = engine.read(['cat', '/proc/net/ip_tables_names'], ok=(0, 1))
            if rc != 0 or table not in names.split():
                continue
        out.append(name)
    return out or ['iptables']


def delete_rule(engine, backend, table, rule):
    """Delete `rule` (from ``-S``) by its whole spec: if the rule changed or went, iptables says so and nothing
    else goes (a position may point at another rule by the time it is used)."""
    tokens = shlex.split(rule.text)
    engine.change([backend, '-w', '-t', table, '-D'] + tokens[1:])


def delete_rules(engine, backend, table, found, doomed):
    """Delete `doomed` rules of `found` (a listing of the table). A rule with no identical twin in its chain
    goes by its spec. Of identical twins the one meant goes by its position, last first in each chain, and
    only after the chain is listed again and that position still holds that rule: deleting by spec would
    take the first twin, which may be the copy that was meant to stay in its place."""
    places = []
    for rule in doomed:
        chain = [r for r in found if r.chain == rule.chain]
        number = next(i for i, r in enumerate(chain, 1) if r is rule)
        places.append((rule.chain, number, rule, sum(1 for r in chain if r.text == rule.text) > 1))
    for chain, number, rule, twins in sorted(places, key=lambda p: (p[0], -p[1])):
        if not twins:
            delete_rule(engine, backend, table, rule)
            continue
        if not engine.check_mode:
            now = [r for r in engine.iptables_listing(table, backend)[0] if r.chain == chain]
            if len(now) < number or now[number - 1].text != rule.text:
                raise RuleConflict(['%s -t %s: the rule at %s %d is no longer `%s` (the chain changed while this '
                                    'run worked); run again (see: %s -t %s -S %s)'
                                    % (backend, table, chain, number, rule.text, backend, table, chain)])
        engine.change([backend, '-w', '-t', table, '-D', chain, str(number)],
                      '%s -w -t %s -D %s %d  # %s' % (backend, table, chain, number, rule.text))


def delete_marked(engine, table, comment):
    """Every rule carrying the lab's comment, in every iptables backend in use."""
    for backend in backends_in_use(engine, table):
        for rule in engine.iptables_listing(table, backend)[0]:
            if rule.comment == comment:
                delete_rule(engine, backend, table, rule)


def _ruleset(engine):
    try:
        return read_ruleset(lambda argv: engine.read(argv, ok=(0, 1, 2, 4, 127)) if engine.which(argv[0])
                            else (127, '', '%s: command not found' % argv[0]))
    except NatError as exc:
        raise RuleConflict([str(exc)]) from None


def traffic_rules(machine):
    """(item, NatRule as declared, Traffic, wanted Effect) for each declared rule with `traffic`."""
    return [(item,) + declared_rule(item) for item in machine.get('rules', []) if item.get('traffic') is not None]


def _key(rule):
    return {'origin': rule.origin, 'family': rule.family, 'table': rule.table, 'chain': rule.chain,
            'text': rule.text, 'handle': rule.handle}


def plan_traffic(engine, machine, backend, comments, preexisting):
    """Before any change: for each rule with `traffic`, what the build does.

    Returns ``(adopted, inserts, skip)``: `adopted`, record entries of the
    student's rules that already do the lab's job; `inserts`, ``(item, rule)``
    pairs where the lab's rule must go before `rule` (a NatRule) of its own
    chain; `skip`, the declared rule texts the ordinary plan must leave out
    (neither kept nor added). `comments` are the lab's marks, old and new;
    `preexisting`, the record's note of the machine before the lab: a rule it
    had that does the job makes the lab's unnecessary, but is not taken over.
    Raises RuleConflict for a rule the build cannot get past."""
    wanted = traffic_rules(machine)
    if not wanted:
        return [], [], set()
    ruleset = _ruleset(engine)
    adopted, inserts, skip, errors = [], [], set(), []

    def ours(rule):
        return rule.comment in comments

    def any_lab(rule):
        # Another lab's rule on this machine is that lab's: never taken over (nor removed) by this one.
        return (rule.comment or '').startswith('cka-lab:')

    for item, declared, traffic, effect in wanted:
        everything = ruleset.decide(traffic)
        if everything.rule is not None and ours(everything.rule) and everything.effect.same_as(effect):
            continue  # the lab's own rule does it (kept by the ordinary plan)
        found = ruleset.decide(traffic, skip=any_lab)
        if found.rule is None:
            continue  # nothing else takes the packet: the lab's rule is added or kept
        if found.effect.same_as(effect):
            skip.add(item['rule'])
            if not _had(found.rule, preexisting):
                adopted.append(dict(_key(found.rule), lab_rule=item['rule']))
            continue
        if found.rule.origin == backend and found.rule.table == item['table'] and found.rule.chain == declared.chain:
            skip.add(item['rule'])
            inserts.append((declared, found.rule))
            continue
        errors.append("machine.rules: the lesson's traffic (%s) is taken by %s, which %s, before the lab's rule "
                      "`%s` could %s; delete that rule (`%s`) and run again (see: %s)"
                      % (traffic.words(), found.rule.shown(), found.effect.words(), item['rule'], effect.words(),
                         shlex.join(found.rule.delete_argv()), found.rule.where()))
    if errors:
        raise RuleConflict(errors)
    return adopted, inserts, skip


def _had(rule, preexisting):
    """Whether the machine had `rule` before the lab's first build (the record's `preexisting`)."""
    if preexisting['nat'] is not None:
        return any((e['origin'], e['family'], e['table'], e['chain'], e['text'])
                   == (rule.origin, rule.family, rule.table, rule.chain, rule.text) for e in preexisting['nat'])
    # A record older than version 3 may have noted only the `iptables -t nat -S` rules of the time: what another tool
    # holds is taken as the machine's own (never taken over nor removed).
    if rule.origin in ('nft', 'iptables-legacy'):
        return True
    return _normal(rule.text) in {_normal(t) for t in (preexisting['rules'] or {}).get('nat', [])}


def insert_before(engine, backend, declared, other, comment):
    """Insert the lab's rule (`declared`, a NatRule; with its mark) just before `other` in their chain,
    found again by its words."""
    rules = [r for r in engine.iptables_listing(declared.table, backend)[0] if r.chain == declared.chain]
    number = next((i for i, r in enumerate(rules, 1) if _normal(r.text) == _normal(other.text)), 1)
    argv = parse_rule(declared.table, declared.text).argv(comment)  # -t TABLE -A CHAIN ... with the mark
    engine.change([backend, '-w'] + argv[:2] + ['-I', declared.chain, str(number)] + argv[4:])


def _normal(text):
    return ' '.join(shlex.quote(t) for t in shlex.split(text))


def remove_nat(engine, adopted, also, preexisting):
    """Delete the rules a build took over (`adopted`, record entries, each only if it is still there with the
    same words) and every rule that does a declared NAT rule's job to its traffic (`also`: every stage's
    declarations; made by a student after the lab's first build), except what the machine had before
    (`preexisting`) and the lab's own marked rules (deleted by their mark). Then the nftables chains and
    tables this left empty that the machine did not have before."""
    wanted = traffic_rules(also or {})
    if not adopted and not wanted:
        return
    ruleset = _ruleset(engine)
    doomed = []
    for entry in adopted:
        for rule in ruleset.rules():
            if (rule.origin, rule.family, rule.table, rule.chain, rule.text) == (
                    entry['origin'], entry['family'], entry['table'], entry['chain'], entry['text']) \
                    and (rule.origin != 'nft' or rule.handle == entry.get('handle')) \
                    and not (rule.comment or '').startswith('cka-lab:') and not any(rule is d for d in doomed):
                doomed.append(rule)
                break
    for _, _, traffic, effect in wanted:
        for rule in ruleset.doing(traffic, effect, skip=lambda r: (r.comment or '').startswith('cka-lab:')):
            if not _had(rule, preexisting) and not any(rule is d for d in doomed):
                doomed.append(rule)
    for rule in doomed:
        engine.change(rule.delete_argv())
    had_chains = {tuple(c) for c in preexisting['nft_chains'] or []}
    deleted = set()
    for family, table, chain in sorted({(r.family, r.table, r.chain) for r in doomed if r.origin == 'nft'}):
        left = [r for r in ruleset.chains.get(('nft', family, table, chain), []) if not any(r is d for d in doomed)]
        if left or (family, table, chain) in had_chains:
            continue
        engine.change(['nft', 'delete', 'chain', family, table, chain])
        deleted.add((family, table, chain))
    # A table goes once none of its chains is left (nor was it the machine's before).
    for family, table in sorted({(f, t) for f, t, _ in deleted}):
        remaining = [key for key in ruleset.chains if key[1:3] == (family, table)
                     and (key[1], key[2], key[3]) not in deleted]
        if not remaining and not any(c[:2] == (family, table) for c in had_chains):
            engine.change(['nft', 'delete', 'table', family, table])


def snapshot(engine):
    """What a first build notes of the machine's NAT: every rule (any tool) and nftables' own chains."""
    ruleset = _ruleset(engine)
    rules = [{'origin': r.origin, 'family': r.family, 'table': r.table, 'chain': r.chain, 'text': r.text}
             for r in ruleset.rules()]
    chains = sorted([f, t, c] for (o, f, t, c) in ruleset.chains if o == 'nft')
    return rules, chains
