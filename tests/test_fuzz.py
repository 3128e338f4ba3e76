"""Runs every libFuzzer target (tests/fuzz/, built by `make fuzz`) for a
bounded time from its seed corpus. A crash, a sanitizer report or a broken
invariant (the targets abort) fails the test."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ["cmd", "data", "ini", "spf", "dnspacket", "dmarc", "dkim_tags", "canon", "arc", "smtpreply"]
RUNS = int(os.environ.get("POSTERN_FUZZ_RUNS", "300000"))
SECONDS = int(os.environ.get("POSTERN_FUZZ_SECONDS", "20"))


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target(target, tmp_path):
    binary = os.path.join(ROOT, "build-fuzz", "fuzz_" + target)
    assert os.path.exists(binary), "run `make fuzz` first (needs clang)"
    corpus = tmp_path / "corpus"
    shutil.copytree(os.path.join(ROOT, "tests", "fuzz", "corpus", target), corpus)
    proc = subprocess.run(
        [binary, f"-runs={RUNS}", f"-max_total_time={SECONDS}", "-max_len=4096",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=SECONDS + 60)
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert "Done" in proc.stderr, tail
