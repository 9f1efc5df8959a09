"""`--engine kubeconform`: the same builds and policies, with schemas checked by a
kubeconform binary on PATH against the same schema locations."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from generator.errors import UsageError
from generator.validate import Options, Problem, Progress, Report, schema_sources, validate_tree


def _template(location: str) -> str:
    """kubeconform reads templates; a folder becomes the template of its layout."""
    if "{{" in location:
        return location
    if location == schema_sources.PINNED:  # kubeconform reads folders: download them all
        try:
            location = str(schema_sources.download_all())
        except schema_sources.DownloadError as error:
            raise UsageError(f"{error}; offline, give --schema-location") from None
    layout = "{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    return f"{location.rstrip('/')}/{layout}"


def validate_with_kubeconform(root: Path, options: Options, progress: Progress | None) -> Report:
    binary = shutil.which("kubeconform")
    if binary is None:
        raise UsageError("--engine kubeconform needs a kubeconform binary on PATH")
    # Policies and builds as usual, schemas left to kubeconform.
    report = validate_tree(
        root,
        Options(
            [],
            options.kubernetes_version,
            options.cluster_versions,
            True,
            options.repo_url,
            options.jobs,
            options.cache_folder,
            clusters=options.clusters,
        ),
        progress,
    )
    from generator.validate.inputs import InputGraph
    from generator.validate.kustomize import build, entry_points, kustomize_command

    command = [
        binary,
        "-strict",
        "-output",
        "json",
        "-kubernetes-version",
        f"{options.kubernetes_version}.0",
        "-schema-location",
        "default",
    ]
    for location in options.schema_locations:
        command += ["-schema-location", _template(location)]
    if options.ignore_missing_schemas:
        command.append("-ignore-missing-schemas")
    kustomize = kustomize_command()
    graph = InputGraph()
    for folder in entry_points(root):
        if graph.refusals(folder):
            continue  # refused inputs: already reported, never handed to kustomize
        result = build(kustomize, folder)
        if result.error:
            continue  # already reported
        stream = "\n---\n".join(result.documents)
        run = subprocess.run(command, input=stream, capture_output=True, text=True, check=False)
        relative = folder.relative_to(root).as_posix()
        for resource in json.loads(run.stdout or "{}").get("resources") or []:
            if resource.get("status") in ("statusInvalid", "statusError"):
                name = f"{resource.get('kind')}/{resource.get('name')}"
                report.problems.append(Problem(relative, name, "", str(resource.get("msg"))))
    return report
