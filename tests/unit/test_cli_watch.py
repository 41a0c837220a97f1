# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""cka-lab watch: the live view grades again until every check passes (grade_once replaced by a test double
here: the real one runs playbooks/check.yml, tested live in tests/live/test_classroom.py)."""

import pytest

from cka_lab import cli

MISSING = ('rule', '-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE', 'failed',
           'no rule does the lesson\'s masquerade - see `iptables -t nat -S POSTROUTING`')
PRESENT = ('namespace exists with loopback up', 'red', 'passed', '')


@pytest.fixture
def gradings(monkeypatch):
    """grade_once's test double: returns the next of `results` each time, noting its arguments."""
    class Double:
        results = []
        calls = []
        sleeps = []

    def grade_once(lab, stage, inventory, limit):
        Double.calls.append((lab, stage, inventory, limit))
        return Double.results.pop(0)
    monkeypatch.setattr(cli, 'grade_once', grade_once)
    monkeypatch.setattr(cli.time, 'sleep', Double.sleeps.append)
    return Double


def test_it_grades_again_until_every_check_passes_showing_what_is_missing(gradings, capsys):
    gradings.results = [({'live-a': [PRESENT, MISSING]}, []), ({'live-a': [PRESENT, MISSING[:2] + ('passed', '')]},
                                                              [])]
    assert cli.main(['watch', 'netns_lab', '--limit', 'live-a', '--every', '3']) == 0

    out = capsys.readouterr().out
    assert 'live-a, lab netns_lab: 1 of 2 checks pass' in out and 'live-a, lab netns_lab: 2 of 2 checks pass' in out
    assert 'missing: rule (-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE)' in out
    assert "see `iptables -t nat -S POSTROUTING`" in out
    assert out.rstrip().endswith('Done: every check of lab netns_lab passes.')
    assert gradings.calls == [('netns_lab', None, None, 'live-a')] * 2 and len(gradings.sleeps) == 1
    assert 0 <= gradings.sleeps[0] <= 3


def test_once_grades_one_time_and_says_whether_all_pass(gradings, capsys):
    gradings.results = [({'live-a': [MISSING]}, [])]
    assert cli.main(['watch', 'netns_lab', '--once', '--stage', 'direct']) == 1
    assert gradings.calls == [('netns_lab', 'direct', None, None)] and gradings.sleeps == []


def test_a_machine_the_grader_cannot_reach_is_shown_and_never_done(gradings, capsys):
    lost = 'live-b (10.213.0.61): cannot be reached (timed out) - see `ssh root@10.213.0.61`'
    gradings.results = [({'live-a': [PRESENT]}, [lost])]
    assert cli.main(['watch', 'netns_lab', '--once']) == 1
    assert lost in capsys.readouterr().out


@pytest.mark.parametrize('argv, message', [
    (['watch', 'weave_lab'], 'weave_lab is not a lab the lab engine builds'),
    (['watch', 'netns_lab', '--stage', 'end'], "--stage 'end' is not a stage of lab netns_lab"),
])
def test_a_bad_lab_or_stage_is_refused_before_grading(gradings, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err and gradings.calls == []


@pytest.mark.parametrize('every', ['0', '-5', '0.5', '1e-300', '3601', '1e10', 'nan', 'inf', 'soon'])
def test_an_interval_that_is_not_a_positive_number_of_seconds_is_refused(gradings, capsys, every):
    with pytest.raises(SystemExit) as stopped:
        cli.main(['watch', 'netns_lab', '--every', every])
    assert stopped.value.code == 2 and gradings.calls == []
    assert "argument --every: '%s' is not a number of seconds from 1 to 3600, like 5" % every in capsys.readouterr().err


def test_an_empty_stage_is_refused_not_taken_for_the_default(gradings, capsys):
    assert cli.main(['watch', 'netns_lab', '--stage', '']) == 2
    assert "--stage '' is not a stage of lab netns_lab; allowed: start, direct, full" in capsys.readouterr().err
    assert gradings.calls == []


def test_an_inventory_that_does_not_exist_is_refused_before_grading(gradings, capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        cli.main(['watch', 'netns_lab', '-i', str(tmp_path / 'nowhere')])
    assert stopped.value.code == 2 and gradings.calls == []
    assert "argument -i/--inventory: '%s' does not exist" % (tmp_path / 'nowhere') in capsys.readouterr().err


def test_a_relative_inventory_is_given_to_ansible_as_an_absolute_path(gradings, monkeypatch, tmp_path):
    (tmp_path / 'room').mkdir()
    (tmp_path / 'room' / 'hosts.yml').write_text('all: {}\n')
    monkeypatch.chdir(tmp_path)
    gradings.results = [({'live-a': [PRESENT]}, [])]
    assert cli.main(['watch', 'netns_lab', '--once', '-i', 'room']) == 0
    assert gradings.calls == [('netns_lab', None, str(tmp_path / 'room'), None)]


def test_stopped_by_sigterm_it_says_so_and_leaves_no_temporary_folder(monkeypatch, capsys, tmp_path):
    """A SIGTERM while grading (the double stands where ansible-playbook runs) ends the watch like Ctrl-C: the
    grading's temporary folder is removed, the status is 2, and the signal's handler is put back."""
    import os
    import signal
    import tempfile

    made = []

    def grade_once(lab, stage, inventory, limit):
        folder = tempfile.TemporaryDirectory(prefix='cka-lab-watch-', dir=tmp_path)
        with folder as path:
            made.append(path)
            os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError('SIGTERM did not stop the grading')
    monkeypatch.setattr(cli, 'grade_once', grade_once)
    before = signal.getsignal(signal.SIGTERM)

    assert cli.main(['watch', 'netns_lab']) == 2
    assert 'cka-lab watch: stopped' in capsys.readouterr().err
    assert made and not os.path.exists(made[0])
    assert signal.getsignal(signal.SIGTERM) is before
