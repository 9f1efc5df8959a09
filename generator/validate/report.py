"""A validation report as text (one line per problem), JSON, or JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict

from generator.validate import Report
from generator.validate.policies import RULES


def as_text(report: Report) -> str:
    lines = [str(problem) for problem in report.problems]
    lines += [f"{w.path}: {w.object}: [{w.rule}] waived: {w.reason}" for w in report.waivers]
    return "\n".join(lines) + ("\n" if lines else "")


def as_json(report: Report) -> str:
    document = {
        "builds": report.builds,
        "objects": report.objects,
        "problems": [
            {
                "path": p.path,
                "object": p.object,
                "field": p.field,
                "rule": p.rule,
                "message": p.message,
            }
            for p in report.problems
        ],
        "waivers": [
            {"path": w.path, "object": w.object, "rule": w.rule, "reason": w.reason}
            for w in report.waivers
        ],
        "rules": {rule.id: rule.explanation for rule in RULES.values()},
        "clusters": {
            cluster: [
                {
                    "path": landing.path,
                    "workload": landing.workload,
                    "namespace": landing.namespace,
                    "pods": landing.pod_set,
                    "count": landing.pods,
                    "nodeGroup": landing.node_group,
                    "flavor": landing.flavor,
                    "whyNot": landing.why_not,
                }
                for landing in landings
            ]
            for cluster, landings in sorted(report.landings.items())
        },
    }
    return json.dumps(document, indent=2) + "\n"


def as_junit(report: Report) -> str:
    """One test case per build path; its failures are that path's problems."""
    by_path: dict[str, list[str]] = defaultdict(list)
    for problem in report.problems:
        by_path[problem.path].append(str(problem))
    suite = ET.Element(
        "testsuite",
        name="mlgitops validate",
        tests=str(max(report.builds, len(by_path))),
        failures=str(len(by_path)),
    )
    for path, lines in sorted(by_path.items()):
        case = ET.SubElement(suite, "testcase", classname="mlgitops.validate", name=path)
        failure = ET.SubElement(case, "failure", message=f"{len(lines)} problem(s)")
        failure.text = "\n".join(lines)
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode") + "\n"


FORMATS = {"text": as_text, "json": as_json, "junit": as_junit}
