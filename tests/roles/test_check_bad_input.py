# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""playbooks/check.yml refuses bad settings on the Ansible computer before any machine is exported or graded.

An inventory without machines: a run that got past its checks would stop at "Require something to grade";
each test shows it stopped earlier, in the check that names the setting."""

import pytest

PLAYBOOK = 'playbooks/check.yml'


@pytest.mark.parametrize('workers', ['abc', '-1', '100', '2.5'])
def test_a_number_of_grading_processes_that_is_not_a_whole_number_0_64_is_refused(run_playbook, workers):
    run = run_playbook(PLAYBOOK, {'all': {}}, {'check_workers': workers})

    assert run.rc != 0, run.explain()
    assert run.failed_tasks('localhost') == ['Check the number of grading processes'], run.explain()
    assert ("check_workers: '%s' is not usable; allowed: a whole number 0-64" % workers
            in ' '.join(run.messages('localhost'))), run.explain()


def test_a_lab_that_does_not_exist_is_refused(run_playbook):
    run = run_playbook(PLAYBOOK, {'all': {}}, {'check_labs': 'nope_lab'})

    assert run.failed_tasks('localhost') == ['Check the labs to grade'], run.explain()
    assert "check_labs: 'nope_lab' is not a lab; allowed: cni_lab," in ' '.join(run.messages('localhost'))


@pytest.mark.parametrize('workers', ['0', '8'])
def test_a_usable_number_passes_the_check_and_the_run_goes_on(run_playbook, workers):
    """The control: with a usable value the run gets past the check, to the machines (none here)."""
    run = run_playbook(PLAYBOOK, {'all': {}}, {'check_workers': workers, 'check_labs': 'netns_lab'})

    assert 'Check the number of grading processes' not in run.failed_tasks('localhost'), run.explain()
    assert run.failed_tasks('localhost') == ['Require something to grade'], run.explain()


@pytest.mark.parametrize('value', ['maybe', '2', 'ja'])
def test_showing_the_practice_answers_takes_a_boolean(run_playbook, value):
    run = run_playbook(PLAYBOOK, {'all': {}}, {'check_practice_reports': value})

    assert run.failed_tasks('localhost') == ["Check whether to show the practice tests' answers"], run.explain()
    assert ("check_practice_reports: '%s' is not a boolean; allowed: true" % value
            in ' '.join(run.messages('localhost'))), run.explain()


@pytest.mark.parametrize('value', ['false', 'true'])
def test_a_boolean_passes_the_check_and_the_run_goes_on(run_playbook, value):
    """The control: the run gets past the check, to the machines (none here)."""
    run = run_playbook(PLAYBOOK, {'all': {}}, {'check_practice_reports': value, 'check_labs': 'netns_lab'})

    assert run.failed_tasks('localhost') == ['Require something to grade'], run.explain()
