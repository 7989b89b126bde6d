"""The libFuzzer targets (tests/fuzz/fuzz_*.c, built by 'make fuzz-targets',
which tests/run-all does): each runs briefly on a copy of its seed corpus
(tests/fuzz/corpus/NAME). A crash, a sanitizer report or a leak fails the
test, and so does a target that executed nothing beyond its seeds or is
missing. The long campaigns are 'make fuzz FUZZ_SECONDS=…' (README,
Fuzzing)."""
import glob
import os
import re
import shutil
import subprocess

from framework import expect, host_test

SECONDS = 3
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = sorted(os.path.basename(p)[len("fuzz_"):-2]
               for p in glob.glob(os.path.join(HERE, "fuzz", "fuzz_*.c")))


def run_target(ctx, name):
    binary = os.path.join(ctx.build, "fuzz", f"fuzz_{name}")
    expect(os.access(binary, os.X_OK), f"{binary} is not built (make fuzz-targets)")
    seeds = os.path.join(HERE, "fuzz", "corpus", name)
    corpus = os.path.join(ctx.tmp, name)
    shutil.copytree(seeds, corpus) if os.path.isdir(seeds) else os.makedirs(corpus)
    p = subprocess.run([binary, f"-max_total_time={SECONDS}", "-print_final_stats=1",
                        "-max_len=4096", corpus], cwd=ctx.tmp, capture_output=True,
                       text=True, errors="replace", timeout=SECONDS * 20 + 60)
    tail = p.stderr[-1500:]
    expect(p.returncode == 0, f"fuzz_{name} exited {p.returncode}:\n{tail}")
    m = re.search(r"^stat::number_of_executed_units:\s*(\d+)", p.stderr, re.M)
    expect(m is not None, f"fuzz_{name} printed no statistics:\n{tail}")
    return int(m.group(1))


@host_test(f"fuzz targets: each libFuzzer target ({', '.join(NAMES)}) runs {SECONDS} s on its "
           "seed corpus without a crash, a sanitizer report or a leak, and executes inputs")
def fuzz_targets_run(ctx):
    expect(NAMES, "no fuzz targets found in tests/fuzz")
    quiet = [n for n in NAMES if run_target(ctx, n) < 10]
    expect(not quiet, f"targets that executed fewer than 10 inputs: {quiet}")
