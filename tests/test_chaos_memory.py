"""Issue #9, items 4, 5 and 8: hook, pull and exec() output is kept within bounds, whatever
they print; a stdout line over the limit is cut with an error record and reading goes on; a
line cut by a stop is said in the session file.

Each flood runs in a real supervisor child process, and its own peak RSS (VmHWM, sampled while
it runs: not `wait4`'s, which counts the forked test worker) must stay far below what buffering
the flood would take (issue #9 saw 2.8 GiB and 1.1 GiB), whichever tests ran before in the worker.
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chaos_helpers import HeadlessProcess, chaos_workflow, notices, records
from conftest import Project
from engine_helpers import Harness

from vik_tui.config import render_child
from vik_tui.config.render_child import RENDER_MAX_BYTES, RenderRefused, render_bounded
from vik_tui.engine.engine_events import StageFinished
from vik_tui.engine.intake import PULL_MAX_BYTES
from vik_tui.engine.stages.session import MAX_LINE_BYTES
from vik_tui.engine.stages.templates import EXEC_MAX_BYTES, TemplateError, render, render_async

RSS_CEILING_MIB = 200  # an idle supervisor is ~40 MiB; buffering one flood second is ~1 GiB


def test_the_peak_is_the_supervisors_alone(project: Project) -> None:
    """Issue #17 item 5: a test worker grown by earlier tests does not count in the peak."""
    ballast = bytearray(RSS_CEILING_MIB * 2 * 2**20)
    ballast[::4096] = b"\x01" * len(range(0, len(ballast), 4096))  # touched: resident in this worker
    sup = HeadlessProcess(project.write(chaos_workflow(project, "complete")))
    assert sup.wait() == 0, sup.stderr()
    assert len(ballast) and sup.peak_rss_mib < RSS_CEILING_MIB
    del ballast


def test_hook_printing_dev_zero_keeps_memory_bounded(project: Project) -> None:
    wf = chaos_workflow(project, "complete")
    wf["loop"]["hook_timeout_sec"] = 3
    wf["issue"]["stages"]["plan"]["hooks"] = {"before_run": "cat /dev/zero"}
    sup = HeadlessProcess(project.write(wf))
    hook = sup.wait_event("hook_finished", timeout=60)
    assert hook["timed_out"] and not hook["ok"]
    assert sup.wait() == 0, sup.stderr()
    assert sup.peak_rss_mib < RSS_CEILING_MIB


def test_pull_spewing_stderr_keeps_memory_bounded(project: Project) -> None:
    wf = chaos_workflow(project, "complete")
    wf["loop"]["pull_timeout_sec"] = 3
    wf["issues"]["pull"]["command"] = "cat /dev/zero >&2"
    sup = HeadlessProcess(project.write(wf))
    failed = sup.wait_event("intake_failed", timeout=60)
    assert "timed out" in failed["error"]
    assert sup.wait() == 0, sup.stderr()
    assert sup.peak_rss_mib < RSS_CEILING_MIB


def test_pull_output_over_the_limit_is_an_intake_failure(project: Project) -> None:
    wf = chaos_workflow(project, "complete")
    wf["issues"]["pull"]["command"] = f"head -c {PULL_MAX_BYTES + 1} /dev/zero; sleep 3600"
    sup = HeadlessProcess(project.write(wf))
    failed = sup.wait_event("intake_failed", timeout=60)
    assert "printed more than 64 MiB" in failed["error"], failed
    assert sup.wait() == 0, sup.stderr()
    assert sup.peak_rss_mib < RSS_CEILING_MIB + 64


def test_exec_output_over_the_limit_fails_the_render(project: Project, tmp_path: Path) -> None:
    wf = chaos_workflow(project, "complete")
    prompt = f"Context: `exec(head -c {EXEC_MAX_BYTES + 1} /dev/zero | tr '\\\\0' x)`"
    wf["issue"]["stages"]["plan"]["prompt"] = prompt
    sup = HeadlessProcess(project.write(wf))
    finished = sup.wait_event("stage_finished", timeout=60)
    assert finished["state"] == "failed"
    assert "printed more than 4 MiB" in finished["reason"], finished
    assert sup.wait() == 0, sup.stderr()


async def test_a_line_over_the_limit_is_cut_and_reading_goes_on(project: Project) -> None:
    wf = chaos_workflow(project, "long_line", mib=MAX_LINE_BYTES / 2**20 + 1)
    h = Harness(project.write(wf)).start()
    finished = await h.wait_event(StageFinished, timeout=120)
    assert finished.state == "completed", finished.reason  # the lines after it were read
    found = records(Path(finished.session_file or ""))
    cut = [r for r in notices(found) if "output line cut" in r["detail"]]
    assert len(cut) == 1 and f"{MAX_LINE_BYTES // 2**20} MiB limit" in cut[0]["detail"]
    assert any(r.get("text") == "after the long line" for r in found)
    await h.finish()


async def test_a_line_cut_by_a_stop_is_said_in_the_session_file(project: Project) -> None:
    """The agent prints 1 MiB of a line and falls silent: the stall stop must not lose it quietly."""
    wf = chaos_workflow(project, "partial_hang", mib=1)
    wf["loop"]["stall_timeout_sec"] = 1
    h = Harness(project.write(wf)).start()
    finished = await h.wait_event(StageFinished)
    assert finished.state == "failed" and "stalled" in (finished.reason or "")
    found = records(Path(finished.session_file or ""))
    said = ("ended in the middle of a line", "undecodable output line skipped (Unterminated string")
    assert any(r["detail"].startswith(said) for r in notices(found)), found[-2:]
    await h.finish()


# Issue #18 item 14: fuel bounds a template's steps, not its memory; this one is 300 steps of
# 1 MB each and took the supervisor to 610 MiB RSS (a thousand times more was OOM-killed)
TEMPLATE_BOMB = '{% for i in range(300) %}{{ "abcdefghij" * 100000 }}{% endfor %}'


def test_a_template_bomb_fails_the_stage_and_keeps_the_supervisor_small(project: Project) -> None:
    wf = chaos_workflow(project, "complete")
    wf["issue"]["stages"]["plan"]["prompt"] = TEMPLATE_BOMB
    sup = HeadlessProcess(project.write(wf))
    finished = sup.wait_event("stage_finished", timeout=60)
    assert finished["state"] == "failed", finished
    assert "prompt render failed: stage plan prompt: template ran out of memory (over 256 MiB)" in finished["reason"], (
        finished
    )
    assert sup.wait() == 0, sup.stderr()
    assert sup.peak_rss_mib < RSS_CEILING_MIB


def test_a_render_over_the_size_limit_is_refused() -> None:
    context = {"issue": {"id": "X-1"}, "env": {}, "workflow_path": "/w", "workflow_dir": "/", "workspace_root": "/"}
    with pytest.raises(TemplateError, match=r"hook before_run: template rendered 19\.1 MiB, over the 16 MiB limit"):
        render('{{ "x" * 20000000 }}', context, "hook before_run")
    big = {**context, "issue": {"id": "X-1", "description": "y" * (RENDER_MAX_BYTES + 1)}}
    with pytest.raises(TemplateError, match="over the 16 MiB limit"):  # plain, rendered in the process
        render("{{ issue.description }}", big, "prompt")
    assert render('{% if true %}{{ "x" * 3 }}{% endif %} {{ issue.id }}', context) == "xxx X-1"


async def test_a_render_in_its_child_leaves_the_event_loop_running() -> None:
    """A template that is more than substitution forks a child and waits for it: off the loop,
    so every session keeps streaming meanwhile (on the loop, nothing else ran until it ended)."""
    context = {"issue": {"id": "X-1"}, "env": {}, "workflow_path": "/w", "workflow_dir": "/", "workspace_root": "/"}
    rendering = asyncio.ensure_future(render_async('{% for i in range(300) %}{{ "x" * 40000 }}{% endfor %}', context))
    turns = 0
    while not rendering.done():
        turns += 1
        await asyncio.sleep(0)
    assert len(await rendering) == 300 * 40000
    assert turns > 1, "the loop did not turn while the template rendered"


async def test_a_stop_ends_a_render_in_progress() -> None:
    """The supervisor's stop kills render children (`kill_renders`): its shutdown does not wait
    for a render (fuel bounds a template's steps; this bounds whatever else a render waits on)."""

    def slow() -> str:
        time.sleep(60)
        return "never"

    rendering = asyncio.ensure_future(asyncio.to_thread(render_bounded, slow, ()))
    while not render_child._CHILDREN:
        await asyncio.sleep(0.01)
    render_child.kill_renders()
    with pytest.raises(RenderRefused, match="died by signal SIGKILL"):
        await rendering
    assert not render_child._CHILDREN


# the check renders with a stand-in for every name the template reads (`range` too): a loop over a string
DOCTOR_BOMB = '{{ issue.stage }}{% for c in "x" * 300 %}{{ "abcdefghij" * 100000 }}{% endfor %}'


def test_doctors_after_create_check_renders_a_bomb_in_a_bounded_child(tmp_path: Path) -> None:
    """Doctor renders `after_create` with stand-ins to judge its `issue.stage` (and runs in the
    supervisor on every reload): in the process this bomb took 605 MiB RSS, and under a 400 MiB
    address-space limit it aborted the process (the Rust engine's answer to a failed allocation);
    now the render's child dies, not the caller, and the template is not judged."""
    code = (
        "from vik_tui.config.jinja import STAGE_NAMES, check_template\n"
        f"print(check_template({DOCTOR_BOMB!r}, STAGE_NAMES, stage=False))\n"
    )

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (400 * 2**20, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, preexec_fn=limit, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == b"None"
