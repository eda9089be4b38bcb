"""Finding and recording benchmarks: ``microfab bench NAME`` runs ``bench/NAME.py`` of a source tree.

Benchmarks live in the repository's ``bench/`` folder (they are developer tools, not shipped). Each
exposes ``TITLE``, ``run(repeat=…) -> dict`` and ``markdown(result) -> str``; the result is written
into docs/benchmarks.md between ``<!-- bench:NAME -->`` markers with a note of the machine.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import re
from pathlib import Path
from types import ModuleType

from microfab import __version__
from microfab.errors import InputError


def _roots() -> list[Path]:
    return [Path.cwd(), Path(__file__).resolve().parents[2]]


def find_benchmark(name: str) -> tuple[ModuleType, Path]:
    """Load ``bench/NAME.py`` from the working directory or the source tree microfab runs from."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise InputError(f"benchmark name '{name}' must be lower-case letters, digits or '_'")
    for root in _roots():
        path = root / "bench" / f"{name}.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(f"microfab_bench_{name}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module, root
    available = sorted({p.stem for root in _roots() for p in (root / "bench").glob("*.py")})
    raise InputError(
        f"no benchmark '{name}'; available: {', '.join(available) or 'none (run from a source checkout)'}"
    )


def machine_note() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, microfab {__version__}, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    )


def record(target: Path, name: str, title: str, body: str) -> Path:
    """Replace (or add) this benchmark's section in docs/benchmarks.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n## {title}\n\nMachine: {machine_note()}\n\n{body}\n{end}"
    text = target.read_text(encoding="utf-8") if target.exists() else "# Benchmarks\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
