# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""iptables rules compared by what they do, not by how they were typed or marked.

A rule is read from ``iptables -t TABLE -S`` (the form ``iptables-save`` and
``iptables -S`` print, see iptables(8) and iptables-extensions(8)) or written as
a lab declares it, in the same syntax a student types: ``-A POSTROUTING -s
192.168.15.0/24 -j MASQUERADE``. Both are parsed into a :class:`Rule`: the
chain, the target with its options, and the match conditions. Comments (``-m
comment --comment``) and the ``-m`` lines that only load a match extension are
not part of what a rule does and are left out.

Rule A *covers* rule B when they sit in the same table and chain, jump to the
same target with the same target options, and every condition of A is also a
condition of B: A takes at least every packet B would take and does the same to
it. The lesson's ``-A PREROUTING -p tcp --dport 80 -j DNAT --to-destination
192.168.15.2:80`` covers the lab's rule that also says ``-i lan0``.
"""
from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

# Short options and their long names, as iptables(8) lists them.
_ALIASES = {
    '-s': '--source', '--src': '--source',
    '-d': '--destination', '--dst': '--destination',
    '-i': '--in-interface', '-o': '--out-interface',
    '-p': '--protocol', '-j': '--jump', '-g': '--goto',
    '-m': '--match', '-f': '--fragment',
}
# Options whose values are addresses or networks: 192.168.1.2 and 192.168.1.2/32 are one.
_NETWORK_OPTIONS = {'--source', '--destination'}
# Options that end the match part: what follows belongs to the target.
_TARGET_OPTIONS = {'--jump', '--goto'}

BUILTIN_CHAINS = {
    'filter': {'INPUT', 'FORWARD', 'OUTPUT'},
    'nat': {'PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'},
    'mangle': {'PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'},
    'raw': {'PREROUTING', 'OUTPUT'},
}


class RuleError(ValueError):
    """A rule that cannot be read; the message says why."""


@dataclass(frozen=True)
class Rule:
    """One rule of one chain: what it matches and what it does."""

    table: str
    chain: str
    target: str
    target_options: tuple = ()
    matches: frozenset = frozenset()
    comment: str | None = field(default=None, compare=False)
    text: str = field(default='', compare=False)

    def covers(self, other: 'Rule') -> bool:
        """True when this rule does what `other` does to at least every packet `other` takes."""
        return (self.table == other.table and self.chain == other.chain and self.target == other.target
                and self.target_options == other.target_options and self.matches <= other.matches)

    def argv(self, comment=None):
        """The argument list of ``iptables -t TABLE -A ...`` for this rule, with `comment` added."""
        tokens = shlex.split(self.text)
        if comment is None:
            return ['-t', self.table] + tokens
        jump = next((i for i, t in enumerate(tokens) if _ALIASES.get(t, t) in _TARGET_OPTIONS), len(tokens))
        return ['-t', self.table] + tokens[:jump] + ['-m', 'comment', '--comment', comment] + tokens[jump:]


def _normal_value(option, values):
    if option in _NETWORK_OPTIONS and len(values) == 1:
        try:
            return (str(ipaddress.ip_network(values[0], strict=False)),)
        except ValueError:
            return tuple(values)
    if option == '--protocol' and len(values) == 1:
        return (values[0].lower(),)
    return tuple(values)


def parse_rule(table, text):
    """A :class:`Rule` from ``-A CHAIN ...`` text; raises :class:`RuleError`.

    >>> parse_rule('nat', '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE').target
    'MASQUERADE'
    """
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise RuleError('cannot be split into words: %s' % exc) from None
    if len(tokens) < 2 or tokens[0] not in ('-A', '--append'):
        raise RuleError("must start with '-A CHAIN', like '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'")
    chain = tokens[1]
    matches, target, target_options, comment = set(), None, [], None
    i, negate = 2, False
    while i < len(tokens):
        token = tokens[i]
        if token == '!':
            negate = True
            i += 1
            continue
        if not token.startswith('-'):
            raise RuleError("'%s' is not an option (every word after the chain is an option or its value)" % token)
        option = _ALIASES.get(token, token)
        values = []
        i += 1
        while i < len(tokens) and tokens[i] != '!' and not (tokens[i].startswith('-') and len(tokens[i]) > 1
                                                             and not tokens[i][1].isdigit()):
            values.append(tokens[i])
            i += 1
        if option in _TARGET_OPTIONS:
            if target is not None:
                raise RuleError('has two targets (-j or -g)')
            if len(values) != 1:
                raise RuleError('%s takes one target name' % token)
            target = ('goto:' if option == '--goto' else '') + values[0]
        elif target is not None:
            target_options.append((option, _normal_value(option, values)))
        elif option == '--match':
            pass  # loads an extension; its options are the conditions
        elif option == '--comment':
            comment = ' '.join(values)
        else:
            matches.add(('!' if negate else '') + option + '=' + ' '.join(_normal_value(option, values)))
        negate = False
    if target is None:
        raise RuleError("has no target: end it with '-j TARGET', like '-j MASQUERADE'")
    return Rule(table=table, chain=chain, target=target, target_options=tuple(sorted(target_options)),
                matches=frozenset(matches), comment=comment, text=' '.join(shlex.quote(t) for t in tokens))


def parse_listing(table, listing):
    """The rules, chains and policies of ``iptables -t TABLE -S`` output.

    Returns ``(rules, chains, policies)``: rules in order, the user-defined chain
    names, and ``{chain: policy}`` of the built-in chains."""
    rules, chains, policies = [], [], {}
    for line in listing.splitlines():
        line = line.strip()
        if line.startswith('-P '):
            _, chain, policy = line.split()[:3]
            policies[chain] = policy
        elif line.startswith('-N '):
            chains.append(line.split()[1])
        elif line.startswith('-A '):
            rules.append(parse_rule(table, line))
    return rules, chains, policies


def plan_rules(declared, found, mark, preexisting=()):
    """What to change so that the tables hold every `declared` rule once.

    `declared`: the Rules the lab wants. `found`: the Rules in the tables now,
    in the order ``iptables -S`` lists them. `mark`: the comment the lab puts on
    the rules it adds.
    Returns ``(adopt, add, delete)``:
      - adopt: ``(found_rule, position, declared_rule)`` for an unmarked rule that
        does exactly what a declared one does (the lesson typed by hand): it is
        taken over in place (``iptables -R CHAIN POSITION``, position counted
        from 1 within its chain), so a reset removes it with the rest; a rule
        equal to one of `preexisting` (what the machine had before the lab) is
        left as it is, and covers the declared one;
      - add: declared Rules that no rule left in place covers (a broader rule
        someone else added, such as a DNAT that names no interface, makes adding
        the narrower one unnecessary);
      - delete: found Rules carrying `mark` that are not wanted (a second copy of
        a lab rule, or a rule of an earlier declaration), and unmarked exact
        copies of a rule the lab keeps, unless the machine had them before.
    """
    kept, adopt = [], []
    for rule in declared:
        ours = next((f for f in found if f.comment == mark and f == rule and not any(f is k for k in kept)), None)
        if ours is None:
            ours = next((f for f in found if f.comment is None and f == rule
                         and not any(f is k for k in kept)), None)
            if ours is not None and not any(p == ours for p in preexisting):
                adopt.append((ours, position(found, ours), rule))
        if ours is not None:
            kept.append(ours)
    # A second copy of a lab rule goes, marked or not (the lesson pasted once
    # more); what the machine had before the lab stays.
    delete = [f for f in found if not any(f is k for k in kept)
              and (f.comment == mark or (f.comment is None and any(f == k for k in kept)
                                         and not any(p == f for p in preexisting)))]
    staying = [f for f in found if not any(f is d for d in delete)]
    add = [rule for rule in declared if not any(f.covers(rule) for f in staying)]
    return adopt, add, delete


def position(found, rule):
    """The 1-based position of `rule` within its chain."""
    same_chain = [f for f in found if f.chain == rule.chain]
    return next(i for i, f in enumerate(same_chain, 1) if f is rule)
