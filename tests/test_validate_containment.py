"""`mlgitops validate` stays on this machine, within bounds, and its cache never lies:
remote references are refused before any build and kustomize cannot reach the network
anyway, hostile inputs (YAML bombs, huge files, FIFOs) are refused as problems, every
kustomize run has memory and time limits, a cache entry is trusted only when it proves
it belongs to its key, and a result computed while its inputs changed is never kept.

Every run that could hang if a guarantee broke runs in a child process with a timeout."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from helpers import SCHEMAS, SEEDS, schemas_folder
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import generator.validate as validate_module
import generator.validate.inputs as inputs_module
from generator.cli import _validate_options, main
from generator.errors import UsageError
from generator.validate import Options, validate_tree
from generator.validate.cache import ResultCache, fingerprint
from generator.validate.inputs import InputGraph
from generator.validate.kustomize import (
    MIB,
    Limits,
    build,
    contained_environment,
    kustomize_command,
    yaml_problem,
)

CHILD_TIMEOUT = 300  # seconds: only reached if a guarantee is broken (a hang)
BOMB = "".join(
    [
        "a: &a [x, x, x, x, x, x, x, x, x]\n",
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)  # 10 lines: 9**9 (387 million) values once the aliases are expanded


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


class Server:
    """A loopback HTTP server that records every request it gets (and serves 404s)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                self.send_error(404)

            do_POST = do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as running:
        yield running


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def config_map(name: str, data: str = '{k: "v"}') -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {data}\n"


def good_folder(root: Path, name: str = "good") -> Path:
    write(root / name / "cm.yaml", config_map(name))
    write(root / name / "kustomization.yaml", "resources: [cm.yaml]\n")
    return root / name


def run_cli(
    root: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`mlgitops validate` in a child process: a hang fails the test instead of hanging it."""
    code = "import sys; from generator.cli import main; sys.exit(main())"
    return subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "validate",
            str(root),
            "--schema-location",
            str(SCHEMAS),
            "--no-cache",
            *list(extra),
        ],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        env={**os.environ, **(env or {})},
        check=False,
    )


# Remote references: refused before building, naming the kustomization and the field.

REMOTE_FORMS = [
    ("resources", "{url}/cm.yaml"),
    ("resources", "{url}/org/repo.git//base?ref=main"),
    ("resources", "https://127.0.0.1:{port}/cm.yaml"),
    ("resources", "ssh://git@127.0.0.1:{port}/org/repo.git"),
    ("resources", "git@127.0.0.1:org/repo.git"),
    ("resources", "github.com/kubernetes-sigs/kueue/config/default?ref=v0.9.0"),
    ("resources", "git::{url}/org/repo.git"),
    ("components", "{url}/org/repo.git//component"),
    ("bases", "{url}/base"),
    ("patches[].path", "{url}/patch.yaml"),
    ("crds", "{url}/crd.yaml"),
    ("openapi.path", "{url}/schema.json"),
    ("configMapGenerator[].files", "{url}/settings.txt"),
]


def remote_kustomization(field: str, value: str) -> str:
    if field == "patches[].path":
        return f"resources: [../good]\npatches:\n- path: {value!r}\n"
    if field == "openapi.path":
        return f"resources: [../good]\nopenapi:\n  path: {value!r}\n"
    if field == "configMapGenerator[].files":
        return f"configMapGenerator:\n- name: settings\n  files: [{value!r}]\n"
    if field == "resources":
        return f"resources: [../good, {value!r}]\n"
    return f"resources: [../good]\n{field}: [{value!r}]\n"


def expected_field(field: str) -> str:
    return {
        "patches[].path": "patches[0].path",
        "openapi.path": "openapi.path",
        "configMapGenerator[].files": "configMapGenerator[0].files[0]",
        "resources": "resources[1]",
    }.get(field, f"{field}[0]")


@pytest.mark.parametrize(("field", "form"), REMOTE_FORMS, ids=[f"{f}:{v}" for f, v in REMOTE_FORMS])
def test_a_remote_reference_is_refused_and_never_fetched(
    tmp_path: Path, server: Server, field: str, form: str
) -> None:
    port = server.httpd.server_port
    value = form.format(url=server.url, port=port)
    good_folder(tmp_path)
    write(tmp_path / "remote" / "kustomization.yaml", remote_kustomization(field, value))
    result = run_cli(tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"remote/kustomization.yaml: {expected_field(field)}: {value!r} is a remote reference: "
        "validate builds only what is in this repository and never fetches anything "
        "(a generated tree has no remote bases)"
    ]
    assert server.requests == []


def test_a_helm_chart_from_a_repository_is_refused(tmp_path: Path, server: Server) -> None:
    write(
        tmp_path / "charts" / "kustomization.yaml",
        f"helmCharts:\n- name: kueue\n  repo: {server.url}/charts\n  version: 0.9.0\n",
    )
    result = run_cli(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"charts/kustomization.yaml: helmCharts[0].repo: a Helm chart from the repository "
        f"'{server.url}/charts': validate never fetches anything (a generated tree has no "
        "remote charts)"
    ]
    assert server.requests == []


def test_a_remote_base_is_reported_once_where_it_is_named_and_its_users_are_not_built(
    tmp_path: Path, server: Server
) -> None:
    good_folder(tmp_path)
    write(tmp_path / "base" / "kustomization.yaml", f"resources: [../good, {server.url}/x.yaml]\n")
    for overlay in ("one", "two"):
        write(tmp_path / overlay / "kustomization.yaml", "resources: [../base]\n")
    result = run_cli(tmp_path)
    assert result.returncode == 1
    assert [line.split(": ")[:2] for line in result.stdout.splitlines()] == [
        ["base/kustomization.yaml", "resources[1]"]
    ]
    assert "validated 4 builds (1 kustomize runs" in result.stderr  # only good/ is built
    assert server.requests == []


def local_address() -> str | None:
    """An address of this machine that is not loopback (Go never proxies loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else str(address)


def test_kustomize_itself_cannot_reach_the_network(tmp_path: Path) -> None:
    """The second line: with the refusal bypassed, kustomize's fetch goes to a proxy that
    refuses it. The same build outside that environment does reach the server, so the
    test would see a leak."""
    address = local_address()
    if address is None:
        pytest.skip("no address besides loopback on this machine")
    with Server(address) as running:
        url = f"{running.url}/org/repo/cm.yaml"
        folder = write(tmp_path / "k" / "kustomization.yaml", f"resources: [{url!r}]\n").parent
        contained = build(kustomize_command(), folder, Limits(seconds=120))
        assert contained.error is not None and "127.0.0.1" in contained.error
        assert running.requests == []
        plain = subprocess.run(
            [*kustomize_command(), str(folder)],
            capture_output=True,
            timeout=CHILD_TIMEOUT,
            env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
            check=False,
        )
        assert plain.returncode != 0
        assert running.requests != []


def test_the_contained_environment_leaves_no_way_out() -> None:
    env = contained_environment({"HTTPS_PROXY": "http://corporate:3128", "no_proxy": "*"})
    proxies = {env[name] for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "https_proxy")}
    assert len(proxies) == 1 and proxies.pop().startswith("http://127.0.0.1:")
    assert env["NO_PROXY"] == env["no_proxy"] == ""
    assert env["GIT_ALLOW_PROTOCOL"] == "file"
    port = int(env["HTTPS_PROXY"].rsplit(":", 1)[1])
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))


def test_operator_paths_synced_from_upstream_repositories_are_not_built(tmp_path: Path) -> None:
    """An Application of an operator's own repository names a path there: not ours to
    build or to check."""
    write(
        tmp_path / "gitops" / "app.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
        "metadata: {name: kueue, namespace: argocd}\nspec:\n  project: default\n"
        "  source: {repoURL: 'https://github.com/kubernetes-sigs/kueue.git', "
        "path: config/default, targetRevision: v0.9.0}\n"
        "  destination: {server: 'https://kubernetes.default.svc', namespace: kueue-system}\n",
    )
    good_folder(tmp_path)
    write(
        tmp_path / "gitops" / "own.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
        "metadata: {name: own, namespace: argocd}\nspec:\n  project: default\n"
        "  source: {repoURL: 'https://example.com/fleet.git', path: good}\n"
        "  destination: {server: 'https://kubernetes.default.svc', namespace: x}\n",
    )
    write(tmp_path / "gitops" / "kustomization.yaml", "resources: [app.yaml, own.yaml]\n")
    result = run_cli(tmp_path, "--ignore-missing-schemas")
    assert result.returncode == 0, result.stdout
    assert "config/default" not in result.stdout


# Bounds: YAML bombs, depth, size, files that are not regular files.


def test_a_yaml_bomb_in_a_kustomization_is_refused_in_bounded_time(tmp_path: Path) -> None:
    write(tmp_path / "k" / "kustomization.yaml", f"resources: []\n{BOMB}")
    result = run_cli(tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "k/kustomization.yaml: YAML aliases expand past 1,000,000 values "
        "(each alias counts as all it stands for)"
    ]


def test_a_yaml_bomb_in_a_resource_file_is_refused_before_kustomize_sees_it(
    tmp_path: Path,
) -> None:
    bomb = write(
        tmp_path / "k" / "cm.yaml",
        config_map("bomb", "{}") + BOMB.replace("\n", "\n  ").join(["extra:\n  ", ""]),
    )
    write(tmp_path / "k" / "kustomization.yaml", "resources: [cm.yaml]\n")
    assert yaml_problem(bomb.read_bytes()) is not None
    result = run_cli(tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "k/kustomization.yaml: resources[0]: 'cm.yaml' is beyond the bounds of an input: "
        "YAML aliases expand past 1,000,000 values (each alias counts as all it stands for)"
    ]
    assert "(0 kustomize runs" in result.stderr


def test_kustomize_runs_within_a_memory_limit(tmp_path: Path) -> None:
    """The second line: the same bomb handed straight to kustomize stops at the limit
    (memory or, on a very slow machine, time) with a problem, not a machine out of memory."""
    write(
        tmp_path / "k" / "cm.yaml",
        config_map("bomb", "{}") + "extra:\n  " + BOMB.replace("\n", "\n  "),
    )
    folder = write(tmp_path / "k" / "kustomization.yaml", "resources: [cm.yaml]\n").parent
    limits = Limits(memory_bytes=1024 * MIB, seconds=120)
    output = build(kustomize_command(), folder, limits)
    assert output.error is not None
    assert output.error in (
        "kustomize ran out of memory: it may use 1,024 MiB (MLGITOPS_VALIDATE_MEMORY_MIB)",
        "kustomize took longer than 120 s and was stopped (MLGITOPS_VALIDATE_TIMEOUT)",
    )


def test_kustomize_runs_within_a_time_limit(tmp_path: Path) -> None:
    """A FIFO handed straight to kustomize blocks it forever: the time limit stops it."""
    folder = write(tmp_path / "k" / "kustomization.yaml", "resources: [pipe.yaml]\n").parent
    os.mkfifo(folder / "pipe.yaml")
    output = build(kustomize_command(), folder, Limits(seconds=1))
    assert output.error == (
        "kustomize took longer than 1 s and was stopped (MLGITOPS_VALIDATE_TIMEOUT)"
    )


def test_kustomize_output_is_bounded(tmp_path: Path) -> None:
    folder = good_folder(tmp_path)
    write(folder / "cm.yaml", config_map("good", "{k: " + "v" * (2 * MIB) + "}"))
    result = run_cli(tmp_path, env={"MLGITOPS_VALIDATE_MAX_OUTPUT_MIB": "1"})
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "good: kustomize build failed: kustomize printed more than 1 MiB and was stopped "
        "(MLGITOPS_VALIDATE_MAX_OUTPUT_MIB)"
    ]
    assert run_cli(tmp_path).returncode == 0


def test_the_limits_come_from_the_environment_and_bad_values_are_usage_errors(
    tmp_path: Path,
) -> None:
    limits = Limits.from_environment(
        {"MLGITOPS_VALIDATE_MEMORY_MIB": "2048", "MLGITOPS_VALIDATE_TIMEOUT": "30"}
    )
    assert (limits.memory_bytes, limits.seconds) == (2048 * MIB, 30)
    assert limits.input_bytes == Limits().input_bytes
    for bad in ("0", "-5", "1.5", "99999999999999999999"):
        with pytest.raises(UsageError, match="MLGITOPS_VALIDATE_TIMEOUT"):
            Limits.from_environment({"MLGITOPS_VALIDATE_TIMEOUT": bad})
    good_folder(tmp_path)
    result = run_cli(tmp_path, env={"MLGITOPS_VALIDATE_MEMORY_MIB": "lots"})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "mlgitops: MLGITOPS_VALIDATE_MEMORY_MIB='lots': must be a whole number of MiB, "
        "at least 1024, at most 1,073,741,824\n"
    )


def test_yaml_nested_too_deep_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path / "k" / "kustomization.yaml", "resources: []\nx: " + "[" * 100 + "]" * 100 + "\n"
    )
    write(tmp_path / "r" / "cm.yaml", config_map("r", "{}") + "x: " + "[" * 100 + "]" * 100 + "\n")
    write(tmp_path / "r" / "kustomization.yaml", "resources: [cm.yaml]\n")
    result = run_cli(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "k/kustomization.yaml: YAML nested deeper than 64 levels",
        "r/kustomization.yaml: resources[0]: 'cm.yaml' is beyond the bounds of an input: "
        "YAML nested deeper than 64 levels",
    ]


def test_a_huge_file_is_refused_without_being_read(tmp_path: Path) -> None:
    folder = write(tmp_path / "k" / "kustomization.yaml", "resources: [big.yaml]\n").parent
    with (folder / "big.yaml").open("wb") as big:
        big.truncate(2 * 1024 * MIB)  # sparse: costs no disk, but reads as 2 GiB of zeros
    assert InputGraph().key(folder) is None  # not hashed whole: beyond the bound
    result = run_cli(tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "k/kustomization.yaml: resources[0]: 'big.yaml' is 2,048 MiB, larger than the 16 MiB "
        "an input may be (MLGITOPS_VALIDATE_MAX_INPUT_MIB)"
    ]


def test_the_size_bound_is_set_by_an_environment_variable(tmp_path: Path) -> None:
    folder = good_folder(tmp_path)
    write(folder / "cm.yaml", config_map("good", "{k: " + "v" * (2 * MIB) + "}"))
    small = run_cli(tmp_path, env={"MLGITOPS_VALIDATE_MAX_INPUT_MIB": "1"})
    assert small.returncode == 1
    assert "'cm.yaml' is 2.0 MiB, larger than the 1 MiB an input may be" in small.stdout
    assert run_cli(tmp_path).returncode == 0


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "fifo-kustomization"])
def test_a_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "k"
    folder.mkdir()
    if kind == "fifo-kustomization":
        os.mkfifo(folder / "kustomization.yaml")
        expected = "k/kustomization.yaml: the kustomization is a FIFO, not a regular file"
    else:
        write(folder / "kustomization.yaml", "resources: [input.yaml]\n")
        described = {"fifo": "a FIFO", "socket": "a socket", "device": "a character device"}
        expected = (
            f"k/kustomization.yaml: resources[0]: 'input.yaml' is {described[kind]}, "
            "not a regular file"
        )
    listening = None
    if kind == "fifo":
        os.mkfifo(folder / "input.yaml")
    elif kind == "socket":
        listening = socket.socket(socket.AF_UNIX)
        with contextlib.suppress(OSError):
            listening.bind(str(folder / "input.yaml"))
        if not (folder / "input.yaml").exists():
            pytest.skip("cannot make a socket file here (path too long)")
    elif kind == "device":
        (folder / "input.yaml").symlink_to("/dev/zero")
    try:
        result = run_cli(tmp_path)
    finally:
        if listening is not None:
            listening.close()
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [expected]


# Sync paths that leave the tree.


def application(name: str, path: str) -> str:
    return (
        f"apiVersion: argoproj.io/v1alpha1\nkind: Application\n"
        f"metadata: {{name: {name}, namespace: argocd}}\nspec:\n  project: default\n"
        f"  source: {{repoURL: 'https://example.com/fleet.git', path: {path!r}}}\n"
        "  destination: {server: 'https://kubernetes.default.svc', namespace: x}\n"
    )


def test_a_sync_path_outside_the_tree_is_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    good_folder(root)
    good_folder(tmp_path, "outside")  # a kustomization, but not in this repository
    (root / "linked").symlink_to(tmp_path / "outside")
    write(
        root / "apps" / "apps.yaml",
        "---\n".join(
            application(name, path)
            for name, path in [
                ("up", "../outside"),
                ("absolute", str(tmp_path / "outside")),
                ("linked", "linked"),
                ("fine", "good"),
            ]
        ),
    )
    write(root / "apps" / "kustomization.yaml", "resources: [apps.yaml]\n")
    result = run_cli(root, "--ignore-missing-schemas")
    assert result.returncode == 1, result.stderr
    outside = "is outside this repository (a synced path is relative to its root)"
    assert result.stdout.splitlines() == [
        f"apps: Application/absolute: spec.path: [MLG008] '{tmp_path / 'outside'}' {outside}",
        f"apps: Application/linked: spec.path: [MLG008] 'linked' {outside}",
        f"apps: Application/up: spec.path: [MLG008] '../outside' {outside}",
    ]


ODD_OBJECTS = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: listed}
spec: [1, 2]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: numbers}
spec: {source: x, sources: 5}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: flux}
spec: {path: {a: 1}, sourceRef: 7}
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: project}
spec: {sourceRepos: 5}
"""


def test_objects_of_the_wrong_shape_are_problems_not_tracebacks(tmp_path: Path) -> None:
    write(tmp_path / "odd" / "objects.yaml", ODD_OBJECTS)
    write(tmp_path / "odd" / "kustomization.yaml", "resources: [objects.yaml]\n")
    result = run_cli(tmp_path, "--schema-location", str(schemas_folder()))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert "odd: AppProject/project: spec.sourceRepos: 5 is not of type 'array'" in lines
    assert "odd: Application/listed: spec: [1, 2] is not of type 'object'" in lines
    assert (
        "odd: Kustomization/flux: spec.path: [MLG008] \"{'a': 1}\" is not a kustomization "
        "in this repository"
    ) in lines


def test_an_object_the_policies_cannot_read_is_a_problem() -> None:
    checker = validate_module._Checker(Options([], "1.33", ignore_missing_schemas=True))
    project = yaml.safe_load(ODD_OBJECTS.split("---\n")[-1])
    result = checker.check(project, "1.33")
    assert result.problems == [
        [
            "AppProject/project",
            "",
            "cannot check the policies of this object: 'int' object is not iterable",
            None,
        ]
    ]


# The cache: trusted only when an entry proves it belongs to its key.


def broken_tree(root: Path) -> None:
    """Two builds with a schema problem each, one clean build."""
    good_folder(root)
    write(root / "bad" / "cm.yaml", config_map("bad", "{k: 5}"))
    write(root / "bad" / "kustomization.yaml", "resources: [cm.yaml]\n")
    write(root / "worse" / "cm.yaml", config_map("worse", "{k: [1]}"))
    write(root / "worse" / "kustomization.yaml", "resources: [cm.yaml]\n")


def entries(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*.json"))


def run_with_cache(root: Path, cache: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["validate", str(root), "--schema-location", str(SCHEMAS), "--cache-dir", str(cache)]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda path, others: path.write_text('{"error": null, "objects": 1}'), id="forged"
        ),
        pytest.param(lambda path, others: path.write_text("[1, 2]"), id="a-list"),
        pytest.param(lambda path, others: path.write_text("{"), id="cut-short"),
        pytest.param(lambda path, others: path.write_bytes(b"\xff\x00"), id="binary"),
        pytest.param(lambda path, others: path.write_text("[" * 100_000), id="deep-json"),
        pytest.param(
            lambda path, others: path.write_text(
                json.dumps({**json.loads(path.read_text()), "mac": "0" * 64})
            ),
            id="wrong-mac",
        ),
        pytest.param(
            lambda path, others: path.write_bytes(others[0].read_bytes()), id="another-key's"
        ),
    ],
)
def test_a_damaged_or_forged_cache_entry_is_a_miss(tmp_path: Path, damage: Any) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    broken_tree(root)
    code, cold = run_with_cache(root, cache)
    assert code == 1 and len(cold.splitlines()) == 2
    stored = entries(cache)
    assert stored
    for path in stored:
        damage(path, [other for other in stored if other != path])
    assert run_with_cache(root, cache) == (1, cold)


def test_a_well_made_entry_of_the_wrong_shape_is_a_miss(tmp_path: Path) -> None:
    """Even with a valid MAC for the right key, content that is not a result is not used."""
    root, cache = tmp_path / "tree", tmp_path / "cache"
    broken_tree(root)
    code, cold = run_with_cache(root, cache)
    assert code == 1
    result_cache = ResultCache(cache, fingerprint(kustomize_command(), [str(SCHEMAS)], False))
    graph = InputGraph()
    for name in ("bad", "worse"):
        key = graph.key(root.resolve() / name)
        assert key is not None and result_cache.get(key, "1.33") is not None
        for content in ({"error": None, "objects": 1}, {"objects": "1"}, {"facts": 5}):
            result_cache.put(key, "1.33", content)
            assert run_with_cache(root, cache) == (1, cold)
        result_cache.put(f"{key}:facts", "1.33", {"facts": [1, "x"]})
        assert run_with_cache(root, cache) == (1, cold)


@pytest.fixture(scope="module")
def seeds_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds")
    result = CliRunner().invoke(main, ["generate", "--config", str(SEEDS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    shutil.copy(SEEDS, out / "mlgitops.yaml")
    return out


def report_lines(root: Path, options: Options) -> tuple[list[str], dict[str, Any]]:
    report = validate_tree(root, options)
    landings = {
        cluster: [repr(landing) for landing in found] for cluster, found in report.landings.items()
    }
    return [str(p) for p in report.problems], landings


def test_damaged_cluster_model_facts_are_rebuilt_not_trusted(
    seeds_tree: Path, tmp_path: Path
) -> None:
    """The `<key>:facts` entries are checked like results: the cluster model judges the
    same, whatever they hold."""
    options = replace(
        _validate_options(seeds_tree, [str(SCHEMAS)], None, False, 0),
        cache_folder=tmp_path / "cache",
    )
    cold = report_lines(seeds_tree, replace(options, cache_folder=None))
    assert cold[1]  # the cluster model placed something
    assert report_lines(seeds_tree, options) == cold
    facts = [path for path in entries(tmp_path / "cache") if '"facts"' in path.read_text()[:200]]
    assert facts
    for number, path in enumerate(facts):
        path.write_text(['{"facts": [{"type": "Namespace"}]}', "{}", '{"facts": null}'][number % 3])
    assert report_lines(seeds_tree, options) == cold


# The race: a file edited while validate runs.


def test_a_file_edited_while_it_builds_leaves_nothing_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broken file is fixed after its key was taken and before kustomize reads it,
    then broken again: without the re-check, the clean result would be kept under the
    broken content's key, and the next run would say it is clean."""
    root, cache = tmp_path / "tree", tmp_path / "cache"
    broken_tree(root)
    options = Options([str(SCHEMAS)], "1.33", cache_folder=cache, batch_builds=False)
    bad = root.resolve() / "bad" / "cm.yaml"
    broken = bad.read_text()
    real_build = build

    def build_while_editing(command: list[str], folder: Path, limits: Limits | None = None) -> Any:
        if folder.name == "bad":
            bad.write_text(config_map("bad"))  # fixed just before kustomize reads it
            output = real_build(command, folder, limits)
            bad.write_text(broken)  # and broken again after kustomize ran
            return output
        return real_build(command, folder, limits)

    monkeypatch.setattr(validate_module, "build", build_while_editing)
    validate_tree(root, options)
    monkeypatch.undo()
    assert bad.read_text() == broken
    again = validate_tree(root, options)
    assert "bad" in again.checked  # not from the cache
    assert any(p.path == "bad" and p.field == "data.k" for p in again.problems)


def test_a_file_edited_after_its_build_is_not_stored_under_the_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, cache = tmp_path / "tree", tmp_path / "cache"
    broken_tree(root)
    options = Options([str(SCHEMAS)], "1.33", cache_folder=cache, batch_builds=False)
    bad = root.resolve() / "bad" / "cm.yaml"
    key = InputGraph().key(bad.parent)
    real_build = build

    def build_then_edit(command: list[str], folder: Path, limits: Limits | None = None) -> Any:
        output = real_build(command, folder, limits)
        if folder.name == "bad":
            bad.write_text(config_map("bad", "{k: 6}"))
        return output

    monkeypatch.setattr(validate_module, "build", build_then_edit)
    validate_tree(root, options)
    result_cache = ResultCache(cache, fingerprint(kustomize_command(), [str(SCHEMAS)], False))
    assert key is not None and result_cache.get(key, "1.33") is None
    good_key = InputGraph().key(root.resolve() / "good")
    assert good_key is not None and result_cache.get(good_key, "1.33") is not None


def test_the_re_check_reads_again_only_what_moved_and_sees_what_appeared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph taken again after the builds reuses an earlier read while the file's
    status holds, reads a file anew once it changed, and looks again at which files
    exist (a second kustomization file makes the folder ambiguous)."""
    root = tmp_path / "tree"
    broken_tree(root)
    earlier = InputGraph()
    keys = {name: earlier.key(root / name) for name in ("good", "bad", "worse")}
    reads: list[str] = []
    real_hash = inputs_module._hash_file

    def counted(path: Path, limit: int) -> Any:
        reads.append(path.name if path.parent.name != "bad" else "bad/" + path.name)
        return real_hash(path, limit)

    monkeypatch.setattr(inputs_module, "_hash_file", counted)
    again = InputGraph(earlier=earlier)
    assert {name: again.key(root / name) for name in keys} == keys
    assert reads == []  # nothing moved: every read is the earlier one
    (root / "bad" / "cm.yaml").write_text(config_map("bad", "{k: 6}"))
    after_edit = InputGraph(earlier=earlier)
    assert after_edit.key(root / "bad") != keys["bad"]
    assert reads == ["bad/cm.yaml"]
    assert after_edit.key(root / "good") == keys["good"]
    (root / "worse" / "kustomization.yml").write_text("resources: [cm.yaml]\n")
    assert InputGraph(earlier=earlier).key(root / "worse") is None


# Random trees: never a traceback, never a request, never a problem hidden.

Builder = tuple[str, str]  # (kind of entry, a name)
NAMES = st.sampled_from(["a", "b c", "ü", "-dash", "x=y", "a.b", "..x", "k" * 60])
KINDS = st.sampled_from(
    [
        "good",
        "remote",
        "symlink-folder",
        "symlink-outside",
        "dangling",
        "file-for-folder",
        "folder-for-file",
        "fifo",
        "bomb",
        "deep",
        "empty",
        "not-yaml",
        "cycle",
        "sync-outside",
        "odd-objects",
    ]
)
DAMAGE = st.sampled_from(["none", "forged", "garbage", "swap", "truncate", "empty"])


def build_entry(root: Path, kind: str, name: str, server: Server, outside: Path) -> None:
    folder = root / f"{kind}-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    k = folder / "kustomization.yaml"
    if kind == "good":
        write(folder / f"{name}.yaml", config_map("g"))
        k.write_text(f"resources: [{name + '.yaml'!r}]\n")
    elif kind == "remote":
        k.write_text(f"resources: ['{server.url}/{name}.yaml', '{server.url}/r.git//x?ref=v1']\n")
    elif kind == "symlink-folder":
        (folder / "link").symlink_to(root / "known")
        k.write_text("resources: [link]\n")
    elif kind == "symlink-outside":
        (folder / "link").symlink_to(outside)
        k.write_text("resources: [link]\n")
    elif kind == "dangling":
        (folder / "gone.yaml").symlink_to(folder / "nowhere")
        k.write_text("resources: [gone.yaml]\n")
    elif kind == "file-for-folder":
        write(folder / "sub", "just a file\n")
        k.write_text("resources: [sub]\n")
        write(folder / "inner" / "kustomization.yaml", "resources: []\n")
        shutil.rmtree(folder / "inner")
        write(folder / "inner", "x")
    elif kind == "folder-for-file":
        (folder / f"{name}.yaml").mkdir()
        k.write_text(f"resources: [{name + '.yaml'!r}]\n")
    elif kind == "fifo":
        os.mkfifo(folder / "p.yaml")
        k.write_text("resources: [p.yaml]\n")
    elif kind == "bomb":
        write(folder / "b.yaml", config_map("b", "{}") + "extra:\n  " + BOMB.replace("\n", "\n  "))
        k.write_text("resources: [b.yaml]\n")
    elif kind == "deep":
        k.write_text("resources: []\nx: " + "{a: " * 80 + "1" + "}" * 80 + "\n")
    elif kind == "empty":
        k.write_text("")
    elif kind == "not-yaml":
        k.write_bytes(b"\xff\xfe: [\n")
    elif kind == "cycle":
        k.write_text(f"resources: [../{folder.name}]\n")
    elif kind == "odd-objects":
        write(folder / "o.yaml", ODD_OBJECTS)
        k.write_text("resources: [o.yaml]\n")
    elif kind == "sync-outside":
        write(folder / "app.yaml", application("out", f"../../{name}"))
        k.write_text("resources: [app.yaml]\n")


def damage_cache(cache: Path, how: str) -> None:
    stored = entries(cache)
    for number, path in enumerate(stored):
        if how == "forged":
            path.write_text('{"error": null, "objects": 1}')
        elif how == "garbage":
            path.write_bytes(os.urandom(64))
        elif how == "swap" and len(stored) > 1:
            path.write_bytes(stored[(number + 1) % len(stored)].read_bytes())
        elif how == "truncate":
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        elif how == "empty":
            path.write_text("{}")


@settings(
    max_examples=10,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found: no shrinking
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.tuples(KINDS, NAMES), min_size=1, max_size=6, unique=True),
    DAMAGE,
)
def test_random_trees_never_crash_leak_or_hide_a_problem(
    tmp_path_factory: pytest.TempPathFactory, tree: list[Builder], damage: str
) -> None:
    base = tmp_path_factory.mktemp("fuzz")
    root, cache, outside = base / "tree", base / "cache", base / "outside"
    good_folder(base, "outside")
    write(root / "known" / "cm.yaml", config_map("known", "{k: 5}"))
    write(root / "known" / "kustomization.yaml", "resources: [cm.yaml]\n")
    known = "known: ConfigMap/known: data.k: 5 is not of type 'string', 'null'"
    with Server() as server:
        for kind, name in tree:
            build_entry(root, kind, name, server, outside)
        options = Options([str(SCHEMAS)], "1.33", ignore_missing_schemas=True, cache_folder=cache)
        first = [str(p) for p in validate_tree(root, options).problems]
        damage_cache(cache, damage)
        second = [str(p) for p in validate_tree(root, options).problems]
        cold = [str(p) for p in validate_tree(root, replace(options, cache_folder=None)).problems]
        assert server.requests == []
    assert known in cold
    assert first == second == cold
    for kind, name in tree:
        if kind in ("remote", "fifo", "bomb", "deep"):
            assert any(line.startswith(f"{kind}-{name}/kustomization.yaml: ") for line in cold), (
                kind
            )


# `diff` reads the config at a git revision within the config limits.


def git(repo: Path, *arguments: str) -> None:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run(
        ["git", "-C", str(repo), *identity, "-c", "commit.gpgsign=false", *arguments],
        capture_output=True,
        check=True,
    )


def test_diff_refuses_a_config_at_a_revision_over_the_size_limit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    config = repo / "mlgitops.yaml"
    config.write_text(SEEDS.read_text() + ("# padding\n" * (17 * MIB // 10)))
    git(repo, "add", "mlgitops.yaml")
    git(repo, "commit", "-q", "-m", "huge")
    config.write_text(SEEDS.read_text())
    result = CliRunner().invoke(main, ["diff", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "HEAD:mlgitops.yaml:1:1: the file is larger than 16 MiB, the most a config may be\n"
    )


def test_diff_reads_a_blob_through_a_bounded_stream(tmp_path: Path) -> None:
    """Even if git says a blob is small, no more than the limit is held."""
    import generator.diff as diff

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "big").write_bytes(b"#" * (diff.MAX_CONFIG_BYTES + 10))
    git(repo, "add", "big")
    git(repo, "commit", "-q", "-m", "big")
    with pytest.raises(diff.ConfigError, match="larger than 16 MiB"):
        diff._read_blob(repo, "HEAD:big", "HEAD:big", "big", "HEAD")
