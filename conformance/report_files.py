"""The JSON result and the self-contained HTML report.

The JSON holds, per scenario and data plane, the outcome and every step's
observation and failures, plus the differences between data planes and the
rules that were applied (ignored headers, statistical tolerance). The HTML
shows the table and, for every run that is not a pass, the unmet
expectations with the observation, and a side-by-side diff of every
observation that differs between data planes. It needs no other file.
"""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from conformance import observe, stats
from conformance.report_text import columns
from conformance.results import BAD, ScenarioResult

RULES = {
    "dropped_headers": sorted(observe.DROPPED_HEADERS),
    "masked_headers": [
        *sorted(observe.VOLATILE_HEADERS),
        "content-length (echo replies)",
        f"{observe.XFCC} fields {', '.join(sorted(observe.XFCC_MASKED))}",
    ],
    "tolerance": {
        "test": "Pearson chi-square (goodness of fit to expected weights; "
        "homogeneity between data planes)",
        "alpha": stats.ALPHA,
        "min_expected_count": stats.MIN_EXPECTED,
    },
}


def to_json(
    results: Sequence[ScenarioResult], dataplanes: Sequence[str], xds_modes: Sequence[str]
) -> dict[str, Any]:
    return {
        "dataplanes": list(dataplanes),
        "xds": list(xds_modes),
        "passed": all(run.outcome not in BAD for r in results for run in r.runs.values()),
        "rules": RULES,
        "scenarios": [
            {
                "name": r.name,
                "description": r.description,
                "outcomes": {dp: run.outcome for dp, run in r.runs.items()},
                "runs": {dp: asdict(run) for dp, run in r.runs.items()},
                "differences": [asdict(d) for d in r.differences],
            }
            for r in results
        ],
    }


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
.pass { background: #dfd; } .fail, .error, .differs { background: #fdd; }
.skip { background: #eee; } .expected-differs { background: #ffd; }
pre { background: #f6f6f6; padding: 6px; overflow-x: auto; font-size: 12px; }
table.diff { font-family: monospace; font-size: 12px; }
.diff_add { background: #aaffaa; } .diff_chg { background: #ffff77; }
.diff_sub { background: #ffaaaa; }
.diff_header { background: #e0e0e0; } .diff_next { display: none; }
h2 { margin-top: 2em; }
"""


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True).splitlines()


def to_html(results: Sequence[ScenarioResult], dataplanes: Sequence[str]) -> str:
    esc = html.escape
    dataplanes = columns(results, dataplanes)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>xdsmesh conformance</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>xdsmesh conformance</h1>",
        "<table><tr><th>scenario</th>",
        *(f"<th>{esc(dp)}</th>" for dp in dataplanes),
        "</tr>",
    ]
    for r in results:
        parts.append(f"<tr><td><a href='#{esc(r.name)}'>{esc(r.name)}</a></td>")
        for dp in dataplanes:
            outcome = r.runs[dp].outcome if dp in r.runs else ""
            parts.append(f"<td class='{esc(outcome)}'>{esc(outcome)}</td>")
        parts.append("</tr>")
    parts.append("</table>")
    parts.append(
        f"<p>Ignored response headers: {esc(', '.join(RULES['dropped_headers']))}; "
        f"values masked: {esc(', '.join(RULES['masked_headers']))}. Distributions: "
        f"Pearson chi-square at alpha {stats.ALPHA:g}.</p>"
    )
    differ = difflib.HtmlDiff(wrapcolumn=80)
    for r in results:
        bad = [run for run in r.runs.values() if run.outcome in BAD or run.note]
        if not bad and not r.differences:
            continue
        parts.append(f"<h2 id='{esc(r.name)}'>{esc(r.name)}</h2><p>{esc(r.description)}</p>")
        for run in bad:
            parts.append(f"<h3>{esc(run.dataplane)}: {esc(run.outcome)}</h3>")
            if run.note:
                parts.append(f"<p>{esc(run.note)}</p>")
            if run.error:
                parts.append(f"<pre>{esc(run.error)}</pre>")
            for step in run.steps:
                if step.failures:
                    items = "".join(f"<li>{esc(f)}</li>" for f in step.failures)
                    parts.append(
                        f"<h4>step {esc(step.id)} ({esc(step.label)})</h4><ul>{items}</ul>"
                    )
                    parts.append(f"<pre>{esc(chr(10).join(_pretty(step.observation)))}</pre>")
            for name, log in run.logs.items():
                parts.append(
                    f"<details><summary>log of {esc(name)}</summary><pre>{esc(log)}</pre></details>"
                )
        for d in r.differences:
            left, right = d.dataplanes
            parts.append(
                f"<h4>step {esc(d.step)} ({esc(d.label)}): {esc(left)} vs {esc(right)}</h4>"
            )
            parts.append(f"<p>{esc(d.detail)}</p>")
            parts.append(differ.make_table(_pretty(d.left), _pretty(d.right), left, right))
    parts.append("</body></html>")
    return "\n".join(parts)
