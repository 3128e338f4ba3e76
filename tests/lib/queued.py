"""
queued: what postern has put in its outbound queue, for tests.

ONE function, queued_messages(postern), reads it, so that the tests of
submission and forwarding do not depend on how the queue stores messages.
Today it reads the temporary stand-in src/queue/queue_stub.c writes
(DATA_DIR/queue-stub/QID.json with the envelope, QID.eml with the bytes);
after the merge with the real queue it is re-targeted to
`postern queue list --json` and `postern queue cat QID`.
"""
import json


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
    d = postern.data_dir / "queue-stub"
    if not d.is_dir():
        return []
    out = []
    for j in sorted(d.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        env = json.loads(j.read_text())
        data = j.with_suffix(".eml").read_bytes()
        out.append(QueuedMessage(j.stem, env["mail_from"], env["rcpts"], data, env.get("origin")))
    return out
