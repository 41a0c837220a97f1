# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""An instructor's classroom on real lab machines: machines that cannot be reached, logins the grader cannot
use, runs at the same time, a grading that grades nothing, Ansible run from elsewhere (conftest.py makes the
machines)."""

import concurrent.futures
import os
import pathlib
import re
import subprocess

import pytest

from conftest import ROOT, failures

ROOM = {'netns_lab': ['live-a', 'live-b']}


@pytest.mark.machines(ROOM)
def test_a_machine_that_cannot_be_reached_is_one_line_and_the_others_are_graded(classroom):
    built = classroom.playbook('netns-lab.yml')
    assert built.rc == 0, built
    subprocess.run(['podman', 'pause', 'live-b'], check=True, capture_output=True)
    graded = classroom.grade()
    assert graded.rc != 0
    assert graded.checks and all(name.split('[')[1].startswith('live-a:') for name in graded.checks)
    assert not failures(graded), failures(graded)
    # One line in the checks' result, and the summary that names it.
    shown = graded.stdout.split("TASK [Show the checks' result]")[1].split('TASK [')[0]
    assert shown.count('live-b (10.213.0.61): cannot be reached') == 1, graded
    assert 'Not graded: live-b (live-b (10.213.0.61): cannot be reached' in graded.text
    assert 'Traceback' not in graded.text


def test_sudo_asking_for_a_password_is_refused_in_one_line(classroom):
    made = classroom.on('live-a', '''
        useradd -m -s /bin/bash student
        install -d -m 700 -o student -g student ~student/.ssh
        install -m 600 -o student -g student ~/.ssh/authorized_keys ~student/.ssh/authorized_keys
        echo 'student:a-password' | chpasswd
        echo 'student ALL=(ALL) ALL' > /etc/sudoers.d/student
    ''')
    assert made.rc == 0, made
    built = classroom.playbook('netns-lab.yml')
    assert built.rc == 0, built
    classroom.write_inventory(**{'live-a': {'ansible_user': 'student', 'ansible_become': True}})
    graded = classroom.grade()
    assert graded.rc != 0
    assert 'live-a: sudo asks for a password' in graded.text, graded
    assert 'NOPASSWD' in graded.text and 'Traceback' not in graded.text
    assert not graded.checks


def test_an_inventory_that_logs_in_with_a_password_is_refused_in_one_line(classroom):
    built = classroom.playbook('netns-lab.yml')
    assert built.rc == 0, built
    classroom.write_inventory(**{'live-a': {'ansible_password': 'not-written-anywhere'}})
    graded = classroom.grade()
    assert graded.rc != 0
    assert 'live-a: its inventory logs in with a password (ansible_password)' in graded.text, graded
    assert 'not-written-anywhere' not in graded.text


def test_two_resets_at_once_wait_for_each_other_and_delete_only_the_labs_rules(classroom):
    for _ in range(2):
        built = classroom.playbook('netns-lab.yml')
        assert built.rc == 0, built
        classroom.on('live-a', 'iptables -t nat -I POSTROUTING 1 -d 10.9.0.0/16 -j RETURN')
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: classroom.playbook('reset.yml'), range(2)))
        assert [r.rc for r in runs] == [0, 0], runs
        assert classroom.nat('live-a') == ['-A POSTROUTING -d 10.9.0.0/16 -j RETURN']
        classroom.on('live-a', 'iptables -t nat -F POSTROUTING')


@pytest.mark.machines(ROOM)
def test_two_gradings_at_once_each_grade_their_own_machines(classroom):
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    start = classroom.playbook('netns-lab.yml', '-e', 'netns_lab_stage=start', '--limit', 'live-b')
    assert start.rc == 0, start
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done, half = pool.map(lambda host: classroom.playbook('check.yml', '-e', 'check_labs=netns_lab',
                                                               '-e', 'check_reports_dir=%s' % classroom.reports,
                                                               '--limit', 'localhost,%s' % host),
                              ['live-a', 'live-b'])
    assert done.rc == 0, done
    assert 'live-b' not in done.text.split('PLAY [Run the checks]')[1]
    assert half.rc != 0 and 'live-a' not in half.text.split('PLAY [Run the checks]')[1]


def test_grading_nothing_fails_and_leaves_no_old_report(classroom):
    reports = classroom.reports
    reports.mkdir(exist_ok=True)
    (reports / 'checks.xml').write_text('<testsuites/>')
    graded = classroom.playbook('check.yml', '-e', 'check_labs=docker_lab', '-e', 'check_reports_dir=%s' % reports)
    assert graded.rc != 0
    assert 'Nothing to grade: no machine of this inventory' in graded.text, graded
    assert 'docker_lab' in graded.text
    assert not (reports / 'checks.xml').exists()


def test_a_playbook_run_without_the_checkouts_configuration_says_how_to_run_it(classroom, tmp_path):
    # From playbooks/: Ansible reads no ansible.cfg there.
    inside = classroom.playbook('netns-lab.yml', cwd=ROOT / 'playbooks')
    assert inside.rc != 0
    assert "Ansible did not read this checkout's configuration (%s/ansible.cfg)" % ROOT in inside.text, inside
    assert 'export ANSIBLE_CONFIG=%s/ansible.cfg' % ROOT in inside.text
    # From a world-writable folder holding a copy of ansible.cfg: Ansible ignores it.
    shared = tmp_path / 'shared'
    shared.mkdir()
    (shared / 'ansible.cfg').write_text((ROOT / 'ansible.cfg').read_text())
    os.chmod(shared, 0o777)
    ignored = classroom.playbook('netns-lab.yml', cwd=shared)
    assert ignored.rc != 0 and 'it read no ansible.cfg at all' in ignored.text, ignored
    # From elsewhere with ANSIBLE_CONFIG: it runs, with the checkout's key, and makes no key of its own.
    elsewhere = classroom.playbook('netns-lab.yml', cwd=tmp_path, env={'ANSIBLE_CONFIG': str(ROOT / 'ansible.cfg')})
    assert elsewhere.rc == 0, elsewhere
    assert not (tmp_path / '.lab').exists() and not pathlib.Path(ROOT / 'playbooks' / '.lab').exists()


@pytest.mark.machines({'docker_lab': ['live-a'], 'netns_lab': ['live-b']})
def test_a_lab_on_one_machine_is_not_reachable_from_another(classroom):
    """The machines share one network and reach every address by ARP on eth0 (`default dev eth0`): without
    arp_ignore, live-b would get the page of live-a's lesson 204 at 172.17.0.1, an address only live-a's docker0
    holds, and a probe on live-b could be answered by live-a's lab."""
    built = classroom.playbook('docker-lab.yml')
    assert built.rc == 0, built
    assert 'Hello from' in classroom.on('live-a', 'curl -s -m 3 http://172.17.0.1:8080/').stdout

    reached = classroom.on('live-b', 'curl -s -m 3 http://172.17.0.1:8080/; echo "curl rc=$?"')
    assert 'Hello from' not in reached.stdout, reached
    assert 'curl rc=0' not in reached.stdout, reached


def test_a_reset_of_the_machines_from_another_checkout_removes_none_of_them(classroom, tmp_path):
    """Machines made with another checkout's key are that checkout's: `machines.yml -e lab_machines_state=absent`
    with another key refuses, naming them, and removes nothing."""
    other_key = tmp_path / 'other-checkout' / 'id_ed25519'
    other_key.parent.mkdir()
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(other_key)], check=True)
    classroom.write_inventory(**{'live-a': {'ansible_ssh_private_key_file': str(other_key)}})

    removed = classroom.playbook('machines.yml', '-e', 'lab_machines_state=absent')

    assert removed.rc != 0, removed
    assert 'Lab machines live-a (made with' in removed.text and 'does not remove them' in removed.text, removed
    listed = subprocess.run(['podman', 'ps', '--all', '--format', '{{.Names}}'], capture_output=True, text=True)
    assert 'live-a' in listed.stdout.split()


# What a reset must leave as it found it: the machine's own address and routes, its namespaces, and a rule
# made outside any lab (the test's own, before the labs).
MACHINE_STATE = ('ip -br -4 addr show dev eth0; ip route show; ip netns list; iptables -t nat -S; '
                 'iptables -S; sysctl net.ipv4.ip_forward')
OWN_RULE = 'iptables -t nat -I POSTROUTING 1 -d 10.9.0.0/16 -j RETURN'


@pytest.mark.machines(ROOM)
def test_a_reset_brings_two_students_in_different_states_back_and_touches_nothing_else(classroom):
    """live-a: the lab built, then changed by hand (a namespace and a rule of the lab's names deleted, one added);
    live-b: half-built, the start stage and part of the lesson typed by hand. One reset: both as they were."""
    before = {}
    for host in ('live-a', 'live-b'):
        classroom.on(host, OWN_RULE)
        before[host] = classroom.on(host, MACHINE_STATE).stdout
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a,localhost')
    assert built.rc == 0, built
    changed = classroom.on('live-a', 'ip netns del orange; iptables -t nat -D PREROUTING 1; ip netns add green')
    assert changed.rc == 0, changed
    start = classroom.playbook('netns-lab.yml', '-e', 'netns_lab_stage=start', '--limit', 'live-b,localhost')
    assert start.rc == 0, start
    classroom.on('live-b', 'export OMIT=masquerade\n' + '\n'.join(
        (ROOT / 'molecule' / 'netns_lab' / 'files' / 'lesson-202-by-hand.sh').read_text().splitlines()[:40]))

    reset = classroom.playbook('reset.yml')

    assert reset.rc == 0, reset
    assert re.search(r'live-a: reset \(netns_lab: \d+ commands\)', reset.text), reset
    assert re.search(r'live-b: reset \(netns_lab: \d+ commands\)', reset.text), reset
    after = {host: classroom.on(host, MACHINE_STATE).stdout for host in ('live-a', 'live-b')}
    # green was the student's own namespace, not one of the lab's names: it stays, as anything not the lab's.
    assert after['live-a'].replace('green\n', '') == before['live-a']
    assert after['live-b'] == before['live-b']


@pytest.mark.machines(ROOM)
def test_a_reset_with_an_unreachable_machine_resets_the_others_and_names_it(classroom):
    built = classroom.playbook('netns-lab.yml')
    assert built.rc == 0, built
    subprocess.run(['podman', 'pause', 'live-b'], check=True, capture_output=True)

    reset = classroom.playbook('reset.yml')

    assert reset.rc != 0, reset
    assert re.search(r'live-a: reset \(netns_lab: \d+ commands\)', reset.text), reset
    assert 'live-b: NOT RESET: unreachable - see `ansible -m ping live-b`' in reset.text, reset
    assert 'Not reset: live-b: unreachable' in reset.text and '(--limit live-b)' in reset.text, reset
    assert classroom.on('live-a', 'ip netns list').stdout == ''


def test_a_student_puts_their_own_lab_back_at_the_start_of_a_stage(classroom):
    """cka-lab reset, as a student types it: what they typed by hand goes, and the start stage is built again
    (the LAN host beside the machine, nothing of the lesson)."""
    start = classroom.playbook('netns-lab.yml', '-e', 'netns_lab_stage=start')
    assert start.rc == 0, start
    classroom.type_lesson('live-a')
    environ = dict(os.environ, ANSIBLE_NOCOLOR='1')
    environ.pop('CKA_LAB_ROOT', None)
    environ.pop('ANSIBLE_CONFIG', None)
    reset = subprocess.run([str(ROOT / '.venv' / 'bin' / 'cka-lab'), 'reset', 'netns_lab', '--stage', 'start',
                            '-i', str(classroom.inventory), '--limit', 'live-a'], cwd=ROOT, env=environ,
                           capture_output=True, text=True, timeout=900)
    assert reset.returncode == 0, reset.stdout[-3000:] + reset.stderr
    assert 'lab netns_lab is at the start of stage start' in reset.stdout
    assert [line.split()[0] for line in classroom.on('live-a', 'ip netns list').stdout.splitlines()] == ['lan-host']
    assert classroom.nat('live-a') == []


def test_the_live_view_shows_what_is_missing_until_the_lesson_is_done(classroom):
    """cka-lab watch on the start stage: the lesson's checks missing, each with its command; once the lesson
    is typed, the view ends saying every check passes."""
    start = classroom.playbook('netns-lab.yml', '-e', 'netns_lab_stage=start')
    assert start.rc == 0, start
    environ = dict(os.environ, ANSIBLE_NOCOLOR='1')
    environ.pop('CKA_LAB_ROOT', None)
    environ.pop('ANSIBLE_CONFIG', None)
    watch = [str(ROOT / '.venv' / 'bin' / 'cka-lab'), 'watch', 'netns_lab', '-i', str(classroom.inventory),
             '--limit', 'live-a']

    before = subprocess.run(watch + ['--once'], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600)
    assert before.returncode == 1, before.stdout + before.stderr
    assert 'live-a, lab netns_lab: ' in before.stdout and '  missing: ' in before.stdout
    assert 'see `' in before.stdout

    classroom.type_lesson('live-a')
    after = subprocess.run(watch + ['--every', '1'], cwd=ROOT, env=environ, capture_output=True, text=True,
                           timeout=600)
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.rstrip().endswith('Done: every check of lab netns_lab passes.')


def test_a_picture_of_the_machine_now_marks_what_the_lesson_still_lacks_and_what_is_extra(classroom):
    start = classroom.playbook('netns-lab.yml', '-e', 'netns_lab_stage=start')
    assert start.rc == 0, start
    classroom.on('live-a', 'ip netns add red && ip netns add scratch')
    look = classroom.playbook('look.yml', '-e', 'lab_id=netns_lab', '-e', 'look_dest=%s' % classroom.reports)
    assert look.rc == 0, look
    svg = (classroom.reports / 'netns_lab-live-a-now.svg').read_text()
    assert 'namespace red<' in svg  # declared and there: unmarked
    assert 'namespace blue (missing)' in svg and 'v&#45;net&#45;0 (missing)' in svg
    assert 'namespace scratch (not in the lab)' in svg
    assert 'namespace lan&#45;host<' in svg  # the start stage's own, there
