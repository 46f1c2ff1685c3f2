"""`vik-tui explain ID [WORKFLOW]`: why an issue is or is not running, from the running
supervisor, else computed from the workflow, its files and one pull of the tracker."""

from __future__ import annotations

import argparse

from vik_tui.cli.common import DEFAULT_WORKFLOW, load_or_report


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vik-tui explain",
        description="Say why an issue is or is not running: asks the running supervisor, or, with none"
        " running, answers from the workflow, its files and one pull of the tracker.",
    )
    parser.add_argument("issue", help="the issue id, as the tracker prints it")
    parser.add_argument("workflow", nargs="?", default=DEFAULT_WORKFLOW)
    parser.add_argument("--json", action="store_true", help='print {"issue_id", "code", "words", "stage"}')
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return explain(args.issue, args.workflow, args.json)


def explain(issue_id: str, workflow_path: str, as_json: bool) -> int:
    """`explain ID`: the running supervisor's answer, else one computed from files and one pull."""
    import asyncio
    import json

    from vik_tui.api.ask import NotServing, ask
    from vik_tui.api.routes import url_for
    from vik_tui.engine.explain import explain
    from vik_tui.engine.offline import offline_view
    from vik_tui.engine.service.paths import Layout
    from vik_tui.engine.view import ExplainCode

    result, code = load_or_report(workflow_path, quiet=True)
    if result is None or result.workflow is None:
        return code
    layout = Layout.for_workflow(result.workflow, result.path)
    source = "the running supervisor"
    try:
        status, body = ask(layout.api_socket, "GET", url_for("explain", issue_id=issue_id))
    except NotServing:
        view, error = asyncio.run(offline_view(result.workflow, result.path))
        said = explain(view, issue_id)
        body = {"issue_id": said.issue_id, "code": str(said.code), "words": said.words, "stage": said.stage}
        status = 404 if said.code == ExplainCode.UNKNOWN else 200
        source = "no supervisor is running; from the workflow and one pull" + (
            f" (it failed: {error})" if error else ""
        )
    if isinstance(body, dict) and "error" in body:
        body = {"issue_id": issue_id, "code": "unknown", "words": body["error"].get("message", ""), "stage": None}
    if as_json:
        print(json.dumps({**body, "source": source}))
    else:
        print(f"{issue_id}: {body['words']}  [{body['code']}]")
        print(f"  ({source})")
    return 0 if status < 400 else 1
