"""The issue list: one row per issue in the engine's (intake) order, updated cell by cell.

Only issues that matter are laid out: those with a stage for their state or with runs. The
rest (the backlog of a big tracker) is counted, not listed, unless asked for, so a refresh
costs the same with 20 issues or 10,000. Columns have fixed widths (the title takes what is
left), so a countdown appearing never shifts them. Rows are rebuilt only when the set or order
of visible rows changes; otherwise only cells whose text changed are updated, and the cursor
stays on the same issue id. Rejected issues follow as dimmed rows with their reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text

from vik_tui.engine.view import EngineView, IssueView, RejectedView, RunStatus
from vik_tui.ui.app_api import vik_app
from vik_tui.ui.clock import Clock
from vik_tui.ui.glyphs import Glyphs
from vik_tui.ui.highlight import theme_color
from vik_tui.ui.text import countdown, human_count, mmss, one_line, truncate
from vik_tui.ui.textual_compat import CellCacheTable

COLUMNS = (
    ("ID", "id"),
    ("TITLE", "title"),
    ("STATE", "state"),
    ("STAGES", "stages"),
    ("TIME", "time"),
    ("TOKENS", "tokens"),
    ("HOST", "host"),  # only with SSH workers
)
TITLE, TIME, TOKENS, HOST = 1, 4, 5, 6  # column indexes
MIN_ID, MAX_ID = 6, 16
STATE_WIDTH, TIME_WIDTH, TOKENS_WIDTH = 11, 5, 6
MAX_HOST = 16
COUNTDOWN_ROOM = 4  # `↻12s` after a stage glyph
MIN_TITLE = 8  # below this the TITLE column is left out rather than squeezed
ROOMY_TITLE = 18  # TOKENS, then TIME, are left out before the title gets narrower than this
REJECTED_PREFIX = "!rejected:"
STATUS_STYLE: dict[RunStatus | None, str] = {
    RunStatus.RUNNING: "primary",
    RunStatus.RESERVED: "muted",
    RunStatus.PREPARING: "muted",
    RunStatus.COMPLETED: "success",
    RunStatus.FAILED: "error",
    RunStatus.CANCELLED: "warning",
    RunStatus.RETRY_WAIT: "warning",
    None: "muted",
}

# A cell spec is (text, style name); turned into a Rich Text only when it changed.
Spec = tuple[tuple[str, str], ...]


def row_matches(needle: str, *texts: str | None) -> bool:
    """Filter: case-insensitive substring of any of the texts (id, title, state)."""
    if not needle:
        return True
    needle = needle.lower()
    return any(needle in (text or "").lower() for text in texts)


def rejected_key(item: RejectedView) -> str:
    """Row key of a rejected record: its position in the pull output makes it unique."""
    return f"{REJECTED_PREFIX}{item.index}:{item.id}"


class IssueTable(CellCacheTable[Text]):
    """A row-cursor DataTable fed from snapshots; call `show()` every refresh."""

    vik = vik_app()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._order: list[str] = []
        self._widths: list[tuple[int, int]] = []
        self._cells_without_runs: dict[tuple[str, str, str, bool, str | None], tuple[Spec, ...]] = {}
        self._cells: dict[str, tuple[Spec, ...]] = {}
        self._styles: dict[str, Style] = {}
        self.title_width = 24

    def on_mount(self) -> None:
        self.refresh_styles()

    def refresh_styles(self) -> None:
        """Colours from the current theme; forgets cached cells so every cell is re-rendered."""
        variables = self.app.theme_variables

        def color(name: str, fallback: str) -> Style:
            return Style(color=theme_color(variables, name, fallback))

        self._styles = {
            "": Style(),
            "muted": Style(dim=True),
            "primary": color("primary", "blue") + Style(bold=True),
            "success": color("success", "green"),
            "error": color("error", "red") + Style(bold=True),
            "warning": color("warning", "yellow"),
            "rejected": Style(dim=True, italic=True),
        }
        self._cells.clear()

    @property
    def keys(self) -> list[str]:
        """Row keys in display order: issue ids, then rejected-row keys."""
        return self._order

    def on_resize(self) -> None:
        self.vik.request_refresh()  # re-fit the title column now

    def current_key(self) -> str | None:
        """Row key under the cursor (an issue id, or a rejected-row key)."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None

    def show(
        self,
        view: EngineView,
        needle: str,
        clock: Clock,
        glyphs: Glyphs,
        selected: str | None,
        *,
        attention: bool = False,
        backlog: bool = False,
    ) -> int:
        """Lay out the visible rows; returns how many backlog issues were left out."""
        rows: list[tuple[str, tuple[Spec, ...]]] = []
        frame = clock.spinner_index()
        hidden = 0
        stages = view.stages
        in_backlog = view.in_backlog
        summarise = not backlog and not needle
        for issue in view.issues:
            if attention and not issue.needs_attention:
                continue
            if summarise and in_backlog(issue):
                hidden += 1
                continue
            if needle and not row_matches(needle, issue.id, issue.title, issue.state):
                continue
            rows.append((issue.id, self._issue_cells(issue, stages, clock, glyphs, frame)))
        for item in view.rejected:
            if row_matches(needle, item.id, item.reason, "rejected"):
                rows.append((rejected_key(item), self._rejected_cells(item)))
        host_width = max((len(h.name) for h in view.hosts), default=0)
        widths = self._layout(rows, len(stages), min(MAX_HOST, max(host_width, len("HOST"))) if host_width else 0)
        visible = [index for index, _width in widths]
        title_width = dict(widths).get(TITLE, 0)
        self.title_width = title_width
        rows = [
            (key, (*cells[:1], tuple((truncate(t, title_width), st) for t, st in cells[1]), *cells[2:]))
            for key, cells in rows
        ]
        order = [key for key, _ in rows]
        if order != self._order or widths != self._widths:
            self._rebuild(rows, selected, visible, widths)
            return hidden
        updated = False
        for key, cells in rows:
            old = self._cells.get(key)
            if old == cells:
                continue
            for index in visible:
                if old is None or old[index] != cells[index]:
                    self.update_cell(key, COLUMNS[index][1], self._text(cells[index]))
                    updated = True
            self._cells[key] = cells
        if updated:
            # every render the DataTable cached is stale now (it keys them by an update count):
            # let them go at once rather than fill its caches (sized for 10,000 cells) with garbage
            self.drop_stale_renders()
        return hidden

    def _layout(
        self, rows: list[tuple[str, tuple[Spec, ...]]], stage_count: int, host_width: int = 0
    ) -> list[tuple[int, int]]:
        """(column index, width) of the shown columns. Fixed widths, except ID (the longest id
        shown, within bounds) and TITLE (whatever is left: the spare width goes to titles).
        HOST (`host_width` > 0: SSH workers) is the longest host name."""
        id_width = max([MIN_ID] + [sum(cell_len(t) for t, _ in cells[0]) for _, cells in rows])
        fixed = {
            0: min(MAX_ID, id_width),
            2: STATE_WIDTH,
            3: max(len("STAGES"), 2 * stage_count - 1 + COUNTDOWN_ROOM),
            TIME: TIME_WIDTH,
            TOKENS: TOKENS_WIDTH,
        }
        if host_width:
            fixed[HOST] = host_width
        pad = 2 * self.cell_padding
        width = self.size.width or 120
        room = width - 1 - pad  # 1: the vertical scrollbar; pad: the title's own padding
        title = room - sum(w + pad for w in fixed.values())
        for optional in (TOKENS, HOST, TIME):
            if title >= ROOMY_TITLE:
                break
            if optional in fixed:
                title += fixed.pop(optional) + pad
        columns = dict(fixed)
        if title >= MIN_TITLE:
            columns[TITLE] = title
        return [(index, columns[index]) for index in range(len(COLUMNS)) if index in columns]

    def _rebuild(
        self,
        rows: list[tuple[str, tuple[Spec, ...]]],
        selected: str | None,
        visible: list[int],
        widths: list[tuple[int, int]],
    ) -> None:
        """Structure or widths changed: re-add every row, then put the cursor back on the same issue."""
        # the cursor itself first: a key that moved it may not have reached the screen's
        # `selected` yet (RowHighlighted is a message), and snapping back would lose that key
        keep = (self.current_key() if self.row_count else None) or selected
        self.clear(columns=True)
        for index, width in widths:
            label, key = COLUMNS[index]
            self.add_column(label, key=key, width=width)
        self._widths = widths
        self._cells.clear()
        for key, cells in rows:
            self.add_row(*(self._text(cells[index]) for index in visible), key=key)
            self._cells[key] = cells
        self._order = [key for key, _ in rows]
        if keep in self._order:
            self.move_cursor(row=self._order.index(keep), animate=False)

    def _text(self, spec: Spec) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for part, style in spec:
            text.append(part, self._styles.get(style) or Style())
        return text

    def _issue_cells(
        self, issue: IssueView, stages: Sequence[str], clock: Clock, glyphs: Glyphs, frame: int
    ) -> tuple[Spec, ...]:
        if not issue.runs:  # the common case in a big backlog: same text until the issue changes
            key = (issue.id, issue.title, issue.state, issue.listed, issue.host)
            cached = self._cells_without_runs.get(key)
            if cached is None:
                if len(self._cells_without_runs) > 50_000:
                    self._cells_without_runs.clear()
                cached = self._cells_without_runs[key] = self._cells_of(issue, stages, clock, glyphs, frame)
            return cached
        return self._cells_of(issue, stages, clock, glyphs, frame)

    def _cells_of(
        self, issue: IssueView, stages: Sequence[str], clock: Clock, glyphs: Glyphs, frame: int
    ) -> tuple[Spec, ...]:
        runs = {run.stage: run for run in issue.runs}
        stage_spec: list[tuple[str, str]] = []
        for index, name in enumerate(stages):
            run = runs.get(name)
            status = run.status if run else None
            if index:
                stage_spec.append((" ", ""))
            glyph = glyphs.for_status(status, frame)
            if run is not None and run.status == RunStatus.RETRY_WAIT and run.retry_in is not None:
                glyph += countdown(run.retry_in) if run.retry_in > 0 else "slot"  # backoff over, waits for a slot
            stage_spec.append((glyph, STATUS_STYLE.get(status, "muted")))
        session = issue.latest_session
        elapsed = ""
        if session is not None and session.started_at:
            elapsed = mmss(clock.seconds_since(session.started_at, session.ended_at))
        tokens = issue.tokens_total
        style = "" if issue.listed else "muted"
        return (
            ((one_line(issue.id, 24), style),),
            ((one_line(issue.title, 200), style),),
            ((truncate(one_line(issue.state, 40), STATE_WIDTH), style),),
            tuple(stage_spec),
            ((elapsed, ""),),
            ((human_count(tokens) if tokens else "", "muted"),),
            ((one_line(issue.host or "", MAX_HOST), "muted" if not issue.listed else ""),),
        )

    def _rejected_cells(self, item: RejectedView) -> tuple[Spec, ...]:
        return (
            ((one_line(item.id or f"#{item.index}", 24), "rejected"),),
            ((one_line(item.reason, 200), "rejected"),),
            (("rejected", "rejected"),),
            (("", ""),),
            (("", ""),),
            (("", ""),),
            (("", ""),),
        )
