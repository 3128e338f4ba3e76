"""
replies: every reply of docs/smtp.md, spelled once, for the tests to compare
against. Keep this file and docs/smtp.md in step.
"""
H = "mx.example.test"

GREETING = "220 %s ESMTP postern" % H
TOO_MANY_CONNECTIONS = "421 4.7.0 %s Too many connections, try again later" % H
TIMEOUT = "421 4.4.2 %s Timeout, closing connection" % H
TOO_MANY_ERRORS = "421 4.7.0 %s Too many errors, closing connection" % H
SHUTTING_DOWN = "421 4.3.2 %s Service shutting down" % H

HELO_OK = "250 %s" % H
EHLO_SYNTAX = "501 5.5.4 Syntax: EHLO hostname"
NEED_EHLO = "503 5.5.1 Error: send HELO/EHLO first"
MAIL_OK = "250 2.1.0 Ok"
NESTED_MAIL = "503 5.5.1 Error: nested MAIL command"
BAD_SENDER = "501 5.1.7 Bad sender address syntax"
SIZE_TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
UNSUPPORTED_PARAM = "555 5.5.4 Unsupported parameter"
NEEDS_SMTPUTF8 = "553 5.6.7 Non-ASCII address needs SMTPUTF8"
NEED_MAIL = "503 5.5.1 Error: need MAIL command"
RCPT_OK = "250 2.1.5 Ok"
TOO_MANY_RCPTS = "452 4.5.3 Error: too many recipients"
BAD_RCPT = "501 5.1.3 Bad recipient address syntax"
NEED_RCPT = "503 5.5.1 Error: need RCPT command"
DATA_SYNTAX = "501 5.5.4 Syntax: DATA"
DATA_GO = "354 End data with <CR><LF>.<CR><LF>"
MESSAGE_TOO_BIG = "552 5.3.4 Error: message file too big"
BARE_EOL = "554 5.6.0 Error: bare CR or LF in message data (RFC 5321 section 2.3.8)"
DATA_LINE_TOO_LONG = "554 5.6.0 Error: line too long in message data"
DATA_NUL = "554 5.6.0 Error: NUL byte in message data"
DATA_AFTER_BDAT = "503 5.5.1 Error: DATA after BDAT"
BDAT_SYNTAX = "501 5.5.4 Syntax: BDAT size [LAST]"
OK = "250 2.0.0 Ok"
HELP = "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY STARTTLS"
VRFY = "252 2.5.0 Cannot VRFY user, but will accept message"
EXPN = "502 5.5.1 Error: EXPN not available"
BYE = "221 2.0.0 Bye"
UNKNOWN_COMMAND = "500 5.5.2 Error: command not recognized"
LINE_TOO_LONG = "500 5.5.2 Error: line too long"
COMMAND_NUL = "500 5.5.2 Error: NUL byte in command"
STARTTLS_GO = "220 2.0.0 Ready to start TLS"
STARTTLS_SYNTAX = "501 5.5.4 Syntax: STARTTLS"
STARTTLS_UNAVAILABLE = "502 5.5.1 Error: STARTTLS not available"
TLS_ACTIVE = "503 5.5.1 Error: TLS already active"


def user_unknown(addr):
    return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % addr


def relay_denied(addr):
    return "554 5.7.1 <%s>: Relay access denied" % addr


def bdat_ok(n):
    return "250 2.0.0 %d octets received" % n


def ehlo_lines(size=1048576, starttls=True):
    lines = ["250-" + H, "250-PIPELINING", "250-SIZE %d" % size, "250-8BITMIME", "250-SMTPUTF8",
             "250-ENHANCEDSTATUSCODES", "250-CHUNKING"]
    if starttls:
        lines.append("250-STARTTLS")
    lines.append("250 HELP")
    return "\n".join(lines)
