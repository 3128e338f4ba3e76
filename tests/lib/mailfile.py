"""
mailfile: reading what postern stored, and building what tests send.

docs/smtp.md: a stored message uses LF line endings and begins with
`Return-Path: <sender>`, then exactly one `Authentication-Results:` of ours
(RFC 8601), then any `Received-SPF:` fields (RFC 7208 9.1), then at most one
`X-Postern-Policy:` (the policy score, when [policy] is enabled), then postern's
`Received:` header (each may be folded over several lines), followed by the
message as the client sent it, less any Authentication-Results field that
claimed our authserv-id.
split_stored() takes such a file apart and fails loudly if its shape is wrong,
so every delivery test also checks the prepended headers.
"""
import re


class StoredMessage:
    def __init__(self, path, data):
        self.path = path
        self.data = data
        lines = data.split(b"\n")
        if not lines or not lines[0].startswith(b"Return-Path: <") or not lines[0].endswith(b">"):
            raise AssertionError("%s: first line is not Return-Path: <...>: %r" % (path, data[:200]))
        self.return_path = lines[0][len(b"Return-Path: <"):-1].decode("utf-8", "replace")
        i = 1

        def take(prefix):
            nonlocal i
            out = []
            while i < len(lines) and lines[i].startswith(prefix):
                field = [lines[i]]
                i += 1
                while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                    field.append(lines[i])
                    i += 1
                out.append(b"\n".join(field))
            return out

        authres = take(b"Authentication-Results: ")
        if len(authres) != 1:
            raise AssertionError("%s: expected one Authentication-Results of ours after Return-Path: %r"
                                 % (path, data[:400]))
        # unfolded, single spaces, without the field name
        self.authres = re.sub(r"\s+", " ", authres[0].decode("utf-8", "replace"))[len("Authentication-Results: "):]
        self.received_spf = take(b"Received-SPF: ")
        policy = take(b"X-Postern-Policy: ")
        if len(policy) > 1:
            raise AssertionError("%s: more than one X-Postern-Policy header of ours: %r" % (path, data[:600]))
        # unfolded, single spaces, without the field name; None when the checks are off
        self.policy = (re.sub(r"\s+", " ", policy[0].decode("utf-8", "replace"))[len("X-Postern-Policy: "):]
                       if policy else None)
        if i >= len(lines) or not lines[i].startswith(b"Received: "):
            raise AssertionError("%s: Return-Path is not followed by our Received header: %r" % (path, data[:300]))
        received = [lines[i]]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            received.append(lines[i])
            i += 1
        self.received_raw = b"\n".join(received)
        # unfolded, single spaces
        self.received = re.sub(r"\s+", " ", b" ".join(received).decode("utf-8", "replace"))[len("Received: "):]
        self.rest = b"\n".join(lines[i:])
        if b"\r" in data:
            raise AssertionError("%s: stored message contains CR (should be LF only): %r" % (path, data[:300]))

    def header(self, name):
        """First value of header `name` in the message part (unfolded), or None."""
        head = self.rest.split(b"\n\n", 1)[0].decode("utf-8", "replace")
        m = re.search(r"(?im)^%s:[ \t]*(.*(?:\n[ \t].*)*)" % re.escape(name), head)
        return re.sub(r"\n[ \t]+", " ", m.group(1)) if m else None

    @property
    def body(self):
        parts = self.rest.split(b"\n\n", 1)
        return parts[1] if len(parts) == 2 else b""

    def __repr__(self):
        return "StoredMessage(%s, %r)" % (self.path, self.data[:120])


def to_lf(data):
    return data.replace(b"\r\n", b"\n")


def make_message(subject="test", body="Hello.\r\n", sender="sender@example.org", to="demo@example.test",
                 extra=()):
    """A small RFC 5322 message with CRLF endings, as bytes."""
    head = [
        "From: <%s>" % sender,
        "To: <%s>" % to,
        "Subject: %s" % subject,
        "Date: Mon, 01 Jan 2024 00:00:00 +0000",
        "Message-ID: <%s@client.example.org>" % re.sub(r"[^A-Za-z0-9.-]", "-", subject),
    ]
    head.extend(extra)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body
