"""
Signals and the configuration on the command line: SIGTERM drains, SIGHUP
reloads (and keeps the old configuration when the new one is broken),
`postern config check` reports file:line, and --help works.
"""
import re
import signal
import time

import pytest

from mailfile import make_message
from replies import DATA_GO, MAIL_OK, OK, RCPT_OK, SHUTTING_DOWN, TOO_MANY_RCPTS
from smtpconn import ServerClosed, SMTPConn, is_queued

SENDER = "sender@example.org"


def start_data(c):
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
    assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
    assert c.cmd("DATA") == DATA_GO


def assert_no_new_service(port):
    """After SIGTERM a new client is refused or told 421, never greeted."""
    try:
        c = SMTPConn("127.0.0.1", port, timeout=3, greeting=False)
    except OSError:
        return
    try:
        r = c.reply()
        assert r.code == 421, r
    except (ServerClosed, OSError):
        pass
    finally:
        c.close()


@pytest.mark.postern_config(config={"server": {"shutdown_timeout": "10s"}})
def test_sigterm_lets_transaction_finish(postern):
    busy = postern.session()
    start_data(busy)
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
    idle = postern.session()
    time.sleep(0.2)
    t0 = time.monotonic()
    postern.signal(signal.SIGTERM)

    # the idle client is told, and closed
    assert idle.reply() == SHUTTING_DOWN
    assert idle.wait_closed(3)[0]
    assert time.monotonic() - t0 < 3

    # the transaction in flight may finish
    time.sleep(0.5)
    assert postern.running(), "postern exited with a transaction in flight"
    assert_no_new_service(postern.port)
    busy.send(b"second half\r\n.\r\n")
    assert is_queued(busy.reply())
    # then the session ends, with 421 4.3.2 or without a word
    closed, extra = busy.wait_closed(5)
    assert closed
    assert extra in (b"", (SHUTTING_DOWN + "\r\n").encode()), extra
    assert postern.wait_exit(5) == 0, postern.log_tail()
    assert postern.stop() == 0
    msgs = postern.messages("demo@example.test")
    assert len(msgs) == 1 and msgs[0].body == b"first half\nsecond half\n"


@pytest.mark.postern_config(config={"server": {"shutdown_timeout": "2s"}})
def test_sigterm_bounded_by_shutdown_timeout(postern):
    stalled = postern.session()
    start_data(stalled)
    stalled.send(b"Subject: never finished\r\n\r\npartial")
    time.sleep(0.2)
    t0 = time.monotonic()
    postern.signal(signal.SIGTERM)
    rc = postern.wait_exit(10)
    took = time.monotonic() - t0
    assert rc == 0, "exit status %s after %.1fs" % (rc, took)
    assert 1.5 <= took <= 5, "exited %.1fs after SIGTERM with shutdown_timeout = 2s" % took
    assert stalled.wait_closed(2)[0]
    postern.stop()
    assert postern.all_message_files() == []


def test_sigterm_idle_exits_promptly(postern):
    t0 = time.monotonic()
    assert postern.stop() == 0
    assert time.monotonic() - t0 < 3


def test_sigint_exits_like_sigterm(postern):
    idle = postern.session()
    postern.signal(signal.SIGINT)
    assert idle.reply() == SHUTTING_DOWN
    assert postern.wait_exit(5) == 0
    assert postern.stop() == 0


def rcpt_limit_seen(postern, n):
    """Whether a new session may have exactly n recipients."""
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        for i in range(1, n + 1):
            r = c.cmd("RCPT TO:<u%d@example.test>" % i)
            if r == TOO_MANY_RCPTS:
                return False
            assert r == RCPT_OK, r
        r = c.cmd("RCPT TO:<u%d@example.test>" % (n + 1))
        assert r == TOO_MANY_RCPTS, r
        return True


def wait_limit(postern, n, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rcpt_limit_seen(postern, n):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.postern_config(config={"smtp": {"max_recipients": "2"}})
def test_sighup_reloads_config(postern):
    assert rcpt_limit_seen(postern, 2)
    long_lived = postern.session()

    postern.write_config({"smtp": {"max_recipients": "3"}})
    postern.signal(signal.SIGHUP)
    assert wait_limit(postern, 3), "max_recipients = 3 not in effect 5s after SIGHUP:\n" + postern.log_tail()
    assert long_lived.cmd("NOOP") == OK  # sessions survive a reload

    # a broken file: the old configuration stays, the problem is logged
    good = postern.write_config()
    lines = good.splitlines()
    bad_line = next(i for i, l in enumerate(lines) if l.startswith("max_recipients")) + 1
    lines[bad_line - 1] = "max_recipients = lots"
    log_before = len(postern.log())
    postern.write_config(raw="\n".join(lines) + "\n")
    postern.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "%s:%d:" % (postern.config_path, bad_line) not in postern.log()[log_before:]:
        assert time.monotonic() < deadline, "reload error not logged as file:line:\n" + postern.log()[log_before:]
        time.sleep(0.1)
    time.sleep(0.3)
    assert postern.running()
    assert rcpt_limit_seen(postern, 3)
    assert is_queued(postern.deliver("demo@example.test", make_message("after-bad-reload")))
    long_lived.close()


# -- the command line ----------------------------------------------------------

def test_config_check(postern_factory):
    p = postern_factory(start=False, users=False)
    r = p.run_binary(["config", "check", "-c", p.config_path])
    assert r.returncode == 0, r.stdout + r.stderr

    bad = p.workdir / "bad.conf"
    bad.write_text("[server]\n"                   # 1
                   "hostname = mx.example.test\n"  # 2
                   "domains = example.test\n"      # 3
                   "data_dir = relative/path\n"    # 4
                   "[smtp]\n"                      # 5
                   "max_recipients = lots\n"       # 6
                   "listen = nowhere\n"            # 7
                   "max_recipient = 5\n"           # 8
                   "command_timeout = soon\n")     # 9
    r = p.run_binary(["config", "check", "-c", bad])
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    for line in (4, 6, 7, 8, 9):
        assert "%s:%d: " % (bad, line) in out, "no %s:%d: in\n%s" % (bad, line, out)
    assert "max_recipients" in out  # the did-you-mean for line 8

    r = p.run_binary(["config", "check", "-c", p.workdir / "missing.conf"])
    assert r.returncode != 0
    assert str(p.workdir / "missing.conf") in r.stdout + r.stderr


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"], ["user", "--help"], ["alias", "--help"]])
def test_help(postern_factory, argv):
    p = postern_factory(start=False, users=False)
    r = p.run_binary(argv)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"(?i)usage", r.stdout), r.stdout + r.stderr


def test_unknown_subcommand(postern_factory):
    p = postern_factory(start=False, users=False)
    r = p.run_binary(["frobnicate"])
    assert r.returncode != 0, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip()
