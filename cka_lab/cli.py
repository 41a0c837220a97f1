# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""``cka-lab``: the project's command for students and instructors.

    cka-lab practice --list
    cka-lab practice 209                       # asks each question in the terminal
    cka-lab practice 209 --answers mine.yml    # the same, from a file, without prompts
    cka-lab practice 209 --answers a.yml --answers b.yml   # an instructor: every student's file at once
    cka-lab reset netns_lab --stage start --limit student07  # a lab back at the start of a stage
    cka-lab watch netns_lab                    # grade again every few seconds until every check passes

A practice test (labs/practice/ID.yml) asks a lesson's questions about the lab
the student is looking at: every answer is read from the lab's machines when
the test runs (playbooks/practice.yml, through the same inventory as the
playbooks), never from a stored sheet. A wrong answer gets the hint: the
command that shows it. The results go to a JUnit report (one test per
question) and an HTML scoreboard, as the grader's do (reports/).

Exit status: 0 every answer right, 1 some wrong, 2 the test could not be given
(bad input, lab not built, a machine that did not answer).
"""
from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml
from junitparser import Failure, JUnitXml, TestCase, TestSuite

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRACTICE_DIR = ROOT / 'labs' / 'practice'
sys.path.insert(0, str(ROOT / 'collections'))
sys.path.insert(0, str(ROOT / 'checks'))
from ansible_collections.cka.lab.plugins.module_utils.lab_practice import (  # noqa: E402
    COMPARES,
    AnswerError,
    AnswersFileError,
    load_answers,
    not_of_kind,
    read_answer,
    same,
    schema_errors,
    shown,
)
import scoreboard  # noqa: E402  (checks/scoreboard.py)


class PracticeError(Exception):
    """The test cannot be given; the message says why and what to do."""


def known_tests():
    return sorted(p.stem for p in PRACTICE_DIR.glob('*.yml'))


def load_practice(practice_id):
    """The practice file of `practice_id`, checked (its raw form: strings may still hold the lab's variables)."""
    path = PRACTICE_DIR / ('%s.yml' % practice_id)
    if not path.is_file():
        raise PracticeError("no practice test %s; the tests: %s (cka-lab practice --list)"
                            % (practice_id, ', '.join(known_tests()) or 'none'))
    practice = yaml.safe_load(path.read_text(encoding='utf-8'))
    errors = schema_errors(practice) if isinstance(practice, dict) else ['(the file): not a mapping']
    if errors:
        raise PracticeError('%s: %s' % (path, '; '.join(errors)))
    return practice


def ansible_playbook():
    """The checkout's ansible-playbook (.venv/bin), else the one on PATH."""
    exe = shutil.which('ansible-playbook', path=str(ROOT / '.venv' / 'bin')) or shutil.which('ansible-playbook')
    if exe is None:
        raise PracticeError('ansible-playbook is not installed: run scripts/setup first')
    return exe


def lab_playbook(lab):
    """The playbook that builds `lab` (its file's `playbook:`, or playbooks/<lab with dashes>.yml)."""
    source = yaml.safe_load((ROOT / 'labs' / ('%s.yml' % lab)).read_text(encoding='utf-8'))
    return 'playbooks/%s' % source.get('playbook', lab.replace('_', '-') + '.yml')


def live_answers(practice, inventory=None, limit=None):
    """Run playbooks/practice.yml and return what it wrote: {practice_id, lab, asked, machines: {host: {
    questions, ready: [[command, rc]], runs: {id: {rc, stdout, stderr}}}}}."""
    exe = ansible_playbook()
    with tempfile.TemporaryDirectory(prefix='cka-lab-practice-') as tmp:
        out = os.path.join(tmp, 'answers.json')
        argv = [exe, 'playbooks/practice.yml', '-e', json.dumps({'practice_id': practice['practice'],
                                                                   'practice_out': out})]
        if inventory:
            argv += ['-i', inventory]
        if limit:
            argv += ['--limit', '%s,localhost' % limit]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        # A machine it could not reach makes ansible-playbook fail, but the file is written: cka-lab names it.
        if not os.path.isfile(out):
            raise PracticeError('reading the lab failed (%s): %s'
                                % (' '.join(argv[:2]), _ansible_error(proc.stdout + '\n' + proc.stderr)))
        with open(out, encoding='utf-8') as handle:
            return json.load(handle)


def _ansible_error(output):
    """The lines of ansible-playbook's output that say what failed (its `msg`), or its last lines."""
    lines = [line for line in output.splitlines() if 'Warning' not in line and 'from cryptography' not in line]
    found = [line.strip() for line in lines
             if 'msg:' in line or 'UNREACHABLE' in line or 'ERROR' in line or 'WARNING' in line]
    return ' '.join(found[-3:]) or ' '.join(line.strip() for line in lines[-5:])


def questions_of(practice, live):
    """[(host, question, expected or None, problem or None)] in the file's order, and the machines that did not
    answer. `expected` is read from the question's command's output on `host`."""
    order = {q['id']: i for i, q in enumerate(practice['questions'])}
    missing = [host for host in live['asked'] if host not in live['machines']]
    not_ready = []
    for host, machine in sorted(live['machines'].items()):
        not_ready += ['%s: `%s` failed' % (host, command) for command, rc in machine['ready'] if rc != 0]
    if not_ready:
        raise PracticeError('lab %s is not built as practice test %s needs (%s): build it with ansible-playbook '
                            '%s%s' % (live['lab'], practice['practice'], '; '.join(not_ready), lab_playbook(live['lab']),
                                      ' -e %s_stage=%s' % (live['lab'], practice['stage'])
                                      if practice.get('stage') else ''))
    asked = []
    for host, machine in live['machines'].items():
        for question in machine['questions']:
            run = machine['runs'].get(question['id'], {})
            expected, problem = None, None
            if run.get('rc') != 0:
                problem = ('`%s` failed on %s (rc %s): %s' % (question['command'], host, run.get('rc'),
                                                            (run.get('stderr') or '').strip()[:200] or 'no message'))
            else:
                try:
                    expected = read_answer(question.get('read'), run.get('stdout', ''))
                except AnswerError as exc:
                    problem = '%s on %s: %s' % (question['command'], host, exc)
            asked.append((host, question, expected, problem))
    asked.sort(key=lambda entry: (order[entry[1]['id']], entry[0]))
    return asked, missing


def grade(asked, answers):
    """[(host, question, given, right, message)] for `answers` ({id: text}, missing = unanswered)."""
    out = []
    for host, question, expected, problem in asked:
        given = answers.get(question['id'])
        if problem is not None:
            out.append((host, question, given, False, 'the lab does not show the answer: %s' % problem))
        elif given is None or not given.strip():
            out.append((host, question, given, False, 'not answered - see `%s`' % question['hint']))
        elif same(question['compare'], expected, given, question.get('choices') or ()):
            out.append((host, question, given, True, ''))
        else:
            kind = not_of_kind(question['compare'], given)
            out.append((host, question, given, False, 'wrong: %s%s - see `%s`'
                        % (shown(given), ' (not %s)' % kind if kind else '', question['hint'])))
    return out


def ask(asked, read=None, write=print):
    """Ask each question in the terminal (`read`, default input()); {id: answer}."""
    if read is None and sys.stdin.isatty():
        importlib.import_module('readline')  # input() then edits the line: arrow keys move, not type escapes
    read = read or input
    answers = {}
    for n, (host, question, expected, problem) in enumerate(asked, 1):
        write('')
        write('Question %d of %d (on %s): %s' % (n, len(asked), host, question['question']))
        if problem is not None:
            write('Not asked: the lab does not show the answer: %s' % problem)
            continue
        for i, choice in enumerate(question.get('choices') or [], 1):
            write('  %d. %s' % (i, choice))
        try:
            given = read('> ')
        except EOFError:
            given = ''
        answers[question['id']] = given
        _, _, _, right, message = grade([(host, question, expected, problem)], answers)[0]
        write('Right.' if right else message[0].upper() + message[1:])
    return answers


def asked_as(question, host, results):
    """The question's id, with its machine when it is asked on several (`weave-bridge on node01`)."""
    hosts = {r[0] for r in results if r[1]['id'] == question['id']}
    return question['id'] if len(hosts) < 2 else '%s on %s' % (question['id'], host)


def junit(practice, results, student=None):
    """A JUnit test suite, one test case per question, named as the grader names its checks
    (test_practice_ID[MACHINE: question id]) so checks/scoreboard.py reads it."""
    suite = TestSuite('practice %s: %s' % (practice['practice'], practice['title']))
    for host, question, given, right, message in results:
        case = TestCase('test_practice_%s[%s: %s]' % (practice['practice'].replace('-', '_'), student or host,
                                                      asked_as(question, host, results)),
                        classname='practice.%s' % practice['practice'])
        if not right:
            case.result = [Failure(message)]
        suite.add_testcase(case)
    return suite


def write_reports(suites, reports, practice_id):
    os.makedirs(reports, exist_ok=True)
    xml = JUnitXml()
    for suite in suites:
        xml.add_testsuite(suite)
    junit_path = os.path.join(reports, 'practice-%s.xml' % practice_id)
    xml.write(junit_path, pretty=True)
    html_path = os.path.join(reports, 'practice-%s.html' % practice_id)
    with open(html_path, 'w', encoding='utf-8') as handle:
        handle.write(scoreboard.render(scoreboard.results(junit_path)))
    return junit_path, html_path


def practice_command(args):
    if args.list:
        for practice_id in known_tests():
            practice = load_practice(practice_id)
            print('%-8s %s (lab %s, %d questions)' % (practice_id, practice['title'], practice['lab'],
                                                       len(practice['questions'])))
        return 0
    if not args.id:
        raise PracticeError('name a practice test (cka-lab practice ID); the tests: %s' % ', '.join(known_tests()))
    practice = load_practice(args.id)
    # Every answers file is read before anything runs: a bad one stops the test here.
    files = [(path,) + load_answers(path, practice) for path in args.answers]
    suites, total, right_total = [], 0, 0
    runs = files or [(None, None, None, args.limit)]
    not_graded = []
    for path, answers, student, limit in runs:
        try:
            live = live_answers(practice, args.inventory, limit or args.limit)
            asked, missing = questions_of(practice, live)
            if missing:
                raise PracticeError('machine%s %s of lab %s did not answer (unreachable or failed) - see `ansible -m '
                                    'ping %s`; a lab not built yet is built with ansible-playbook %s'
                                    % ('s' if len(missing) > 1 else '', ', '.join(missing), live['lab'],
                                       ','.join(missing), lab_playbook(live['lab'])))
        except PracticeError as exc:
            if len(runs) == 1:
                raise
            # One student's machines that cannot be read stop none of the others' grading; the run fails at the end.
            who = student or path
            print('NOT GRADED %s: %s' % (who, exc))
            not_graded.append(who)
            suites.append(junit(practice, [(limit or who, question, None, False, 'not graded: %s' % exc)
                                           for question in practice['questions']], student))
            continue
        if path is None:
            print('Practice test %s: %s (lab %s on %s), %d questions.'
                  % (practice['practice'], practice['title'], live['lab'], ', '.join(sorted(live['machines'])),
                     len(asked)))
            answers = ask(asked)
        results = grade(asked, answers)
        right = sum(1 for r in results if r[3])
        if path is not None:
            who = student or ', '.join(sorted(live['machines']))
            for host, question, given, ok, message in results:
                print('%s %s: %s%s' % ('PASS' if ok else 'FAIL', who, asked_as(question, host, results),
                                       '' if ok else ' - ' + message))
        print('%sScore: %d of %d right (%d%%)' % ('' if path is None else (student or path) + ': ', right,
                                                 len(results), 100 * right // max(len(results), 1)))
        suites.append(junit(practice, results, student))
        total, right_total = total + len(results), right_total + right
    junit_path, html_path = write_reports(suites, args.reports, practice['practice'])
    print('Reports: %s, %s' % (junit_path, html_path))
    if not_graded:
        print('cka-lab practice: not graded: %s (their machines could not be read; see above)'
              % ', '.join(not_graded), file=sys.stderr)
        return 2
    return 0 if right_total == total else 1


def lab_stages():
    """{lab: [stage, ...]} of the labs the lab engine builds (labs/*.yml without a playbook of their own)."""
    found = {}
    for path in sorted((ROOT / 'labs').glob('*.yml')):
        lab = yaml.safe_load(path.read_text(encoding='utf-8'))
        if isinstance(lab, dict) and 'playbook' not in lab:
            found[path.stem] = list(lab.get('stages') or [])
    return found


def checked_stages(args):
    """The stages of `args.lab`, once it and `args.stage` (when given) are known to be the lab engine's."""
    labs = lab_stages()
    if args.lab not in labs:
        raise PracticeError('%s is not a lab the lab engine builds; allowed: %s' % (args.lab, ', '.join(labs)))
    if args.stage is not None and args.stage not in labs[args.lab]:
        raise PracticeError("--stage '%s' is not a stage of lab %s; allowed: %s"
                            % (args.stage, args.lab, ', '.join(labs[args.lab])))
    return labs[args.lab]


def reset_command(args):
    """A lab back at the start of a stage: the lab's own reset (what it made, and what was typed by hand with
    its names), then the stage built. Each step is the lab's playbook, as an instructor would type it."""
    stages = checked_stages(args)
    stage = args.stage or stages[0]
    exe = ansible_playbook()
    playbook = lab_playbook(args.lab)
    common = (['-i', args.inventory] if args.inventory else []) + (
        ['--limit', '%s,localhost' % args.limit] if args.limit else [])
    for what, extra in (('reset', '%s_state=absent' % args.lab), ('build stage %s' % stage,
                                                                  '%s_stage=%s' % (args.lab, stage))):
        print('cka-lab reset: %s of lab %s: ansible-playbook %s -e %s%s'
              % (what, args.lab, playbook, extra, ' ' + ' '.join(common) if common else ''), flush=True)
        proc = subprocess.run([exe, playbook, '-e', extra, *common], cwd=ROOT, check=False)
        if proc.returncode != 0:
            raise PracticeError('the %s failed (ansible-playbook exited %d); its output is above'
                                % (what, proc.returncode))
    print('cka-lab reset: lab %s is at the start of stage %s' % (args.lab, stage))
    return 0


def grade_once(lab, stage=None, inventory=None, limit=None):
    """One grading of `lab` (playbooks/check.yml into a folder of its own): ({machine: [(check, item, outcome,
    message)]}, the grader's lines for machines it could not reach). Raises PracticeError when nothing was graded."""
    exe = ansible_playbook()
    with tempfile.TemporaryDirectory(prefix='cka-lab-watch-') as tmp:
        argv = [exe, 'playbooks/check.yml', '-e', json.dumps(dict(
            {'check_labs': lab, 'check_reports_dir': tmp}, **({'%s_stage' % lab: stage} if stage else {})))]
        argv += (['-i', inventory] if inventory else []) + (['--limit', '%s,localhost' % limit] if limit else [])
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        report = os.path.join(tmp, 'checks.xml')
        if not os.path.isfile(report):
            raise PracticeError('grading lab %s gave no report: %s' % (lab, _ansible_error(proc.stdout + '\n' + proc.stderr)))
        # A machine the grader could not reach has no check in the report; the published CSV names it.
        lost = []
        if os.path.isfile(os.path.join(tmp, 'scoreboard.csv')):
            with open(os.path.join(tmp, 'scoreboard.csv'), encoding='utf-8', newline='') as handle:
                lost = sorted({row['message'] for row in csv.DictReader(handle)
                               if row.get('check') == 'machine answers the grader' and row.get('outcome') == 'failed'})
        return scoreboard.results(report), lost


def watch_screen(lab, graded, lost, now):
    """The live view's text: what passes now and, for each check still failing, its message and hint."""
    lines = []
    for machine, checks in sorted(graded.items()):
        counted = [c for c in checks if c[2] != 'skipped']
        passed = sum(1 for c in counted if c[2] == 'passed')
        lines.append('%s, lab %s: %d of %d checks pass (%s)' % (machine, lab, passed, len(counted), now))
        for check, item, outcome, message in counted:
            if outcome != 'passed':
                lines.append('  missing: %s%s' % (check, ' (%s)' % item if item else ''))
                lines.append('    %s' % message)
    lines += ['%s' % line for line in lost]
    return '\n'.join(lines)


def watch_command(args, sleep=None, clock=None):
    """Grade again and again while the student works, until every check passes (or --once)."""
    sleep = sleep or time.sleep
    checked_stages(args)
    clock = clock or (lambda: time.strftime('%H:%M:%S'))
    while True:
        started = time.monotonic()
        graded, lost = grade_once(args.lab, args.stage, args.inventory, args.limit)
        if sys.stdout.isatty():
            print('\033[H\033[2J', end='')
        print(watch_screen(args.lab, graded, lost, clock()), flush=True)
        done = graded and not lost and all(c[2] != 'failed' for checks in graded.values() for c in checks)
        if done:
            print('Done: every check of lab %s passes.' % args.lab)
            return 0
        if args.once:
            return 1
        sleep(max(0.0, args.every - (time.monotonic() - started)))


def seconds(text):
    """--every: a number of seconds from 1 to 3600 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError("'%s' is not a number of seconds from 1 to 3600, like 5" % text)
    return value


def inventory(text):
    """-i: an inventory file or folder that exists, made absolute (the playbooks run from the checkout), or
    Ansible's comma-separated host list (argparse type)."""
    if ',' in text:
        return text
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError("'%s' does not exist; give an inventory file or folder (inventory/rehearsal, "
                                         "inventory/classroom.example) or hosts as a list ending in a comma" % text)
    if os.path.isdir(text) and not any(os.path.isfile(os.path.join(text, name)) for name in os.listdir(text)):
        raise argparse.ArgumentTypeError("'%s' is a folder with no inventory file in it; give an inventory file or "
                                         "a folder of them (inventory/rehearsal)" % text)
    return os.path.abspath(text)


def lab_options(command, stage_help):
    """The arguments of a command on one lab's machines: the lab, --stage, -i and --limit."""
    command.add_argument('lab', help='the lab (%s)' % ', '.join(lab_stages()))
    command.add_argument('--stage', help=stage_help)
    command.add_argument('-i', '--inventory', type=inventory,
                         help="the inventory of the lab machines (default: ansible.cfg's)")
    command.add_argument('--limit', help="only these machines (a student's own, in a classroom: student07)")


def main(argv=None):
    parser = argparse.ArgumentParser(prog='cka-lab', description=__doc__.split('\n\n')[0].split(': ', 1)[1])
    commands = parser.add_subparsers(dest='command', required=True)
    practice = commands.add_parser(
        'practice', help="take a lesson's practice test against the live lab",
        description="Ask a lesson's practice test, every answer read from the live lab. Answers are compared as "
                    "their kind says: " + '; '.join('%s: %s' % item for item in sorted(COMPARES.items())) + '.')
    practice.add_argument('id', nargs='?', help='the practice test (a lesson number: 202, 209, ...)')
    practice.add_argument('--list', action='store_true', help='list the practice tests')
    practice.add_argument('--answers', action='append', default=[], metavar='FILE',
                          help='grade the answers in FILE ({practice: ID, answers: {question id: answer}, '
                               'student?, limit?}) without prompts; repeat for several students')
    practice.add_argument('-i', '--inventory', type=inventory,
                          help='the inventory of the lab machines (default: ansible.cfg\'s)')
    practice.add_argument('--limit', help='only these machines of the lab (a student\'s, in a classroom)')
    practice.add_argument('--reports', default=str(ROOT / 'reports'),
                          help='where the JUnit report and the scoreboard go (default: reports/)')
    reset = commands.add_parser(
        'reset', help='put a lab back at the start of a stage (its reset, then the stage built)',
        description='Put a lab back at the start of one of its stages, on your machines (a student\'s: --limit): '
                    'what the lab made and what was typed by hand with its names goes, then the stage is built.')
    lab_options(reset, "the stage to start from (default: the lab's first, usually start)")
    watch = commands.add_parser(
        'watch', help='grade a lab again every few seconds while you work, until every check passes',
        description='The live view: the lab\'s checks run again and again (playbooks/check.yml), showing what '
                    'passes now and, for what is still missing, the message and the command that shows it.')
    lab_options(watch, "the stage to grade against (default: the lab's variable, its last)")
    watch.add_argument('--every', type=seconds, default=5.0,
                       help='seconds from one grading to the next (default 5)')
    watch.add_argument('--once', action='store_true', help='grade once and stop (exit 0 when every check passes)')
    args = parser.parse_args(argv)
    # Stopped by a signal (`kill`, a closed terminal's SIGHUP) as by Ctrl-C: the running ansible-playbook is
    # stopped with it and the temporary folders of the reports are removed.
    previous = {number: signal.signal(number, _interrupted) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        if args.command == 'watch':
            return watch_command(args)
        return practice_command(args) if args.command == 'practice' else reset_command(args)
    except (PracticeError, AnswersFileError) as exc:
        print('cka-lab %s: %s' % (args.command, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\ncka-lab %s: stopped' % args.command, file=sys.stderr)
        return 2
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interrupted(number, frame):
    raise KeyboardInterrupt(signal.Signals(number).name)


if __name__ == '__main__':
    sys.exit(main())
