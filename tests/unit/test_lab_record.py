# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""module_utils/lab_record.py: a lab's record, migrated from each earlier version and checked on load."""

import copy
import json

import pytest

from ansible_collections.cka.lab.plugins.module_utils import lab_record
from ansible_collections.cka.lab.plugins.module_utils.lab_kinds import KINDS

# A record as version 1 wrote it (lesson 202 built): no backend, nothing taken over, and of the machine
# before the lab only its rules, namespaces, links and routes.
VERSION_1 = {
    'lab': 'netns_lab', 'name': 'netns-lab', 'stage': 'full',
    'topology': {'namespaces': [{'name': 'red'}], 'bridges': [], 'vxlans': [], 'veth_pairs': [], 'routes': []},
    'run_netns_existed': False,
    'sysctls': [{'namespace': None, 'name': 'net.ipv4.ip_forward', 'value': '1', 'before': '0'}],
    'files': [], 'services': [], 'chains': [], 'tables': ['nat'],
    'preexisting': {'namespaces': [], 'links': ['lo', 'eth0'], 'routes': ['default via 10.0.0.1'],
                    'rules': {'nat': ['-P PREROUTING ACCEPT']}},
}
VERSION_2 = dict(copy.deepcopy(VERSION_1), version=2, iptables='iptables-nft', adopted=[])


def load(record):
    return lab_record.load(copy.deepcopy(record), KINDS, '/var/lib/cka-lab/netns_lab.json')


def test_a_new_record_has_every_kinds_keys_and_every_noted_key():
    record = lab_record.new('netns_lab', 'netns-lab', 'full', {'links': ['lo']}, KINDS)

    assert record['version'] == lab_record.RECORD_VERSION
    for kind in KINDS:
        for key, (_, value) in getattr(kind, 'RECORD', {}).items():
            assert record[key] == value
        for key in getattr(kind, 'NOTED', {}):
            assert key in record['preexisting']
    assert record['preexisting']['links'] == ['lo'] and record['preexisting']['nat'] is None
    assert lab_record.shape_problems(record, KINDS) == []


def test_new_records_share_no_list_with_each_other():
    first = lab_record.new('a', 'a', 'full', {}, KINDS)
    first['files'].append({'path': '/x'})

    assert lab_record.new('b', 'b', 'full', {}, KINDS)['files'] == []


@pytest.mark.parametrize('old', [VERSION_1, VERSION_2], ids=['version 1', 'version 2'])
def test_an_older_record_is_brought_to_the_current_version_keeping_what_it_holds(old):
    record = load(old)

    assert record['version'] == lab_record.RECORD_VERSION
    assert record['adopted'] == [] and record['pods'] == [] and record['cni_links'] == []
    assert record['cni_dirs'] is None  # noted by the first build with pods
    assert record['iptables'] == old.get('iptables')  # None: the backend is found again when the record is used
    # What the build did not note stays unknown (None), not "nothing": a reset removes nothing hand-made of it.
    assert record['preexisting']['nat'] is None and record['preexisting']['paths'] is None
    for key in ('topology', 'run_netns_existed', 'sysctls', 'tables'):
        assert record[key] == old[key]
    assert record['preexisting']['rules'] == old['preexisting']['rules']
    assert lab_record.shape_problems(record, KINDS) == []


def test_a_current_record_loads_as_it_is_and_survives_json():
    record = load(VERSION_2)

    assert load(json.loads(json.dumps(record))) == record


def test_a_record_of_a_newer_version_is_refused_with_what_to_do():
    with pytest.raises(lab_record.RecordError) as caught:
        load(dict(VERSION_2, version=lab_record.RECORD_VERSION + 1))

    assert caught.value.errors == [
        '/var/lib/cka-lab/netns_lab.json was written by a newer version of the project (record version %d; this '
        'one reads up to %d): build or reset this lab from that checkout'
        % (lab_record.RECORD_VERSION + 1, lab_record.RECORD_VERSION)]


@pytest.mark.parametrize('record', [[], 'netns_lab', dict(VERSION_2, version=0), dict(VERSION_2, version='2'),
                                    dict(VERSION_2, version=True)],
                         ids=['a list', 'a string', 'version 0', 'version as text', 'version true'])
def test_what_is_not_a_record_is_refused(record):
    with pytest.raises(lab_record.RecordError) as caught:
        load(record)

    assert caught.value.errors == ['/var/lib/cka-lab/netns_lab.json is not a lab record; remove it and clean the '
                                   'machine by hand, or recreate the machine']


@pytest.mark.parametrize('change, problem', [
    ({'files': 'index.html'}, 'files: a list was expected, found a string'),
    ({'topology': []}, 'topology: an object was expected, found a list'),
    ({'run_netns_existed': 'no'}, 'run_netns_existed: a boolean was expected, found a string'),
    ({'iptables': 1}, 'iptables: a string was expected, found a number'),
    ({'name': None}, 'name: a string was expected, found nothing'),
    ({'preexisting': {'links': 'lo'}}, 'preexisting.links: a list was expected, found a string'),
    ({'sysctls': True}, 'sysctls: a list was expected, found a boolean'),
    ({'cni_dirs': {}}, 'cni_dirs: a list was expected, found an object'),
])
def test_a_record_of_the_wrong_shape_is_refused_naming_the_key(change, problem):
    with pytest.raises(lab_record.RecordError) as caught:
        load(dict(VERSION_2, **change))

    assert caught.value.errors == ['/var/lib/cka-lab/netns_lab.json is not a lab record of version %d (%s); remove '
                                   'it and clean the machine by hand, or recreate the machine'
                                   % (lab_record.RECORD_VERSION, problem)]


def test_there_is_one_migration_step_per_earlier_version():
    assert len(lab_record._STEPS) == lab_record.RECORD_VERSION - 1
