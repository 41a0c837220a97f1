# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Lesson 202's practice test on real lab machines: every question answered from the live lab by this test's
own commands (not the practice file's), two students with different machines, a session in a terminal, and a
lab that is not built (conftest.py makes the machines)."""

import csv
import ipaddress
import json
import os
import re
import subprocess

import pexpect
import pytest
import yaml

from conftest import ROOT, ansible

# live-b's lab has its own addresses and names: a student whose answers are live-a's gets them wrong there.
LIVE_B = {'netns_lab_subnet': '192.168.16.0/24', 'netns_lab_bridge_address': '192.168.16.9',
          'netns_lab_bridge': 'v-net-7',
          'netns_lab_namespaces': [
              {'name': 'red', 'address': '192.168.16.1', 'veth': 'veth-red', 'bridge_port': 'veth-red-br'},
              {'name': 'green', 'address': '192.168.16.2', 'veth': 'veth-green', 'bridge_port': 'veth-green-br'}],
          'netns_lab_routes': [{'namespace': 'green', 'dst': 'default'}],
          'netns_lab_web_namespace': 'green', 'netns_lab_forwarded_port': 8080}
DEFAULTS = yaml.safe_load((ROOT / 'labs' / 'netns_lab.yml').read_text())['variables']


def cka_lab(*args, timeout=600):
    environ = dict(os.environ, ANSIBLE_FORCE_COLOR='false', ANSIBLE_NOCOLOR='1')
    environ.pop('CKA_LAB_ROOT', None)
    environ.pop('ANSIBLE_CONFIG', None)
    return subprocess.run([ansible('cka-lab'), *args], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=timeout)


def build(classroom, *args):
    run = classroom.playbook('netns-lab.yml', *args)
    assert run.rc == 0, run


def route_to(routes, address):
    """The longest-prefix route of `ip -j route` that covers `address`."""
    def network(route):
        return ipaddress.ip_network('0.0.0.0/0' if route['dst'] == 'default' else route['dst'], strict=False)
    covering = [r for r in routes if ipaddress.ip_address(address) in network(r)]
    return max(covering, key=lambda r: network(r).prefixlen)


def answers_of(classroom, host, variables):
    """Every answer of practice test 202, found on `host` by this test's own commands (JSON from ip,
    iptables-save), for the lab built with `variables`."""
    def on(command):
        run = classroom.on(host, command)
        assert run.rc == 0, run
        return run.stdout

    web = next(ns for ns in variables['netns_lab_namespaces'] if ns['name'] == variables['netns_lab_web_namespace'])
    asked = variables['netns_lab_namespaces'][1]['address']
    owner = [ns['name'] for ns in json.loads(on('ip -j netns list'))
             if any(a.get('local') == asked for link in json.loads(on('ip -j -n %s addr' % ns['name']))
                    for a in link['addr_info'])]
    bridge = json.loads(on('ip -j addr show dev %s' % variables['netns_lab_bridge']))[0]['addr_info']
    bridge = next('%s/%s' % (a['local'], a['prefixlen']) for a in bridge if a['family'] == 'inet')
    lan_host = variables['netns_lab_lan_host_address']
    gateway = route_to(json.loads(on('ip -j -n %s route show' % web['name'])), lan_host)['gateway']
    dnat = [line for line in on('iptables-save -t nat').splitlines()
            if '-j DNAT' in line and '--dport %s ' % variables['netns_lab_forwarded_port'] in line + ' ']
    forwarded = re.search(r'--to-destination (\S+)', dnat[0]).group(1)
    out = route_to(json.loads(on('ip -j route show')), lan_host)['dev']
    return {'namespace-of-address': owner[0], 'bridge-address': bridge, 'gateway-to-lan': gateway,
            'forwarded-to': forwarded, 'masquerade-interface': out}


def write_answers(classroom, name, answers, **extra):
    path = classroom.directory / name
    path.write_text(yaml.safe_dump(dict({'practice': '202', 'answers': answers}, **extra)))
    return str(path)


@pytest.mark.machines({'netns_lab': ['live-a', 'live-b']})
def test_two_students_answering_from_their_own_machines_get_full_marks_and_each_others_answers_fail(classroom):
    classroom.write_inventory(**{'live-b': LIVE_B})
    build(classroom)
    a = answers_of(classroom, 'live-a', DEFAULTS)
    b = answers_of(classroom, 'live-b', dict(DEFAULTS, **LIVE_B))
    assert a != b  # the two labs differ: a stored answer sheet could not grade both

    files = [write_answers(classroom, 'ana.yml', a, student='ana', limit='live-a'),
             write_answers(classroom, 'ben.yml', b, student='ben', limit='live-b')]
    graded = cka_lab('practice', '202', '-i', str(classroom.inventory), '--reports', str(classroom.reports),
                     '--answers', files[0], '--answers', files[1])
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert 'ana: Score: 5 of 5 right (100%)' in graded.stdout and 'ben: Score: 5 of 5 right (100%)' in graded.stdout
    board = (classroom.reports / 'practice-202.html').read_text()
    assert 'ana: 1 of 1 checks pass (5 of 5 items)' in board and 'ben: 1 of 1 checks pass (5 of 5 items)' in board

    # Ana's answers on Ben's machine: every answer that depends on the lab is wrong, with its hint.
    swapped = cka_lab('practice', '202', '-i', str(classroom.inventory), '--reports', str(classroom.reports),
                      '--answers', write_answers(classroom, 'swapped.yml', a, student='ben', limit='live-b'))
    assert swapped.returncode == 1
    differing = sorted(q for q in a if a[q] != b[q])
    assert len(differing) >= 4
    for question in differing:
        assert re.search(r'FAIL ben: %s - wrong: .* - see `' % question, swapped.stdout), swapped.stdout


def test_a_session_in_a_terminal_asks_says_right_or_wrong_with_the_hint_and_scores(classroom):
    build(classroom, '--limit', 'live-a,localhost')
    right = answers_of(classroom, 'live-a', DEFAULTS)
    environ = dict(os.environ, ANSIBLE_NOCOLOR='1', TERM='dumb')
    environ.pop('CKA_LAB_ROOT', None)
    environ.pop('ANSIBLE_CONFIG', None)
    session = pexpect.spawn(ansible('cka-lab'), ['practice', '202', '-i', str(classroom.inventory),
                                                  '--reports', str(classroom.reports)],
                            cwd=str(ROOT), env=environ, encoding='utf-8', timeout=300)
    try:
        session.expect(r'Practice test 202: Network namespaces \(lab netns_lab on live-a\), 5 questions\.')
        for n, question in enumerate(['namespace-of-address', 'bridge-address', 'gateway-to-lan', 'forwarded-to',
                                      'masquerade-interface'], 1):
            session.expect(r'Question %d of 5 \(on live-a\): ' % n)
            session.expect('> ')
            if question == 'bridge-address':
                session.sendline('192.168.15.5')  # without its prefix length: wrong
                session.expect(r'Wrong: 192\.168\.15\.5 - see `ip addr show v-net-0`')
            else:
                session.sendline(right[question])
                session.expect(r'Right\.')
        session.expect(r'Score: 4 of 5 right \(80%\)')
        session.expect(pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 1


def test_a_lab_that_is_not_built_is_named_with_its_playbook_and_nothing_is_graded(classroom):
    answers = write_answers(classroom, 'answers.yml', {'bridge-address': '192.168.15.5/24'})
    run = cka_lab('practice', '202', '-i', str(classroom.inventory), '--reports', str(classroom.reports),
                  '--answers', answers)
    assert run.returncode == 2, run.stdout + run.stderr
    assert 'lab netns_lab is not built as practice test 202 needs (live-a: `ip link show v-net-0' in run.stderr
    assert 'build it with ansible-playbook playbooks/netns-lab.yml -e netns_lab_stage=full' in run.stderr
    assert not (classroom.reports / 'practice-202.xml').exists()


def test_the_graders_scoreboard_shows_the_practice_answers_in_the_students_row(classroom):
    """playbooks/check.yml puts the practice answers cka-lab practice left in the reports folder on its page:
    answers read from the student's machine (no `student:`) are in that machine's row, beside its checks."""
    build(classroom)
    answers = answers_of(classroom, 'live-a', DEFAULTS)
    answers['bridge-address'] = '10.9.9.9/24'  # one answer wrong
    practice = cka_lab('practice', '202', '-i', str(classroom.inventory), '--reports', str(classroom.reports),
                       '--answers', write_answers(classroom, 'live-a.yml', answers, limit='live-a'))
    assert practice.returncode == 1, practice.stdout + practice.stderr

    graded = classroom.grade()

    assert graded.rc == 0, graded
    with open(classroom.reports / 'scoreboard.csv', encoding='utf-8') as handle:
        rows = list(csv.DictReader(handle))
    asked = [row for row in rows if row['check'] == 'practice 202']
    assert {row['machine'] for row in asked} == {'live-a'}
    assert sorted(row['outcome'] for row in asked) == ['failed'] + ['passed'] * (len(asked) - 1)
    assert len(asked) == len(answers)
    checks = [row for row in rows if row['check'] != 'practice 202']
    assert checks and all(row['outcome'] == 'passed' and row['machine'] == 'live-a' for row in checks)
    board = (classroom.reports / 'scoreboard.html').read_text()
    assert 'practice 202' in board and 'bridge-address' in board

    # Without them: the grader's checks alone.
    alone = classroom.grade('-e', 'check_practice_reports=false')
    assert alone.rc == 0, alone
    assert 'practice 202' not in (classroom.reports / 'scoreboard.csv').read_text()
