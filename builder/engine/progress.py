"""The one progress display: rich bars on a terminal (stderr console), nothing otherwise."""

from __future__ import annotations

from builder import console


class Progress:
    """Keyed bars (``update(key, ...)`` creates one on first use); a no-op unless ``live``.

    ``speed``: a transfer-speed column too (the build context); a push shows sizes only."""

    def __init__(self, *, enabled: bool = True, speed: bool = False):
        self.live = None
        self.tasks: dict[str, int] = {}
        con = console.console()
        if enabled and con.is_terminal:
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn
            from rich.progress import Progress as Rich

            columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn()]
            if speed:
                columns.append(TransferSpeedColumn())
            self.live = Rich(*columns, console=con, transient=True)
            self.live.start()

    @property
    def shown(self) -> bool:
        return self.live is not None

    def update(self, key: str, *, description: str | None = None, completed: int = 0,
               total: int | None = None) -> None:
        if self.live is None:
            return
        if key not in self.tasks:
            self.tasks[key] = self.live.add_task(description or key, total=total)
        self.live.update(self.tasks[key], description=description or key, completed=completed, total=total)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
