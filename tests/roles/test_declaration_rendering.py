# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""cka.lab.lab_declaration renders a plain reference (`{{ item[1].name }}`) without Jinja (direct() in
plugins/action/lab_declaration.py): every lab of labs/, with the variables of the embedded inventory and
with others, must render exactly as with Ansible's templar alone, its errors included."""

import pytest
import yaml

from playbook_run import ROOT

from ansible_collections.cka.lab.plugins.action.lab_declaration import _NOT_DIRECT, direct

LABS = sorted(path.stem for path in (ROOT / 'labs').glob('*.yml'))

# Variable sets beside each lab's own values; the last ones are refused, and must be refused alike.
VARIANTS = {
    'netns_lab': [{'netns_lab_bridge': 'v-net-9', 'netns_lab_forwarded_port': '8080', 'netns_lab_stage': 'direct'},
                  {'netns_lab_masquerade': 'false', 'netns_lab_namespaces': [
                      {'name': 'red', 'address': '192.168.15.1', 'veth': 'veth-red', 'bridge_port': 'veth-red-br'},
                      {'name': 'blue', 'address': '192.168.15.2', 'veth': 'veth-blue', 'bridge_port': 'br-blue'},
                      {'name': 'green', 'address': '192.168.15.7', 'veth': 'veth-green', 'bridge_port': 'br-green'}]},
                  {'netns_lab_bridge_address': '10.0.0.1'}],
    'dns_lab': [{'dns_lab_stage': 'start'}, {'dns_lab_forward': []}],
    'routing_lab': [{'routing_lab_stage': 'start'}],
    'docker_lab': [{'docker_lab_stage': 'start'}, {'docker_lab_published_port': 'eighty'}],
}


def inventory_and_hosts():
    """The embedded inventory, each lab's group rendering its lab, and one more host per variant (in a group of
    its own: the lab's group, which some labs' rules count, stays as it is). Returns (inventory, {host: lab})."""
    children = yaml.safe_load((ROOT / 'inventory' / 'local' / 'hosts.yml').read_text(encoding='utf-8'))['all'][
        'children']
    hosts = {}

    def members(group):
        found = list((group or {}).get('hosts') or {})
        for child in ((group or {}).get('children') or {}).values():
            found += members(child)
        return found

    for lab in LABS:
        children[lab] = dict(children.get(lab) or {}, vars={'rendered_lab': lab})
        hosts.update((name, lab) for name in members(children[lab]))
    variants = {}
    for lab, sets in VARIANTS.items():
        for n, variables in enumerate(sets):
            variants['%s-variant-%d' % (lab, n)] = dict(variables, rendered_lab=lab)
            hosts['%s-variant-%d' % (lab, n)] = lab
    children['variants'] = {'hosts': variants}
    inventory = {'all': {'vars': {'ansible_connection': 'local'}, 'children': children}}
    return inventory, hosts


def test_every_lab_renders_as_with_ansibles_templar(run_playbook):
    inventory, hosts = inventory_and_hosts()
    assert set(hosts.values()) == set(LABS)

    run = run_playbook('tests/roles/render_both_ways.yml', inventory)

    assert run.rc == 0, run.explain()
    refused = 0
    for name in hosts:
        (_, direct_result), (_, templar_result) = run.results(name)
        keys = ('msg', 'errors', 'declaration', 'whole', 'state', 'variables')
        assert {k: direct_result.get(k) for k in keys} == {k: templar_result.get(k) for k in keys}, name
        refused += bool(direct_result.get('errors'))
        if '-variant-' not in name:
            assert 'declaration' in direct_result and not direct_result.get('errors'), (name, direct_result.get('msg'))
    # netns_lab_bridge_address outside the subnet, docker_lab_published_port not a number
    assert refused == 2, [(name, result.get('msg')) for name in hosts for _, result in run.results(name)
                          if result.get('errors')]


SCOPE = {'name': 'red', 'port': 80, 'on': True, 'ns': [{'name': 'blue', 'items': 3}], 'bag': {'a': {'b': 'c'}}}


@pytest.mark.parametrize('text, expected', [
    ('{{ name }}', 'red'),
    ('{{name}}', 'red'),
    ('{{ port }}', 80),
    ('{{ on }}', True),
    ('{{ ns[0].name }}', 'blue'),
    ('{{ bag.a }}', {'b': 'c'}),
    ('{{ bag.a.b }}', 'c'),
    ('veth-{{ name }}-br', 'veth-red-br'),
    ('{{ name }}:{{ port }}', 'red:80'),
])
def test_a_plain_reference_is_its_value(text, expected):
    assert direct(text, SCOPE) == expected


@pytest.mark.parametrize('text, why', [
    ('{{ missing }}', 'not a variable of the lab: a host variable, or undefined'),
    ('{{ ns[1].name }}', 'no such index'),
    ('{{ ns[0].items }}', "a dict's own attribute in Jinja"),
    ('{{ bag.z }}', 'no such key'),
    ('{{ name | upper }}', 'a filter'),
    ('{{ port + 1 }}', 'an expression'),
    ('{{ name }}\n', 'a trailing newline'),
    ('is {{ on }}', 'a boolean written into text'),
    ('{{ bag }} here', 'a dict written into text'),
    ('{{ name }} {% if on %}x{% endif %}', 'a statement'),
    ('{{ name }} and {{ name | upper }}', 'a reference beside an expression'),
])
def test_anything_else_is_left_to_ansibles_templar(text, why):
    assert direct(text, SCOPE) is _NOT_DIRECT, why


def test_a_container_is_a_copy():
    found = direct('{{ bag }}', SCOPE)
    found['a']['b'] = 'changed'
    assert SCOPE['bag']['a']['b'] == 'c'
