"""The wrapper modules go_build.py writes (roles/k8s_bundle/files/go_build.py).

The go.mod excerpt below has the shape of k8s.io/kubernetes v1.34.x's own go.mod:
staging modules required at v0.0.0 and replaced with ./staging/ paths.
"""
import importlib.util
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "roles" / "k8s_bundle" / "files" / "go_build.py"
spec = importlib.util.spec_from_file_location("go_build", SCRIPT)
go_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(go_build)

K8S_GOMOD = """module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/externaljwt => ./staging/src/k8s.io/externaljwt
)
"""


def test_kubernetes_staging_modules_are_replaced_with_their_published_releases():
    gomod = go_build.render_gomod("k8s.io/kubernetes", "v1.34.4", K8S_GOMOD)
    assert "require k8s.io/kubernetes v1.34.4" in gomod
    for module in ("k8s.io/api", "k8s.io/client-go", "k8s.io/externaljwt"):
        assert f"\t{module} => {module} v0.34.4\n" in gomod
    assert "./staging" not in gomod


def test_the_release_go_and_godebug_lines_are_kept():
    gomod = go_build.render_gomod("k8s.io/kubernetes", "v1.34.4", K8S_GOMOD)
    assert "\ngo 1.24.0\n" in gomod and "\ngodebug default=go1.24\n" in gomod


def test_other_modules_get_no_replace_block():
    gomod = go_build.render_gomod("go.etcd.io/etcd/server/v3", "v3.6.5",
                                  "module go.etcd.io/etcd/server/v3\n\ngo 1.24\n\nreplace go.etcd.io/etcd/api/v3 => ../api\n")
    assert "require go.etcd.io/etcd/server/v3 v3.6.5" in gomod
    assert "replace" not in gomod


@pytest.mark.parametrize("version", ["1.34.4", "v1.34", "v2.0.0", "v1.34.4-rc.1"])
def test_a_malformed_kubernetes_version_is_refused(version):
    with pytest.raises(go_build.BuildError, match="v1.MINOR.PATCH") as err:
        go_build.render_gomod("k8s.io/kubernetes", version, K8S_GOMOD)
    assert err.value.status == 2


def test_a_kubernetes_go_mod_without_staging_replaces_is_refused():
    with pytest.raises(go_build.BuildError, match="replaces no module with ./staging/"):
        go_build.render_gomod("k8s.io/kubernetes", "v1.34.4", "module k8s.io/kubernetes\n\ngo 1.24.0\n")


@pytest.mark.parametrize("spec, expected", [
    ("k8s.io/kubernetes/cmd/kubeadm", ("k8s.io/kubernetes/cmd/kubeadm", "kubeadm")),
    ("go.etcd.io/etcd/server/v3", ("go.etcd.io/etcd/server/v3", "server")),
    ("go.etcd.io/etcd/server/v3=etcd", ("go.etcd.io/etcd/server/v3", "etcd")),
    ("github.com/coredns/coredns", ("github.com/coredns/coredns", "coredns")),
])
def test_executables_are_named_as_the_go_command_names_them_unless_renamed(spec, expected):
    assert go_build.split_package(spec) == expected


def test_the_tools_file_imports_every_package_under_a_build_tag():
    text = go_build.render_tools(["k8s.io/kubernetes/cmd/kubeadm", "k8s.io/kubernetes/cmd/kubelet"])
    assert text.startswith("//go:build tools\n")
    assert '\t_ "k8s.io/kubernetes/cmd/kubeadm"\n' in text and '\t_ "k8s.io/kubernetes/cmd/kubelet"\n' in text


def test_a_source_tree_without_vendored_dependencies_is_refused(tmp_path, capsys):
    (tmp_path / "go.mod").write_text("module github.com/example/tool\n\ngo 1.23\n")
    assert go_build.main(["--source", str(tmp_path), "--out", str(tmp_path / "out"), "./cmd/tool"]) == 2
    assert "no vendor/modules.txt (a source tree with its dependencies in vendor/)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [
    ["--source", "/src", "--module", "k8s.io/kubernetes", "--out", "/out", "./cmd/x"],
    ["--module", "k8s.io/kubernetes", "--out", "/out", "k8s.io/kubernetes/cmd/kubeadm"],
])
def test_source_and_module_builds_take_their_own_arguments(argv):
    with pytest.raises(SystemExit) as exit_info:
        go_build.main(argv)
    assert exit_info.value.code == 2
