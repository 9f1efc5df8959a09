"""`mlgitops validate` on real trees: clean where it should be, and exactly the expected
lines after each kind of breakage, with the real kustomize and strict schemas."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import ROOT, SEEDS, kustomize_build, schema_args, schema_locations, schemas_folder

from generator.cli import main
from generator.validate import Options, policies, validate_tree
from generator.validate.inputs import InputGraph
from generator.validate.kustomize import entry_points, error_message


@pytest.fixture(scope="module")
def seeds_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    result = CliRunner().invoke(main, ["generate", "--config", str(SEEDS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    shutil.copy(SEEDS, out / "mlgitops.yaml")
    return out


@pytest.fixture
def tree(seeds_tree: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "tree"
    shutil.copytree(seeds_tree, copy)
    return copy


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts cold: results are cached under a folder of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def validate(root: Path, *extra: str) -> Result:
    return CliRunner().invoke(main, ["validate", str(root), *schema_args(), *extra])


def edit_yaml(path: Path, change: object) -> None:
    """Apply `change(document)` to the first document of a generated file."""
    documents = list(yaml.safe_load_all(path.read_text()))
    change(documents[0])  # type: ignore[operator]
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def test_the_repository_and_the_seeds_tree_are_clean(seeds_tree: Path) -> None:
    for root in (ROOT, seeds_tree):
        result = validate(root)
        assert result.exit_code == 0, result.stdout
        assert result.stdout == ""
        assert ": clean" in result.stderr


JOB = "base/resnet-ddp/job.yaml"
CONTAINER = "spec.template.spec.containers.0"


def _container(document: dict) -> dict:  # type: ignore[type-arg]
    container: dict = document["spec"]["template"]["spec"]["containers"][0]  # type: ignore[type-arg]
    return container


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda d: _container(d).update(colour="blue"),
            f"base/resnet-ddp: Job/resnet-ddp: {CONTAINER}: Additional properties are not "
            "allowed ('colour' was unexpected)",
            id="unknown-field",
        ),
        pytest.param(
            lambda d: d["spec"].update(completions="three"),
            "base/resnet-ddp: Job/resnet-ddp: spec.completions: "
            "'three' is not of type 'integer', 'null'",
            id="wrong-type",
        ),
        pytest.param(
            lambda d: _container(d).pop("name"),
            f"base/resnet-ddp: Job/resnet-ddp: {CONTAINER}: 'name' is a required property",
            id="missing-required-field",
        ),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["volumes"].append(
                {"name": "host", "hostPath": {"path": "/data"}}  # after tmp, dshm and data-imagenet
            ),
            "base/resnet-ddp: Job/resnet-ddp: spec.template.spec.volumes[3].hostPath: "
            "[MLG001] volume 'host' is a hostPath",
            id="hostpath",
        ),
        pytest.param(
            lambda d: _container(d).update(image="registry.example.com/ml/resnet-train:latest"),
            "base/resnet-ddp: Job/resnet-ddp: spec.template.spec.containers[0].image: [MLG003] "
            "image 'registry.example.com/ml/resnet-train:latest' is not pinned to a tag or digest",
            id="latest-image",
        ),
    ],
)
def test_each_breakage_in_a_base_gives_exactly_its_line(
    tree: Path, change: object, expected: str
) -> None:
    edit_yaml(tree / JOB, change)
    result = validate(tree)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    # the base, and every path that builds on it, report the same object
    assert expected in lines
    assert {line.split(": ", 1)[1] for line in lines} == {expected.split(": ", 1)[1]}


def test_a_missing_sync_path_is_reported_where_it_is_referenced(tree: Path) -> None:
    shutil.rmtree(tree / "clusters" / "gke-training" / "workloads" / "namespaces" / "ml-workloads")
    (tree / "clusters" / "gke-training" / "workloads" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [namespaces/distributed-training]\n"
    )
    result = validate(tree)
    assert result.exit_code == 1
    message = (
        "spec.path: [MLG008] 'clusters/gke-training/workloads/namespaces/ml-workloads' "
        "is not a kustomization in this repository"
    )
    assert result.stdout.splitlines() == [
        f"bootstrap/fleet/apps: Application/gke-training-workloads-ml-workloads: {message}",
        f"clusters/gke-training/gitops: Application/gke-training-workloads-ml-workloads: {message}",
    ]


def test_a_namespace_without_default_deny_is_reported_per_synced_path(tree: Path) -> None:
    policy = tree / "base" / "namespaces" / "ml-workloads" / "networkpolicy.yaml"
    documents = [
        d for d in yaml.safe_load_all(policy.read_text()) if d["metadata"]["name"] != "default-deny"
    ]
    policy.write_text(yaml.safe_dump_all(documents))
    result = validate(tree)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"clusters/{c}/workloads/namespaces/ml-workloads: Namespace/ml-workloads: [MLG002] "
        "runs pods without a default-deny NetworkPolicy (ingress and egress)"
        for c in ("eks-training", "gke-training", "local")
    ]


def test_a_waiver_needs_a_reason_and_is_listed(tree: Path) -> None:
    def waive(reason: str) -> object:
        def change(document: dict) -> None:  # type: ignore[type-arg]
            document["metadata"]["annotations"] = {"mlgitops.io/waive-mlg003": reason}
            _container(document)["image"] = "registry.example.com/ml/resnet-train"

        return change

    edit_yaml(tree / JOB, waive("mirrored nightly by the platform team"))
    waived = validate(tree)
    assert waived.exit_code == 0, waived.stdout
    assert (
        "base/resnet-ddp: Job/resnet-ddp: [MLG003] waived: mirrored nightly by the platform team"
    ) in waived.stdout.splitlines()

    edit_yaml(tree / JOB, waive(" "))
    unexplained = validate(tree)
    assert unexplained.exit_code == 1
    assert (
        "base/resnet-ddp: Job/resnet-ddp: metadata.annotations.mlgitops.io/waive-mlg003: "
        "[MLG009] a waiver must give its reason"
    ) in unexplained.stdout.splitlines()


def test_custom_resources_without_schema_are_errors_unless_ignored(
    seeds_tree: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "no-schemas"
    empty.mkdir()
    command = ["validate", str(seeds_tree), "--schema-location", str(empty)]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert (
        "clusters/eks-training/infrastructure: Cluster/eks-training: no schema for "
        f"Cluster eks.services.k8s.aws/v1alpha1 ({empty})"
    ) in result.stdout.splitlines()
    ignored = CliRunner().invoke(main, [*command, "--ignore-missing-schemas"])
    assert ignored.exit_code == 0, ignored.stdout


def test_json_and_junit_reports(tree: Path) -> None:
    edit_yaml(tree / JOB, lambda d: d["spec"].update(completions="three"))
    as_json = json.loads(validate(tree, "--output", "json").stdout)
    assert as_json["problems"][0]["field"] == "spec.completions"
    assert set(as_json["rules"]) == set(policies.RULES)
    junit = ET.fromstring(validate(tree, "--output", "junit").stdout)
    suite = junit.find("testsuite")
    assert suite is not None and int(suite.get("failures", "0")) >= 1
    failing = {case.get("name") for case in suite.iter("testcase")}
    assert "base/resnet-ddp" in failing


OK_CONTAINER = {
    "name": "c",
    "image": "r/i:1",
    "resources": {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    },
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def pod(**container: object) -> dict:  # type: ignore[type-arg]
    return {
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{**OK_CONTAINER, **container}]},
    }


@pytest.mark.parametrize(
    ("rule", "passing", "failing"),
    [
        ("MLG001", pod(), pod(securityContext={"privileged": True})),
        ("MLG003", pod(), pod(image="r/i")),
        ("MLG004", pod(), pod(resources={"limits": {"cpu": "1"}})),
        (
            "MLG005",
            {"kind": "Secret", "metadata": {"name": "s"}},
            {"kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}},
        ),
        (
            "MLG006",
            {"kind": "AppProject", "spec": {"sourceRepos": ["https://x/r.git"]}},
            {"kind": "AppProject", "spec": {"sourceRepos": ["*"]}},
        ),
        (
            "MLG007",
            {
                "kind": "NetworkPolicy",
                "spec": {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
            },
            {
                "kind": "NetworkPolicy",
                "spec": {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
            },
        ),
    ],
)
def test_each_object_rule_passes_and_fails(rule: str, passing: dict, failing: dict) -> None:  # type: ignore[type-arg]
    assert [r for r, _, _ in policies.object_findings(passing) if r == rule] == []
    assert [r for r, _, _ in policies.object_findings(failing) if r == rule] != []


def test_schemas_from_a_url_template_are_downloaded_once_and_cached(
    seeds_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kubeconform-style template served over HTTP on loopback; the second run reads
    the disk cache, so it passes with the server gone."""
    import functools
    import http.server
    import threading

    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(schemas_folder()))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = (
        f"http://127.0.0.1:{server.server_port}/"
        "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    )
    try:
        first = CliRunner().invoke(
            main, ["validate", str(seeds_tree), "--schema-location", template, "--no-cache"]
        )
    finally:
        server.shutdown()
        server.server_close()
    assert first.exit_code == 0, first.stdout
    assert "/eks.services.k8s.aws/cluster_v1alpha1.json" in " ".join(requests)
    assert len(requests) == len(set(requests))  # one download per schema
    second = CliRunner().invoke(
        main, ["validate", str(seeds_tree), "--schema-location", template, "--no-cache"]
    )
    assert second.exit_code == 0, second.stdout


# Work done once: the cache, builds shared by equal inputs, aggregates composed from
# their parts. Each must report exactly what building every entry point on its own does.


def break_several_ways(tree: Path, failing_builds: bool = True) -> None:
    """Problems of every kind: schema, policy, waiver, default deny and, if asked, a
    failing build and an aggregate whose parts hold the same object."""
    edit_yaml(tree / JOB, lambda d: d["spec"].update(completions="three"))
    edit_yaml(
        tree / "base/bert-finetune/job.yaml",
        lambda d: d["metadata"].update(annotations={"mlgitops.io/waive-mlg004": "sized later"}),
    )
    policy = tree / "base/namespaces/ml-workloads/networkpolicy.yaml"
    documents = [
        d for d in yaml.safe_load_all(policy.read_text()) if d["metadata"]["name"] != "default-deny"
    ]
    policy.write_text(yaml.safe_dump_all(documents))
    if not failing_builds:
        return
    (tree / "overlays/local/workloads/bert-finetune/job.yaml").write_text("- op: [broken\n")
    extra = tree / "extra"
    extra.mkdir()
    (extra / "kustomization.yaml").write_text(
        "resources: [../base/namespaces/ml-workloads, ../clusters/eks-training/workloads]\n"
    )


def test_shared_and_composed_builds_report_what_separate_builds_report(tree: Path) -> None:
    break_several_ways(tree)
    options = Options(schema_locations(), "1.33")
    separate = validate_tree(tree, replace(options, compose_aggregates=False, batch_builds=False))
    shared = validate_tree(tree, options)
    lines = [str(p) for p in separate.problems]
    assert lines == [str(p) for p in shared.problems]
    assert separate.waivers == shared.waivers and separate.waivers
    assert separate.objects == shared.objects
    assert shared.composed > 0 and shared.kustomize_runs < separate.kustomize_runs
    assert any(
        line.startswith("extra: kustomize build failed: ") and "already registered id" in line
        for line in lines
    )
    assert any(
        line.startswith("overlays/local/workloads/bert-finetune: kustomize") for line in lines
    )
    assert any("[MLG002]" in line for line in lines)


def test_a_cached_run_reports_what_a_cold_run_reports(tree: Path, tmp_path: Path) -> None:
    break_several_ways(tree, failing_builds=False)
    cache = str(tmp_path / "cache")
    cold = validate(tree, "--no-cache")
    first = validate(tree, "--cache-dir", cache)
    second = validate(tree, "--cache-dir", cache)
    assert cold.exit_code == first.exit_code == second.exit_code == 1
    assert cold.stdout == first.stdout == second.stdout
    assert "waived" in cold.stdout and "[MLG002]" in cold.stdout
    assert "(0 kustomize runs" not in first.stderr
    builds = int(second.stderr.split("validated ")[1].split(" ")[0])
    assert f"(0 kustomize runs, {builds} from cache, 0 composed" in second.stderr


def entry_point_builds(tree: Path) -> dict[str, str]:
    return {
        folder.relative_to(tree).as_posix(): json.dumps(kustomize_build(folder), sort_keys=True)
        for folder in entry_points(tree)
    }


def test_changing_one_file_rechecks_exactly_the_builds_that_include_it(
    tree: Path, tmp_path: Path
) -> None:
    options = Options(schema_locations(), "1.33", cache_folder=tmp_path / "cache")
    cold = validate_tree(tree, options)
    assert cold.cached == 0 and len(cold.checked) == cold.builds
    before = entry_point_builds(tree)
    job = tree / JOB
    job.write_text(job.read_text().replace("resnet-train:1.4.2", "resnet-train:1.4.3"))
    after = entry_point_builds(tree)
    changed = sorted(path for path in before if before[path] != after[path])
    assert "base/resnet-ddp" in changed and len(changed) < len(before) / 2
    warm = validate_tree(tree, options)
    assert warm.checked == changed
    assert warm.cached == warm.builds - len(changed)
    assert [str(p) for p in warm.problems] == [str(p) for p in cold.problems] == []


def test_builds_with_the_same_inputs_share_a_key_and_comments_do_not_count(
    tmp_path: Path,
) -> None:
    config = yaml.safe_load(SEEDS.read_text())
    eks = next(c for c in config["clusters"] if c["cloud"] == "eks")
    config["clusters"].append({**eks, "name": "eks-second"})
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["generate", "--config", str(tmp_path / "fleet.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output

    def keys() -> tuple[str | None, str | None]:
        graph = InputGraph()
        first, second = (
            graph.key(out / f"clusters/{c}/workloads/namespaces/ml-workloads")
            for c in ("eks-training", "eks-second")
        )
        return first, second

    first, second = keys()
    assert first is not None and first == second
    custom = out / "clusters/eks-second/custom/kustomization.yaml"
    custom.write_text(custom.read_text() + "# only a comment\n")
    assert keys() == (first, second)
    custom.write_text(custom.read_text() + "commonAnnotations: {team: vision}\n")
    changed = keys()
    assert changed[0] == first and changed[1] not in (None, first)


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        (
            'E1123 17:52:25.000142   26885 run.go:72] "command failed" '
            'err="accumulating resources: \\"x\\" is missing"\n',
            'accumulating resources: "x" is missing',
        ),
        (
            'E1123 18:01:46.047282   20982 run.go:72] "command failed" err=<\n'
            "\tyaml: unmarshal errors:\n"
            '\t  line 19: mapping key "annotations" already defined at line 7\n'
            " >\n",
            'yaml: unmarshal errors: line 19: mapping key "annotations" already defined at line 7',
        ),
        (
            "error: yaml: unmarshal errors:\n  line 19: mapping key already defined\n",
            "yaml: unmarshal errors: line 19: mapping key already defined",
        ),
    ],
    ids=["kubectl-quoted", "kubectl-block", "kustomize"],
)
def test_build_errors_read_without_kubectl_log_prefixes(stderr: str, message: str) -> None:
    assert error_message(stderr) == message


def test_kustomizations_that_include_each_other_are_reported_not_followed(
    tmp_path: Path,
) -> None:
    for name, other in (("a", "b"), ("b", "a")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "kustomization.yaml").write_text(f"resources: [../{other}]\n")
    result = validate(tmp_path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["a", "b"]
    assert all("cycle detected" in line for line in lines)
