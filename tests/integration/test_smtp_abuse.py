"""
Hostile and broken clients: every bound of docs/smtp.md is crossed, SMTP
smuggling is attempted with every end-of-data look-alike, clients stall and
crowd. Each test ends by checking that a fresh client still gets its message
delivered.
"""
import os
import random
import re
import socket
import struct
import threading
import time

import pytest

from mailfile import make_message, to_lf
from replies import (BARE_EOL, BYE, COMMAND_NUL, DATA_GO, DATA_LINE_TOO_LONG, DATA_NUL, GREETING, LINE_TOO_LONG,
                     MAIL_OK, MESSAGE_TOO_BIG, OK, RCPT_OK, TIMEOUT, TOO_MANY_CONNECTIONS, TOO_MANY_ERRORS,
                     TOO_MANY_RCPTS, UNKNOWN_COMMAND, VRFY, bdat_ok)
from smtpconn import ServerClosed, is_queued

LIMITS = {"max_command_line": "512", "max_data_line": "1000", "max_message_size": "64k",
          "max_recipients": "5", "max_errors": "5"}
pytestmark = pytest.mark.postern_config(config={"smtp": LIMITS})
SENDER = "sender@example.org"


def assert_still_serves(postern):
    before = len(postern.messages("carol@example.test"))
    r = postern.deliver("carol@example.test", make_message("still-serving"))
    assert is_queued(r), r
    assert len(postern.messages("carol@example.test")) == before + 1


def start_data(c, rcpts=("demo@example.test",)):
    assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
    for r in rcpts:
        assert c.cmd("RCPT TO:<%s>" % r) == RCPT_OK
    assert c.cmd("DATA") == DATA_GO


# -- command lines ------------------------------------------------------------

def test_command_line_limit_boundary(postern):
    with postern.session() as c:
        # 512 bytes with CRLF: accepted; 513: too long
        assert c.cmd("VRFY " + "a" * 505) == VRFY
        assert c.cmd("VRFY " + "a" * 506) == LINE_TOO_LONG
        assert c.cmd("NOOP") == OK
    assert_still_serves(postern)


def test_overlong_command_line(postern):
    with postern.session() as c:
        # The part past the limit must not become a command of its own: if
        # the server split the line, "QUIT" would end the session.
        c.send(b"NOOP " + b"x" * 507 + b"QUIT\r\nNOOP\r\n")
        assert c.replies(2) == [LINE_TOO_LONG, OK]
        c.send(b"MAIL FROM:<" + b"a" * 100000 + b"@example.org>\r\nNOOP\r\n")
        assert c.replies(2) == [LINE_TOO_LONG, OK]
        assert c.pending(0.3) == b""
        assert c.mail_transaction(SENDER, ["demo@example.test"], make_message("after-long")).code == 250
    assert len(postern.messages("demo@example.test")) == 1
    assert_still_serves(postern)


def test_nul_in_command(postern):
    with postern.session() as c:
        assert c.cmd(b"NO\x00OP") == COMMAND_NUL
        assert c.cmd(b"MAIL FROM:<a\x00b@example.org>") == COMMAND_NUL
        assert c.cmd(b"\x00") == COMMAND_NUL
        assert c.cmd("NOOP") == OK
    assert_still_serves(postern)


def test_binary_junk(postern):
    rnd = random.Random(5321)
    with postern.session() as c:
        for _ in range(3):
            junk = b"\xff" + bytes(b for b in rnd.randbytes(300) if b not in (10, 13))
            r = c.cmd(junk)
            assert r in (UNKNOWN_COMMAND, COMMAND_NUL), r
        assert c.cmd("NOOP") == OK
    # junk without any line end, then the client goes away
    with postern.connect() as c:
        c.send(bytes(b for b in rnd.randbytes(4000) if b not in (10, 13)))
        assert c.reply() == LINE_TOO_LONG
    # a TLS ClientHello where a command should be
    with postern.connect() as c:
        c.send(bytes.fromhex("16030100a5010000a10303") + rnd.randbytes(200))
        time.sleep(0.3)
    assert_still_serves(postern)


def test_pipelined_flood(postern):
    """20000 pipelined NOOPs from a client that reads its replies only a
    second later: all answered, nothing lost, nothing else."""
    n = 20000
    with postern.session() as c:
        got = []

        def reader():
            time.sleep(1)
            try:
                for _ in range(n):
                    got.append(c.reply())
            except Exception as e:  # noqa: BLE001
                got.append(e)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        c.send(b"NOOP\r\n" * n)
        t.join(60)
        assert not t.is_alive(), "only %d of %d replies" % (len(got), n)
        assert len(got) == n and all(r == OK for r in got), [r for r in got if r != OK][:3]
        assert c.pending(0.2) == b""
        assert c.cmd("QUIT") == BYE
    assert_still_serves(postern)


def test_max_errors(postern):
    with postern.session() as c:
        replies = [c.cmd("FROB") for _ in range(5)]
        assert replies == [UNKNOWN_COMMAND] * 5
        r = c.cmd("FROB")  # the sixth error is more than max_errors = 5
        if r == UNKNOWN_COMMAND:
            r = c.reply()
        assert r == TOO_MANY_ERRORS
        closed, extra = c.wait_closed(5)
        assert closed and extra == b"", (closed, extra)
    assert_still_serves(postern)


def test_errors_of_every_kind_count(postern):
    with postern.session() as c:
        assert c.cmd("RCPT TO:<demo@example.test>").code == 503
        assert c.cmd("MAIL FROM:<%s> FOO=1" % SENDER).code == 555
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        assert c.cmd("RCPT TO:<x@foreign.test>").code == 554
        assert c.cmd("EXPN x").code == 502
        r = c.cmd("FROB")
        if r == UNKNOWN_COMMAND:
            r = c.reply()
        assert r == TOO_MANY_ERRORS
        assert c.wait_closed(5)[0]
    assert_still_serves(postern)


# -- message data -------------------------------------------------------------

def test_data_line_limit_boundary(postern):
    ok_msg = b"Subject: long\r\n\r\n" + b"a" * 998 + b"\r\n"
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], ok_msg))
        start_data(c)
        c.send(b"Subject: too long\r\n\r\n" + b"a" * 999 + b"\r\n.\r\n")
        assert c.reply() == DATA_LINE_TOO_LONG
        assert c.pending(0.3) == b""
        assert c.cmd("NOOP") == OK
    msgs = postern.messages("demo@example.test")
    assert len(msgs) == 1 and msgs[0].rest == to_lf(ok_msg)
    assert_still_serves(postern)


def test_overlong_data_line(postern):
    with postern.session() as c:
        start_data(c)
        # 999 characters and CRLF, one over max_data_line = 1000. Were the line
        # cut at the limit, its tail ".\r\n" would end the data and "QUIT"
        # would be read as a command.
        c.send(b"Subject: x\r\n\r\n" + b"b" * 998 + b".\r\nQUIT\r\n" + b"c" * 20000 + b"\r\nmore\r\n.\r\n")
        assert c.reply() == DATA_LINE_TOO_LONG
        assert c.pending(0.5) == b""
        assert c.cmd("NOOP") == OK
    assert postern.all_message_files() == []
    assert_still_serves(postern)


def test_message_over_max_size(postern):
    big = b"Subject: big\r\n\r\n" + (b"z" * 78 + b"\r\n") * 1000  # 80 kB > 64 kB
    fits = b"Subject: fits\r\n\r\n" + (b"z" * 78 + b"\r\n") * 700  # 56 kB
    with postern.session() as c:
        start_data(c)
        c.send(big + b".\r\n")
        assert c.reply() == MESSAGE_TOO_BIG
        assert c.pending(0.3) == b""
        assert c.cmd("NOOP") == OK
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], fits))
    msgs = postern.messages("demo@example.test")
    assert len(msgs) == 1 and msgs[0].header("Subject") == "fits"
    assert_still_serves(postern)


def test_too_many_recipients(postern):
    msg = make_message("five")
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        for i in range(1, 6):
            assert c.cmd("RCPT TO:<u%d@example.test>" % i) == RCPT_OK
        assert c.cmd("RCPT TO:<u6@example.test>") == TOO_MANY_RCPTS
        assert c.cmd("RCPT TO:<demo@example.test>") == TOO_MANY_RCPTS
        assert c.cmd("DATA") == DATA_GO
        c.send(msg + b".\r\n")
        assert is_queued(c.reply())
    for i in range(1, 6):
        assert len(postern.messages("u%d@example.test" % i)) == 1
    assert postern.messages("u6@example.test") == []
    assert postern.messages("demo@example.test") == []
    assert_still_serves(postern)


def test_client_vanishes_mid_data(postern):
    c = postern.session()
    start_data(c)
    c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    c.close()
    time.sleep(0.3)
    assert_still_serves(postern)
    assert postern.messages("demo@example.test") == []


# -- SMTP smuggling -----------------------------------------------------------

SEQUENCES = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.LF": b"\r\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "CR.CRLF": b"\r.\r\n",
    "LF.CR": b"\n.\r",
    "CR.LF": b"\r.\n",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "CRLF.LFCRLF": b"\r\n.\n\r\n",
    "CRLF-NUL.CRLF": b"\r\n\x00.\r\n",
    "CRLF.NUL-CRLF": b"\r\n.\x00\r\n",
}
SMUGGLED = (b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled body\r\n")


def smuggle(postern, seq):
    """Sends a message whose body holds seq and a whole smuggled transaction,
    then the real CRLF.CRLF. Returns (the one reply, content sent)."""
    content = b"Subject: real\r\n\r\nreal body" + seq + SMUGGLED
    with postern.session() as c:
        start_data(c)
        c.send(content + b".\r\n")
        r = c.reply()
        extra = c.pending(0.5)
        assert extra == b"", "more than one reply to one DATA: %r then %r" % (r, extra)
        assert c.cmd("NOOP") == OK
        assert c.cmd("QUIT") == BYE
    return r, content


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_smuggling_rejected(postern, name):
    seq = SEQUENCES[name]
    r, _ = smuggle(postern, seq)
    assert r == (DATA_NUL if b"\x00" in seq else BARE_EOL)
    assert postern.all_message_files() == []
    assert_still_serves(postern)
    assert postern.messages("demo@example.test") == []


@pytest.mark.postern_config(config={"smtp": dict(LIMITS, bare_line_endings="normalise")})
@pytest.mark.parametrize("name", list(SEQUENCES))
def test_smuggling_normalised(postern, name):
    seq = SEQUENCES[name]
    r, content = smuggle(postern, seq)
    if b"\x00" in seq:
        assert r == DATA_NUL
        assert postern.all_message_files() == []
    else:
        assert is_queued(r), r
        files = postern.all_message_files()
        assert len(files) == 1, files
        msgs = postern.messages("demo@example.test")
        assert len(msgs) == 1
        rest = msgs[0].rest
        assert b"MAIL FROM:<evil@example.org>" in rest and b"smuggled body" in rest
        # every bare CR and LF became a line end, stored as LF. (A line that
        # is a lone dot may lose it: "." + bare LF is read as a stuffed dot.)
        want = re.sub(rb"\r\n|\r|\n", b"\n", content).split(b"\n")
        got = rest.split(b"\n")
        assert len(got) == len(want) and all(g == w or (w == b"." and g == b"") for g, w in zip(got, want)), \
            (rest, b"\n".join(want))
        assert msgs[0].return_path == SENDER
    assert_still_serves(postern)


# -- stalled and crowding clients ---------------------------------------------

def read_timeout(c, since, low, high):
    r = c.reply()
    took = time.monotonic() - since
    assert r == TIMEOUT
    assert low <= took <= high, "timeout came after %.1fs" % took
    closed, extra = c.wait_closed(3)
    assert closed and extra == b"", (closed, extra)


@pytest.mark.postern_config(config={"smtp": dict(LIMITS, command_timeout="2s", data_timeout="30s")})
def test_command_timeout(postern):
    idle = postern.session()
    t0 = time.monotonic()
    silent = postern.connect()  # never says anything
    partial = postern.session()
    partial.send(b"NOOP")  # half a command, no line end
    tls_stall = postern.session()
    assert tls_stall.cmd("STARTTLS").code == 220  # and then no handshake
    # meanwhile another client is served
    assert_still_serves(postern)
    assert time.monotonic() - t0 < 1.5, "serving took too long to test the timeout"
    for c in (idle, silent, partial):
        read_timeout(c, t0, 1.5, 6)
    # no 421 is possible in the middle of a TLS handshake: only the close
    closed, _ = tls_stall.wait_closed(6 - (time.monotonic() - t0))
    assert closed, "a client that never did the TLS handshake was not timed out"
    assert_still_serves(postern)


@pytest.mark.postern_config(config={"smtp": dict(LIMITS, command_timeout="30s", data_timeout="2s")})
def test_data_timeout(postern):
    a = postern.session()
    start_data(a)
    a.send(b"Subject: stalled\r\n\r\npartial line")
    t0 = time.monotonic()
    b = postern.session()
    assert b.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
    assert b.cmd("RCPT TO:<carol@example.test>") == RCPT_OK
    b.send(b"BDAT 100\r\n0123456789")  # 90 octets never come
    assert_still_serves(postern)
    read_timeout(a, t0, 1.5, 6)
    read_timeout(b, t0, 1.5, 6)
    assert postern.messages("demo@example.test") == []
    assert_still_serves(postern)


@pytest.mark.postern_config(config={"smtp": dict(LIMITS, command_timeout="30s", data_timeout="1s")})
def test_slow_but_steady_data_is_not_timed_out(postern):
    with postern.session() as c:
        start_data(c)
        c.send(b"Subject: slow\r\n\r\n")
        for i in range(6):  # 3 s in all, never 1 s without data
            time.sleep(0.5)
            c.send(b"line %d\r\n" % i)
        c.send(b".\r\n")
        assert is_queued(c.reply())
    assert len(postern.messages("demo@example.test")) == 1


@pytest.mark.postern_config(config={"smtp": dict(LIMITS, max_connections_per_client="2")})
def test_max_connections_per_client(postern):
    a = postern.session()
    b = postern.session()
    c = postern.connect(greeting=False)
    assert c.reply() == TOO_MANY_CONNECTIONS
    closed, extra = c.wait_closed(3)
    assert closed and extra == b""
    # the two sessions are unharmed
    assert b.cmd("NOOP") == OK
    assert a.cmd("QUIT") == BYE
    assert a.wait_closed(3)[0]
    # a slot is free again
    d = postern.connect()
    assert d.greeting == GREETING
    assert d.ehlo().code == 250
    assert is_queued(d.mail_transaction(SENDER, ["demo@example.test"], make_message("third")))
    for s in (d, b):
        assert s.cmd("QUIT") == BYE
        assert s.wait_closed(3)[0]
        s.close()
    assert_still_serves(postern)
    # clients that vanish with a reset also give their slot back
    for _ in range(3):
        x, y = postern.session(), postern.session()
        for s in (x, y):
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        deadline = time.monotonic() + 3
        while True:
            z = postern.connect(greeting=False)
            r = z.reply()
            z.close()
            if r == GREETING:
                break
            assert r == TOO_MANY_CONNECTIONS, r
            assert time.monotonic() < deadline, "slots of reset connections were not released"
            time.sleep(0.05)
    time.sleep(0.2)
    assert_still_serves(postern)


@pytest.mark.postern_config(config={"smtp": dict(LIMITS, max_connections="2")})
def test_max_connections(postern):
    a = postern.session(host="127.0.0.1")
    b = postern.session(host="::1")
    c = postern.connect(greeting=False)
    assert c.reply() == TOO_MANY_CONNECTIONS
    assert c.wait_closed(3)[0]
    a.cmd("QUIT")
    a.wait_closed(3)
    b.cmd("QUIT")
    b.wait_closed(3)
    assert_still_serves(postern)


def test_bdat_chunk_pipelined_with_junk(postern):
    """Command-looking bytes inside a BDAT chunk are data, never commands."""
    chunk = b"Subject: chunk\r\n\r\nQUIT\r\nRSET\r\n.\r\n"
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk + b"BDAT 0 LAST\r\nNOOP\r\n")
        r = c.replies(3)
        assert r[0] == bdat_ok(len(chunk)) and is_queued(r[1]) and r[2] == OK, r
    assert postern.messages("demo@example.test")[0].rest == to_lf(chunk)
    assert_still_serves(postern)


def test_connection_after_abuse_greeting_intact(postern):
    """Junk sent before the greeting (early talker) does not break others."""
    c = postern.connect(greeting=False)
    c.send(b"EHLO early\r\nMAIL FROM:<x@example.org>\r\n")
    try:
        r = c.reply()
        assert r == GREETING or r.code in (421, 554), r
    except ServerClosed:
        pass
    c.close()
    assert_still_serves(postern)


def test_delivery_failure_is_451_and_all_or_nothing(postern):
    """A mailbox the daemon cannot write to: 451 4.3.0, and the copy already
    made for the other recipient is taken back (docs/architecture.md)."""
    md = postern.maildir("demo@example.test")
    for sub in ("", "tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    # root-owned and read-only for the daemon's user
    for sub in ("tmp", "new", "cur", ""):
        os.chown(md / sub, 0, 0)
        (md / sub).chmod(0o755)
    with postern.session() as c:
        r = c.mail_transaction(SENDER, ["alice@example.test", "demo@example.test"], make_message("fails"))
        assert r == "451 4.3.0 Error: local delivery failed, try again later"
        assert c.cmd("NOOP") == OK
    assert postern.messages("alice@example.test") == []
    assert postern.messages("demo@example.test") == []
    assert_still_serves(postern)
