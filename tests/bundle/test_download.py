"""The bundle's `download` source, for real, against a mirror on loopback.

The mirror serves the files of the bundle `playbooks/bundle.yml` built on this
computer (symbolic links to it, laid out as a mirror is: kubernetes-v<version>/...),
over HTTP on 127.0.0.1. Each test downloads into a cache directory of its own.
Needs the built bundle: scripts/test runs this suite after molecule/weave_lab,
which builds it when it is missing.
"""
import contextlib
import functools
import hashlib
import http.server
import json
import os
import pathlib
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "cka-lab"
VERSION = "v1.34.4"


def built_bundle():
    """The complete bundle of VERSION this computer built from Go modules."""
    for manifest in sorted((CACHE / "bundles").glob("kubernetes-%s-*/manifest.json" % VERSION)):
        data = json.loads(manifest.read_text())
        if data.get("source") == "go":
            return manifest.parent, data
    pytest.fail("no bundle of Kubernetes %s in %s: run playbooks/bundle.yml first" % (VERSION, CACHE / "bundles"))


def make_mirror(root, bundle, manifest):
    """Lay out a mirror of the bundle under root; return the release directory."""
    release = root / ("kubernetes-" + VERSION)
    for relative in manifest["files"]:
        (release / relative).parent.mkdir(parents=True, exist_ok=True)
        (release / relative).symlink_to(bundle / relative)
    (release / "manifest.json").write_text(json.dumps(manifest))
    return release


@contextlib.contextmanager
def serve(directory):
    """An HTTP server on 127.0.0.1 (a free port) serving directory; yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def bundle_playbook(cache_dir, *extra):
    argv = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), "playbooks/bundle.yml",
            "-e", "k8s_bundle_cache_dir=%s" % cache_dir, *extra]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def downloaded_dir(cache_dir):
    (found,) = (cache_dir / "bundles").glob("kubernetes-%s-*" % VERSION)
    return found


def download_from_mirror(tmp_path, manifest, source="download", runs=1):
    """Serve a mirror of the built bundle with this manifest; run the bundle playbook runs times.

    Returns the mirror's URL and the runs' results; downloads go to tmp_path/cache."""
    bundle, _ = built_bundle()
    make_mirror(tmp_path / "mirror", bundle, manifest)
    with serve(tmp_path / "mirror") as url:
        results = [bundle_playbook(tmp_path / "cache", "-e", "k8s_bundle_source=" + source,
                                   "-e", "k8s_bundle_mirror_url=" + url) for _ in range(runs)]
    return url, results


def test_a_bundle_downloads_from_a_mirror_with_every_file_checked(tmp_path):
    _, manifest = built_bundle()
    url, (first, again) = download_from_mirror(tmp_path, manifest, runs=2)
    assert first.returncode == 0, first.stdout[-3000:]
    assert again.returncode == 0 and "changed=0" in again.stdout, "a second download changed something: " + again.stdout[-2000:]
    got = downloaded_dir(tmp_path / "cache")
    kept = json.loads((got / "manifest.json").read_text())
    assert kept["source"] == "download" and kept["mirror"].startswith(url)
    for relative, digest in manifest["files"].items():
        assert sha256(got / relative) == digest, relative
    assert os.access(got / "bin" / "kubeadm", os.X_OK)


def test_auto_downloads_when_the_mirror_answers(tmp_path):
    _, manifest = built_bundle()
    _, (result,) = download_from_mirror(tmp_path, manifest, source="auto")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "TASK [k8s_bundle : Build kubeadm" not in result.stdout
    assert json.loads((downloaded_dir(tmp_path / "cache") / "manifest.json").read_text())["source"] == "download"


def test_a_file_whose_checksum_differs_is_refused_and_the_bundle_stays_incomplete(tmp_path):
    _, manifest = built_bundle()
    wrong = dict(manifest, files=dict(manifest["files"], **{"images/pause.tar": "0" * 64}))
    _, (result,) = download_from_mirror(tmp_path, wrong)
    assert result.returncode != 0
    assert "images/pause.tar" in result.stdout and "checksum" in result.stdout.lower(), result.stdout[-3000:]
    got = downloaded_dir(tmp_path / "cache")
    assert not (got / "manifest.json").exists(), "an incomplete bundle was marked complete"
    assert not (got / "images" / "pause.tar").exists(), "the file with the wrong checksum was kept"


def test_a_mirror_of_another_release_is_refused(tmp_path):
    _, manifest = built_bundle()
    _, (result,) = download_from_mirror(tmp_path, dict(manifest, kubernetes_version="v1.33.9"))
    assert result.returncode != 0
    assert "is not a bundle manifest for Kubernetes v1.34.4 (it says v1.33.9)" in " ".join(result.stdout.split())
