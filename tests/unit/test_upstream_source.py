"""Fetching an upstream source pinned by git tree id (roles/k8s_bundle/files/upstream_source.py).

Each test makes a small git repository of its own in a temporary folder, with a
tag, and serves it as upstream does (a git URL) or as a mirror does (a folder or
an http server on loopback holding NAME.bundle).
"""
import functools
import http.server
import pathlib
import subprocess
import sys
import threading

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "roles" / "k8s_bundle" / "files" / "upstream_source.py"
NAME = "example-tool-v1.0.0"


def git(*args, cwd):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path):
    """A repository with a tagged commit; returns (path, commit, tree) and a mirror folder holding its bundle."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "main.go").write_text("package main\n\nfunc main() { println(\"mtu\", 1500) }\n")
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", "release", cwd=repo)
    git("tag", "v1.0.0", cwd=repo)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    git("bundle", "create", str(mirror / (NAME + ".bundle")), "v1.0.0", cwd=repo)
    return {"repo": repo, "commit": git("rev-parse", "HEAD", cwd=repo), "tree": git("rev-parse", "HEAD^{tree}", cwd=repo),
            "mirror": mirror}


def fetch(upstream, dest, *extra, tree=None, url=None):
    argv = [sys.executable, str(SCRIPT), "--name", NAME, "--url", url or upstream["repo"].as_uri(),
            "--commit", upstream["commit"], "--ref", "v1.0.0", "--tree", tree or upstream["tree"], "--dest", str(dest),
            *extra]
    return subprocess.run(argv, capture_output=True, text=True)


def test_the_source_from_its_home_is_checked_out_with_a_record(upstream, tmp_path):
    result = fetch(upstream, tmp_path / "src")
    assert result.returncode == 0, result.stderr
    assert "println" in (tmp_path / "src" / "main.go").read_text()
    assert not (tmp_path / "src" / ".git").exists()
    assert "tree: %s" % upstream["tree"] in (tmp_path / "src" / ".cka-lab-source").read_text()


def test_the_source_from_a_mirror_folder_and_from_a_mirror_url(upstream, tmp_path):
    assert fetch(upstream, tmp_path / "a", "--mirror", str(upstream["mirror"])).returncode == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(upstream["mirror"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/" % server.server_address[1]
        result = fetch(upstream, tmp_path / "b", "--mirror", url)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "main.go").read_text() == (tmp_path / "b" / "main.go").read_text()


def test_a_mirror_whose_tree_differs_is_refused_naming_the_setting_and_both_trees(upstream, tmp_path):
    wrong = "0" * 40
    result = fetch(upstream, tmp_path / "src", "--mirror", str(upstream["mirror"]), tree=wrong)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "CKA_LAB_UPSTREAM_MIRROR=%s" % upstream["mirror"] in message
    assert "has tree %s, expected tree %s" % (upstream["tree"], wrong) in message
    assert not (tmp_path / "src").exists(), "a refused source was left behind"
    assert not list(tmp_path.glob("src.*")), "a partial checkout was left behind"


def test_a_mirror_without_the_source_names_the_file_it_lacks(upstream, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = fetch(upstream, tmp_path / "src", "--mirror", str(empty))
    assert result.returncode == 2
    assert "holds no %s.bundle" % NAME in result.stderr
    assert "allowed: a folder or http(s) URL" in result.stderr


def test_an_unreachable_home_names_the_url_and_the_mirror_setting(upstream, tmp_path):
    missing = (tmp_path / "nowhere").as_uri()
    result = fetch(upstream, tmp_path / "src", url=missing)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "cannot fetch %s" % missing in message
    assert "set CKA_LAB_UPSTREAM_MIRROR to a folder or http(s) URL holding %s.bundle" % NAME in message


def test_a_patch_is_applied_and_a_patch_that_does_not_apply_is_refused(upstream, tmp_path):
    good = tmp_path / "good.patch"
    good.write_text("A note before the diff, as the project's patches carry.\n\n"
                    "--- a/main.go\n+++ b/main.go\n@@ -1,3 +1,3 @@\n package main\n \n"
                    "-func main() { println(\"mtu\", 1500) }\n+func main() { println(\"mtu\", 65535) }\n")
    assert fetch(upstream, tmp_path / "src", "--patch", str(good)).returncode == 0
    assert "65535" in (tmp_path / "src" / "main.go").read_text()
    bad = tmp_path / "bad.patch"
    bad.write_text(good.read_text().replace("1500", "9000"))
    result = fetch(upstream, tmp_path / "other", "--patch", str(bad))
    assert result.returncode == 2
    assert "the patch %s does not apply to tree %s" % (bad, upstream["tree"]) in result.stderr
    assert not (tmp_path / "other").exists()


def test_bad_arguments_are_refused_before_anything_is_fetched(upstream, tmp_path):
    result = fetch(upstream, tmp_path / "src", tree="4971182d")
    assert result.returncode == 2
    assert "--tree '4971182d' is not a git object id" in result.stderr
    assert not (tmp_path / "src").exists()
