"""The project's commands as a user types them (`run.py ...`, `test.py ...`,
`-m preprocessing.synthetic ...`), run for a benchmark.

A benchmark runs each command in a process of its own, so that nothing one leaves behind
(imports, allocations, oneDNN's kernel choices) carries into the next. Its quick mode, the
tests' tiny end-to-end run, may run them in the benchmark's process instead: a fresh
`python` spends seconds importing torch and the project, longer than a tiny command takes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], in_process: bool = False) -> tuple[int, str]:
    """(exit status, standard error) of `python ARGS`, in its own process or in this one."""
    if in_process:
        return run_here(args)
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    return result.returncode, result.stderr


def check(args: list[str], in_process: bool = False) -> None:
    """`python ARGS`; an error with the end of its standard error when it fails."""
    status, stderr = run(args, in_process)
    if status != 0:
        raise RuntimeError(f"`{' '.join(args)}` exited {status}:\n{stderr[-2000:]}")


def run_here(args: list[str]) -> tuple[int, str]:
    """`python ARGS` as the script's main(argv) in this process, its output captured."""
    name, argv = (args[1], args[2:]) if args[0] == "-m" else (args[0], args[1:])
    stderr = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
        try:
            status = script(name).main(argv)
        except SystemExit as stop:  # argparse's errors, and sys.exit(message)
            status = exit_status(stop.code)
    return status or 0, stderr.getvalue()


def exit_status(code: object) -> int:
    """The status `python` exits with after sys.exit(code), printing a message as it does."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


@functools.cache
def script(name: str) -> ModuleType:
    """The module of a top-level script (run.py) or of a `-m` name, imported once."""
    if not name.endswith(".py"):
        return importlib.import_module(name)
    # Loaded by path under its own name: `import test` would find the standard library's.
    spec = importlib.util.spec_from_file_location(f"{name[:-3]}_script", ROOT / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
