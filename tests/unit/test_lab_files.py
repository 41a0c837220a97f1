# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A lab is one file in labs/: everything else that names a lab is checked against labs/ here.

Adding labs/<lab>.yml needs, besides the file: its playbook (three lines importing
playbooks/lab.yml), its machines in the local inventory and the classroom example,
a row in the two README tables and a Molecule scenario that builds it. Each test
names the place a new lab is missing from. The benchmarks read labs/ themselves.
"""
import pathlib

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader

ROOT = pathlib.Path(__file__).resolve().parents[2]
LABS = sorted(path.stem for path in (ROOT / 'labs').glob('*.yml'))


def load(relative):
    return yaml.safe_load((ROOT / relative).read_text(encoding='utf-8'))


def groups(inventory):
    """{group: set of hosts} of an inventory file, read by Ansible's own inventory manager."""
    manager = InventoryManager(loader=DataLoader(), sources=[str(ROOT / inventory)])
    return {name: {host.name for host in group.get_hosts()} for name, group in manager.groups.items()}


def playbook_of(lab):
    return 'playbooks/' + load('labs/%s.yml' % lab).get('playbook', '%s.yml' % lab.replace('_', '-'))


def test_the_labs_are_found():
    assert {'netns_lab', 'routing_lab', 'dns_lab', 'docker_lab', 'cni_lab'} <= set(LABS)


@pytest.mark.parametrize('lab', LABS)
def test_lab_file_names_itself_and_its_group(lab):
    declared = load('labs/%s.yml' % lab)
    assert declared['lab'] == lab, 'labs/%s.yml: lab: must be %s, the file name' % (lab, lab)
    assert declared['group'] == lab, ('labs/%s.yml: group: must be %s (playbooks/lab.yml runs on the group named '
                                      'after the lab)' % (lab, lab))


@pytest.mark.parametrize('lab', LABS)
def test_lab_has_its_playbook(lab):
    path = ROOT / playbook_of(lab)
    assert path.is_file(), '%s is missing: three lines importing lab.yml with lab_id: %s' % (playbook_of(lab), lab)
    if 'playbook' in load('labs/%s.yml' % lab):
        # Built by roles in a playbook of its own, which reads the lab's declaration.
        assert 'lab_id: %s' % lab in path.read_text(encoding='utf-8') or any(
            'lab_id: %s' % lab in imported.read_text(encoding='utf-8')
            for imported in (ROOT / 'playbooks').glob('*.yml')
            if imported.name in path.read_text(encoding='utf-8')), (
            '%s runs no role of lab %s (include_role lab, tasks_from roles, lab_id: %s)' % (playbook_of(lab), lab, lab))
        return
    plays = load(playbook_of(lab))
    assert [{k: v for k, v in play.items() if k != 'name'} for play in plays] == [
        {'ansible.builtin.import_playbook': 'lab.yml', 'vars': {'lab_id': lab}}], (
        '%s must only import lab.yml with lab_id: %s' % (playbook_of(lab), lab))


@pytest.mark.parametrize('lab', LABS)
def test_lab_has_local_machines(lab):
    found = groups('inventory/local/hosts.yml')
    assert found.get(lab), 'inventory/local/hosts.yml: group %s has no machine' % lab
    local = found.get('local_lab_machines', set())
    assert found[lab] <= local, ('inventory/local/hosts.yml: %s must be a child of local_lab_machines (so its '
                                 'machines are created)' % lab)


@pytest.mark.parametrize('lab', LABS)
def test_classroom_example_has_the_lab(lab):
    found = groups('inventory/classroom.example/hosts.yml')
    assert found.get(lab), 'inventory/classroom.example/hosts.yml: group %s has no machine' % lab


@pytest.mark.parametrize('lab', LABS)
def test_readme_table_lists_the_lab(lab):
    rows = [line for line in (ROOT / 'README.md').read_text(encoding='utf-8').splitlines() if line.startswith('|')]
    assert any('`%s`' % playbook_of(lab) in row and '`labs/%s.yml`' % lab in row for row in rows), (
        "README.md: the labs table has no row naming `%s` and `labs/%s.yml`" % (playbook_of(lab), lab))


@pytest.mark.parametrize('lab', LABS)
def test_labs_readme_table_lists_the_lab(lab):
    rows = [line for line in (ROOT / 'labs' / 'README.md').read_text(encoding='utf-8').splitlines()
            if line.startswith('|')]
    assert any(row.startswith('| `%s` |' % lab) and '`%s`' % playbook_of(lab) in row for row in rows), (
        "labs/README.md: the labs table has no row for `%s`" % lab)


@pytest.mark.parametrize('lab', LABS)
def test_the_labs_guide_exists(lab):
    guide = load('labs/%s.yml' % lab).get('guide')
    assert guide and (ROOT / guide).is_file(), 'labs/%s.yml: guide: %s is not a file of the checkout' % (lab, guide)


@pytest.mark.parametrize('lab', LABS)
def test_a_molecule_scenario_builds_the_lab(lab):
    """A scenario runs the lab's playbook and has a machine in the lab's group to run it on."""
    running = [path.parent for path in (ROOT / 'molecule').glob('*/*.yml')
               if ('/%s' % playbook_of(lab)) in path.read_text(encoding='utf-8')]
    assert running, 'no playbook of molecule/*/ runs %s' % playbook_of(lab)
    with_machines = [scenario.name for scenario in set(running)
                     if any(lab in (platform.get('groups') or []) or lab in _children(platform)
                            for platform in load(scenario.relative_to(ROOT) / 'molecule.yml').get('platforms', []))]
    assert with_machines, ('molecule/%s/molecule.yml: no platform in group %s, so %s builds nothing there'
                           % (sorted({s.name for s in running})[0], lab, playbook_of(lab)))


def _children(platform):
    """Groups a platform is in through children_groups (Molecule's podman driver)."""
    return [group for groups in (platform.get('children') or {}).values() for group in groups]


def machine_addresses():
    """[(ansible_host, where)] of every local lab machine this checkout makes: those of inventory/local and
    those of each Molecule scenario (its molecule.yml's inventory host_vars, or its host_vars/ files)."""
    found = []
    manager = InventoryManager(loader=DataLoader(), sources=[str(ROOT / 'inventory/local/hosts.yml')])
    for host in manager.get_hosts():
        if host.vars.get('ansible_host'):
            found.append((str(host.vars['ansible_host']), 'inventory/local/hosts.yml (%s)' % host.name))
    for scenario in sorted((ROOT / 'molecule').glob('*/molecule.yml')):
        where = scenario.relative_to(ROOT)
        host_vars = ((load(where).get('provisioner') or {}).get('inventory') or {}).get('host_vars') or {}
        declared = host_vars.items() if isinstance(host_vars, dict) else []
        declared = list(declared) + [(path.stem, load(path.relative_to(ROOT)))
                                     for path in sorted((scenario.parent / 'host_vars').glob('*.yml'))]
        for name, values in declared:
            if (values or {}).get('ansible_host'):
                found.append((str(values['ansible_host']), '%s (%s)' % (where, name)))
    return found


def test_each_local_lab_machine_has_an_address_of_its_own():
    """A new lab's machines (in inventory/local and in its Molecule scenario) need free addresses of
    10.213.0.0/24: two machines on one address would answer for each other."""
    found = machine_addresses()
    scenarios = {where.split(' ')[0] for _, where in found if where.startswith('molecule/')}
    assert len(scenarios) == len(list((ROOT / 'molecule').glob('*/molecule.yml'))), (
        'a Molecule scenario declares no machine address: %s' % sorted(scenarios))
    holders = {}
    for address, where in found:
        holders.setdefault(address, []).append(where)
    shared = sorted((address, where) for address, where in holders.items() if len(where) > 1)
    assert not shared, '; '.join('%s is the ansible_host of %s: give each machine a free address'
                                 % (address, ' and '.join(where)) for address, where in shared)
