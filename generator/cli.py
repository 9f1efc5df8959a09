"""The command line. The only place that prints errors and picks exit codes:
0 ok, 1 out of date or invalid output, 2 invalid config or usage, 3 refused to
overwrite a file a person edited. Heavy modules are imported inside the commands so
that `mlgitops --help` starts at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from generator import __version__

if TYPE_CHECKING:
    from collections.abc import Callable

    from generator.config.model import Config
    from generator.starter import Answers
    from generator.validate import Options
    from generator.write import Change

CONFIG_NAME = "mlgitops.yaml"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Reports mlgitops errors as one message and their exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from generator.errors import ConfigError, MlgitopsError

        try:
            return super().invoke(ctx)
        except MlgitopsError as error:
            if ctx.meta.get("debug"):
                raise
            message = str(error)
            # A config's problems are FILE:LINE:COL lines, as compilers print them; every
            # other message says it is mlgitops's.
            if not isinstance(error, ConfigError) and not message.startswith("mlgitops:"):
                message = f"mlgitops: {message}"
            click.echo(message, err=True)
            ctx.exit(error.exit_code)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its whole first sentence, not cut at the terminal's width."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=300)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="mlgitops")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Generate and check a GitOps repository for distributed ML training on Kubernetes.

    \b
    Examples:
      mlgitops init --cloud eks --cloud local     # a commented starter mlgitops.yaml
      mlgitops generate                           # ./mlgitops.yaml -> base/ overlays/ clusters/
      mlgitops generate --check                   # exit 1 when the tree is out of date
      mlgitops validate                           # real builds, strict schemas, cluster model
      mlgitops diff --against origin/main         # what each cluster would get differently

    \b
    Exit codes: 0 ok; 1 out of date, or problems found; 2 invalid config or usage;
    3 refused to overwrite a file a person edited.
    """
    ctx.meta["debug"] = debug


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help=f"Config file (default: ./{CONFIG_NAME}, else the built-in default).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Root of the tree to write.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the tree is out of date.")
@click.option("--dry-run", is_flag=True, help="Print what would change per file; write nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--force", is_flag=True, help="Overwrite generated files that were edited by hand.")
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="With --check or --dry-run: JSON on stdout, for scripts (every file, with what a "
    "run would do to it).",
)
def generate(
    config_path: Path | None,
    out_dir: Path,
    check: bool,
    dry_run: bool,
    show_diff: bool,
    force: bool,
    output: str,
) -> None:
    """Render the config into base/ (and the rest of the tree) under --out.

    \b
    Examples:
      mlgitops generate                          # ./mlgitops.yaml into ./
      mlgitops generate --config fleet.yaml --out ../fleet-gitops
      mlgitops generate --check                  # CI: exit 1 when the tree is stale
      mlgitops generate --dry-run --output json  # what would change, for scripts
    """
    from generator import write
    from generator.layout import layout
    from generator.render import render
    from generator.render.entrypoints import warnings

    _check_modes(check, dry_run, show_diff, force, output)
    config, config_file = _load(config_path, out_dir)
    record = write.config_record(out_dir, config_file)
    units = render(config)
    rendered = layout(units)
    tree = rendered.files
    if check or dry_run or show_diff:
        changes = write.plan(out_dir, tree, rendered.seeds)
        changes = [*changes, write.plan_state(out_dir, tree, record)]
        if output == "json":
            _report_json(out_dir, changes, check)
        elif check:
            _report_check(out_dir, changes)
        else:
            _report_plan(out_dir, changes, show_diff)
        return
    with write.locked(out_dir, waiting=_say_waiting):
        problem = write.state_problem(out_dir)
        if problem:
            click.echo(
                f"mlgitops: warning: {problem}: every file that differs from what mlgitops "
                "would write is treated as edited by hand",
                err=True,
            )
        changes = write.plan(out_dir, tree, rendered.seeds)
        if not problem and not write.has_record(out_dir) and _holds_existing(changes):
            click.echo(
                f"mlgitops: warning: {out_dir} has no {write.STATE_FILE} (mlgitops's record of "
                "the files it wrote): every file already there that differs from what "
                "mlgitops would write is treated as edited by hand",
                err=True,
            )
        write.apply(out_dir, changes, tree, force, record)
    _summarise(out_dir, changes, force)
    for warning in [*warnings(config), *placement_warnings(config, units, out_dir, rendered.seeds)]:
        click.echo(f"mlgitops: warning: {warning}", err=True)


def placement_warnings(
    config: Config, units: list[Any], out_dir: Path, seeds: dict[str, bytes]
) -> list[str]:
    """What the cluster model finds in the tree as rendered: problems the config rules
    cannot see alone. People's own patches are not part of it (`validate` builds them)."""
    from generator.cluster.rendered import verdicts
    from generator.render.objects import Unit

    by_folder = {u.folder: u for u in units if isinstance(u, Unit)}
    found = [
        f"{f.path}: {f.object}: {f.field}: [{f.rule}] {f.message}"
        for verdict in verdicts(config, by_folder)
        for f in verdict.findings
    ]
    customised = [
        u.folder
        for u in by_folder.values()
        if u.seed and _holds_more_than_its_seed(out_dir, u.folder, seeds)
    ]
    if customised:
        found.append(
            f"{', '.join(customised)} hold your own changes, which this check does not see: "
            "`mlgitops validate` builds them"
        )
    return found


def _holds_more_than_its_seed(out_dir: Path, folder: str, seeds: dict[str, bytes]) -> bool:
    """A custom/ Component that is no longer what mlgitops first wrote."""
    try:
        files = sorted(p.name for p in (out_dir / folder).iterdir())
        seed = seeds.get(f"{folder}/kustomization.yaml")
        written = (out_dir / folder / "kustomization.yaml").read_bytes()
    except OSError:
        return False
    return files != ["kustomization.yaml"] or (seed is not None and written != seed)


def _check_modes(check: bool, dry_run: bool, show_diff: bool, force: bool, output: str) -> None:
    """One mode per run: options that would be silently reinterpreted are usage errors."""
    modes = [
        name
        for name, on in (("--check", check), ("--dry-run", dry_run), ("--diff", show_diff))
        if on
    ]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} are different modes: choose one")
    if force and modes:
        raise click.UsageError(f"--force writes; {modes[0]} writes nothing: choose one")
    if output == "json" and not (check or dry_run):
        raise click.UsageError("--output json reports --check or --dry-run: add one of them")


def _holds_existing(changes: list[Change]) -> bool:
    from generator.write import Action

    return any(c.action in (Action.CONFLICT, Action.UNCHANGED) for c in changes)


def _say_waiting(holder: str) -> None:
    click.echo(
        f"mlgitops: {holder} is writing this tree; waiting for it to finish (up to 30 s)",
        err=True,
    )


def _load(config_path: Path | None, out_dir: Path) -> tuple[Config, Path | None]:
    """The config to generate from, and its file (None: the built-in default). Without
    --config: the one the tree's state file says wrote it, else ./mlgitops.yaml, else the
    built-in default, but never that over a tree another config wrote."""
    from generator import write
    from generator.config.load import load_config_file, load_default_config
    from generator.errors import UsageError

    if config_path is not None:
        return load_config_file(config_path), config_path
    recorded = write.recorded_config(out_dir)
    if recorded is not None and "path" in recorded:
        recorded_file = out_dir / str(recorded["path"])
        if not recorded_file.is_file():
            raise UsageError(
                f"mlgitops: {out_dir} was generated from {recorded_file}, which is not there: "
                "give the config with --config"
            )
        if not Path(CONFIG_NAME).is_file() or not recorded_file.samefile(CONFIG_NAME):
            click.echo(f"mlgitops: using {recorded_file}, which generated {out_dir}", err=True)
        return load_config_file(recorded_file), recorded_file
    if recorded is not None and "outside" in recorded:
        raise UsageError(
            f"mlgitops: {out_dir} was generated from a config outside it "
            f"({recorded['outside']}): give it with --config"
        )
    if Path(CONFIG_NAME).exists():
        return load_config_file(Path(CONFIG_NAME)), Path(CONFIG_NAME)
    if recorded is None and write.has_record(out_dir):
        raise UsageError(
            f"mlgitops: no ./{CONFIG_NAME}, and {out_dir} holds a tree mlgitops generated from "
            "a config it did not record: give that config with --config (the built-in "
            "default is never put over another config's tree)"
        )
    click.echo(f"mlgitops: no ./{CONFIG_NAME}: using the built-in default config", err=True)
    return load_default_config(), None


def _count(changes: list[Change]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action.value] = counts.get(change.action.value, 0) + 1
    return counts


def _summarise(out_dir: Path, changes: list[Change], force: bool) -> None:
    from generator.write import Action

    counts = _count(changes)
    parts = [
        f"{counts.get('create', 0)} created",
        f"{counts.get('update', 0) + (counts.get('conflict', 0) if force else 0)} changed",
        f"{counts.get('delete', 0)} deleted",
        f"{counts.get('unchanged', 0)} unchanged",
    ]
    click.echo(f"mlgitops: {out_dir}: {', '.join(parts)}", err=True)
    for change in changes:
        if change.action is Action.FORGET:
            click.echo(
                f"mlgitops: {change.path} is no longer generated but was edited by hand: "
                "left in place",
                err=True,
            )


def _report_plan(out_dir: Path, changes: list[Change], show_diff: bool) -> None:
    """What a run would do: each file it would touch (or its diff), then a summary."""
    from generator.write import Action, unified_diff

    for change in changes:
        if show_diff:
            text = unified_diff(change)
            if text:
                click.echo(text, nl=False)
        elif change.action is not Action.UNCHANGED:
            click.echo(f"{change.action.value:9} {change.path}")
    counts = _count(changes)
    parts = [
        f"{counts.get(action, 0)} {word}"
        for action, word in (
            ("create", "to create"),
            ("update", "to change"),
            ("delete", "to delete"),
            ("conflict", "edited by hand (kept unless --force)"),
            ("keep", "no longer generated but edited (left in place)"),
            ("unchanged", "unchanged"),
        )
        if counts.get(action) or action in ("create", "update", "delete", "unchanged")
    ]
    click.echo(f"mlgitops: {out_dir}: {', '.join(parts)}; nothing written", err=True)


def _report_json(out_dir: Path, changes: list[Change], check: bool) -> None:
    """Every file with what a run would do to it; with --check, exit 1 when stale."""
    import json

    from generator.write import Action

    stale = [c for c in changes if c.action not in (Action.UNCHANGED, Action.FORGET)]
    report = {
        "root": str(out_dir),
        "upToDate": not stale,
        "files": [{"path": c.path, "action": c.action.value} for c in changes],
    }
    click.echo(json.dumps(report, indent=2))
    if check and stale:
        sys.exit(1)


def _report_check(out_dir: Path, changes: list[Change]) -> None:
    from generator.write import Action

    stale = [c for c in changes if c.action not in (Action.UNCHANGED, Action.FORGET)]
    for change in stale:
        click.echo(f"{change.action.value:9} {change.path}", err=True)
    edited = [c for c in stale if c.action is Action.CONFLICT]
    if edited:
        click.echo(
            f"mlgitops: {out_dir} is out of date: {len(stale)} file(s) differ, "
            f"{len(edited)} of them edited by hand: move those changes into the config or "
            "a custom/ folder and revert the files, or run `mlgitops generate --force` to "
            "overwrite them",
            err=True,
        )
        sys.exit(1)
    if stale:
        click.echo(
            f"mlgitops: {out_dir} is out of date: {len(stale)} file(s) differ; "
            "run `mlgitops generate`",
            err=True,
        )
        sys.exit(1)
    click.echo(f"mlgitops: {out_dir} is up to date", err=True)


@main.command()
@click.option(
    "--cloud",
    "clouds",
    multiple=True,
    type=click.Choice(["eks", "gke", "local"]),
    help="A cluster on this cloud (repeat for several; default: local).",
)
@click.option("--gitops", type=click.Choice(["argocd", "flux"]), help="The sync engine.")
@click.option("--name", help="The platform's name: prefix for names and labels.")
@click.option("--repo-url", help="The Git repository the generated tree is pushed to.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=CONFIG_NAME,
    show_default=True,
    help="Where to write the config.",
)
def init(
    clouds: tuple[str, ...],
    gitops: str | None,
    name: str | None,
    repo_url: str | None,
    config_path: Path,
) -> None:
    """Write a commented starter mlgitops.yaml, and its JSON Schema beside it.

    Asks for the answers when run in a terminal without options; otherwise takes the
    options, and the defaults for the rest. Never overwrites an existing config.

    \b
    Examples:
      mlgitops init
      mlgitops init --cloud eks --cloud local --gitops flux --name vision
    """
    import json

    from generator.config.load import load_config_text
    from generator.config.schema import SCHEMA_FILE, config_schema
    from generator.errors import UsageError
    from generator.starter import Answers, starter_config

    if config_path.exists():
        raise UsageError(f"{config_path}: already exists; mlgitops init never overwrites a config")
    defaults = Answers()
    if not (clouds or gitops or name or repo_url) and _in_a_terminal():
        answers = _ask(defaults, str(config_path))
    else:
        answers = Answers(
            name=name or defaults.name,
            repo_url=repo_url or defaults.repo_url,
            clouds=clouds or defaults.clouds,
            gitops=gitops or defaults.gitops,
        )
    text = starter_config(answers)
    load_config_text(text, str(config_path))  # the answers are checked before writing
    try:
        with config_path.open("x", encoding="utf-8") as config_file:
            config_file.write(text)
    except FileExistsError:
        raise UsageError(
            f"{config_path}: already exists; mlgitops init never overwrites a config"
        ) from None
    except OSError as error:
        raise UsageError(f"{config_path}: cannot write ({error.strerror})") from None
    schema_path = config_path.parent / SCHEMA_FILE
    if not schema_path.exists():
        schema_path.write_text(json.dumps(config_schema(), indent=2) + "\n", encoding="utf-8")
    default_place = config_path.resolve() == (Path.cwd() / CONFIG_NAME).resolve()
    command = "mlgitops generate" + ("" if default_place else f" --config {config_path}")
    click.echo(
        f"mlgitops: wrote {config_path} (and {schema_path.name} for editors); "
        f"edit it, then run `{command}`",
        err=True,
    )


def _in_a_terminal() -> bool:
    return sys.stdin.isatty()


def _ask(defaults: Answers, file: str) -> Answers:
    """The starter's answers, asked one by one in the terminal. Each answer is checked
    as it is given (the starter it makes is loaded), and a wrong one is asked again
    there, so no answer is lost."""
    from dataclasses import replace

    from generator.starter import CLOUDS, ENGINES

    answers = defaults
    questions: list[tuple[str, str, Callable[[str], Any], Callable[[Any], str]]] = [
        ("name", "Platform name (prefix for names and labels)", str, str),
        ("repo_url", "Git repository the tree is pushed to", str, str),
        (
            "clouds",
            f"Clouds, comma-separated ({', '.join(CLOUDS)})",
            lambda text: _clouds(text, CLOUDS),
            ",".join,
        ),
        ("gitops", f"Sync engine ({', '.join(ENGINES)})", lambda t: _engine(t, ENGINES), str),
    ]
    for field, question, parse, show in questions:

        def checked(
            text: str,
            field: str = field,
            parse: Callable[[str], Any] = parse,
            so_far: Answers = answers,
        ) -> Any:
            value = parse(text.strip())
            _check_answers(replace(so_far, **{field: value}), file)
            return value

        value = click.prompt(question, default=show(getattr(answers, field)), value_proc=checked)
        answers = replace(answers, **{field: value})
    return answers


def _check_answers(answers: Answers, file: str) -> None:
    """Refuse answers whose starter config would be invalid, with its messages."""
    from generator.config.load import load_config_text
    from generator.errors import ConfigError
    from generator.starter import starter_config

    try:
        load_config_text(starter_config(answers), file)
    except ConfigError as error:
        raise click.BadParameter(
            "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in error.problems)
        ) from None


def _engine(text: str, known: tuple[str, ...]) -> str:
    if text not in known:
        raise click.BadParameter(f"choose from {', '.join(known)}")
    return text


def _clouds(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [cloud for cloud in chosen if cloud not in known]
    if unknown or not chosen:
        raise click.BadParameter(f"choose from {', '.join(known)}")
    return chosen


@main.command()
def schema() -> None:
    """Print the JSON Schema of mlgitops.yaml, for editors and other tools.

    \b
    Examples:
      mlgitops schema > mlgitops.schema.json
      # then, as the first line of mlgitops.yaml:
      # yaml-language-server: $schema=mlgitops.schema.json
    """
    import json

    from generator.config.schema import config_schema

    click.echo(json.dumps(config_schema(), indent=2))


@main.command()
@click.option(
    "--against",
    "revision",
    metavar="REV",
    default="HEAD",
    show_default=True,
    help="The git revision whose config is compared with the working tree's.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=CONFIG_NAME,
    show_default=True,
    help="The config in the working tree; the same file is read at the revision.",
)
@click.option(
    "--output",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
def diff(revision: str, config_path: Path, output_format: str) -> None:
    """Show what each cluster would get differently if the working tree's config
    replaced the one at a git revision: objects added, removed and changed, with the
    fields that change (the real kustomize build of every synced path, both sides).
    Exit 0 when nothing differs, 1 when something does, 2 on a usage error.

    \b
    Examples:
      mlgitops diff
      mlgitops diff --against origin/main
      mlgitops diff --against HEAD~3 --output json | jq '.targets[].name'
    """
    import os

    from generator.diff import (
        config_at_revision,
        diff_rendered,
        format_json,
        format_text,
        render_config,
        render_file,
        summary,
        use_color,
    )

    new = render_file(config_path)
    old = render_config(*config_at_revision(config_path, revision))
    difference = diff_rendered(old, new)
    if output_format == "json":
        click.echo(format_json(difference), nl=False)
    else:
        color = use_color(sys.stdout, os.environ)
        click.echo(format_text(difference, color), nl=False, color=color)
    click.echo(f"mlgitops: {summary(difference)}", err=True)
    if difference.differs:
        sys.exit(1)


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Config file (default: ./{CONFIG_NAME}, else the built-in default).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid text, Graphviz DOT text, or SVG drawn by Graphviz's `dot`.",
)
def graph(config_path: Path | None, output_format: str) -> None:
    """Draw the fleet: every cluster, its sync objects (Argo CD Applications or Flux
    Kustomizations) in their order, the path each one syncs and the workloads in it.

    \b
    Examples:
      mlgitops graph > fleet.mmd
      mlgitops graph --format svg > fleet.svg
      mlgitops graph --format dot | dot -Tpng > fleet.png
    """
    from generator.graph import fleet_graph, to_dot, to_mermaid, to_svg
    from generator.render import render

    config, _ = _load(config_path, Path("."))
    picture = fleet_graph(config, render(config))
    if output_format == "mermaid":
        click.echo(to_mermaid(picture), nl=False)
    elif output_format == "dot":
        click.echo(to_dot(picture), nl=False)
    else:
        click.echo(to_svg(to_dot(picture)), nl=False)


@main.command()
@click.argument(
    "root", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
@click.option(
    "--schema-location",
    "schema_locations",
    multiple=True,
    help="Schemas for custom resources: a folder laid out {group}/{kind}_{version}.json, or a "
    "URL template with {{.Group}}, {{.ResourceKind}}, {{.ResourceAPIVersion}}. Repeatable. "
    "Default: the pinned operators' CRDs and the pinned CRDs catalog, downloaded once.",
)
@click.option(
    "--kubernetes-version",
    help="Version of the built-in schemas (default: the config's kubernetesVersion).",
)
@click.option("--ignore-missing-schemas", is_flag=True, help="Skip kinds without a schema.")
@click.option(
    "--engine",
    type=click.Choice(["builtin", "kubeconform"]),
    default="builtin",
    show_default=True,
    help="Who checks schemas: mlgitops itself, or a kubeconform binary on PATH.",
)
@click.option(
    "--output",
    "output_format",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
    help="One line per problem; a JSON report (problems, waivers, where each pod lands); "
    "or JUnit XML for CI test reports.",
)
@click.option(
    "--jobs", type=click.IntRange(min=0), default=0, help="Parallel builds (0: one per core)."
)
@click.option(
    "--cache-dir",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where results are kept between runs, keyed by the content of each build's inputs "
    "(default: $XDG_CACHE_HOME/mlgitops/validate, else ~/.cache/mlgitops/validate).",
)
@click.option("--no-cache", is_flag=True, help="Build and check everything; read and keep nothing.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The config the tree was generated from: its clusters' nodes are what the "
    "cluster model places pods on (default: ROOT/mlgitops.yaml when there is one).",
)
@click.option(
    "--cluster-model/--no-cluster-model",
    default=True,
    show_default=True,
    help="Ask what each cluster of the config would do with the tree (MLG010-MLG016, MLG024).",
)
def validate(
    root: Path,
    schema_locations: tuple[str, ...],
    kubernetes_version: str | None,
    ignore_missing_schemas: bool,
    engine: str,
    output_format: str,
    jobs: int,
    cache_dir: Path | None,
    no_cache: bool,
    config_path: Path | None,
    cluster_model: bool,
) -> None:
    """Build every kustomization under ROOT and check every object: strict schemas and
    policies, and, with the config, what each cluster would do with the tree (every pod
    placed on a node, every queued workload admitted, every claim provisioned). Exit 0
    when clean, 1 with one line per problem, 2 for a usage error (an option or a
    --schema-location that does not exist, an invalid --config). Builds whose inputs have
    not changed since a run with the same settings are not built again.

    Without --schema-location, custom resources are checked against the CRDs of the
    operator releases mlgitops pins, and the CRDs catalog at a pinned commit for the
    rest, both downloaded once into the cache (MLGITOPS_SCHEMA_LOCATION overrides them).

    \b
    Examples:
      mlgitops validate
      mlgitops validate --schema-location ../schemas      # offline
      mlgitops validate out/ --output junit > report.xml
    """
    from dataclasses import replace

    from generator.validate import validate_tree
    from generator.validate.cache import default_folder
    from generator.validate.report import FORMATS

    if not root.is_dir():
        raise click.BadParameter(f"{root} is not a folder", param_hint="ROOT")
    options = _validate_options(
        root,
        _schema_locations(schema_locations),
        kubernetes_version,
        ignore_missing_schemas,
        jobs,
        config_path,
    )
    options = replace(options, cache_folder=None if no_cache else cache_dir or default_folder())
    if not cluster_model:
        options = replace(options, clusters=())
    progress = _progress_bar() if sys.stderr.isatty() else None
    if engine == "kubeconform":
        from generator.validate.kubeconform import validate_with_kubeconform

        report = validate_with_kubeconform(root, options, progress)
    else:
        report = validate_tree(root, options, progress)
    click.echo(FORMATS[output_format](report), nl=False)
    status = "clean" if not report.problems else f"{len(report.problems)} problem(s)"
    work = (
        f"{report.kustomize_runs} kustomize runs, {report.cached} from cache, "
        f"{report.composed} composed from their parts"
    )
    click.echo(
        f"mlgitops: validated {report.builds} builds ({work}), {report.objects} objects: "
        f"{status}" + (f", {len(report.waivers)} waiver(s)" if report.waivers else ""),
        err=True,
    )
    if report.problems:
        sys.exit(1)


def _schema_locations(given: tuple[str, ...]) -> list[str]:
    """The locations given, each a folder that exists or a URL template; without any,
    the pinned operators' CRDs and the pinned CRDs catalog (schema_sources)."""
    from generator.validate.schema_sources import PINNED, default_locations

    for location in given:
        remote = "{{" in location or location.startswith(("https://", "http://"))
        if not remote and location != PINNED and not Path(location).is_dir():
            raise click.BadParameter(
                f"{location!r} is not a folder (a folder laid out "
                "{group}/{kind}_{version}.json, or a URL template)",
                param_hint="--schema-location",
            )
    return list(given) or default_locations()


def _validate_options(
    root: Path,
    locations: list[str],
    kubernetes_version: str | None,
    ignore_missing: bool,
    jobs: int,
    config_file: Path | None = None,
) -> Options:
    from generator.config.checks import kubernetes_version as check_version
    from generator.config.load import load_config_file
    from generator.validate import Options

    if kubernetes_version and check_version(kubernetes_version):
        raise click.BadParameter(
            str(check_version(kubernetes_version)), param_hint="--kubernetes-version"
        )
    config_path = config_file or _recorded_config_file(root) or root / CONFIG_NAME
    if not config_path.is_file():
        return Options(locations, kubernetes_version or "1.33", {}, ignore_missing, None, jobs)
    config = load_config_file(config_path)
    versions = {
        str(c.name): kubernetes_version or config.cluster_version(c) for c in config.clusters
    }
    return Options(
        locations,
        kubernetes_version or config.kubernetes_version,
        versions,
        ignore_missing,
        config.repo.url,
        jobs,
        clusters=config.clusters,
    )


def _recorded_config_file(root: Path) -> Path | None:
    """The config inside the tree that its state file says generated it."""
    from generator.write import recorded_config

    recorded = recorded_config(root)
    return root / str(recorded["path"]) if recorded and "path" in recorded else None


def _progress_bar() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        click.echo(f"\rmlgitops: building {done}/{total}", err=True, nl=False)
        if end:
            click.echo("", err=True)

    return show


# -- editing the config: set, add, remove ---------------------------------------------


def _edit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config, --out and --no-generate, shared by every command that edits the config."""
    command = click.option(
        "--no-generate", is_flag=True, help="Only edit the config; leave the tree as it is."
    )(command)
    command = click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help="Root of the tree regenerated after the edit (as `mlgitops generate --out`).",
    )(command)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=CONFIG_NAME,
        show_default=True,
        help="The config to edit.",
    )(command)


def _edit_config(
    ctx: click.Context,
    config_path: Path,
    out_dir: Path,
    no_generate: bool,
    make: Callable[[str, str], Any],
) -> None:
    """Edit the config in place when the result loads (nothing is written otherwise),
    then regenerate the tree as `mlgitops generate` does."""
    from generator.edit import checked, read_config, write_config

    config = read_config(config_path)
    edited = make(config.text, str(config_path))
    if edited.text == config.text:
        click.echo(f"mlgitops: {config_path}: already as asked; not changed", err=True)
    else:
        checked(edited, str(config_path), config.text)
        write_config(config, edited.text)
        for change in edited.changes:
            click.echo(f"mlgitops: {config_path}: {change}", err=True)
    if not no_generate:
        ctx.invoke(generate, config_path=config_path, out_dir=out_dir)


@main.group(name="set", cls=_Group)
def set_group() -> None:
    """Change a value in mlgitops.yaml in place, keeping its comments and layout.

    \b
    Examples:
      mlgitops set image resnet-ddp registry.example.com/ml/resnet-train:1.5.0
      mlgitops set image registry.example.com/ml/resnet-train:1.5.0
    """


@set_group.command(name="image")
@click.argument("target", metavar="WORKLOAD|[NAME=]IMAGE")
@click.argument("image", required=False)
@_edit_options
@click.pass_context
def set_image(
    ctx: click.Context,
    target: str,
    image: str | None,
    config_path: Path,
    out_dir: Path,
    no_generate: bool,
) -> None:
    """Set a workload's image, or (like `kustomize edit set image`) the image of every
    workload whose image has a name; then regenerate the tree. Only the image lines
    change; a comment after the image, such as Flux's setter marker, stays.

    With one argument, NAME=IMAGE or IMAGE: every workload whose image is named NAME
    (the name of IMAGE when NAME is left out) gets IMAGE. A NAME with a tag or digest
    matches only that exact image.

    \b
    Examples:
      mlgitops set image resnet-ddp registry.example.com/ml/resnet-train:1.5.0
      mlgitops set image registry.example.com/ml/resnet-train:1.5.0
      mlgitops set image registry.example.com/ml/resnet-train=ghcr.io/acme/resnet:1.5.0
      mlgitops set image bert-finetune registry.example.com/ml/bert:2.1.0 --no-generate
    """
    from generator.edit import set_image as edit_image

    _edit_config(
        ctx, config_path, out_dir, no_generate, lambda t, f: edit_image(t, f, target, image)
    )


@main.group(cls=_Group)
def add() -> None:
    """Add a workload or a cluster to mlgitops.yaml, keeping its comments and layout.

    \b
    Examples:
      mlgitops add workload llama-sft --framework pytorch --image ghcr.io/acme/sft:0.3.0
      mlgitops add cluster gke-eu --cloud gke --project acme-ml --location europe-west4
    """


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeated and comma-separated values, in order, once each."""
    parts = (part.strip() for value in values for part in value.split(","))
    return tuple(dict.fromkeys(part for part in parts if part))


@add.command(name="workload")
@click.argument("name")
@click.option(
    "--framework",
    type=click.Choice(["pytorch", "tensorflow"]),
    required=True,
    help="torchrun (pytorch) or TF_CONFIG (tensorflow).",
)
@click.option("--image", required=True, help="The training image, pinned by tag or digest.")
@click.option("--workers", type=int, help="Worker pods (default: 3, as `mlgitops init`).")
@click.option("--namespace", help="Namespace it runs in (default: training).")
@click.option(
    "--command",
    "command_line",
    help='The training program, split like a shell does (default: "python train.py").',
)
@click.option("--cpu", help='CPU per pod (default: "2").')
@click.option("--memory", help="Memory per pod (default: 8Gi).")
@click.option("--gpu", type=int, help="GPUs per pod (default: none).")
@click.option(
    "--runtime",
    type=click.Choice(["job", "pytorchjob", "tfjob", "jobset", "trainjob"]),
    help="How it runs (default: job, a plain Indexed Job).",
)
@click.option("--parameter-servers", type=int, help="TensorFlow parameter-server pods.")
@click.option(
    "--clusters",
    multiple=True,
    help="Clusters that run it, comma-separated or repeated (default: every cluster).",
)
@_edit_options
@click.pass_context
def add_workload(
    ctx: click.Context,
    name: str,
    framework: str,
    image: str,
    workers: int | None,
    namespace: str | None,
    command_line: str | None,
    cpu: str | None,
    memory: str | None,
    gpu: int | None,
    runtime: str | None,
    parameter_servers: int | None,
    clusters: tuple[str, ...],
    config_path: Path,
    out_dir: Path,
    no_generate: bool,
) -> None:
    """Append a workload to the config, with the starter's defaults for what is not
    given (as `mlgitops init` writes it), then regenerate the tree.

    \b
    Examples:
      mlgitops add workload llama-sft --framework pytorch --image ghcr.io/acme/sft:0.3.0
      mlgitops add workload recsys --framework tensorflow --image ghcr.io/acme/recsys:1.0 \\
          --workers 4 --parameter-servers 1 --cpu 4 --memory 16Gi --clusters eks-training
      mlgitops add workload eval --framework pytorch --image ghcr.io/acme/sft:0.3.0 \\
          --command "python eval.py --split test" --workers 1 --no-generate
    """
    import shlex

    from generator.edit import NewWorkload
    from generator.edit import add_workload as edit_add

    try:
        command = tuple(shlex.split(command_line)) if command_line is not None else ()
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--command") from None
    new = NewWorkload(
        name=name,
        framework=framework,
        image=image,
        workers=workers,
        namespace=namespace,
        command=command,
        cpu=cpu,
        memory=memory,
        gpu=gpu,
        runtime=runtime,
        parameter_servers=parameter_servers,
        clusters=_split(clusters),
    )
    _edit_config(ctx, config_path, out_dir, no_generate, lambda t, f: edit_add(t, f, new))


@add.command(name="cluster")
@click.argument("name")
@click.option(
    "--cloud", type=click.Choice(["eks", "gke", "local"]), required=True, help="Its cloud."
)
@click.option("--region", help="eks: the AWS region (required), e.g. us-west-2.")
@click.option("--account-id", help="eks: the AWS account id (Flux reaches EKS by ARN).")
@click.option("--project", help="gke: the Google Cloud project id (required).")
@click.option("--location", help="gke: region or zone (required), e.g. us-central1.")
@click.option(
    "--instance-type", help="eks: the CPU node group's instance type (default: m6i.large)."
)
@click.option("--machine-type", help="gke: the node pool's machine type (default: n1-standard-8).")
@click.option("--workers", type=int, help="local: kind worker nodes (default: 1).")
@click.option("--version", "kubernetes_version", help="Its Kubernetes version, e.g. 1.33.")
@_edit_options
@click.pass_context
def add_cluster(
    ctx: click.Context,
    name: str,
    cloud: str,
    region: str | None,
    account_id: str | None,
    project: str | None,
    location: str | None,
    instance_type: str | None,
    machine_type: str | None,
    workers: int | None,
    kubernetes_version: str | None,
    config_path: Path,
    out_dir: Path,
    no_generate: bool,
) -> None:
    """Append a cluster to the config, with the starter's node groups (EKS: a GPU group
    and a system group) or node pool (GKE: one GPU pool), as `mlgitops init` writes
    them, then regenerate the tree.

    \b
    Examples:
      mlgitops add cluster eks-east --cloud eks --region us-east-1 --instance-type m6i.2xlarge
      mlgitops add cluster gke-eu --cloud gke --project acme-ml --location europe-west4
      mlgitops add cluster laptop --cloud local --workers 2
    """
    from generator.edit import NewCluster
    from generator.edit import add_cluster as edit_add

    given = {
        option: value
        for option, value in {
            "--region": region,
            "--account-id": account_id,
            "--project": project,
            "--location": location,
            "--instance-type": instance_type,
            "--machine-type": machine_type,
            "--workers": workers,
        }.items()
        if value is not None
    }
    new = NewCluster(
        name=name,
        cloud=cloud,
        region=region,
        account_id=account_id,
        project=project,
        location=location,
        workers=workers,
        version=kubernetes_version,
        instance_type=instance_type,
        machine_type=machine_type,
        given={option: str(value) for option, value in given.items()},
    )
    _edit_config(ctx, config_path, out_dir, no_generate, lambda t, f: edit_add(t, f, new))


@main.group(cls=_Group)
def remove() -> None:
    """Remove a workload or a cluster from mlgitops.yaml, with the comments above it.

    \b
    Examples:
      mlgitops remove workload bert-finetune
      mlgitops remove cluster local --no-generate
    """


def _remove(kind: str) -> Callable[..., None]:
    @click.argument("name")
    @_edit_options
    @click.pass_context
    def command(
        ctx: click.Context, name: str, config_path: Path, out_dir: Path, no_generate: bool
    ) -> None:
        from generator.edit import remove as edit_remove

        _edit_config(
            ctx, config_path, out_dir, no_generate, lambda t, f: edit_remove(t, f, kind, name)
        )

    return command


remove.command(
    name="workload",
    help="""Remove a workload from the config, with the comments right above it, then
    regenerate the tree (its folders are deleted).

    \b
    Examples:
      mlgitops remove workload bert-finetune
      mlgitops remove workload bert-finetune --config fleet/mlgitops.yaml --out fleet
    """,
)(_remove("workload"))
remove.command(
    name="cluster",
    help="""Remove a cluster from the config, with the comments right above it, then
    regenerate the tree. A cluster that a workload names in its `clusters:` list is
    not removed: take it out of those lists first.

    \b
    Examples:
      mlgitops remove cluster local
      mlgitops remove cluster gke-training --no-generate
    """,
)(_remove("cluster"))
