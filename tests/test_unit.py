"""
The C unit tests (tests/unit/), one pytest test per unit test and build, so
that the final pytest summary counts every one of them. The names come from
`unit-tests --list` at collection time; a build whose unit-tests binary is
missing yields one failing test instead of none.
"""
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
from posterntest import ROOT, available_builds, build_env, sanitizer_report  # noqa: E402


def _collect():
    params = []
    for build in available_builds():
        binary = ROOT / build / "unit-tests"
        if not binary.exists():
            params.append(pytest.param(build, None, id="%s-unit-tests-missing" % build))
            continue
        p = subprocess.run([str(binary), "--list"], capture_output=True, text=True, timeout=60,
                           env=build_env(build))
        names = [n.strip() for n in p.stdout.splitlines() if n.strip()]
        if p.returncode != 0 or not names:
            params.append(pytest.param(build, None, id="%s-list-failed" % build))
            continue
        params.extend(pytest.param(build, n, id="%s-%s" % (build, n)) for n in names)
    return params


@pytest.mark.parametrize("unit_build,name", _collect())
def test_unit(unit_build, name):
    build = unit_build
    binary = ROOT / build / "unit-tests"
    assert name is not None, "%s is missing or `--list` failed: run make (and make asan)" % binary
    p = subprocess.run([str(binary), "--run", name], capture_output=True, text=True, errors="replace",
                       timeout=120, env=build_env(build), cwd=str(ROOT))
    out = p.stdout + p.stderr
    assert p.returncode == 0, "unit test %s failed (status %d):\n%s" % (name, p.returncode, out)
    rep = sanitizer_report(out)
    assert rep is None, rep
