# -*- coding: utf-8 -*-
# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""What a machine's NAT does to one packet of a lesson's traffic, whichever tool wrote the rules.

A lesson's NAT rule can be typed many ways that do the same to the lesson's
traffic: ``-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE``, ``-o lan0 -j
MASQUERADE``, ``-j SNAT --to-source 192.168.1.2``; a DNAT to ``192.168.15.2``
without ``:80``, or matched on ``-d 192.168.1.2`` instead of ``-i lan0``; in
iptables' nf_tables or legacy tables, or as nftables rules of one's own
(``table ip nat``). So a NAT rule is judged by what it does to a packet:

- :class:`Traffic` is one packet of the lesson (addresses, protocol, port,
  interfaces), as a lab declares it beside its rule;
- :func:`read_ruleset` reads every NAT chain of the machine: ``nft -j list
  ruleset`` (nftables and iptables-nft; a rule nft can only show as an ``xt``
  extension is read from ``iptables-nft -S`` at the same place), else
  ``iptables-nft -S``; and ``iptables-legacy -S`` when legacy tables are loaded
  (``/proc/net/ip_tables_names``);
- :meth:`Ruleset.decide` walks the base chains of the packet's hook in the
  kernel's order (by priority: NF_IP_PRI_NAT_DST = -100 for prerouting and
  output, NF_IP_PRI_NAT_SRC = 100 for postrouting and input,
  linux/netfilter_ipv4.h), following jumps, gotos, RETURN and ACCEPT, to the
  rule that takes the packet. The first NAT chain that maps a connection
  decides; later chains of the hook are not asked (nf_nat_inet_fn).

A condition this module cannot evaluate (a match it does not know, a source
port) makes the rule *uncertain*: it is passed over, and listed in the
decision so that a message can name it. Sources: iptables(8),
iptables-extensions(8) (DNAT, SNAT, MASQUERADE, REDIRECT, addrtype, multiport),
nft(8) (NAT statements, fib), libnftables-json(5).
"""
from __future__ import annotations

import ipaddress
import json
import shlex
from dataclasses import dataclass, field

from ansible_collections.cka.lab.plugins.module_utils.netfilter import RuleError, parse_rule

# Hooks of the nat table, and the priority of iptables' nat chains there.
HOOK_OF_CHAIN = {'PREROUTING': 'prerouting', 'POSTROUTING': 'postrouting', 'OUTPUT': 'output', 'INPUT': 'input'}
IPTABLES_NAT_PRIORITY = {'prerouting': -100, 'output': -100, 'postrouting': 100, 'input': 100}
# Where each hook sits in a packet's path: what a rule there can see.
_HOOK_SEES = {'prerouting': ('in',), 'input': ('in',), 'output': ('out',), 'postrouting': ('in', 'out')}
# Targets that only look or mark: the packet goes on to the next rule.
_CONTINUE_TARGETS = {'LOG', 'NFLOG', 'MARK', 'CONNMARK', 'TRACE', 'CT', 'NOTRACK'}
_ORIGIN_ORDER = {'nft': 0, 'iptables-nft': 0, 'iptables-legacy': 1}


class NatError(ValueError):
    """A ruleset or a declaration that cannot be read; the message says why."""


def _network(text):
    return ipaddress.ip_network(text, strict=False)


@dataclass(frozen=True)
class Traffic:
    """One packet of a lesson's traffic, as the lab declares it beside a NAT rule.

    `source`, `destination`: IPv4 addresses; `protocol`: tcp or udp; `port`:
    the destination port (or None); `in_interface`, `out_interface`: the links
    it comes in on and leaves by (None where the hook cannot know it);
    `local`: the destination is one of the machine's own addresses (what
    ``-m addrtype --dst-type LOCAL`` and ``fib daddr type local`` match);
    `out_address`: the address MASQUERADE would write (the out interface's);
    `hook`: prerouting, postrouting, output or input."""

    hook: str
    source: str
    destination: str
    protocol: str = 'tcp'
    port: int | None = None
    in_interface: str | None = None
    out_interface: str | None = None
    local: bool = False
    out_address: str | None = None

    @classmethod
    def from_declaration(cls, rule_chain, spec):
        """A Traffic from a lab's ``traffic:`` block; `rule_chain` gives the hook when it is not named."""
        hook = spec.get('hook') or HOOK_OF_CHAIN.get(rule_chain)
        if hook not in IPTABLES_NAT_PRIORITY:
            raise NatError("hook: '%s' is not a hook of the nat table; allowed: %s (needed when the rule's chain, "
                           "%s, is not a built-in one)" % (hook, ', '.join(sorted(IPTABLES_NAT_PRIORITY)), rule_chain))
        for key in ('source', 'destination', 'out_address'):
            try:
                if spec.get(key) is not None:
                    ipaddress.IPv4Address(spec[key])
            except ValueError:
                raise NatError("%s: '%s' is not an IPv4 address; allowed: an address like 192.168.1.2"
                               % (key, spec[key])) from None
        return cls(hook=hook, source=spec['source'], destination=spec['destination'],
                   protocol=spec.get('protocol', 'tcp'), port=spec.get('port'), in_interface=spec.get('in'),
                   out_interface=spec.get('out'), local=bool(spec.get('local', False)),
                   out_address=spec.get('out_address'))

    def words(self):
        """The packet in a student's words: 'TCP from 192.168.1.3 to 192.168.1.2 port 80, in on lan0'."""
        text = '%s from %s to %s' % (self.protocol.upper(), self.source, self.destination)
        if self.port is not None:
            text += ' port %s' % self.port
        links = []
        if self.in_interface and 'in' in _HOOK_SEES[self.hook]:
            links.append('in on %s' % self.in_interface)
        if self.out_interface and 'out' in _HOOK_SEES[self.hook]:
            links.append('out by %s' % self.out_interface)
        return text + (', ' + ', '.join(links) if links else '')


@dataclass(frozen=True)
class Effect:
    """What NAT does to a packet: `action` is dnat, snat, masquerade, redirect, accept (left as it is) or drop."""

    action: str
    address: str | None = None
    port: int | None = None

    def words(self):
        if self.action == 'dnat':
            return 'sends it to %s%s' % (self.address, ':%s' % self.port if self.port else '')
        if self.action in ('snat', 'masquerade'):
            return 'rewrites its source to %s' % (self.address or "the out interface's address")
        if self.action == 'redirect':
            return 'redirects it to port %s of the machine itself' % self.port
        if self.action == 'drop':
            return 'drops it'
        return 'leaves it untranslated (%s)' % self.action.upper()

    def same_as(self, other):
        """Whether two effects leave the packet the same (MASQUERADE and SNAT to the out address are one)."""
        mine, theirs = self, other
        if mine.action == 'masquerade' and mine.address:
            mine = Effect('snat', mine.address)
        if theirs.action == 'masquerade' and theirs.address:
            theirs = Effect('snat', theirs.address)
        return mine == theirs


@dataclass
class NatRule:
    """One rule of one chain, read from any tool: its conditions and what it does."""

    origin: str                 # nft, iptables-nft or iptables-legacy
    family: str                 # ip or inet
    table: str
    chain: str
    conditions: list            # (field, negated, values)
    action: tuple               # ('dnat', addr, port), ('snat', addr), ('masquerade',), ('redirect', port),
    #                             ('accept',), ('drop',), ('return',), ('jump', chain), ('goto', chain),
    #                             ('continue',), ('unknown', what)
    text: str                   # as its tool shows it
    position: int = 0           # 1-based, within its chain
    handle: int | None = None   # nft's rule handle
    comment: str | None = None
    unknown: list = field(default_factory=list)  # conditions that cannot be evaluated

    def where(self):
        """How a student finds the rule: the command that lists its chain."""
        if self.origin == 'nft':
            return 'nft list chain %s %s %s' % (self.family, self.table, self.chain)
        return '%s -t %s -S %s' % (self.origin, self.table, self.chain)

    def shown(self):
        if self.origin == 'nft':
            return '`%s` (nft chain %s %s %s, handle %s)' % (self.text, self.family, self.table, self.chain,
                                                              self.handle)
        return '`%s`%s' % (self.text, ' (iptables-legacy)' if self.origin == 'iptables-legacy' else '')

    def delete_argv(self):
        """The command that deletes exactly this rule: by handle in nft, by its whole spec in iptables."""
        if self.origin == 'nft':
            return ['nft', 'delete', 'rule', self.family, self.table, self.chain, 'handle', str(self.handle)]
        tokens = shlex.split(self.text)
        return [self.origin, '-w', '-t', self.table, '-D'] + tokens[1:]

    def matches(self, traffic):
        """True, False, or None when a condition cannot be evaluated."""
        if self.unknown:
            return False if any(_condition(c, traffic) is False for c in self.conditions) else None
        uncertain = False
        for condition in self.conditions:
            verdict = _condition(condition, traffic)
            if verdict is False:
                return False
            if verdict is None:
                uncertain = True
        return None if uncertain else True

    def effect(self, traffic):
        """What the rule's action does to `traffic`, or None when it only passes it on (jump, log...)."""
        kind = self.action[0]
        if kind == 'dnat':
            return Effect('dnat', self.action[1], self.action[2] if self.action[2] is not None else traffic.port)
        if kind == 'snat':
            return Effect('snat', self.action[1])
        if kind == 'masquerade':
            return Effect('masquerade', traffic.out_address)
        if kind == 'redirect':
            return Effect('redirect', None, self.action[1] if self.action[1] is not None else traffic.port)
        if kind in ('accept', 'drop'):
            return Effect(kind)
        return None


def _interface_matches(pattern, name):
    if pattern.endswith(('+', '*')):
        return name.startswith(pattern[:-1])
    return pattern == name


def _port_in(port, values):
    for value in values:
        if isinstance(value, tuple):
            if value[0] <= port <= value[1]:
                return True
        elif port == value:
            return True
    return False


def _condition(condition, traffic):
    name, negated, values = condition
    if name in ('iif', 'oif'):
        side = 'in' if name == 'iif' else 'out'
        # Where the hook cannot know the link its name is empty: `oifname != "lan0"` holds at prerouting
        # (iptables refuses -o there).
        link = (traffic.in_interface if name == 'iif' else traffic.out_interface) \
            if side in _HOOK_SEES[traffic.hook] else ''
        if link is None:
            return None
        found = any(_interface_matches(v, link) for v in values) if link else False
    elif name in ('saddr', 'daddr'):
        address = ipaddress.ip_address(traffic.source if name == 'saddr' else traffic.destination)
        found = any(address in v for v in values)
    elif name == 'proto':
        found = traffic.protocol in values
    elif name == 'dport':
        if traffic.port is None:
            return None
        found = _port_in(traffic.port, values)
    elif name == 'local':
        found = traffic.local
    else:  # a source port, or anything else a lab's traffic does not say
        return None
    return found != negated


# --------------------------------------------------------------------------
# iptables rules (iptables -S lines)
# --------------------------------------------------------------------------

def _ports(text):
    out = []
    for part in text.split(','):
        if ':' in part:
            low, high = part.split(':', 1)
            out.append((int(low or 0), int(high or 65535)))
        else:
            out.append(int(part))
    return out


def _address_port(text):
    """'192.168.15.2:80' -> ('192.168.15.2', 80); a range keeps its first address."""
    address, _, port = text.partition(':')
    address = address.split('-')[0]
    port = port.split('-')[0] if port else None
    return address or None, int(port) if port else None


def iptables_rule(origin, table, line, position):
    """A NatRule from one ``-A CHAIN ...`` line of ``iptables -t TABLE -S``."""
    rule = parse_rule(table, line)
    conditions, unknown = [], []
    for text in sorted(rule.matches):
        negated = text.startswith('!')
        option, _, value = text.lstrip('!').partition('=')
        try:
            if option in ('--source', '--destination'):
                conditions.append(('saddr' if option == '--source' else 'daddr', negated,
                                   [_network(v) for v in value.split(',')]))
            elif option in ('--in-interface', '--out-interface'):
                conditions.append(('iif' if option == '--in-interface' else 'oif', negated, [value]))
            elif option == '--protocol':
                conditions.append(('proto', negated, [value]))
            elif option in ('--dport', '--destination-port', '--dports', '--destination-ports', '--ports'):
                conditions.append(('dport', negated, _ports(value)))
            elif option in ('--sport', '--source-port', '--sports', '--source-ports'):
                conditions.append(('sport', negated, _ports(value)))
            elif option == '--dst-type' and value == 'LOCAL':
                conditions.append(('local', negated, [True]))
            else:
                unknown.append(text)
        except ValueError:
            unknown.append(text)
    options = dict(rule.target_options)
    target = rule.target
    if target == 'DNAT':
        address, port = _address_port(' '.join(options.get('--to-destination', ('',))))
        action = ('dnat', address, port)
    elif target == 'SNAT':
        action = ('snat', _address_port(' '.join(options.get('--to-source', ('',))))[0])
    elif target == 'MASQUERADE':
        action = ('masquerade',)
    elif target == 'REDIRECT':
        ports = options.get('--to-ports')
        action = ('redirect', int(ports[0].split('-')[0]) if ports else None)
    elif target in ('ACCEPT', 'DROP', 'RETURN'):
        action = (target.lower(),)
    elif target in _CONTINUE_TARGETS:
        action = ('continue',)
    elif target.startswith('goto:'):
        action = ('goto', target[5:])
    else:
        action = ('jump', target)  # a chain, or a target extension (iptables_chains tells them apart)
    return NatRule(origin=origin, family='ip', table=table, chain=rule.chain, conditions=conditions, action=action,
                   text=line.strip(), position=position, comment=rule.comment, unknown=unknown)


def declared_rule(item):
    """(NatRule, Traffic, Effect) of a lab's NAT rule that carries `traffic` (an item of a declaration's
    machine.rules): the rule as declared, its packet, and what the rule does to it."""
    rule = iptables_rule('lab', item['table'], item['rule'], 0)
    traffic = Traffic.from_declaration(rule.chain, item['traffic'])
    return rule, traffic, rule.effect(traffic)


def iptables_chains(origin, table, listing):
    """{chain: [NatRule]} of one ``iptables -t TABLE -S`` listing (every chain, built-in ones included)."""
    chains = {}
    for line in listing.splitlines():
        line = line.strip()
        if line.startswith(('-P ', '-N ')):
            chains.setdefault(line.split()[1], [])
        elif line.startswith('-A '):
            name = line.split()[1]
            rules = chains.setdefault(name, [])
            try:
                rules.append(iptables_rule(origin, table, line, len(rules) + 1))
            except RuleError:
                rules.append(NatRule(origin, 'ip', table, name, [], ('unknown', line), line, len(rules) + 1,
                                     unknown=[line]))
    for rules in chains.values():
        for rule in rules:
            if rule.action[0] in ('jump', 'goto') and rule.action[1] not in chains:
                rule.action = ('unknown', rule.action[1])  # a target extension this module does not know
    return chains


# --------------------------------------------------------------------------
# nftables rules (nft -j list ruleset)
# --------------------------------------------------------------------------

_NFT_FIELDS = {('meta', 'iifname'): 'iif', ('meta', 'oifname'): 'oif', ('meta', 'l4proto'): 'proto',
               ('ip', 'protocol'): 'proto', ('ip', 'saddr'): 'saddr', ('ip', 'daddr'): 'daddr'}
_PROTOCOLS = {6: 'tcp', 17: 'udp', 1: 'icmp', 132: 'sctp'}


def _nft_left(left):
    if 'meta' in left:
        return _NFT_FIELDS.get(('meta', left['meta'].get('key')))
    if 'payload' in left:
        payload = left['payload']
        protocol, name = payload.get('protocol'), payload.get('field')
        if protocol in ('tcp', 'udp', 'th', 'sctp') and name in ('dport', 'sport'):
            return name, protocol
        return _NFT_FIELDS.get((protocol, name))
    if 'fib' in left:
        fib = left['fib']
        # nft 1.0 prints a one-flag list as a plain string
        if fib.get('result') == 'type' and fib.get('flags') in (['daddr'], 'daddr'):
            return 'fib-daddr-type'
    return None


def _nft_values(right):
    if isinstance(right, dict) and 'set' in right:
        return [v for item in right['set'] for v in _nft_values(item)]
    if isinstance(right, list):
        return [v for item in right for v in _nft_values(item)]
    return [right]


def _nft_condition(match):
    """The conditions of one nft match, or None when it cannot be evaluated here."""
    try:
        return _nft_condition_of(match)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _nft_condition_of(match):
    left = _nft_left(match.get('left', {}))
    op = match.get('op', '==')
    if left is None or op not in ('==', '!=', 'in'):
        return None
    negated = op == '!='
    values = _nft_values(match.get('right'))
    extra = []
    if isinstance(left, tuple):  # tcp dport 80: also the protocol
        name, protocol = left
        if protocol != 'th':
            extra.append(('proto', False, [protocol]))
        ports = []
        for value in values:
            if isinstance(value, dict) and 'range' in value:
                ports.append(tuple(value['range']))
            elif isinstance(value, int):
                ports.append(value)
            else:
                return None
        return extra + [(name, negated, ports)]
    if left in ('saddr', 'daddr'):
        nets = []
        for value in values:
            if isinstance(value, dict) and 'prefix' in value:
                nets.append(_network('%s/%s' % (value['prefix']['addr'], value['prefix']['len'])))
            elif isinstance(value, dict) and 'range' in value:
                low, high = (ipaddress.ip_address(v) for v in value['range'])
                nets += list(ipaddress.summarize_address_range(low, high))
            elif isinstance(value, str) and not value.startswith('@'):
                nets.append(_network(value))
            else:
                return None  # a named set (@name), a map, a variable: not evaluated here
        return [(left, negated, nets)]
    if left == 'proto':
        return [('proto', negated, [_PROTOCOLS.get(v, v) if isinstance(v, int) else v for v in values])]
    if left == 'fib-daddr-type':
        if values != ['local']:
            return None
        return [('local', negated, [True])]
    return [(left, negated, [str(v) for v in values])]


def _nft_address(value):
    if isinstance(value, str):
        return value
    return None


def _nft_rule(entry, position):
    rule = entry['rule']
    conditions, unknown, action = [], [], ('continue',)
    for expr in rule.get('expr', []):
        (kind, body), = expr.items()
        if kind == 'match':
            parsed = _nft_condition(body)
            if parsed is None:
                unknown.append(json.dumps(body, sort_keys=True))
            else:
                conditions += parsed
        elif kind in ('counter', 'log', 'limit', 'mangle', 'notrack', 'quota'):
            continue
        elif kind == 'xt':
            return None  # an iptables extension: read from iptables-nft at the same place
        elif kind == 'masquerade':
            action = ('masquerade',)
        elif kind in ('snat', 'dnat'):
            body = body or {}
            address = _nft_address(body.get('addr'))
            if address is None and 'addr' in body:
                unknown.append(json.dumps(body, sort_keys=True))
            port = body.get('port') if isinstance(body.get('port'), int) else None
            action = ('snat', address) if kind == 'snat' else ('dnat', address, port)
        elif kind == 'redirect':
            body = body or {}
            action = ('redirect', body.get('port') if isinstance(body.get('port'), int) else None)
        elif kind in ('accept', 'drop', 'return'):
            action = (kind,)
        elif kind in ('jump', 'goto'):
            action = (kind, body['target'])
        else:
            unknown.append(kind)
    return NatRule(origin='nft', family=rule['family'], table=rule['table'], chain=rule['chain'],
                   conditions=conditions, action=action, text=_nft_text(rule), position=position,
                   handle=rule.get('handle'), comment=rule.get('comment'), unknown=unknown)


def _nft_value(value):
    if isinstance(value, dict) and 'prefix' in value:
        return '%s/%s' % (value['prefix']['addr'], value['prefix']['len'])
    if isinstance(value, dict) and 'range' in value:
        return '%s-%s' % tuple(value['range'])
    if isinstance(value, dict) and 'set' in value:
        return '{ %s }' % ', '.join(_nft_value(v) for v in value['set'])
    return str(value)


def _nft_words(expr):
    (kind, body), = expr.items()
    if kind == 'match':
        left = body.get('left', {})
        if 'meta' in left:
            name = left['meta'].get('key', '?')
        elif 'payload' in left:
            name = '%s %s' % (left['payload'].get('protocol', '?'), left['payload'].get('field', '?'))
        elif 'fib' in left:
            flags = left['fib'].get('flags', [])
            name = 'fib %s %s' % (flags if isinstance(flags, str) else ' . '.join(flags), left['fib'].get('result', '?'))
        else:
            name = json.dumps(left, sort_keys=True)
        op = body.get('op', '==')
        return '%s %s%s' % (name, '' if op in ('==', 'in') else op + ' ', _nft_value(body.get('right')))
    if kind == 'counter':
        return ''
    if kind in ('snat', 'dnat'):
        body = body or {}
        return '%s to %s%s' % (kind, _nft_value(body.get('addr', '?')),
                               ':%s' % body['port'] if 'port' in body else '')
    if kind in ('jump', 'goto'):
        return '%s %s' % (kind, body['target'])
    if kind == 'xt':
        return '(iptables %s %s)' % (body.get('type', ''), body.get('name', ''))
    return kind if body is None else '%s %s' % (kind, json.dumps(body, sort_keys=True))


def _nft_text(rule):
    """The rule much as ``nft list ruleset`` prints it: 'ip saddr 192.168.15.0/24 oifname lan0 masquerade'."""
    return ' '.join(w for w in (_nft_words(e) for e in rule.get('expr', [])) if w)


# --------------------------------------------------------------------------
# The whole ruleset
# --------------------------------------------------------------------------

@dataclass
class Decision:
    """Which rule takes a packet at a hook (None: no NAT rule does) and what it does to it."""

    rule: NatRule | None
    effect: Effect | None
    uncertain: list = field(default_factory=list)  # rules passed over because they could not be evaluated


@dataclass
class Ruleset:
    """Every NAT chain of a machine: base chains per hook and every chain's rules."""

    bases: list = field(default_factory=list)   # (priority, order, origin, family, table, chain, hook)
    chains: dict = field(default_factory=dict)  # (origin, family, table, chain) -> [NatRule]

    def rules(self):
        return [rule for rules in self.chains.values() for rule in rules]

    def decide(self, traffic, skip=None):
        """The rule that takes `traffic` at its hook, in the kernel's order; `skip(rule)` passes rules over."""
        uncertain = []
        for _, _, origin, family, table, chain, hook in sorted(self.bases):
            if hook != traffic.hook:
                continue
            found = self._walk((origin, family, table, chain), traffic, skip, uncertain, 0)
            if found is not None and found.effect.action != 'accept':
                found.uncertain = uncertain
                return found
        return Decision(None, None, uncertain)

    def _walk(self, key, traffic, skip, uncertain, depth):
        if depth > 32:
            return None
        for rule in self.chains.get(key, []):
            if skip is not None and skip(rule):
                continue
            verdict = rule.matches(traffic)
            if verdict is False:
                continue
            if verdict is None or rule.action[0] == 'unknown':
                uncertain.append(rule)
                continue
            kind = rule.action[0]
            if kind == 'continue':
                continue
            if kind == 'return':
                return None
            if kind in ('jump', 'goto'):
                found = self._walk((key[0], key[1], key[2], rule.action[1]), traffic, skip, uncertain, depth + 1)
                if found is not None:
                    return found
                if kind == 'goto':
                    return None
                continue
            return Decision(rule, rule.effect(traffic))
        return None

    def doing(self, traffic, effect, skip=None):
        """Every rule that would do `effect` to `traffic` if the packet reached it (its conditions hold)."""
        out = []
        for rule in self.rules():
            if skip is not None and skip(rule):
                continue
            found = rule.effect(traffic) if rule.matches(traffic) is True else None
            if found is not None and found.same_as(effect) and found.action != 'accept' \
                    and self._reaches(rule, traffic.hook):
                out.append(rule)
        return out

    def _reaches(self, rule, hook):
        """Whether `rule`'s chain is a base chain of `hook` or is jumped to from one."""
        seen, todo = set(), [(o, f, t, c) for _, _, o, f, t, c, h in self.bases if h == hook]
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            if key == (rule.origin, rule.family, rule.table, rule.chain):
                return True
            todo += [(key[0], key[1], key[2], r.action[1]) for r in self.chains.get(key, [])
                     if r.action[0] in ('jump', 'goto')]
        return False


def ruleset_from(nft_json=None, iptables_nft=None, iptables_legacy=None, iptables_name='iptables-nft'):
    """A Ruleset from what the tools printed: `nft_json` (``nft -j list ruleset``, or None when nft is
    missing), `iptables_nft` and `iptables_legacy` (``-t nat -S`` listings, or None). `iptables_name`: the
    command that printed `iptables_nft` (plain ``iptables`` where iptables-nft is not installed)."""
    ruleset = Ruleset()
    nft_iptables = iptables_chains(iptables_name, 'nat', iptables_nft) if iptables_nft is not None else {}
    if nft_json is not None:
        try:
            entries = json.loads(nft_json).get('nftables', []) if nft_json.strip() else []
        except ValueError as exc:
            raise NatError('nft -j list ruleset printed no JSON: %s' % exc) from None
        positions = {}
        for entry in entries:
            if 'chain' in entry:
                chain = entry['chain']
                if chain.get('family') not in ('ip', 'inet'):
                    continue
                ruleset.chains.setdefault(('nft', chain['family'], chain['table'], chain['name']), [])
                if chain.get('type') == 'nat' and chain.get('hook') in IPTABLES_NAT_PRIORITY:
                    prio = chain.get('prio', 0)
                    prio = {'dstnat': -100, 'srcnat': 100}.get(prio, 0) if isinstance(prio, str) else prio
                    ruleset.bases.append((prio, 0, 'nft', chain['family'], chain['table'], chain['name'],
                                          chain['hook']))
            elif 'rule' in entry and entry['rule'].get('family') in ('ip', 'inet'):
                rule = entry['rule']
                key = ('nft', rule['family'], rule['table'], rule['chain'])
                positions[key] = positions.get(key, 0) + 1
                parsed = _nft_rule(entry, positions[key])
                if parsed is None:  # an iptables extension nft cannot show
                    parsed = NatRule('nft', rule['family'], rule['table'], rule['chain'], [], ('unknown', 'xt'),
                                     _nft_text(rule), positions[key], handle=rule.get('handle'), unknown=['xt'])
                ruleset.chains.setdefault(key, []).append(parsed)
        _iptables_words(ruleset, nft_iptables, iptables_name)
    else:
        for chain, rules in nft_iptables.items():
            ruleset.chains[(iptables_name, 'ip', 'nat', chain)] = rules
            if chain in HOOK_OF_CHAIN:
                hook = HOOK_OF_CHAIN[chain]
                ruleset.bases.append((IPTABLES_NAT_PRIORITY[hook], 0, iptables_name, 'ip', 'nat', chain, hook))
    if iptables_legacy is not None:
        for chain, rules in iptables_chains('iptables-legacy', 'nat', iptables_legacy).items():
            ruleset.chains[('iptables-legacy', 'ip', 'nat', chain)] = rules
            if chain in HOOK_OF_CHAIN:
                hook = HOOK_OF_CHAIN[chain]
                ruleset.bases.append((IPTABLES_NAT_PRIORITY[hook], 1, 'iptables-legacy', 'ip', 'nat', chain, hook))
    return ruleset


def _iptables_words(ruleset, listed, name='iptables-nft'):
    """The chains of nft's table ip nat that iptables-nft lists are iptables-nft's: each rule is taken in
    iptables' words (at the same place in its chain), keeping nft's handle."""
    for key in list(ruleset.chains):
        _, family, table, chain = key
        if family != 'ip' or table != 'nat' or chain not in listed:
            continue
        native, words = ruleset.chains.pop(key), listed[chain]
        if len(words) == len(native):
            for mine, theirs in zip(native, words):
                theirs.handle = mine.handle
            native = words
        ruleset.chains[(name, family, table, chain)] = native
    ruleset.bases = [(p, o, name if f == 'ip' and t == 'nat' and c in listed else origin, f, t, c, h)
                     for p, o, origin, f, t, c, h in ruleset.bases]


def read_ruleset(run):
    """The machine's NAT ruleset. `run(argv) -> (rc, stdout, stderr)` runs a command that only looks.

    Raises NatError when a tool that is there cannot list its rules."""
    def listing(argv):
        rc, out, err = run(argv)
        if rc == 127 or (rc != 0 and 'not found' in err):
            return None
        if rc != 0:
            raise NatError('`%s` failed (%s): %s' % (shlex.join(argv), rc, err.strip()))
        return out
    nft_json = listing(['nft', '-j', 'list', 'ruleset'])
    iptables_name = 'iptables-nft'
    iptables_nft = listing(['iptables-nft', '-w', '-t', 'nat', '-S'])
    if iptables_nft is None:
        iptables_name = 'iptables'
        iptables_nft = listing(['iptables', '-w', '-t', 'nat', '-S'])
    rc, names, _ = run(['cat', '/proc/net/ip_tables_names'])
    legacy = None
    if rc == 0 and 'nat' in names.split():
        legacy = listing(['iptables-legacy', '-w', '-t', 'nat', '-S'])
    return ruleset_from(nft_json, iptables_nft, legacy, iptables_name)
