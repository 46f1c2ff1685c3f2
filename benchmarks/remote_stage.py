"""Benchmark: a stage on an SSH worker host against the same stage on this machine, on loopback.

    python benchmarks/remote_stage.py                        # N = 1 and 4, 100k lines, 5 repeats
    python benchmarks/remote_stage.py -n 1 --lines 20000 --repeats 3 --no-rc

Both sides are the real `python -m vik_tui run --headless --json WORKFLOW` (one stage, N issues,
`max_issue_concurrency: N`, one intake cycle), spawned by benchmarks/measure.py. The remote side
has `worker.ssh_hosts: [host]` and goes through the system `ssh` to a real sshd on 127.0.0.1
(tests/sshd_server.py), so both ends share this machine: what it shows is the overhead of the
SSH path itself (process spawns, the handshake, the channel set-up, the remote login shell,
encryption, the extra copies), not of a network. Three columns:

- local: no `worker` section, everything runs here;
- remote: host-a, whose home has no rc file, so the login shell starts bare;
- remote+rc: host-rc, whose `~/.bashrc` sources root's `/root/.bashrc` with HOME=/root, as an
  `ssh root@this-machine` would (bash reads ~/.bashrc for every command sshd runs, channels over
  the master included; here that is `pyenv init` and friends). The lab hosts have their own
  HOME, so without this file root's rc never runs there. `--no-rc` leaves the column out.

What is measured (every cell the median over the repeats; local and remote runs interleaved so
they share the machine's noise; times from the events' and records' `ts`, 1 ms resolution):

1. Start latency, a quick agent (`cat` of 10 Codex lines), N issues at once: from dispatch (the
   `intake` event: dispatch runs right after it) to `stage_started` (the agent's process was
   spawned: remotely that is the local `ssh`) and to the session file's first record (the agent's
   first line read back). Remotely a new issue's first stage first runs two workspace scripts
   (exists? create) over ssh, then the agent's channel. With N = 4 also the slowest issue. And
   the host check at start-up (`supervisor_started` -> `host_healthy`: the ControlMaster's
   handshake plus one probe channel), paid once per host before the first dispatch.
2. Whole stage with a `before_run` and an `after_run` hook (`true`), N = 1: dispatch to
   `before_run`'s `hook_finished` (remotely: the two workspace scripts and the hook, three
   channels) and to `stage_finished`; the after_run hook alone (outcome record -> its
   `hook_finished`); and `stage_finished` -> `supervisor_stopped` (the end-of-stage sweep, one
   more channel remotely, then closing the master and the rest of the shut-down).
3. Throughput: N agents each `cat`ing --lines Codex-shaped lines (benchmarks/codex_stream.py).
   events/s = N x lines / wall time of the whole process (start-up, host check and shut-down
   included); "while streaming" = N x lines / (first record -> last outcome record). CPU seconds: the supervisor's own; its reaped descendants' (locally the agents
   and hooks; remotely the `ssh` clients: each stage's mux client and the ControlMaster, which
   decrypts; the launcher is a subreaper, so a master outliving the supervisor is counted);
   and the sshd side (the listener and its descendants, reaped ones included: the per-connection
   sshd that encrypts, the login shell and the remote agent), before and after each run.
4. The floor, without vik-tui (5 samples per repeat): `sh -c true` here, a new `ssh host true`
   (TCP, key exchange, auth, session, login shell), and one channel over a ControlMaster with
   the engine's own argv (`vik_tui.engine.places.ssh.SshTarget`); then the throughput agents' output
   drained by a reader that only counts bytes (no parsing, no session file), here and through
   channels over a master, with the CPU of the master, of the mux clients and of the sshd side.

Every run is checked: exit 0, every stage completed on the expected host, every session file
ends with its outcome, hooks passed, nothing left running on the host and nothing the
launcher had to kill; host-a's login shell is checked to start bare and host-rc's to read
root's rc. The sshd hosts are stopped at the end (`SshLab.close`), and a last scan makes sure no
process naming a file of the run's temporary directory (a supervisor, an agent, an `ssh -F`) is
still alive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import yaml
from codex_stream import codex_lines, write_agent
from measure import ProcStats, run_measured

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from sshd_server import SshHost, SshLab  # noqa: E402  (tests/ is not a package)

from vik_tui.engine.places.ssh import SshTarget, remote_script  # noqa: E402

LOCAL, REMOTE, REMOTE_RC = "local", "remote", "remote+rc"
HOST_A, HOST_RC = "host-a", "host-rc"
HOST_OF = {LOCAL: None, REMOTE: HOST_A, REMOTE_RC: HOST_RC}
ROOT_RC = Path("/root/.bashrc")
# what host-rc's login shell reads: root's own rc, with the HOME it expects
RC_SHIM = "_vik_home=$HOME; HOME=/root; . /root/.bashrc; HOME=$_vik_home; unset _vik_home\n"
QUICK_LINES = 10


@dataclass
class Run:
    """One `vik-tui run --headless --json` process: its measures and what its events say."""

    stats: ProcStats
    events: list[dict[str, Any]]
    sshd_cpu: float = 0.0  # seconds of the sshd side (listener and its reaped children)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def at(self, name: str) -> float:
        (event,) = self.named(name)
        return ts(event["ts"])


@dataclass
class Cells:
    """Samples per (row, column); the table shows their medians."""

    samples: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, row: str, column: str, values: Iterable[float]) -> None:
        self.samples.setdefault((row, column), []).extend(values)

    def median(self, row: str, column: str) -> float | None:
        values = self.samples.get((row, column))
        return statistics.median(values) if values else None


def ts(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


# -- the lab -------------------------------------------------------------------------------
def start_lab(work: Path, with_rc: bool) -> SshLab:
    lab = SshLab(work / "lab")
    try:
        lab.add_host(HOST_A)
        if with_rc:
            host = lab.add_host(HOST_RC)
            (host.home / ".bashrc").write_text(RC_SHIM)
        check_shells(lab)
    except BaseException:
        lab.close()
        raise
    return lab


def check_shells(lab: SshLab) -> None:
    """host-a's login shell starts bare; host-rc's really runs root's rc (pyenv is then on PATH)."""
    for name, rc in ((HOST_A, False), (HOST_RC, True)):
        if name in lab.hosts:
            found = subprocess.run(lab.ssh(name, "command -v pyenv"), capture_output=True, timeout=60).returncode == 0
            if found != rc:
                raise SystemExit(f"{name}: the remote login shell {'skips' if rc else 'reads'} root's rc")


def sshd_cpu(host: SshHost) -> float:
    """User+sys seconds of the host's sshd listener and its descendants, reaped ones included
    (every connection's sshd, the sessions' shells and what they ran)."""
    return alive_tree_cpu(host.pid)


def wait_connections_closed(host: SshHost, timeout: float = 15.0) -> None:
    """Until the listener has no child left (every connection's sshd exited and was reaped)."""
    listener = psutil.Process(host.pid)
    deadline = time.monotonic() + timeout
    while listener.children():
        if time.monotonic() > deadline:
            raise SystemExit(f"{host.name}: connections still open {timeout:g}s after the run")
        time.sleep(0.01)


def leftovers(lab: SshLab, work: Path) -> list[psutil.Process]:
    """Processes still alive that a host's session started, or whose command line names a file of
    `work` (a supervisor's workflow, an agent's stream, an ssh's -F config)."""
    found = {proc.pid: proc for host in lab.hosts.values() for proc in host.remote_processes()}
    for proc in psutil.process_iter(["cmdline"]):
        if str(work) in " ".join(proc.info["cmdline"] or []) and proc.pid != os.getpid():
            found[proc.pid] = proc
    return list(found.values())


# -- one run -------------------------------------------------------------------------------
def write_workflow(run_dir: Path, agent: Path, n: int, host: str | None, lab: SshLab, hooks: bool) -> Path:
    tracker = run_dir / "issues.json"
    tracker.write_text(json.dumps([{"id": f"BENCH-{i}", "title": f"issue {i}", "state": "todo"} for i in range(n)]))
    stage: dict[str, Any] = {"when": {"state": "todo"}, "agent": "coder", "prompt": "go"}
    if hooks:
        stage["hooks"] = {"before_run": "true", "after_run": "true"}
    workflow: dict[str, Any] = {
        "loop": {"max_issue_concurrency": n, "max_iterations": 1},
        # an absolute root: the session files stay in run_dir, and the host reads the same path
        "workspace": {"root": str(run_dir / "home")},
        "agents": {"coder": {"runtime": "codex", "model": "gpt-5.5", "command": str(agent)}},
        "issues": {"pull": {"command": f"cat '{tracker}'", "idle_sec": 5}},
        "issue": {"stages": {"implement": stage}},
    }
    if host is not None:
        workflow["worker"] = {"ssh_hosts": [host], "ssh_config": str(lab.config)}
    path = run_dir / "workflow.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return path


def check_run(run: Run, n: int, host: str | None, hooks: bool, out: Path) -> None:
    """Fail loudly unless every stage completed on `host` and every session file is whole."""

    def fail(why: str) -> SystemExit:
        return SystemExit(f"{why} ({host or 'local'}, N={n}):\n{out.read_text()[-3000:]}")

    if run.stats.timed_out or run.stats.returncode != 0:
        raise fail(f"vik-tui exited {run.stats.returncode} (timed out: {run.stats.timed_out})")
    if run.stats.orphans:
        raise fail(f"{run.stats.orphans} process(es) outlived the supervisor and had to be killed")
    finished = run.named("stage_finished")
    if len(finished) != n or any(e["state"] != "completed" for e in finished):
        raise fail(f"{len(finished)}/{n} stages finished, states {[e['state'] for e in finished]}")
    started = run.named("stage_started")
    if len(started) != n or any(e["host"] != host for e in started):
        raise fail(f"stages started on {[e['host'] for e in started]}")
    hook_runs = run.named("hook_finished")
    if len(hook_runs) != (2 * n if hooks else 0) or not all(e["ok"] for e in hook_runs):
        raise fail(f"hooks: {[(e['hook'], e['ok']) for e in hook_runs]}")
    for event in started:
        records = Path(event["session_file"]).read_bytes().splitlines()
        if not records or "outcome" not in orjson.loads(records[-1]):
            raise fail(f"{event['session_file']}: no outcome record at the end")


def run_once(
    work: Path, lab: SshLab, column: str, agent: Path, n: int, *, hooks: bool = False, timeout: float = 300
) -> Run:
    host_name = HOST_OF[column]
    host = lab.hosts[host_name] if host_name else None
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix=f"{column.replace('+', '-')}-"))
    try:
        workflow = write_workflow(run_dir, agent, n, host_name, lab, hooks)
        out = run_dir / "out.jsonl"
        argv = [sys.executable, "-m", "vik_tui", "run", "--headless", "--json", str(workflow)]
        before = sshd_cpu(host) if host else 0.0
        stats = run_measured(argv, run_dir, out, timeout, reap=True)  # cwd: not ROOT (`-m` would find ./vik_tui)
        if host is not None:
            wait_connections_closed(host)
        events = [json.loads(line) for line in out.read_text().splitlines() if line.startswith("{")]
        run = Run(stats, events, sshd_cpu(host) - before if host else 0.0)
        check_run(run, n, host_name, hooks, out)
        if host is not None and host.remote_processes():
            raise SystemExit(f"{host.name}: still running after the run: {host.remote_processes()}")
        run.events.extend(first_records(run))
        return run
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def first_records(run: Run) -> list[dict[str, Any]]:
    """Synthetic events from the session files (read before run_dir goes): each issue's first
    record and its outcome record, with their `ts`."""
    found = []
    for event in run.named("stage_started"):
        records = Path(event["session_file"]).read_bytes().splitlines()
        first, last = orjson.loads(records[0]), orjson.loads(records[-1])
        found.append({"event": "first_record", "ts": first["ts"], "issue": event["issue"]})
        found.append({"event": "outcome_record", "ts": last["ts"], "issue": event["issue"]})
    return found


def per_issue(run: Run, start: str, end: str, hook: str | None = None) -> list[float]:
    """Seconds from the single `start` event to each issue's `end` event."""
    origin = run.at(start)
    ends = [e for e in run.named(end) if hook is None or e.get("hook") == hook]
    return [ts(e["ts"]) - origin for e in ends]


def between(run: Run, first: str, second: str, hook: str) -> list[float]:
    """Per issue, seconds from its `first` event to its `second` (a hook's `hook_finished`)."""
    starts = {e["issue"]: ts(e["ts"]) for e in run.named(first)}
    return [ts(e["ts"]) - starts[e["issue"]] for e in run.named(second) if e.get("hook") == hook]


# -- the scenarios -------------------------------------------------------------------------
def latency(cells: Cells, run: Run, column: str, n: int) -> None:
    started = per_issue(run, "intake", "stage_started")
    first = per_issue(run, "intake", "first_record")
    cells.add(f"N={n}: dispatch -> stage_started", column, started)
    cells.add(f"N={n}: dispatch -> first agent record", column, first)
    if n > 1:
        cells.add(f"N={n}: dispatch -> first record, slowest", column, [max(first)])
    if column != LOCAL:
        cells.add("host check at start-up", column, [run.at("host_healthy") - run.at("supervisor_started")])
    cells.add(f"N={n}: whole process wall", column, [run.stats.wall])


def stage_with_hooks(cells: Cells, run: Run, column: str) -> None:
    cells.add("dispatch -> stage_finished", column, per_issue(run, "intake", "stage_finished"))
    cells.add("stage_finished -> supervisor_stopped", column, per_issue(run, "stage_finished", "supervisor_stopped"))
    cells.add("dispatch -> before_run hook done", column, per_issue(run, "intake", "hook_finished", "before_run"))
    cells.add(
        "after_run hook (outcome -> hook_finished)",
        column,
        between(run, "outcome_record", "hook_finished", "after_run"),
    )


def throughput(cells: Cells, run: Run, column: str, n: int, lines: int) -> None:
    own = run.stats.cpu
    children = run.stats.tree_cpu - own
    cells.add(f"N={n}: events/s", column, [n * lines / run.stats.wall])
    streaming = max(ts(e["ts"]) for e in run.named("outcome_record")) - min(
        ts(e["ts"]) for e in run.named("first_record")
    )
    cells.add(f"N={n}: events/s while streaming", column, [n * lines / streaming])
    cells.add(f"N={n}: wall s", column, [run.stats.wall])
    cells.add(f"N={n}: supervisor CPU s (own)", column, [own])
    cells.add(f"N={n}: its children CPU s", column, [children])
    cells.add(f"N={n}: sshd side CPU s", column, [run.sshd_cpu])
    cells.add(f"N={n}: all CPU s", column, [own + children + run.sshd_cpu])


def floor_spawn(cells: Cells, lab: SshLab, columns: list[str], work: Path, samples: int = 5) -> None:
    """Samples of spawning `sh -c true` here, of a new ssh connection and of a channel over a
    master (the engine's own argv), per host."""
    for _ in range(samples):
        timed(cells, "sh -c true here", LOCAL, ["sh", "-c", "true"])
    for column in columns[1:]:
        host = HOST_OF[column]
        assert host is not None
        for _ in range(samples):
            timed(cells, "new connection: ssh host true", column, lab.ssh(host, "true"))
        with master(lab, host, work) as target:
            for _ in range(samples):
                timed(cells, "channel over the master", column, target.command(remote_script("true")))


def floor_stream(cells: Cells, lab: SshLab, work: Path, agent: Path, agents: list[int], lines: int) -> None:
    """The agents' output drained by a reader that only counts bytes: here, and through channels
    over a ControlMaster to host-a, with the CPU of the ssh clients and of the sshd side."""
    size = Path(f"{agent}".removesuffix("-agent") + ".jsonl").stat().st_size  # codex_stream.write_agent's names
    for n in agents:
        cells.add(f"N={n}: raw reader events/s", LOCAL, [n * lines / drain([[str(agent)]] * n, n * size)])
    host = lab.hosts[HOST_A]
    with master(lab, host.name, work) as target:
        pid = master_pid(target)  # its CPU is read while it lives: it is not our child
        for n in agents:
            before = (children_cpu(), alive_tree_cpu(pid), alive_tree_cpu(host.pid))
            wall = drain([target.command(remote_script(f"exec {agent}"))] * n, n * size)
            cells.add(f"N={n}: raw reader events/s", REMOTE, [n * lines / wall])
            cells.add(f"N={n}: raw: ControlMaster CPU s", REMOTE, [alive_tree_cpu(pid) - before[1]])
            cells.add(f"N={n}: raw: mux clients CPU s", REMOTE, [children_cpu() - before[0]])
            cells.add(f"N={n}: raw: sshd side CPU s", REMOTE, [alive_tree_cpu(host.pid) - before[2]])


@contextlib.contextmanager
def master(lab: SshLab, host: str, work: Path) -> Iterator[SshTarget]:
    """A ControlMaster to `host` started as the engine starts it; closed (and gone) at the end."""
    target = SshTarget(host, str(lab.config), tempfile.mkdtemp(prefix="vt-bench-", dir="/tmp"), str(work))
    try:
        quiet_run(target.master_command())
        yield target
    finally:
        quiet_run(target.control_command("exit"), check=False)
        shutil.rmtree(target.control_dir, ignore_errors=True)
        wait_connections_closed(lab.hosts[host])


def master_pid(target: SshTarget) -> int:
    """`ssh -O check` says "Master running (pid=N)"."""
    done = subprocess.run(target.control_command("check"), capture_output=True, text=True, check=True, timeout=60)
    return int(done.stderr.split("pid=", 1)[1].split(")", 1)[0])


def drain(argvs: list[list[str]], expected: int) -> float:
    """Start every argv with stdout to a pipe, read all pipes to their end (256 KiB reads, like the
    engine's); returns the wall seconds. Fails unless `expected` bytes came in all and all exited 0."""
    start = time.perf_counter()
    procs = [subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE) for argv in argvs]
    selector = selectors.DefaultSelector()
    for proc in procs:
        assert proc.stdout is not None
        selector.register(proc.stdout, selectors.EVENT_READ)
    total = 0
    while selector.get_map():
        for key, _ in selector.select():
            data = os.read(key.fd, 1 << 18)
            total += len(data)
            if not data:
                selector.unregister(key.fileobj)
    codes = [proc.wait(60) for proc in procs]
    wall = time.perf_counter() - start
    for proc in procs:
        assert proc.stdout is not None
        proc.stdout.close()
    if total != expected or any(codes):
        raise SystemExit(f"raw reader: {total} of {expected} bytes, exit codes {codes}")
    return wall


def children_cpu() -> float:
    """User+sys seconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def alive_tree_cpu(pid: int) -> float:
    """User+sys seconds of `pid` and its live descendants, each with the children it reaped."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def quiet_run(argv: list[str], check: bool = True) -> None:
    subprocess.run(argv, check=check, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def timed(cells: Cells, row: str, column: str, argv: list[str]) -> None:
    start = time.perf_counter()
    quiet_run(argv)
    cells.add(row, column, [time.perf_counter() - start])


# -- the table -------------------------------------------------------------------------------
def cell(value: float | None, scale: float, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value * scale:,.{digits}f}"


def section(
    cells: Cells, title: str, rows: list[str], columns: list[str], scale: float = 1000, digits: int = 0
) -> None:
    """One block of the table; `scale` and `digits` format every cell but events/s (whole numbers)."""
    print(f"\n{title}")
    header = f"  {'':<44}" + "".join(f"{name:>11}" for name in columns) + f"{'remote-local':>14}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for row in rows:
        unit = (1.0, 0) if "events/s" in row else (scale, digits)
        values = [cells.median(row, column) for column in columns]
        local, remote = cells.median(row, LOCAL), cells.median(row, REMOTE)
        delta = remote - local if local is not None and remote is not None else None
        sign = "+" if delta is not None and delta >= 0 else ""
        text = "".join(f"{cell(v, *unit):>11}" for v in values)
        print(f"  {row:<44}{text}{(sign + cell(delta, *unit)) if delta is not None else '-':>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--agents", type=int, nargs="+", default=[1, 4], help="agent counts (default 1 4)")
    parser.add_argument(
        "--lines", type=int, default=100_000, help="stdout lines per agent, throughput (default 100000)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per cell; the median is shown (default 5)")
    parser.add_argument("--no-rc", action="store_true", help="leave out the remote+rc column (host-rc)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run is killed (default 300)")
    args = parser.parse_args()
    with_rc = not args.no_rc and ROOT_RC.is_file()
    columns = [LOCAL, REMOTE] + ([REMOTE_RC] if with_rc else [])
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vik-bench-remote-") as tmp:
        work = Path(tmp)
        lab = start_lab(work, with_rc)
        try:
            cells = measure_all(work, lab, columns, args)
        finally:
            lab.close()
            left = leftovers(lab, work)
            for proc in left:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
        if left:
            raise SystemExit(f"processes left behind (killed now): {[p.pid for p in left]}")
    if not with_rc and not args.no_rc:
        print(f"(no {ROOT_RC}: the remote+rc column is left out)")
    report(cells, columns, args, time.monotonic() - began)


def measure_all(work: Path, lab: SshLab, columns: list[str], args: argparse.Namespace) -> Cells:
    cells = Cells()
    quick = write_agent(work, "quick", codex_lines(QUICK_LINES))
    stream = write_agent(work, "stream", codex_lines(args.lines))
    for _ in range(args.repeats):  # every column of a cell runs back to back: the same moment of the machine
        floor_spawn(cells, lab, columns, work)
        floor_stream(cells, lab, work, stream, args.agents, args.lines)
        for n in args.agents:
            for column in columns:
                latency(cells, run_once(work, lab, column, quick, n, timeout=args.timeout), column, n)
        for column in columns:
            stage_with_hooks(cells, run_once(work, lab, column, quick, 1, hooks=True, timeout=args.timeout), column)
        for n in args.agents:
            for column in columns[:2]:
                run = run_once(work, lab, column, stream, n, timeout=args.timeout)
                throughput(cells, run, column, n, args.lines)
    return cells


def report(cells: Cells, columns: list[str], args: argparse.Namespace, elapsed: float) -> None:
    print(f"remote: a real sshd on 127.0.0.1; medians of {args.repeats} runs (ms unless marked)")
    rows = []
    for n in args.agents:
        rows += [f"N={n}: dispatch -> stage_started", f"N={n}: dispatch -> first agent record"]
        if n > 1:
            rows.append(f"N={n}: dispatch -> first record, slowest")
    section(cells, f"1. Start latency, quick agent ({QUICK_LINES} lines)", [*rows, "host check at start-up"], columns)
    section(
        cells,
        "   whole process (start-up and shut-down included), s",
        [f"N={n}: whole process wall" for n in args.agents],
        columns,
        1,
        2,
    )
    section(
        cells,
        "2. Whole stage, before_run + after_run hooks (`true`), N=1",
        [
            "dispatch -> before_run hook done",
            "after_run hook (outcome -> hook_finished)",
            "dispatch -> stage_finished",
            "stage_finished -> supervisor_stopped",
        ],
        columns,
    )
    kinds = [
        "events/s",
        "events/s while streaming",
        "wall s",
        "supervisor CPU s (own)",
        "its children CPU s",
        "sshd side CPU s",
        "all CPU s",
    ]
    rows = [f"N={n}: {kind}" for n in args.agents for kind in kinds]
    section(cells, f"3. Throughput, {args.lines:,} lines per agent", rows, columns[:2], 1, 2)
    floor_rows = ["sh -c true here", "new connection: ssh host true", "channel over the master"]
    section(cells, "4. Floor, no vik-tui: spawn costs", floor_rows, columns)
    kinds = ["raw reader events/s", "raw: ControlMaster CPU s", "raw: mux clients CPU s", "raw: sshd side CPU s"]
    rows = [f"N={n}: {kind}" for n in args.agents for kind in kinds]
    section(
        cells,
        "   the same output drained by a byte-counting reader (no parsing, no session file)",
        rows,
        columns[:2],
        1,
        2,
    )
    print(
        "\nchildren = the supervisor's reaped descendants: locally the agents and hooks, remotely the ssh"
        " clients (mux clients and the ControlMaster); sshd side = sshd, the login shells, the remote agents;"
        " stage_finished -> supervisor_stopped: the end-of-stage sweep (remotely one more channel) and shut-down."
    )
    print(f"total benchmark time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
