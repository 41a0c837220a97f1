"""Bad input to the offline bundle (roles/k8s_bundle) is refused before anything is built."""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def bundle_playbook(cache_dir, *extra):
    argv = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "playbooks/bundle.yml",
            "-e", "k8s_bundle_cache_dir=%s" % cache_dir, *extra]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("extra, message", [
    (["-e", "k8s_bundle_kubernetes_version=1.35.0"], "k8s_bundle_kubernetes_version: '1.35.0' is not usable"),
    (["-e", "k8s_bundle_kubernetes_version=1.34"], "k8s_bundle_kubernetes_version: '1.34' is not usable"),
    (["-e", "k8s_bundle_source=download"], "k8s_bundle_source: 'download' with k8s_bundle_mirror_url '' is not usable"),
    (["-e", "k8s_bundle_source=ftp"], "k8s_bundle_source"),
    (["-e", "k8s_bundle_crictl_version=1.34.0"], "k8s_bundle_crictl_version: '1.34.0' is not usable"),
    (["-e", "k8s_bundle_weave_tree=4971182d"], "k8s_bundle_weave_tree: '4971182d' is not usable; allowed: a git tree id"),
    (["-e", "k8s_bundle_weave_version=v2.9"], "k8s_bundle_weave_version: 'v2.9' is not usable; allowed: a release X.Y.Z"),
    (["-e", "k8s_bundle_upstream_mirror=/nonexistent/upstream"],
     "k8s_bundle_upstream_mirror (from CKA_LAB_UPSTREAM_MIRROR unless set in the inventory): '/nonexistent/upstream' "
     "is neither a folder on this computer nor an http(s) URL"),
])
def test_bad_input_is_refused_before_anything_is_built(tmp_path, extra, message):
    result = bundle_playbook(tmp_path / "cache", *extra)
    assert result.returncode == 2
    assert message in " ".join(result.stdout.split()), result.stdout[-2000:]
    assert not (tmp_path / "cache").exists(), "the run created its cache before refusing"


def test_a_mirror_from_the_environment_that_is_not_a_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CKA_LAB_UPSTREAM_MIRROR", str(tmp_path / "no-such-mirror"))
    result = bundle_playbook(tmp_path / "cache")
    assert result.returncode == 2
    assert "'%s' is neither a folder on this computer nor an http(s) URL" % (tmp_path / "no-such-mirror") in \
        " ".join(result.stdout.split())
    assert not (tmp_path / "cache").exists()
