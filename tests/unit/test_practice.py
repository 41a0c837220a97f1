# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""Practice tests without machines: the files of labs/practice, reading and comparing answers, answers files,
and cka-lab practice's session and reports on what playbooks/practice.yml would have read (a test double of
the live lab, named LIVE_202 here)."""

import copy
import json
import pathlib
import xml.etree.ElementTree as ET

import jinja2
import pytest
import yaml

from ansible_collections.cka.lab.plugins.module_utils.lab_practice import (
    COMPARES,
    AnswerError,
    AnswersFileError,
    load_answers,
    read_answer,
    same,
    schema_errors,
)
from cka_lab import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRACTICE = sorted((ROOT / 'labs' / 'practice').glob('*.yml'))


@pytest.mark.parametrize('path', PRACTICE, ids=[p.stem for p in PRACTICE])
def test_practice_file_is_valid_and_runs_on_a_lab(path):
    practice = yaml.safe_load(path.read_text())
    assert schema_errors(practice) == []
    assert practice['practice'] == path.stem
    lab = yaml.safe_load((ROOT / 'labs' / ('%s.yml' % practice['lab'])).read_text())
    assert practice.get('stage', lab['stages'][-1]) in lab['stages']


def test_the_linux_labs_and_the_weave_lab_have_practice_tests():
    found = {p.stem for p in PRACTICE}
    assert {'202', '204', '209', '211-214', '215', '220', '223'} <= found


@pytest.mark.parametrize('change, error', [
    ({'practice': '20'}, "practice: '20' does not match"),
    ({'questions': []}, 'questions: [] should be non-empty'),
    ({'questions': [{'id': 'a', 'question': 'q', 'command': 'c', 'compare': 'colour', 'hint': 'h'}]},
     "questions[0].compare: 'colour' is not one of"),
    ({'questions': [{'id': 'a', 'question': 'q', 'command': 'c', 'compare': 'name', 'hint': 'h', 'on': 'x'}]},
     "questions[0]: Additional properties are not allowed ('on' was unexpected)"),
    ({'questions': [{'id': 'a', 'question': 'q', 'command': 'c', 'compare': 'name', 'hint': 'h'}] * 2},
     "questions: id 'a' is used twice"),
    ({'questions': [{'id': 'a', 'question': 'q', 'command': 'c', 'compare': 'choice', 'hint': 'h'}]},
     'questions[0]: `choices` goes with compare: choice, and only with it'),
    ({'questions': [{'id': 'a', 'question': 'q', 'command': 'c', 'compare': 'name', 'hint': 'h',
                     'read': {'json': 'a', 'regex': 'b'}}]}, 'questions[0].read:'),
])
def test_a_bad_practice_file_is_refused_naming_the_entry(change, error):
    practice = dict(yaml.safe_load((ROOT / 'labs' / 'practice' / '202.yml').read_text()), **change)
    assert any(e.startswith(error) for e in schema_errors(practice)), schema_errors(practice)


@pytest.mark.parametrize('spec, stdout, answer', [
    (None, '  blue \n', 'blue'),
    ({'line': 2}, 'a\n\nb\nc\n', 'b'),
    ({'regex': r'inet (\S+)'}, '3: v-net-0    inet 192.168.15.5/24 brd 192.168.15.255', '192.168.15.5/24'),
    ({'regex': r'^-A \S+'}, 'x\n-A DOCKER -p tcp\n', '-A DOCKER'),
    ({'json': '[].ifname'}, '[{"ifname": "lo"}, {"ifname": "eth0"}]', 'lo, eth0'),
    ({'json': 'plugins[0].type'}, '{"plugins": [{"type": "bridge"}]}', 'bridge'),
    ({'json': 'a'}, '{"a": 10}', '10'),
])
def test_an_answer_is_read_from_the_output(spec, stdout, answer):
    assert read_answer(spec, stdout) == answer


@pytest.mark.parametrize('spec, stdout, why', [
    (None, '\n', 'the output is empty'),
    ({'line': 3}, 'a\nb\n', 'the output has 2 line(s), not 3'),
    ({'regex': 'via (\\S+)'}, 'default dev eth0', 'the output has nothing matching via (\\S+)'),
    ({'json': 'a'}, 'not json', 'the output is not JSON'),
    ({'json': 'missing'}, '{"a": 1}', 'the output has nothing at missing'),
])
def test_output_without_the_answer_says_why(spec, stdout, why):
    with pytest.raises(AnswerError, match='^' + __import__('re').escape(why)):
        read_answer(spec, stdout)


@pytest.mark.parametrize('compare, expected, given, right', [
    ('mac', '02:42:ac:11:00:02', '02-42-AC-11-00-02', True),
    ('mac', '02:42:ac:11:00:02', '02:42:ac:11:00:03', False),
    ('mac', '02:42:ac:11:00:02', 'not a mac', False),
    ('cidr', '10.244.0.0/16', '10.244.0.0/255.255.0.0', True),
    ('cidr', '10.244.0.0/16', '10.244.0.0/24', False),
    ('interface_address', '192.168.15.5/24', '192.168.15.5/255.255.255.0', True),
    ('interface_address', '192.168.15.5/24', '192.168.15.5', False),
    ('address', '10.96.0.1', ' 10.96.0.1 ', True),
    ('address', '10.96.0.1', '10.96.0.10', False),
    ('endpoint', '192.168.15.2:80', '192.168.15.2:080', True),
    ('endpoint', '192.168.15.2:80', '192.168.15.2', False),
    ('port', '10259', '10259', True),
    ('port', '10259', 'port 10259', False),
    ('number', '3', '03', True),
    ('name', 'weave', 'Weave', False),
    ('name', 'weave', ' weave ', True),
    ('text', 'Using iptables Proxier', 'using  IPTABLES proxier', True),
    ('path', '/opt/cni/bin', '/opt/cni/bin/', True),
    ('path', '/opt/cni/bin', '/opt/cni', False),
    ('list', 'bridge, portmap', 'bridge portmap', True),
    ('list', 'bridge, portmap', 'portmap, bridge', False),
])
def test_answers_are_compared_as_their_kind(compare, expected, given, right):
    assert same(compare, expected, given) is right


def test_a_choice_is_its_text_or_its_number():
    choices = ['2379', '2380']
    assert same('choice', '2380', '2', choices) and same('choice', '2380', '2380', choices)
    assert not same('choice', '2380', '1', choices) and not same('choice', '2380', '3', choices)


def test_every_kind_of_comparison_is_described():
    assert set(COMPARES) == set(cli.COMPARES)
    for kind in COMPARES:
        if kind != 'choice':
            assert same(kind, '1', '') is False  # an empty answer is never right


PRACTICE_202 = {'practice': '202', 'questions': [{'id': 'namespace-of-address'}, {'id': 'bridge-address'}]}


def write(tmp_path, text):
    path = tmp_path / 'answers.yml'
    path.write_text(text)
    return str(path)


def test_an_answers_file_keeps_each_answer_as_written(tmp_path):
    path = write(tmp_path, 'practice: "202"\nstudent: ana\nanswers:\n  namespace-of-address: 52:54:00:12:34:56\n'
                           '  bridge-address: 010\n')
    answers, student, limit = load_answers(path, PRACTICE_202)
    # YAML 1.1 would read the first as a sexagesimal number and the second as an octal one.
    assert answers == {'namespace-of-address': '52:54:00:12:34:56', 'bridge-address': '010'}
    assert (student, limit) == ('ana', None)


@pytest.mark.parametrize('text, message', [
    (None, 'no such answers file'),
    ('answers: [\n', 'not YAML or JSON'),
    ('- a\n', 'holds a list, not a mapping'),
    ('', 'is empty, not a mapping'),
    ('practice: "209"\nanswers: {}\n', "practice is '209', not \"202\""),
    ('practice: "202"\n', 'answers is missing, not a mapping'),
    ('practice: "202"\nanswers: [a]\n', 'answers is list, not a mapping'),
    ('practice: "202"\nanswers: {colour: red}\n', 'no question colour in practice test 202; its questions: '
                                                 'namespace-of-address, bridge-address'),
    ('practice: "202"\nanswers: {bridge-address: [a]}\n', 'the answer to bridge-address is not one value'),
    ('practice: "202"\nanswer: {}\n', 'unknown key answer'),
    ('practice: "202"\nanswers: {}\nstudent: [a]\n', 'student must be text'),
])
def test_a_bad_answers_file_is_refused_with_what_is_allowed(tmp_path, text, message):
    path = str(tmp_path / 'missing.yml') if text is None else write(tmp_path, text)
    with pytest.raises(AnswersFileError) as caught:
        load_answers(path, PRACTICE_202)
    assert str(caught.value).startswith(path + ': ')
    assert message in str(caught.value)


# -- cka-lab practice on a test double of the live lab: what playbooks/practice.yml would have written --

def rendered(value, variables):
    """`value` with its strings rendered as Ansible renders them for the machine (plain Jinja is enough here)."""
    if isinstance(value, str):
        return jinja2.Template(value).render(variables)
    if isinstance(value, dict):
        return {key: rendered(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [rendered(item, variables) for item in value]
    return value


def live_202(stdout_by_id, rc=0, ready_rc=0):
    practice = cli.load_practice('202')
    defaults = yaml.safe_load((ROOT / 'labs' / 'netns_lab.yml').read_text())['variables']
    questions = [dict(rendered(q, defaults), host='netns-host') for q in practice['questions']]
    return {'practice_id': '202', 'lab': 'netns_lab', 'asked': ['netns-host'], 'machines': {'netns-host': {
        'questions': questions, 'ready': [['ip link show v-net-0', ready_rc]],
        'runs': {q['id']: {'rc': rc, 'stdout': stdout_by_id.get(q['id'], ''), 'stderr': 'boom' if rc else ''}
                 for q in questions}}}}


LIVE_202 = {
    'namespace-of-address': 'blue\n',
    'bridge-address': '4: v-net-0    inet 192.168.15.5/24 brd 192.168.15.255 scope global v-net-0',
    'gateway-to-lan': '192.168.1.3 via 192.168.15.5 dev veth-blue src 192.168.15.2 uid 0',
    'forwarded-to': '-A PREROUTING -i lan0 -p tcp -m tcp --dport 80 -m comment --comment x -j DNAT '
                    '--to-destination 192.168.15.2:80',
    'masquerade-interface': '192.168.1.3 dev lan0 src 192.168.1.2 uid 0',
}
RIGHT_202 = {'namespace-of-address': 'blue', 'bridge-address': '192.168.15.5/24', 'gateway-to-lan': '192.168.15.5',
             'forwarded-to': '192.168.15.2:80', 'masquerade-interface': 'lan0'}


@pytest.fixture
def lab_double(monkeypatch):
    """cli.live_answers replaced by a test double returning `lab_double.live` (and noting its calls)."""
    class Double:
        live = live_202(LIVE_202)
        calls = []
    monkeypatch.setattr(cli, 'live_answers', lambda practice, inventory, limit: (
        Double.calls.append((inventory, limit)), copy.deepcopy(Double.live))[1])
    return Double


def answers_file(tmp_path, answers, name='answers.yml', **extra):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(dict({'practice': '202', 'answers': answers}, **extra)))
    return str(path)


def junit_cases(reports):
    tree = ET.parse(reports / 'practice-202.xml')
    return {case.get('name'): (case.find('failure').get('message') if case.find('failure') is not None else None)
            for case in tree.iter('testcase')}


def test_right_answers_get_full_marks_and_one_test_each(tmp_path, lab_double, capsys):
    rc = cli.main(['practice', '202', '--answers', answers_file(tmp_path, RIGHT_202), '--reports', str(tmp_path)])

    assert rc == 0
    assert 'Score: 5 of 5 right (100%)' in capsys.readouterr().out
    assert junit_cases(tmp_path) == {'test_practice_202[netns-host: %s]' % q: None for q in RIGHT_202}
    assert 'title="netns-host: 1 of 1 checks pass (5 of 5 items)"' in (tmp_path / 'practice-202.html').read_text()


def test_each_wrong_answer_is_marked_wrong_with_its_hint(tmp_path, lab_double, capsys):
    wrong = {'namespace-of-address': 'red', 'bridge-address': '192.168.15.5/16', 'gateway-to-lan': '192.168.15.1',
             'forwarded-to': '192.168.15.2:8080'}
    rc = cli.main(['practice', '202', '--answers', answers_file(tmp_path, wrong), '--reports', str(tmp_path)])

    out = capsys.readouterr().out
    assert rc == 1
    assert 'Score: 0 of 5 right (0%)' in out
    failures = junit_cases(tmp_path)
    assert failures['test_practice_202[netns-host: namespace-of-address]'] == \
        'wrong: red - see `ip netns exec <namespace> ip addr (for each namespace that ip netns lists)`'
    assert failures['test_practice_202[netns-host: masquerade-interface]'].startswith('not answered - see `ip route')
    assert all(message is not None for message in failures.values())


def test_an_instructor_grades_every_students_file_each_on_their_own_machines(tmp_path, lab_double, capsys):
    first = answers_file(tmp_path, RIGHT_202, 'ana.yml', student='ana', limit='ana-lab')
    second = answers_file(tmp_path, dict(RIGHT_202, **{'gateway-to-lan': '10.0.0.1'}), 'ben.yml', student='ben',
                          limit='ben-lab')
    rc = cli.main(['practice', '202', '--answers', first, '--answers', second, '--reports', str(tmp_path)])

    out = capsys.readouterr().out
    assert rc == 1
    assert lab_double.calls == [(None, 'ana-lab'), (None, 'ben-lab')]
    assert 'ana: Score: 5 of 5 right (100%)' in out and 'ben: Score: 4 of 5 right (80%)' in out
    cases = junit_cases(tmp_path)
    assert cases['test_practice_202[ben: gateway-to-lan]'].startswith('wrong: 10.0.0.1')
    board = (tmp_path / 'practice-202.html').read_text()
    assert 'title="ana: 1 of 1 checks pass (5 of 5 items)"' in board
    assert 'title="ben: 0 of 1 checks pass (4 of 5 items)"' in board


def test_a_bad_answers_file_stops_before_the_lab_is_read(tmp_path, lab_double, capsys):
    good = answers_file(tmp_path, RIGHT_202, 'good.yml')
    rc = cli.main(['practice', '202', '--answers', good, '--answers', str(tmp_path / 'none.yml'),
                   '--reports', str(tmp_path)])

    assert rc == 2
    assert 'none.yml: no such answers file' in capsys.readouterr().err
    assert lab_double.calls == [] and not (tmp_path / 'practice-202.xml').exists()


def test_a_lab_that_is_not_built_is_named_with_the_playbook_that_builds_it(tmp_path, lab_double, capsys):
    lab_double.live = live_202(LIVE_202, ready_rc=1)
    rc = cli.main(['practice', '202', '--answers', answers_file(tmp_path, RIGHT_202), '--reports', str(tmp_path)])

    assert rc == 2
    err = capsys.readouterr().err
    assert 'lab netns_lab is not built as practice test 202 needs (netns-host: `ip link show v-net-0` failed)' in err
    assert 'ansible-playbook playbooks/netns-lab.yml -e netns_lab_stage=full' in err


def test_a_machine_that_did_not_answer_is_named(tmp_path, lab_double, capsys):
    lab_double.live = dict(live_202(LIVE_202), asked=['netns-host', 'other-host'])
    rc = cli.main(['practice', '202', '--answers', answers_file(tmp_path, RIGHT_202), '--reports', str(tmp_path)])

    assert rc == 2
    assert 'machine other-host of lab netns_lab did not answer' in capsys.readouterr().err


def test_a_question_the_lab_cannot_answer_is_wrong_saying_why(tmp_path, lab_double, capsys):
    lab_double.live = live_202(LIVE_202, rc=1)
    rc = cli.main(['practice', '202', '--answers', answers_file(tmp_path, RIGHT_202), '--reports', str(tmp_path)])

    assert rc == 1
    message = junit_cases(tmp_path)['test_practice_202[netns-host: bridge-address]']
    assert message.startswith('the lab does not show the answer: `ip -o -4 addr show dev') and 'boom' in message


def test_the_terminal_session_asks_each_question_and_ends_with_the_score(tmp_path, lab_double, monkeypatch,
                                                                         capsys):
    typed = iter(['blue', '192.168.15.5/24', 'wrong', '192.168.15.2:80', 'lan0'])
    monkeypatch.setattr('builtins.input', lambda prompt: next(typed))
    rc = cli.main(['practice', '202', '--reports', str(tmp_path)])

    out = capsys.readouterr().out
    assert rc == 1
    assert 'Question 1 of 5 (on netns-host): Which network namespace has the address 192.168.15.2?' in out
    assert out.count('Right.') == 4
    assert 'Wrong: wrong (not an IP address like 192.168.15.1) - see `ip netns exec blue ip route`' in out
    assert out.rstrip().splitlines()[-2] == 'Score: 4 of 5 right (80%)'


def test_an_unknown_practice_test_lists_the_known_ones(capsys):
    assert cli.main(['practice', '999']) == 2
    assert 'no practice test 999; the tests: 202, 204' in capsys.readouterr().err


def test_the_guide_describes_every_comparison_as_the_code_does():
    guide = (ROOT / 'labs' / 'README.md').read_text().split('## Practice tests')[1].split('\n## ')[0]
    assert [line for line in guide.splitlines() if line.startswith('| `') and line.count('|') == 3
            and line.split('`')[1] in COMPARES] == ['| `%s` | %s |' % item for item in sorted(COMPARES.items())]


def test_the_readme_lists_the_practice_tests_as_cka_lab_does(capsys):
    assert cli.main(['practice', '--list']) == 0
    listed = capsys.readouterr().out
    assert listed.strip() and listed in (ROOT / 'README.md').read_text()


def test_a_question_asked_on_several_machines_names_each_machine():
    question = {'id': 'weave-bridge'}
    results = [(host, question, 'weave', True, '') for host in ('controlplane', 'node01')]
    suite = cli.junit({'practice': '220', 'title': 'Networking Weave'}, results, student='ana')

    assert sorted(case.name for case in suite) == ['test_practice_220[ana: weave-bridge on controlplane]',
                                                   'test_practice_220[ana: weave-bridge on node01]']
    assert cli.asked_as(question, 'node01', results[1:]) == 'weave-bridge'


def test_a_student_whose_machines_cannot_be_read_stops_none_of_the_others(tmp_path, monkeypatch, capsys):
    def live(practice, inventory, limit):
        if limit == 'ben-lab':
            raise cli.PracticeError('reading the lab failed: ben-lab is unreachable')
        return live_202(LIVE_202)
    monkeypatch.setattr(cli, 'live_answers', live)
    files = [answers_file(tmp_path, RIGHT_202, 'ana.yml', student='ana', limit='ana-lab'),
             answers_file(tmp_path, RIGHT_202, 'ben.yml', student='ben', limit='ben-lab')]
    rc = cli.main(['practice', '202', '--answers', files[0], '--answers', files[1], '--reports', str(tmp_path)])

    captured = capsys.readouterr()
    assert rc == 2
    assert 'ana: Score: 5 of 5 right (100%)' in captured.out
    assert 'NOT GRADED ben: reading the lab failed: ben-lab is unreachable' in captured.out
    assert 'not graded: ben' in captured.err
    cases = junit_cases(tmp_path)
    assert cases['test_practice_202[ana: bridge-address]'] is None
    assert cases['test_practice_202[ben: bridge-address]'].startswith('not graded: reading the lab failed')


@pytest.mark.parametrize('compare, given, example', [
    ('address', 'the bridge', 'an IP address like 192.168.15.1'),
    ('endpoint', '192.168.15.2', 'an address and a port like 192.168.15.2:80'),
    ('mac', '02:42:ac:11:00', 'a MAC address like 02:42:ac:11:00:02'),
    ('number', 'three', 'a whole number like 3'),
    ('address', '192.168.15.9', None),  # of the kind, just not the answer
    ('name', '?', None),  # any text is a name
])
def test_a_wrong_answer_that_is_not_of_its_kind_says_what_one_looks_like(compare, given, example):
    from ansible_collections.cka.lab.plugins.module_utils.lab_practice import not_of_kind
    assert not_of_kind(compare, given) == example


def test_a_long_answer_is_shown_on_one_line_cut_short():
    from ansible_collections.cka.lab.plugins.module_utils.lab_practice import shown
    assert shown('a\n b') == 'a b'
    assert shown('x' * 5000) == 'x' * 77 + '...'


def test_an_answer_a_terminal_or_xml_cannot_take_is_shown_with_replacement_characters():
    from ansible_collections.cka.lab.plugins.module_utils.lab_practice import shown
    assert shown('blu\x1b[De') == 'blu\ufffd[De'
    assert shown('a\x00b\ud800c') == 'a\ufffdb\ufffdc'


@pytest.mark.parametrize('student', ['Smith: Jane', 'x]y', 'a[1]', 'tab\tname', '', 'n' * 65])
def test_a_student_name_that_would_break_the_scoreboard_is_refused(tmp_path, student):
    from ansible_collections.cka.lab.plugins.module_utils.lab_practice import AnswersFileError, load_answers
    path = tmp_path / 'answers.yml'
    path.write_text(json.dumps({'practice': '202', 'student': student, 'answers': {}}))
    with pytest.raises(AnswersFileError, match="student '.*' is not usable; allowed: letters, digits"):
        load_answers(str(path), {'practice': '202', 'questions': []})


def test_a_usable_student_name_is_kept():
    from ansible_collections.cka.lab.plugins.module_utils.lab_practice import student_problem
    assert student_problem("Jane O'Brien-Smith (2)") is None


def test_an_answer_with_control_characters_is_graded_and_reported_in_well_formed_xml(tmp_path, lab_double, capsys):
    given = answers_file(tmp_path, dict(RIGHT_202, **{'gateway-to-lan': '10.0.0.1\x1b[D\x00'}), 'ctl.yml')
    rc = cli.main(['practice', '202', '--answers', given, '--reports', str(tmp_path)])

    assert rc == 1, capsys.readouterr()
    assert junit_cases(tmp_path)['test_practice_202[netns-host: gateway-to-lan]'].startswith(
        'wrong: 10.0.0.1\ufffd[D\ufffd')
