"""Directories a service process keeps files in that it will later trust: compiled models it
loads as code, signal snapshots it answers from."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def private_directory(configured: str, default_name: str, refusal: str) -> Path:
    """`configured`, or `<default_name>-<uid>` in the temporary directory, created for this user
    only; PermissionError (ending with `refusal`) if anyone else may write to it."""
    directory = Path(configured or Path(tempfile.gettempdir()) / f"{default_name}-{os.getuid()}")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(f"{directory} is not private to this user; {refusal}")
    return directory
