"""The command line. The only place that prints errors and picks exit codes:
0 ok, 1 out of date or invalid output, 2 invalid config or usage, 3 refused to
overwrite a file a person edited. Heavy modules are imported inside the commands so
that `mlgitops --help` starts at once."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from generator import __version__

if TYPE_CHECKING:
    from generator.config.model import Config
    from generator.write import Change

CONFIG_NAME = "mlgitops.yaml"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Group(click.Group):
    """Reports mlgitops errors as one message and their exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from generator.errors import MlgitopsError

        try:
            return super().invoke(ctx)
        except MlgitopsError as error:
            if ctx.meta.get("debug"):
                raise
            click.echo(str(error), err=True)
            ctx.exit(error.exit_code)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="mlgitops")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Generate and check a GitOps repository for distributed ML training on Kubernetes."""
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
def generate(
    config_path: Path | None,
    out_dir: Path,
    check: bool,
    dry_run: bool,
    show_diff: bool,
    force: bool,
) -> None:
    """Render the config into base/ (and the rest of the tree) under --out."""
    from generator import write
    from generator.layout import layout
    from generator.render import render
    from generator.render.entrypoints import warnings

    config = _load(config_path)
    rendered = layout(render(config))
    tree = rendered.files
    if check or dry_run or show_diff:
        changes = write.plan(out_dir, tree, rendered.seeds)
        if check:
            _report_check(out_dir, [*changes, write.plan_state(out_dir, tree)])
        else:
            _report_plan(changes, show_diff)
        return
    with write.locked(out_dir):
        problem = write.state_problem(out_dir)
        if problem:
            click.echo(
                f"mlgitops: warning: {problem}: every file that differs from what mlgitops "
                "would write is treated as edited by hand",
                err=True,
            )
        changes = write.plan(out_dir, tree, rendered.seeds)
        write.apply(out_dir, changes, tree, force)
    _summarise(out_dir, changes, force)
    for warning in warnings(config):
        click.echo(f"mlgitops: warning: {warning}", err=True)


def _load(config_path: Path | None) -> Config:
    from generator.config.load import load_config_file, load_default_config

    if config_path is not None:
        return load_config_file(config_path)
    if Path(CONFIG_NAME).exists():
        return load_config_file(Path(CONFIG_NAME))
    click.echo(f"mlgitops: no ./{CONFIG_NAME}: using the built-in default config", err=True)
    return load_default_config()


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


def _report_plan(changes: list[Change], show_diff: bool) -> None:
    from generator.write import unified_diff

    for change in changes:
        if show_diff:
            text = unified_diff(change)
            if text:
                click.echo(text, nl=False)
        else:
            click.echo(f"{change.action.value:9} {change.path}")


def _report_check(out_dir: Path, changes: list[Change]) -> None:
    from generator.write import Action

    stale = [c for c in changes if c.action not in (Action.UNCHANGED, Action.FORGET)]
    for change in stale:
        click.echo(f"{change.action.value:9} {change.path}", err=True)
    if stale:
        click.echo(
            f"mlgitops: {out_dir} is out of date: {len(stale)} file(s) differ; "
            "run `mlgitops generate`",
            err=True,
        )
        sys.exit(1)
    click.echo(f"mlgitops: {out_dir} is up to date", err=True)
