"""`lmi-build ... | head`: a reader that goes away ends the command quietly (exit 141), no traceback."""

from __future__ import annotations

import io
import os
import sys

import pytest

from builder.cli import main


class _ClosedPipe(io.TextIOWrapper):
    def write(self, text: str) -> int:  # what writing to a pipe whose reader exited raises
        raise BrokenPipeError(32, "Broken pipe")


def test_broken_pipe_is_quiet(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stream = _ClosedPipe(os.fdopen(write_fd, "wb"))
    saved = os.dup(1)
    try:
        monkeypatch.setattr(sys, "stdout", stream)
        assert main(["catalog", "ls"]) == 141
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert "Traceback" not in capsys.readouterr().err
