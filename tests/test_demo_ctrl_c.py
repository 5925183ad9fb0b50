"""Ctrl-C on a served demo ends `make demo` with status 0 (demo/terminal.py), in a real
pseudo-terminal with a real interactive shell and GNU make: the keystroke's SIGINT reaches the
demo's process group alone, and the shell still answers afterwards."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What the demo does around runserver: serve until Ctrl-C, then stop with status 0.
SERVING = """
import sys, time
sys.path.insert(0, {root!r})
from demo.terminal import ctrl_c_stops_only_this
with ctrl_c_stops_only_this():
    try:
        print("serving", flush=True)
        while True:
            time.sleep(0.05)
    except KeyboardInterrupt:
        print("stopped", flush=True)
sys.exit(0)
"""


def read_until(fd: int, marker: bytes, seconds: float = 20.0) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while marker not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    return out


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
@pytest.mark.parametrize("owns_ctrl_c", [True, False])
def test_ctrl_c_on_the_served_demo_ends_make_with_status_0_when_the_demo_owns_it(
    tmp_path: Path, owns_ctrl_c: bool
) -> None:
    script = tmp_path / "serve.py"
    body = SERVING.format(root=str(ROOT))
    if not owns_ctrl_c:  # the behaviour before: the terminal's SIGINT reaches make too
        body = body.replace("with ctrl_c_stops_only_this():", "if True:")
    script.write_text(body)
    (tmp_path / "Makefile").write_text(f"demo:\n\t{sys.executable} {script}\n")

    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive shell, as a user's terminal runs
        os.chdir(tmp_path)
        # As a terminal's shell starts: Ctrl-C's signal not ignored (a test run started in the
        # background, as CI may, inherits SIGINT ignored, and so would the shell and the demo).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])  # noqa: S606 (a test's shell)
    try:
        os.write(fd, b"make demo\n")
        assert b"serving" in read_until(fd, b"serving")
        os.write(fd, b"\x03")  # Ctrl-C
        assert b"stopped" in read_until(fd, b"stopped")
        os.write(fd, b'echo "sta""tus=$?"\n')  # typed apart, so only the answer reads status=
        answer = read_until(fd, b"status=", seconds=10.0)
        answer += read_until(fd, b"\n", seconds=2.0)
    finally:
        os.write(fd, b"exit\n")
        time.sleep(0.2)
        os.kill(pid, 9)
        os.waitpid(pid, 0)

    if owns_ctrl_c:
        assert b"status=0" in answer
    else:
        assert b"status=2" in answer or b"status=130" in answer
