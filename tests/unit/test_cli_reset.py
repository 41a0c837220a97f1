# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""cka-lab reset: a lab back at the start of a stage, as the lab's playbook (run by a test double here)."""

import subprocess

import pytest

from cka_lab import cli


@pytest.fixture
def playbook_runs(monkeypatch):
    """subprocess.run replaced by a test double: each ansible-playbook argv is noted, and `fail_at` fails one."""
    class Double:
        argvs = []
        fail_at = None

    def run(argv, **kwargs):
        Double.argvs.append(argv[1:])
        return subprocess.CompletedProcess(argv, 2 if len(Double.argvs) == Double.fail_at else 0)
    monkeypatch.setattr(cli.subprocess, 'run', run)
    return Double


def test_a_students_lab_is_reset_then_built_at_the_stage(playbook_runs, capsys, tmp_path):
    (tmp_path / 'inv').mkdir()
    (tmp_path / 'inv' / 'hosts.yml').write_text('all: {}\n')
    room = str(tmp_path / 'inv')
    assert cli.main(['reset', 'netns_lab', '--stage', 'direct', '--limit', 'student07', '-i', room]) == 0

    limit = ['-i', room, '--limit', 'student07,localhost']
    assert playbook_runs.argvs == [['playbooks/netns-lab.yml', '-e', 'netns_lab_state=absent', *limit],
                                   ['playbooks/netns-lab.yml', '-e', 'netns_lab_stage=direct', *limit]]
    assert 'lab netns_lab is at the start of stage direct' in capsys.readouterr().out


def test_the_first_stage_is_the_default(playbook_runs):
    assert cli.main(['reset', 'cni_lab']) == 0
    assert playbook_runs.argvs[1] == ['playbooks/cni-lab.yml', '-e', 'cni_lab_stage=start']


def test_a_failed_reset_builds_nothing_and_says_so(playbook_runs, capsys):
    playbook_runs.fail_at = 1
    assert cli.main(['reset', 'netns_lab']) == 2
    assert len(playbook_runs.argvs) == 1
    assert 'the reset failed (ansible-playbook exited 2)' in capsys.readouterr().err


@pytest.mark.parametrize('argv, message', [
    (['reset', 'weave_lab'], 'weave_lab is not a lab the lab engine builds; allowed: cni_lab,'),
    (['reset', 'netns_lab', '--stage', 'end'], "--stage 'end' is not a stage of lab netns_lab; allowed: start, "
                                              "direct, full"),
])
def test_a_bad_lab_or_stage_is_refused_before_anything_runs(playbook_runs, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err and playbook_runs.argvs == []


def test_an_inventory_that_does_not_exist_is_refused_before_anything_runs(playbook_runs, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(['reset', 'netns_lab', '-i', '/nonexistent/pytest-room'])
    assert stopped.value.code == 2 and playbook_runs.argvs == []
    assert "'/nonexistent/pytest-room' does not exist; give an inventory file or folder" in capsys.readouterr().err


def test_a_host_list_is_passed_as_it_is(playbook_runs):
    assert cli.main(['reset', 'netns_lab', '-i', 'live-a,']) == 0
    assert playbook_runs.argvs[0][-2:] == ['-i', 'live-a,']


def test_a_folder_without_an_inventory_file_is_refused(playbook_runs, capsys, tmp_path):
    (tmp_path / 'empty' / 'group_vars').mkdir(parents=True)
    with pytest.raises(SystemExit):
        cli.main(['reset', 'netns_lab', '-i', str(tmp_path / 'empty')])
    assert 'is a folder with no inventory file in it' in capsys.readouterr().err and playbook_runs.argvs == []
