"""
The SMTP dialogue of docs/smtp.md, command by command, with the exact reply
text, and what each accepted message looks like in the Maildir.
"""
import email.utils
import re
import time

import pytest

from mailfile import make_message, to_lf
from replies import (BAD_RCPT, BAD_SENDER, BDAT_SYNTAX, BYE, DATA_AFTER_BDAT, DATA_GO, DATA_SYNTAX,
                     EHLO_SYNTAX, EXPN, GREETING, HELO_OK, HELP, MAIL_OK, MESSAGE_TOO_BIG, NEED_EHLO,
                     NEED_MAIL, NEED_RCPT, NEEDS_SMTPUTF8, NESTED_MAIL, OK, RCPT_OK, SIZE_TOO_BIG,
                     STARTTLS_GO, UNKNOWN_COMMAND, UNSUPPORTED_PARAM, VRFY, bdat_ok, ehlo_lines, relay_denied,
                     user_unknown)
from smtpconn import client_tls_context, is_queued

SENDER = "sender@example.org"


def only_message(postern, address):
    msgs = postern.messages(address)
    assert len(msgs) == 1, "%s has %d messages in new/, expected 1" % (address, len(msgs))
    return msgs[0]


def assert_received_date(received):
    assert ";" in received, "Received header without '; date': %r" % received
    when = email.utils.parsedate_to_datetime(received.rsplit(";", 1)[1].strip())
    assert abs(when.timestamp() - time.time()) < 3600, received


# -- greeting, EHLO, HELO -----------------------------------------------------

def test_greeting_and_quit(postern):
    c = postern.connect()
    assert c.greeting == GREETING
    assert c.cmd("QUIT") == BYE
    closed, extra = c.wait_closed(5)
    assert closed, "connection still open after 221"
    assert extra == b""


def test_ehlo_keywords_with_tls(postern):
    with postern.connect() as c:
        assert c.ehlo() == ehlo_lines(size=1048576, starttls=True)


@pytest.mark.postern_config(tls=False, config={"smtp": {"max_message_size": "2M"}})
def test_ehlo_keywords_without_tls(postern):
    with postern.connect() as c:
        assert c.ehlo() == ehlo_lines(size=2 * 1048576, starttls=False)


def test_ehlo_inside_tls_has_no_starttls(postern):
    with postern.session() as c:
        c.starttls()
        assert c.ehlo() == ehlo_lines(size=1048576, starttls=False)


def test_helo(postern):
    with postern.connect() as c:
        assert c.cmd("HELO client.example.org") == HELO_OK
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("DATA") == DATA_GO
        c.send(make_message("helo") + b".\r\n")
        assert is_queued(c.reply())
    msg = only_message(postern, "demo@example.test")
    assert msg.rest == to_lf(make_message("helo"))


def test_ehlo_helo_without_argument(postern):
    with postern.connect() as c:
        assert c.cmd("EHLO") == EHLO_SYNTAX
        r = c.cmd("HELO")
        assert r.code == 501 and r.text.startswith("501 5.5.4 Syntax: "), r
        # neither counted as a greeting
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == NEED_EHLO
        assert c.ehlo().code == 250


def test_ehlo_twice_resets_transaction(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.ehlo().code == 250
        assert c.cmd("RCPT TO:<demo@example.test>") == NEED_MAIL
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK


# -- simple commands ----------------------------------------------------------

def test_help_noop_vrfy_expn(postern):
    with postern.session() as c:
        assert c.cmd("HELP") == HELP
        assert c.cmd("NOOP") == OK
        assert c.cmd("VRFY demo@example.test") == VRFY
        assert c.cmd("VRFY nobody") == VRFY
        assert c.cmd("EXPN list@example.test") == EXPN
        assert c.cmd("QUIT") == BYE


def test_commands_are_case_insensitive(postern):
    with postern.connect() as c:
        assert c.cmd("ehlo client.example.org").code == 250
        assert c.cmd("noop") == OK
        assert c.cmd("mail from:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("rcpt to:<demo@example.test>") == RCPT_OK
        assert c.cmd("Data") == DATA_GO
        c.send(make_message("lower") + b".\r\n")
        assert is_queued(c.reply())
    assert len(postern.messages("demo@example.test")) == 1


def test_rset_forgets_transaction(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("RSET") == OK
        assert c.cmd("RCPT TO:<demo@example.test>") == NEED_MAIL
        assert c.cmd("DATA") == NEED_RCPT
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK  # not "nested"
        assert c.cmd("RSET") == OK
    assert postern.messages("demo@example.test") == []


def test_unknown_command_and_session_goes_on(postern):
    with postern.session() as c:
        assert c.cmd("FROB") == UNKNOWN_COMMAND
        assert c.cmd("MAILFROM:<a@example.org>") == UNKNOWN_COMMAND
        assert c.cmd("") == UNKNOWN_COMMAND
        assert c.cmd("NOOP") == OK
        assert c.mail_transaction(SENDER, ["demo@example.test"], make_message("after-unknown")).code == 250


# -- order of commands --------------------------------------------------------

def test_mail_before_ehlo(postern):
    with postern.connect() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == NEED_EHLO


def test_rcpt_before_mail(postern):
    with postern.session() as c:
        assert c.cmd("RCPT TO:<demo@example.test>") == NEED_MAIL


def test_data_before_rcpt(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("DATA") == NEED_RCPT
        # a rejected recipient is no recipient either
        assert c.cmd("RCPT TO:<nobody@example.test>") == user_unknown("nobody@example.test")
        assert c.cmd("DATA") == NEED_RCPT
        assert c.cmd("NOOP") == OK


def test_nested_mail(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("MAIL FROM:<other@example.org>") == NESTED_MAIL
        # the first sender still holds
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("DATA") == DATA_GO
        c.send(make_message("nested") + b".\r\n")
        assert is_queued(c.reply())
    assert only_message(postern, "demo@example.test").return_path == SENDER


def test_data_with_argument(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("DATA now") == DATA_SYNTAX
        assert c.cmd("DATA") == DATA_GO
        c.send(make_message("data-arg") + b".\r\n")
        assert is_queued(c.reply())


def test_two_messages_in_one_session(postern):
    with postern.session() as c:
        assert c.mail_transaction(SENDER, ["demo@example.test"], make_message("first")).code == 250
        assert c.mail_transaction("other@example.org", ["demo@example.test"], make_message("second")).code == 250
        assert c.cmd("QUIT") == BYE
    msgs = postern.messages("demo@example.test")
    assert sorted(m.header("Subject") for m in msgs) == ["first", "second"]
    assert sorted(m.return_path for m in msgs) == ["other@example.org", SENDER]


# -- addresses and parameters -------------------------------------------------

@pytest.mark.parametrize("addr", ["<user@@example.org>", "<user@>", "<@example.org>", "<user@exa..mple.org>",
                                  "<.user@example.org>"])
def test_mail_bad_address(postern, addr):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:%s" % addr) == BAD_SENDER
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK


@pytest.mark.parametrize("addr", ["<demo@@example.test>", "<demo@>", "<@example.test>", "<demo@exa..mple.test>"])
def test_rcpt_bad_address(postern, addr):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:%s" % addr) == BAD_RCPT
        assert c.cmd("DATA") == NEED_RCPT


def test_rcpt_unknown_user(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<nobody@example.test>") == user_unknown("nobody@example.test")
        assert c.cmd("RCPT TO:<other@foreign.test>") == relay_denied("other@foreign.test")
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK


def test_null_sender(postern):
    with postern.session() as c:
        assert c.mail_transaction("", ["demo@example.test"], make_message("bounce", sender="")).code == 250
    assert only_message(postern, "demo@example.test").return_path == ""


def test_size_parameter(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s> SIZE=1048577" % SENDER) == SIZE_TOO_BIG
        assert c.cmd("MAIL FROM:<%s> SIZE=1048576" % SENDER) == MAIL_OK
        assert c.cmd("RSET") == OK
        assert c.cmd("MAIL FROM:<%s> SIZE=1000" % SENDER) == MAIL_OK


def test_size_parameter_twenty_digits(postern):
    """RFC 1870: size-value ::= 1*20DIGIT, so a 20-digit SIZE is well-formed
    and merely too big."""
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s> SIZE=99999999999999999999" % SENDER) == SIZE_TOO_BIG
        assert c.cmd("MAIL FROM:<%s> SIZE=18446744073709551616" % SENDER) == SIZE_TOO_BIG


def test_unknown_mail_parameter(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s> FOO=BAR" % SENDER) == UNSUPPORTED_PARAM
        assert c.cmd("MAIL FROM:<%s> BODY=8BITMIME" % SENDER) == MAIL_OK
        assert c.cmd("RSET") == OK
        assert c.cmd("MAIL FROM:<%s> BODY=7BIT" % SENDER) == MAIL_OK


def test_smtputf8_address_accepted(postern):
    msg = make_message("utf8", body="Grüße aus Köln.\r\n", sender="jörg@exämple.org")
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<jörg@exämple.org> SMTPUTF8") == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("RCPT TO:<jörg@example.test>") == user_unknown("jörg@example.test")
        assert c.cmd("DATA") == DATA_GO
        c.send(msg + b".\r\n")
        assert is_queued(c.reply())
    m = only_message(postern, "demo@example.test")
    assert m.return_path == "jörg@exämple.org"
    assert m.rest == to_lf(msg)


def test_non_ascii_address_needs_smtputf8(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<jörg@example.org>") == NEEDS_SMTPUTF8
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<jörg@example.test>") == NEEDS_SMTPUTF8
        assert c.cmd("RCPT TO:<demo@exämple.test>") == NEEDS_SMTPUTF8
        assert c.cmd("DATA") == NEED_RCPT


def test_8bitmime_body_byte_exact(postern):
    body = "Grüße, 日本語, ½ €.\r\n".encode("utf-8") + b"latin-1 \xe9t\xe9 \xff\r\n"
    msg = make_message("8bit", body=body, extra=["MIME-Version: 1.0",
                                                 "Content-Type: text/plain; charset=utf-8",
                                                 "Content-Transfer-Encoding: 8bit"])
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s> BODY=8BITMIME" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("DATA") == DATA_GO
        c.send(msg + b".\r\n")
        assert is_queued(c.reply())
    assert only_message(postern, "demo@example.test").rest == to_lf(msg)


def test_dot_stuffing_undone(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("DATA") == DATA_GO
        c.send(b"Subject: dots\r\n\r\n..x\r\n...\r\n..\r\n.y.\r\nend\r\n.\r\n")
        assert is_queued(c.reply())
    # ".y." is not stuffed by the client; RFC 5321 4.5.2 says a server
    # removes only a leading dot of a line that starts with one.
    assert only_message(postern, "demo@example.test").rest == b"Subject: dots\n\n.x\n..\n.\ny.\nend\n"


def test_body_byte_exact(postern):
    msg = (b"Received: from earlier.example.org by relay.example.org; Mon, 01 Jan 2024 00:00:00 +0000\r\n"
           b"From: Sender Name <sender@example.org>\r\n"
           b"To: demo@example.test\r\n"
           b"Subject: a folded\r\n"
           b"\tsubject line   \r\n"
           b"X-Trailing-Space: yes   \r\n"
           b"X-Empty:\r\n"
           b"\r\n"
           b"From the start of a line\r\n"
           b"\r\n"
           b"   \r\n"
           b"\ttab\tseparated\t\r\n"
           + b"x" * 998 + b"\r\n"
           b".leading dot\r\n"
           b".\r\n"
           b"last line\r\n")
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], msg))
    m = only_message(postern, "demo@example.test")
    assert m.rest == to_lf(msg)
    assert m.return_path == SENDER


# -- recipients ---------------------------------------------------------------

def test_several_local_recipients(postern):
    msg = make_message("several")
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["alice@example.test", "bob@example.test", "demo@example.test"],
                                            msg))
    for a in ("alice@example.test", "bob@example.test", "demo@example.test"):
        assert only_message(postern, a).rest == to_lf(msg)
    assert postern.messages("carol@example.test") == []


def test_alias_fan_out(postern):
    msg = make_message("alias")
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["list@example.test"], msg))
    for a in ("alice@example.test", "bob@example.test"):
        assert only_message(postern, a).rest == to_lf(msg)
    assert postern.messages("demo@example.test") == []
    assert not postern.maildir("list@example.test").exists()


def test_subaddress(postern):
    msg = make_message("subaddress")
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo+tag@example.test"], msg))
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<nobody+tag@example.test>") == user_unknown("nobody+tag@example.test")
    assert only_message(postern, "demo@example.test").rest == to_lf(msg)
    assert not postern.maildir("demo+tag@example.test").exists()


def test_catch_all(postern):
    msg = make_message("catch-all")
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["anything@catch.test"], msg))
        # the catch-all covers catch.test only
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<anything@example.test>") == user_unknown("anything@example.test")
    assert only_message(postern, "catchall@example.test").rest == to_lf(msg)


def test_case_insensitive_addresses(postern):
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo@EXAMPLE.TEST"], make_message("upper-domain")))
        assert is_queued(c.mail_transaction(SENDER, ["Alice@Example.Test"], make_message("mixed")))
    assert only_message(postern, "demo@example.test").header("Subject") == "upper-domain"
    assert only_message(postern, "alice@example.test").header("Subject") == "mixed"


# -- the headers postern adds -------------------------------------------------

def test_received_and_return_path_plain(postern):
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], make_message("plain")))
    m = only_message(postern, "demo@example.test")
    assert m.data.startswith(b"Return-Path: <%s>\nAuthentication-Results: mx.example.test; none\nReceived: " % SENDER.encode())
    assert m.return_path == SENDER
    r = m.received
    assert "client.example.org" in r and "127.0.0.1" in r, r
    assert "by mx.example.test" in r, r
    assert re.search(r"\bwith ESMTP\b", r), r
    assert "ESMTPS" not in r, r
    assert_received_date(r)


def test_received_over_tls(postern, cert):
    ctx = client_tls_context(cafile=str(cert[0]))
    with postern.session() as c:
        c.starttls(ctx)
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        assert c.ehlo().code == 250
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], make_message("tls")))
    r = only_message(postern, "demo@example.test").received
    assert re.search(r"\bwith ESMTPS\b", r), r
    assert version in r, (version, r)
    assert cipher in r, (cipher, r)
    assert_received_date(r)


# -- PIPELINING ---------------------------------------------------------------

def test_pipelining(postern):
    msg = make_message("pipelined")
    with postern.session() as c:
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\n"
               "RCPT TO:<bob@example.test>\r\nDATA\r\n" % SENDER)
        assert c.replies(5) == [MAIL_OK, RCPT_OK, user_unknown("nobody@example.test"), RCPT_OK, DATA_GO]
        c.send(msg + b".\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        r = c.replies(4)
        assert is_queued(r[0]), r
        assert r[1:] == [OK, OK, BYE]
        assert c.wait_closed(5)[0]
    for a in ("alice@example.test", "bob@example.test"):
        assert only_message(postern, a).rest == to_lf(msg)


def test_pipelining_whole_session(postern):
    """EHLO waits for its reply (RFC 2920), everything after it is one write."""
    with postern.connect() as c:
        assert c.ehlo().code == 250
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n" % SENDER)
        assert c.replies(3) == [MAIL_OK, RCPT_OK, DATA_GO]
        c.send(make_message("one") + b".\r\nMAIL FROM:<%s>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n" % SENDER.encode())
        r = c.replies(4)
        assert is_queued(r[0]) and r[1:] == [MAIL_OK, RCPT_OK, DATA_GO], r
        c.send(make_message("two") + b".\r\nQUIT\r\n")
        r = c.replies(2)
        assert is_queued(r[0]) and r[1] == BYE, r
    assert sorted(m.header("Subject") for m in postern.messages("demo@example.test")) == ["one", "two"]


# -- BDAT / CHUNKING (RFC 3030) -----------------------------------------------

def bdat(c, chunk, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return c.reply()


def test_bdat_chunks(postern):
    chunks = [b"Subject: bdat\r\nFrom: <sender@example.org>\r\n\r\n", b"first line\r\n..two dots stay\r\n",
              b".\r\nlast line\r\n"]
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert bdat(c, chunks[0]) == bdat_ok(len(chunks[0]))
        assert bdat(c, chunks[1]) == bdat_ok(len(chunks[1]))
        assert is_queued(bdat(c, chunks[2], last=True))
        assert c.cmd("NOOP") == OK
    # BDAT data is not dot-stuffed: stored as sent, CRLF -> LF
    assert only_message(postern, "demo@example.test").rest == to_lf(b"".join(chunks))


def test_bdat_zero_last(postern):
    chunks = [b"Subject: bdat0\r\n\r\n", b"body\r\n"]
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert bdat(c, chunks[0]) == bdat_ok(len(chunks[0]))
        assert bdat(c, chunks[1]) == bdat_ok(len(chunks[1]))
        assert is_queued(bdat(c, b"", last=True))
    assert only_message(postern, "demo@example.test").rest == b"Subject: bdat0\n\nbody\n"


def test_bdat_pipelined(postern):
    chunks = [b"Subject: bdat-pipe\r\n\r\n", b"a" * 5000 + b"\r\n", b"end\r\n"]
    with postern.session() as c:
        c.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<demo@example.test>\r\n"
               + b"".join(b"BDAT %d\r\n" % len(x) + x for x in chunks) + b"BDAT 0 LAST\r\nQUIT\r\n")
        r = c.replies(7)
        assert r[:5] == [MAIL_OK, RCPT_OK] + [bdat_ok(len(x)) for x in chunks], r
        assert is_queued(r[5]) and r[6] == BYE, r
    assert only_message(postern, "demo@example.test").rest == to_lf(b"".join(chunks))


def test_bdat_crlf_split_across_chunks(postern):
    chunks = [b"Subject: split\r", b"\n\r\nbody\r", b"\n"]
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert bdat(c, chunks[0]) == bdat_ok(len(chunks[0]))
        assert bdat(c, chunks[1]) == bdat_ok(len(chunks[1]))
        assert is_queued(bdat(c, chunks[2], last=True))
    assert only_message(postern, "demo@example.test").rest == b"Subject: split\n\nbody\n"


def test_bdat_last_without_rcpt_consumes_data(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<nobody@example.test>") == user_unknown("nobody@example.test")
        # "QUIT\r\n" is the chunk; were it not consumed, the session would end
        c.send(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
        assert c.replies(2) == [NEED_RCPT, OK]
    assert postern.all_message_files() == []


def test_bdat_chunk_without_rcpt_consumes_data(postern):
    """docs/smtp.md: BDAT without valid RCPT: data consumed, then 503 -- for
    every chunk, not only the LAST one."""
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<nobody@example.test>") == user_unknown("nobody@example.test")
        # "NOOP" right behind the chunk: if the chunk were not consumed,
        # "helloNOOP" would be read as a command.
        c.send(b"BDAT 5\r\nhelloNOOP\r\n")
        assert c.replies(2) == [NEED_RCPT, OK]
    assert postern.all_message_files() == []


def test_data_after_bdat(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert bdat(c, b"Subject: x\r\n") == bdat_ok(12)
        assert c.cmd("DATA") == DATA_AFTER_BDAT
        assert c.cmd("RSET") == OK
        assert c.cmd("NOOP") == OK
    assert postern.all_message_files() == []


@pytest.mark.parametrize("line", [b"BDAT", b"BDAT abc", b"BDAT -1", b"BDAT 1x",
                                  b"BDAT 99999999999999999999999"])
def test_bdat_bad_size_closes(postern, line):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        c.send(line + b"\r\nhello")
        assert c.reply() == BDAT_SYNTAX
        closed, extra = c.wait_closed(5)
        assert closed and extra == b"", (closed, extra)
    assert postern.all_message_files() == []


def test_bdat_over_message_size(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        chunk = (b"y" * 998 + b"\r\n") * 600  # 600000 bytes, limit is 1 MiB
        assert bdat(c, chunk) == bdat_ok(len(chunk))
        assert bdat(c, chunk, last=True) == MESSAGE_TOO_BIG
        assert c.cmd("NOOP") == OK
    assert postern.all_message_files() == []


# -- IPv6 ---------------------------------------------------------------------

def test_ipv6_listener(postern):
    msg = make_message("ipv6")
    with postern.session(host="::1") as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], msg))
    m = only_message(postern, "demo@example.test")
    assert m.rest == to_lf(msg)
    assert "::1" in m.received, m.received


def test_starttls_reply(postern):
    with postern.session() as c:
        assert c.cmd("STARTTLS") == STARTTLS_GO
        c.starttls_wrap()
        assert c.ehlo().code == 250
        assert c.cmd("NOOP") == OK
