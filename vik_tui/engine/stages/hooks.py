"""Run a hook script with `sh -c` in the issue workspace, bounded by a timeout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vik_tui.engine.processes.proc import ShellRunner, describe_exit, local_shell, tail

TAIL_CHARS = 2000


@dataclass(frozen=True)
class HookResult:
    name: str
    ok: bool
    exit_code: int | None
    stdout_tail: str
    stderr_tail: str
    timed_out: bool = False
    error: str | None = None
    note: str | None = None  # something worth a warning that did not fail the hook

    @property
    def summary(self) -> str:
        if self.ok:
            return f"hook {self.name} succeeded"
        if self.error:
            return f"hook {self.name} failed: {self.error}"
        detail = self.stderr_tail.strip().splitlines()[-1:] or [""]
        return f"hook {self.name} {describe_exit(self.exit_code)}" + (f": {detail[0]}" if detail[0] else "")


async def run_hook(
    name: str,
    script: str,
    cwd: Path | str,
    timeout_sec: float,
    grace_sec: float = 2.0,
    *,
    shell: ShellRunner = local_shell,
) -> HookResult:
    """Run one hook; on timeout (or cancellation) its whole process group is killed, and its
    descendants that left the group too (they carry the run's mark, see `descendants`).

    Children the script leaves running in the background while holding its stdout/stderr are
    killed too once the script has exited (otherwise they would keep the hook "running"); the
    result's `note` says so. Only the tails of its output are kept, however much it prints.
    `shell` runs it where the issue lives (this machine unless told otherwise).
    """
    try:
        run = await shell(script, str(cwd), timeout_sec, grace_sec=grace_sec)
    except OSError as exc:
        where = f" (workspace {cwd})" if not Path(cwd).is_dir() else ""
        return HookResult(name, False, None, "", "", error=f"could not start: {exc.strerror or exc}{where}")
    out, err = _text(run.stdout), _text(run.stderr)
    if run.timed_out:
        return HookResult(
            name,
            False,
            run.returncode,
            out,
            err,
            timed_out=True,
            error=f"timed out after {timeout_sec:g}s (process group killed)",
        )
    note = None
    if run.held_pipes:
        note = (
            f"hook {name} exited, but a process it left in the background kept its output open;"
            " that process was killed (redirect a background command's output to keep it running)"
        )
    return HookResult(name, run.returncode == 0, run.returncode, out, err, note=note)


def _text(data: bytes | None) -> str:
    return tail((data or b"").decode("utf-8", "replace"), TAIL_CHARS)
