# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""A student's lesson 202 on a real lab machine: typed as the course's notes type it, or another valid way,
graded, built on and reset (conftest.py makes the machines)."""

import pytest

from conftest import failures

PROBE_PAGE = "test_probe[live-a: netns_lab: the LAN host gets an answer from blue's web server through port 80 of the host]"
MASQUERADE_CHECK = 'test_rule[live-a: netns_lab: -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE]'
DNAT_CHECK = 'test_rule[live-a: netns_lab: -A PREROUTING -i lan0 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:80]'


def start(classroom, host='live-a'):
    run = classroom.playbook('netns-lab.yml', '-e', 'netns_lab_stage=start', '--limit', host)
    assert run.rc == 0, run


def test_lesson_202_typed_from_the_notes_passes_every_check(classroom):
    """The notes' commands as they are (no ip_forward typed, the student's own page, `setsid` as the guide
    says) on the start stage pass every check of the full stage."""
    start(classroom)
    classroom.type_lesson('live-a')
    graded = classroom.grade()
    assert graded.rc == 0, graded
    assert len(graded.checks) >= 20 and not failures(graded), failures(graded)
    assert 'bridge-nf-call-iptables = 0' in classroom.on('live-a', 'sysctl net.bridge.bridge-nf-call-iptables').stdout


def test_a_server_whose_shell_closed_is_told_from_a_wrong_forward(classroom):
    """A server started with `&` from a shell that then closed (its output to a terminal that is gone) still
    listens but answers nothing; nothing listening, and a wrong forward, get their own words."""
    start(classroom)
    classroom.type_lesson('live-a', omit='web')
    nothing = classroom.grade()
    assert 'nothing listens on 192.168.15.2 port 80/tcp in namespace blue' in failures(nothing)[PROBE_PAGE]

    closed = classroom.on('live-a', '''
        mkdir -p /root/site && cd /root/site && rm -f /tmp/tty && mkfifo /tmp/tty
        (cat /tmp/tty >/dev/null &) ; sleep 0.2
        (ip netns exec blue python3 -m http.server 80 >/tmp/tty 2>&1 &) ; sleep 1
        pkill -f 'cat /tmp/tty'   # the terminal closes
    ''')
    assert closed.rc == 0, closed
    dead = classroom.grade()
    message = failures(dead)[PROBE_PAGE]
    assert 'the server in namespace blue listens on 192.168.15.2 port 80 but does not answer' in message, message
    assert 'outlives the shell' in message and 'one cause' in message

    restarted = classroom.on('live-a', RESTART_SERVER + '''
        iptables -t nat -R PREROUTING 1 -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2:8080
    ''')
    assert restarted.rc == 0, restarted
    wrong = classroom.grade()
    message = failures(wrong)[PROBE_PAGE]
    assert 'answers on 192.168.15.2 port 80, but namespace lan-host gets no answer' in message, message
    assert 'the forward) is wrong' in message
    assert 'sends it to 192.168.15.2:8080' in failures(wrong)[DNAT_CHECK]


# The student's server stopped and started again as the guide says, once it answers.
RESTART_SERVER = '''
    pkill -9 -f http.server
    while ip netns exec blue ss -Hltn 'sport = :80' | grep -q .; do sleep 0.2; done
    cd /root/site
    ip netns exec blue setsid python3 -m http.server 80 >/var/log/web.log 2>&1 </dev/null &
    for _ in $(seq 50); do curl -s -m 1 -o /dev/null http://192.168.15.2/ && break; sleep 0.2; done
'''

TYPED = {
    'DNAT without :80': ('dnat', 'iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.2'),
    'DNAT on -d': ('dnat', 'iptables -t nat -A PREROUTING -d 192.168.1.2 -p tcp --dport 80 -j DNAT '
                           '--to-destination 192.168.15.2:80'),
    'MASQUERADE -o lan0': ('masquerade', 'iptables -t nat -A POSTROUTING -o lan0 -j MASQUERADE'),
    'SNAT': ('masquerade', 'iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j SNAT --to-source 192.168.1.2'),
    'nftables': ('masquerade', 'nft add table ip nat; '
                               'nft add chain ip nat postrouting "{ type nat hook postrouting priority srcnat; }"; '
                               'nft add rule ip nat postrouting ip saddr 192.168.15.0/24 masquerade'),
    'iptables-legacy': ('masquerade', 'iptables-legacy -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE'),
}


@pytest.mark.parametrize('typed', sorted(TYPED))
def test_nat_typed_another_valid_way_passes_is_built_on_once_and_reset(classroom, typed):
    omit, command = TYPED[typed]
    start(classroom)
    classroom.type_lesson('live-a', omit=omit)
    assert classroom.on('live-a', command).rc == 0
    graded = classroom.grade()
    assert graded.rc == 0, failures(graded) or graded

    classroom.on('live-a', 'pkill -f http.server')
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    target = 'DNAT' if omit == 'dnat' else 'MASQUERADE'
    ruleset = classroom.on('live-a', 'iptables-nft -t nat -S; iptables-legacy -t nat -S; nft list ruleset').stdout
    lab_copies = [line for line in ruleset.splitlines() if line.startswith('-A') and '-j %s' % target in line
                  and 'cka-lab' in line]
    assert lab_copies == [], ruleset  # the student's rule does the job: no second one

    reset = classroom.playbook('reset.yml', '--limit', 'live-a')
    assert reset.rc == 0, reset
    left = classroom.on('live-a', 'iptables-nft -t nat -S; iptables-legacy -t nat -S; nft list ruleset').stdout
    assert '192.168.15' not in left and 'masquerade' not in left.lower(), left


def test_a_students_earlier_dnat_elsewhere_does_not_shadow_the_build(classroom):
    start(classroom)
    classroom.type_lesson('live-a', omit='dnat')
    classroom.on('live-a', 'iptables -t nat -A PREROUTING -p tcp --dport 80 -j DNAT --to-destination 192.168.15.3:80;'
                           ' pkill -f http.server')
    shadowed = classroom.grade()
    assert 'is taken by `-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 192.168.15.3:80`' \
        in failures(shadowed)[DNAT_CHECK], failures(shadowed)
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    graded = classroom.grade()
    assert graded.rc == 0, failures(graded) or graded
    assert classroom.nat('live-a')[0].startswith('-A PREROUTING -i lan0 -p tcp -m tcp --dport 80 -m comment')


def test_a_bridge_with_stp_on_is_named_by_the_grader_and_turned_off_by_a_build(classroom):
    start(classroom)
    classroom.type_lesson('live-a')
    classroom.on('live-a', 'ip link set dev v-net-0 type bridge stp_state 1\n' + RESTART_SERVER)
    graded = classroom.grade()
    message = failures(graded)['test_bridge[live-a: netns_lab: v-net-0]']
    assert 'the bridge v-net-0 has STP on (stp_state 1)' in message and 'stp_state 0' in message, message
    classroom.on('live-a', 'pkill -f http.server')
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    assert '"stp_state":0' in classroom.on('live-a', 'ip -d -j link show v-net-0').stdout.replace(' ', '')


def test_the_labs_rules_go_with_a_reset_after_iptables_is_switched_to_legacy(classroom):
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    switched = classroom.on('live-a', 'update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null; '
                                      'iptables -t nat -S >/dev/null; readlink -f "$(command -v iptables)"')
    assert 'legacy' in switched.stdout, switched
    reset = classroom.playbook('reset.yml', '--limit', 'live-a')
    assert reset.rc == 0, reset
    left = classroom.on('live-a', 'iptables-nft-save; iptables-legacy-save').stdout
    assert 'cka-lab' not in left, left


@pytest.mark.machines({'netns_lab': ['live-a'], 'docker_lab': ['live-a']})
def test_a_second_lab_on_the_machine_is_refused_naming_both_and_the_variable(classroom):
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    second = classroom.playbook('docker-lab.yml', '--limit', 'live-a')
    assert second.rc != 0
    assert 'lab netns_lab is built on this machine too (/var/lib/cka-lab/netns_lab.json)' in second.text, second
    assert 'link lan0' in second.text and 'docker_lab_lan_interface' in second.text, second
    assert 'ansible-playbook playbooks/netns-lab.yml -e netns_lab_state=absent' in second.text
    assert classroom.on('live-a', 'ip link show docker0').rc != 0  # nothing of the second lab was made


def test_a_check_that_cannot_run_names_the_missing_tool(classroom):
    built = classroom.playbook('netns-lab.yml', '--limit', 'live-a')
    assert built.rc == 0, built
    classroom.on('live-a', 'mv /usr/sbin/conntrack /usr/sbin/conntrack.away')
    graded = classroom.grade()
    message = failures(graded)[PROBE_PAGE]
    assert 'this check cannot run on live-a: seeing which server answered needs `conntrack`' in message, message
    assert 'apt-get install conntrack' in message
