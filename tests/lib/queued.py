"""
queued: what postern has put in its outbound queue, for tests.

ONE function, queued_messages(postern), reads it through the commands an
administrator would use: `postern queue list --json` for the envelopes and
`postern queue cat QID` for the bytes as they will leave.
"""
import json
import subprocess


class QueuedMessage:
    def __init__(self, qid, mail_from, rcpts, data, origin=None):
        self.qid = qid
        self.mail_from = mail_from
        self.rcpts = rcpts
        self.data = data          # the message bytes as they will leave
        self.origin = origin

    def __repr__(self):
        return "QueuedMessage(%s from=%r rcpts=%r %d bytes)" % (self.qid, self.mail_from, self.rcpts, len(self.data))


def queued_messages(postern):
    """Every message in postern's outbound queue, oldest first."""
    p = postern.cli("queue", "list", "--json")
    assert p.returncode == 0, "postern queue list: rc=%d\n%s" % (p.returncode, p.stderr)
    out = []
    for m in json.loads(p.stdout):
        cat = subprocess.run([str(postern.binary), "-c", str(postern.config_path), "queue", "cat", m["qid"]],
                             capture_output=True, timeout=60)
        assert cat.returncode == 0, cat.stderr
        out.append(QueuedMessage(m["qid"], m["from"], [r["address"] for r in m["recipients"]], cat.stdout,
                                 m.get("origin")))
    return out
