# Copyright (c) CKA networking labs maintainers
# SPDX-License-Identifier: Apache-2.0
"""What AWX and ansible-runner users get: the collection built by `ansible-galaxy collection build` and installed
from its tarball (its modules documented from there), the execution environment's build context written by
`ansible-builder create`, and the pins of both agreeing with requirements.txt and requirements.yml."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTION = ROOT / 'collections' / 'ansible_collections' / 'cka' / 'lab'
GALAXY = yaml.safe_load((COLLECTION / 'galaxy.yml').read_text())
EE = yaml.safe_load((ROOT / 'execution-environment.yml').read_text())
MODULES = sorted(path.stem for path in (COLLECTION / 'plugins' / 'modules').glob('*.py'))


def tool(name):
    """The command beside this Python (the checkout's .venv), else the one on PATH."""
    beside = pathlib.Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def run(*command, cwd, env=None):
    """A command run away from the checkout (no ansible.cfg of the project read), its output kept for the message."""
    environ = {k: v for k, v in os.environ.items() if k not in ('ANSIBLE_CONFIG', 'ANSIBLE_COLLECTIONS_PATH')}
    environ.update(env or {})
    done = subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done


def pins(text):
    """{lowercase name: version} of requirements.txt's `name==version` lines (extras dropped)."""
    found = {}
    for line in text.splitlines():
        match = re.match(r'^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#;]+)', line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


REQUIREMENTS_TXT = pins((ROOT / 'requirements.txt').read_text())
REQUIREMENTS_YML = {collection['name']: collection.get('version')
                    for collection in yaml.safe_load((ROOT / 'requirements.yml').read_text())['collections']}


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The collection copied with caches in it (a __pycache__, .pytest_cache), built, and the tarball's members."""
    work = tmp_path_factory.mktemp('galaxy')
    source = work / 'src' / 'ansible_collections' / 'cka' / 'lab'
    shutil.copytree(COLLECTION, source, ignore=shutil.ignore_patterns('__pycache__', '.pytest_cache'))
    (source / 'plugins' / 'modules' / '__pycache__').mkdir()
    (source / 'plugins' / 'modules' / '__pycache__' / 'lab_state.cpython-311.pyc').write_bytes(b'\0')
    (source / '.pytest_cache' / 'v').mkdir(parents=True)
    (source / '.pytest_cache' / 'v' / 'lastfailed').write_text('{}')
    run(tool('ansible-galaxy'), 'collection', 'build', str(source), '--output-path', str(work / 'dist'), cwd=work)
    tarball = work / 'dist' / ('cka-lab-%s.tar.gz' % GALAXY['version'])
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
        manifest = json.load(archive.extractfile('MANIFEST.json'))
    return work, tarball, members, manifest


def test_the_collection_builds_with_its_plugins_and_no_caches(built):
    _, _, members, manifest = built
    assert 'plugins/modules/lab_state.py' in members
    assert {'plugins/modules/%s.py' % m for m in MODULES} <= set(members)
    assert {'README.md', 'CHANGELOG.md', 'meta/runtime.yml'} <= set(members)
    assert not [m for m in members if re.search(r'__pycache__|\.pyc$|\.pytest_cache|galaxy\.yml$', m)], members
    info = manifest['collection_info']
    assert (info['namespace'], info['name'], info['version']) == ('cka', 'lab', GALAXY['version'])
    assert info['license'] == ['Apache-2.0']


def test_the_installed_tarball_documents_every_module(built, tmp_path):
    _, tarball, _, _ = built
    installed = tmp_path / 'collections'
    # --offline: its dependency (ansible.utils) is the one the ansible package already brings.
    run(tool('ansible-galaxy'), 'collection', 'install', str(tarball), '-p', str(installed), '--offline', cwd=tmp_path)
    documented = run(tool('ansible-doc'), '--json', *('cka.lab.%s' % m for m in MODULES), cwd=tmp_path,
                     env={'ANSIBLE_COLLECTIONS_PATH': str(installed)})
    docs = json.loads(documented.stdout)
    assert sorted(docs) == ['cka.lab.%s' % m for m in MODULES]
    for name, doc in docs.items():
        assert doc['doc']['filename'].startswith(str(installed) + os.sep), (name, doc['doc']['filename'])
        assert doc['doc']['short_description'], name


def test_the_collections_dependencies_are_the_projects():
    for name, versions in GALAXY['dependencies'].items():
        assert REQUIREMENTS_YML.get(name) == versions, (name, versions, REQUIREMENTS_YML)


def test_awx_reads_the_same_collection_requirements_at_both_places():
    # AWX's project sync reads collections/requirements.yml, and requirements.yml when roles are synced too.
    assert (ROOT / 'collections' / 'requirements.yml').samefile(ROOT / 'requirements.yml')


def test_the_execution_environment_pins_what_requirements_txt_pins():
    dependencies = EE['dependencies']
    wanted = dependencies['python'] + [dependencies['ansible_core']['package_pip'],
                                       dependencies['ansible_runner']['package_pip']]
    for requirement in wanted:
        name, _, version = requirement.partition('==')
        assert version, 'unpinned in execution-environment.yml: %s' % requirement
        assert REQUIREMENTS_TXT.get(name.lower()) == version, (requirement, REQUIREMENTS_TXT.get(name.lower()))
    assert dependencies['galaxy'] == 'requirements.yml'


def test_ansible_builder_writes_the_build_context(tmp_path):
    context = tmp_path / 'context'
    run(tool('ansible-builder'), 'create', '--file', str(ROOT / 'execution-environment.yml'),
        '--context', str(context), cwd=tmp_path)
    containerfile = (context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % EE['images']['base_image']['name'] in containerfile
    assert 'ansible-core==%s ansible-runner==%s' % (REQUIREMENTS_TXT['ansible-core'],
                                                    REQUIREMENTS_TXT['ansible-runner']) in containerfile
    build = context / '_build'
    assert (build / 'requirements.txt').read_text().split() == EE['dependencies']['python']
    assert (build / 'requirements.yml').read_text() == (ROOT / 'requirements.yml').read_text()
    assert (build / 'bindep.txt').read_text().splitlines() == EE['dependencies']['system']
