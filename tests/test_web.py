"""`vik-tui web` in a real browser: Debian's chromium driven by Playwright, against `vik-tui web`
(a real server on a real port) serving a real daemon (`vik-tui run -d`, fake agents talking).
Each tab is a real `vik-tui attach` process; the screen is read from the page's DOM."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from browser import VIK, WebServer, launch, logged_in_page, screen, wait_screen
from chaos_helpers import layout_of, session_files, wait_until
from conftest import FAKE_CODEX, Project, base_workflow, process_running

from vik_tui.api.endpoint import short_path
from vik_tui.web.access import SESSION_TTL_SEC, Access
from vik_tui.web.page import hook_installed

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


def vik(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIK, *args], capture_output=True, text=True, timeout=timeout)


def talking_workflow(project: Project, issues: int = 3) -> Path:
    """`issues` agents talking for ten minutes (the supervisor runs until stopped)."""
    project.set_issues([{"id": f"T-{i}", "title": f"talker {i}", "state": "todo"} for i in range(issues)])
    wf = base_workflow(project)
    wf["loop"]["max_iterations"] = None
    wf["loop"]["max_issue_concurrency"] = issues
    wf["loop"]["stage_timeout_sec"] = 900
    wf["loop"]["stall_timeout_sec"] = 900
    wf["agents"]["codex"]["args"] = {"--mode": "talk", "--sleep": 600, "--interval": 0.3}
    return project.write(wf)


def supervisor_pid(path: Path) -> int:
    return int(json.loads(layout_of(path).state_file.read_text())["pid"])


def agent_pids(path: Path) -> set[int]:
    """The fake agents under the supervisor."""
    pids = set()
    for child in psutil.Process(supervisor_pid(path)).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if any("fake_codex" in part for part in child.cmdline()):
                pids.add(child.pid)
    return pids


@dataclass
class Scene:
    """One daemon with three talking agents, and `vik-tui web` serving it."""

    path: Path
    token: str
    web: WebServer
    extra: list[WebServer] = field(default_factory=list)

    def another_server(self, *args: str) -> WebServer:
        server = WebServer.start(self.path, *args)
        self.extra.append(server)
        return server


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("web") / "proj"
    root.mkdir()
    project = Project(root)
    path = talking_workflow(project)
    started = vik("run", "-d", str(path))
    assert started.returncode == 0, started.stderr
    pid = supervisor_pid(path)
    web: WebServer | None = None
    scene: Scene | None = None
    try:
        wait_until(lambda: len(agent_pids(path)) == 3, 60, "three agents running")
        token = layout_of(path).api_token_file.read_text().strip()
        web = WebServer.start(path, "--max-tabs", "4")
        scene = Scene(path, token, web)
        yield scene
    finally:
        for server in ([web] if web else []) + (scene.extra if scene else []):
            server.stop()
        vik("stop", str(path))
        if process_running(pid):
            os.kill(pid, 9)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


class EventStream:
    """The supervisor's event stream (`GET /api/v1/events` on its Unix socket), read in a thread."""

    def __init__(self, socket_path: Path) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        with short_path(socket_path) as path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
        connection = http.client.HTTPConnection("localhost")
        connection.sock = self.sock
        connection.request("GET", "/api/v1/events")
        self.response = connection.getresponse()
        assert self.response.status == 200
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        kind = ""
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            while line := self.response.readline():
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    kind = text[len("event: ") :]
                elif text.startswith("data: "):
                    self.events.append((kind, json.loads(text[len("data: ") :])))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


# -- access --------------------------------------------------------------------------------------
def test_login_is_refused_without_the_token_and_accepted_with_it(scene: Scene, browser: Any) -> None:
    web = scene.web
    context = browser.new_context()
    page = context.new_page()
    before = web.tab_pids()
    try:
        response = page.goto(web.url)
        assert page.url == f"{web.url}login" and response is not None and response.status == 200
        assert page.locator("#terminal").count() == 0  # the login form, no app
        # nothing of the app without the cookie: not its script, not its websocket
        assert page.request.get(f"{web.url}static/js/textual.js").status == 401
        assert page.request.get(f"{web.url}ws", headers={"Origin": web.url.rstrip("/")}).status == 401
        page.fill("#token", "not-the-token")
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "That token is not this supervisor's." in page.inner_text("#error")
        refused = page.goto(f"{web.url}?token=not-the-token")
        assert refused is not None and refused.status == 401
        assert context.cookies() == []
        assert web.tab_pids() <= before  # no process was started for any of it
        # the form with the token: a session cookie, then the app
        page.goto(f"{web.url}login")
        page.fill("#token", scene.token)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url == web.url
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != scene.token
        wait_screen(page, "T-0", "T-1", "T-2")
    finally:
        context.close()
    # a link with ?token= is traded for the cookie and dropped from the address bar
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{web.url}?token={scene.token}&fontsize=14")
        assert page.url == f"{web.url}?fontsize=14"
        assert scene.token not in page.url and [c["httpOnly"] for c in context.cookies()] == [True]
        wait_screen(page, "T-0", "T-1", "T-2")
    finally:
        context.close()


def test_a_cross_origin_websocket_is_refused_even_with_the_cookie(scene: Scene, browser: Any) -> None:
    context = browser.new_context()
    try:
        # log in through the form's own POST, with no page that would open the app's own websocket
        before = scene.web.tab_pids()
        login = context.request.post(f"{scene.web.url}login", form={"token": scene.token}, max_redirects=0)
        assert login.status in (302, 303) and any(c["httpOnly"] for c in context.cookies())
        refused = context.request.get(f"{scene.web.url}ws", headers={"Origin": "http://evil.example"})
        assert refused.status == 403
        assert scene.web.tab_pids() <= before
    finally:
        context.close()


# -- the app -------------------------------------------------------------------------------------
def test_the_list_shows_the_issues_and_j_moves_the_cursor_and_the_pane(scene: Scene, browser: Any) -> None:
    assert hook_installed()  # textual-serve's front end still has the place page.js hooks into
    page = logged_in_page(browser, scene.web, scene.token)
    try:
        # the footer too: the app is told it has focus (it starts blurred), no click needed
        text = wait_screen(page, "T-0", "talker 0", "T-1", "talker 1", "T-2", "talker 2", "attached to pid", "? help")
        assert f"attached to pid {supervisor_pid(scene.path)}" in text
        wait_screen(page, "─ T-0 talker 0")  # the pane shows the first issue
        page.keyboard.press("j")
        wait_screen(page, "─ T-1 talker 1", absent=("─ T-0 talker 0",))
        page.keyboard.press("j")
        wait_screen(page, "─ T-2 talker 2", absent=("─ T-1 talker 1",))
        page.keyboard.press("k")
        wait_screen(page, "─ T-1 talker 1", absent=("─ T-2 talker 2",))
        # typing works as in a terminal: / filters the list
        page.keyboard.press("/")
        wait_screen(page, "filter: id, title or state")  # the box has the focus (as a person sees it open)
        page.keyboard.type("talker 2")
        page.keyboard.press("Enter")
        wait_screen(page, "─ T-2 talker 2", absent=("T-0     talker 0", "T-1     talker 1"))
    finally:
        page.context.close()


def test_s_shows_the_command_to_run_with_a_copy_key(scene: Scene, browser: Any) -> None:
    page = logged_in_page(browser, scene.web, scene.token)
    try:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=scene.web.url.rstrip("/"))
        wait_screen(page, "─ T-0 talker 0")
        page.keyboard.press("s")
        text = wait_screen(page, "a browser tab has no terminal", "Copy (c)")
        assert f"terminal on {socket.gethostname()}" in text
        workdir = layout_of(scene.path).issues_dir / "T-0"
        command = f"cd {workdir} && {os.environ.get('SHELL') or shutil.which('bash') or '/bin/sh'}"
        # the dialog wraps the long line anywhere: compare its text without spaces
        inside = "".join(line.split("█")[1] for line in text.splitlines() if line.count("█") >= 2)
        assert command.replace(" ", "") in inside.replace(" ", "")
        page.keyboard.press("c")
        copied = wait_until(lambda: page.evaluate("() => navigator.clipboard.readText()"), 30, "the clipboard")
        assert copied == command
        page.keyboard.press("Escape")
        wait_screen(page, "─ T-0 talker 0", absent=("a browser tab has no terminal",))
        assert "Traceback" not in screen(page)
    finally:
        page.context.close()


def test_c_then_y_cancels_the_running_stage(scene: Scene, browser: Any) -> None:
    stream = EventStream(layout_of(scene.path).api_socket)
    page = logged_in_page(browser, scene.web, scene.token)
    try:
        wait_screen(page, "─ T-0 talker 0")
        page.keyboard.press("j")
        page.keyboard.press("j")
        wait_screen(page, "─ T-2 talker 2")
        page.keyboard.press("c")
        wait_screen(page, "Cancel the running stage plan of T-2?")
        page.keyboard.press("y")

        def cancelled() -> dict[str, Any] | None:
            for kind, data in list(stream.events):
                if kind == "stage_finished" and data.get("issue") == "T-2":
                    return data
            return None

        finished = wait_until(cancelled, 60, "T-2's stage_finished on the event stream")
        assert finished["state"] == "cancelled" and finished["reason"] == "cancelled by user"
        wait_screen(page, "T-2/plan CANCELLED")
        # only that one: the other agents go on
        assert not any(kind == "stage_finished" and data.get("issue") != "T-2" for kind, data in stream.events)
        # a ended session can be taken over: in a browser, `a` shows the resume line to run
        page.keyboard.press("a")
        text = wait_screen(page, "take over: a browser tab has no terminal", "Copy (c)")
        inside = "".join(line.split("█")[1] for line in text.splitlines() if line.count("█") >= 2).replace(" ", "")
        workdir = layout_of(scene.path).issues_dir / "T-2"
        assert f"cd{workdir}&&{FAKE_CODEX}resume-mgpt-5.5" in inside
    finally:
        page.context.close()
        stream.close()


# -- processes -----------------------------------------------------------------------------------
def test_closing_the_tab_ends_its_process_and_the_agents_keep_running(scene: Scene, browser: Any) -> None:
    web = scene.web
    agents = agent_pids(scene.path)
    before = web.tab_pids()
    mark = len(web.lines)
    page = logged_in_page(browser, web, scene.token)
    wait_screen(page, "T-0", "T-1")
    (tab,) = web.tab_pids() - before
    assert process_running(tab)
    page.context.close()  # the tab goes away (its websocket closes)
    web.wait_line(rf"tab closed: pid {tab} ended", 60, after=mark)
    assert not process_running(tab)
    # the supervisor and its agents are untouched: the same processes, their sessions still growing
    assert process_running(supervisor_pid(scene.path))
    assert all(process_running(pid) for pid in agents)
    live = [f for f in session_files(scene.path) if "T-2" not in str(f)]  # T-2's may be cancelled (another test)
    sizes = {f: f.stat().st_size for f in live}
    wait_until(lambda: all(f.stat().st_size > size for f, size in sizes.items()), 30, "the agents to go on")


def test_a_cap_on_open_tabs(scene: Scene, browser: Any) -> None:
    web = scene.another_server("--max-tabs", "1")
    first = logged_in_page(browser, web, scene.token)
    try:
        wait_screen(first, "T-0")
        (tab,) = web.tab_pids()
        second = logged_in_page(browser, web, scene.token)
        assert "Every tab is taken" in second.inner_text("h1")
        assert "1 tabs are open" in second.inner_text("#notice")
        assert web.tab_pids() == {tab}  # no second process
        first.context.close()
        web.wait_line(rf"tab closed: pid {tab} ended", 60)
        second.reload()
        wait_screen(second, "T-0")
        second.context.close()
    finally:
        with contextlib.suppress(Exception):
            first.context.close()


def test_stopping_the_server_ends_every_tab_and_leaves_the_supervisor(scene: Scene, browser: Any) -> None:
    web = scene.another_server()
    pages = [logged_in_page(browser, web, scene.token) for _ in range(2)]
    try:
        for page in pages:
            wait_screen(page, "T-0")
        tabs = web.tab_pids()
        assert len(tabs) == 2
        agents = agent_pids(scene.path)
        assert web.stop() == 0
        assert not any(process_running(pid) for pid in tabs)
        assert process_running(supervisor_pid(scene.path))
        assert all(process_running(pid) for pid in agents)
        for page in pages:  # each page says its UI ended
            page.wait_for_selector("body.-closed", timeout=30_000)
    finally:
        for page in pages:
            page.context.close()


# -- the command line ----------------------------------------------------------------------------
def test_web_without_a_supervisor_says_so_and_exits_1(project: Project) -> None:
    path = talking_workflow(project, issues=1)
    out = vik("web", str(path), "--port", "0")
    assert out.returncode == 1
    assert f"no supervisor of {path} is running" in out.stderr and "--start" in out.stderr
    assert "Traceback" not in out.stderr


def test_web_bad_input_is_one_line_each(project: Project) -> None:
    path = talking_workflow(project, issues=1)
    missing = vik("web", str(project.root / "nope.yml"))
    assert missing.returncode == 2 and "no workflow file at" in missing.stderr
    tabs = vik("web", str(path), "--max-tabs", "0")
    assert tabs.returncode == 2 and "--max-tabs must be at least 1" in tabs.stderr
    remote = vik("web", str(path), "--port", "0", "--bind-address", "0.0.0.0")
    assert remote.returncode == 1 and "not a loopback address" in remote.stderr and "--allow-remote" in remote.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = vik("web", str(path), "--port", str(port))
    assert busy.returncode == 1 and "already in use" in busy.stderr
    for out in (missing, tabs, remote, busy):
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_web_start_runs_a_supervisor_when_none_runs(project: Project) -> None:
    path = talking_workflow(project, issues=1)
    web = None
    try:
        web = WebServer.start(path, "--start")
        pid = supervisor_pid(path)
        assert process_running(pid)
        assert web.stop() == 0
        assert process_running(pid)  # the supervisor is detached: it outlives the web server
    finally:
        if web is not None:
            web.stop()
        vik("stop", str(path))


# -- sessions ------------------------------------------------------------------------------------
def test_sessions_hold_no_token_expire_and_are_capped() -> None:
    now = [1000.0]
    access = Access(read_token=lambda: "secret-token", port=1, clock=lambda: now[0])
    assert not access.token_matches("secret-toke") and not access.token_matches("")
    assert access.token_matches("secret-token\n")  # pasted with its newline
    session = access.open_session()
    assert "secret" not in session and access.session_valid(session)
    assert not access.session_valid(None) and not access.session_valid("forged")
    now[0] += SESSION_TTL_SEC
    assert not access.session_valid(session)
    first = access.open_session()
    for _ in range(70):
        now[0] += 1
        access.open_session()
    assert not access.session_valid(first)  # the oldest went first
    assert not Access(read_token=lambda: None, port=1).token_matches("")  # no token file: nobody gets in
