"""
Shared fixtures for postern's tests.

  build            one of the builds under test (see posterntest.available_builds);
                   tests marked `normal_build_only` run on the first one only.
  cert             a self-signed certificate for mx.example.test (session).
  postern          a started daemon with the default mailboxes and TLS; the
                   `postern_config(config={...}, tls=True)` mark changes its
                   configuration.
  postern_factory  make(config=None, tls=True, start=True, users=True): more
                   daemons, or ones the test starts itself.
  dovecot_factory  make(mail_dir, {address: password}): a started Dovecot.

Every daemon is stopped after the test; one that crashed, exited by itself or
printed a sanitizer report fails the test.
"""
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

from posterntest import (DEFAULT_ALIASES, DEFAULT_USERS, Dovecot, Postern,  # noqa: E402
                         available_builds, make_cert, make_workdir)

KEEP = bool(os.environ.get("POSTERN_KEEP_TMP"))


def pytest_configure(config):
    config.addinivalue_line("markers", "normal_build_only: run on the normal build only (long or crash tests)")
    config.addinivalue_line("markers", "postern_config(config=None, tls=True): configuration of the postern fixture")


def pytest_generate_tests(metafunc):
    if "build" in metafunc.fixturenames:
        builds = available_builds()
        if metafunc.definition.get_closest_marker("normal_build_only"):
            builds = builds[:1]
        metafunc.parametrize("build", builds, scope="function")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


@pytest.fixture(scope="session")
def cert():
    d = make_workdir("postern-cert-")
    try:
        yield make_cert(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def _templates():
    """Per build, a data directory holding the default mailboxes and
    aliases, made once with that build's CLI and copied into each test."""
    made = {}
    dirs = []

    def get(build):
        if build not in made:
            d = make_workdir("postern-template-")
            dirs.append(d)
            try:
                p = Postern(build, d)
                for u in DEFAULT_USERS:
                    p.add_user(u)
                for src, targets in DEFAULT_ALIASES:
                    p.add_alias(src, *targets)
                made[build] = p.data_dir
            except AssertionError as e:
                made[build] = e  # fail every test of this build the same way, fast
        if isinstance(made[build], Exception):
            raise AssertionError("setting up the default mailboxes failed: %s" % made[build])
        return made[build]

    yield get
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def workdir(request):
    d = make_workdir()
    yield d
    if KEEP or (_failed(request) and os.environ.get("POSTERN_KEEP_FAILED")):
        print("kept", d)
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def postern_factory(request, build, workdir, cert, _templates):
    daemons = []

    def make(config=None, tls=True, start=True, users=True, name=None):
        sub = workdir / (name or "p%d" % len(daemons))
        sub.mkdir()
        sub.chmod(0o755)
        p = Postern(build, sub, cert=cert if tls else None, config=config,
                    data_template=_templates(build) if users else None)
        daemons.append(p)
        if start:
            p.start()
        return p

    yield make

    problems = []
    for p in daemons:
        try:
            if p.running():
                p.stop()
            elif p.proc is not None and not getattr(p, "finished", False):
                # It exited on its own during the test: a crash or an unexpected exit.
                rc = p.proc.returncode
                p.check_sanitizers()
                problems.append("postern exited by itself during the test (status %s):\n%s" % (rc, p.log_tail()))
        except AssertionError as e:
            problems.append(str(e))
        if _failed(request):
            print("==== %s (%s) log tail ====\n%s" % (p.workdir, p.build, p.log_tail(80)))
    if problems and not _failed(request):
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def postern(request, postern_factory):
    m = request.node.get_closest_marker("postern_config")
    kw = dict(m.kwargs) if m else {}
    return postern_factory(config=kw.get("config"), tls=kw.get("tls", True))


@pytest.fixture
def dovecot_factory(workdir):
    servers = []

    def make(mail_dir, users):
        d = Dovecot(workdir, mail_dir, users)
        servers.append(d)
        d.start()
        return d

    yield make
    for d in servers:
        d.stop()
