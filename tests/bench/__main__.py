"""Run every benchmark module (``python -m tests.bench``) or the ones named on the command line.

``python -m tests.bench exporter`` runs ``tests/bench/bench_exporter.py`` only. Each module
runs in a fresh interpreter: one benchmark's imports, global tracer provider or memory
high-water mark (which a child process inherits at fork) must not skew the next one's
figures.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import time

import tests.bench as package


def main(argv: list[str]) -> int:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    names = sorted(
        m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("bench_")
    )
    if argv:
        names = [n for n in names if n.removeprefix("bench_") in argv or n in argv]
    failed = 0
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        code = f"import tests.bench.{name} as bench; bench.main()"
        result = subprocess.run([sys.executable, "-c", code], env=env, check=False)
        if result.returncode != 0:  # one broken benchmark must not hide the others' figures
            failed += 1
            print(f"{name} failed with exit status {result.returncode}", flush=True)
        print(f"({name}: {time.perf_counter() - started:.1f}s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
