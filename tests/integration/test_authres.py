"""
Authentication-Results (RFC 8601 section 5): postern adds one field under
its authserv-id and removes every field in the message that claims that id,
in any case and however folded, so no sender can forge our verdicts; fields
of other authserv-ids stay. And the header block has a bound.
"""
from mailfile import make_message
from smtpconn import is_queued

SENDER = "sender@example.org"


def test_forged_authentication_results_are_removed(postern):
    forged = [
        "Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=ceo@example.test",
        "Authentication-Results: MX.Example.Test;\r\n\tdkim=pass header.d=example.test",
        "Authentication-Results: (comment) mx.example.test; dmarc=pass",
        'Authentication-Results: "mx.example.test"; arc=pass',
        "Authentication-Results: relay.example.net; dkim=pass header.d=example.net",
    ]
    msg = make_message("forged", extra=forged)
    with postern.session() as c:
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], msg))
    m = postern.messages("demo@example.test")[-1]
    assert m.authres == "mx.example.test; none", m.authres
    text = m.rest.decode()
    assert "relay.example.net; dkim=pass" in text
    assert "ceo@example.test" not in text and "dmarc=pass" not in text and "arc=pass" not in text
    assert "header.d=example.test" not in text
    assert text.count("Authentication-Results:") == 1
    assert "event=removed_forged_authres count=4" in postern.log()


def test_header_block_bound(postern_factory):
    pt = postern_factory(config={"smtp": {"max_header_size": "2k"}})
    big = make_message("big", extra=["X-Filler-%d: %s" % (i, "x" * 60) for i in range(40)])
    with pt.session() as c:
        r = c.mail_transaction(SENDER, ["demo@example.test"], big)
        assert r.code == 552 and "5.3.4 Error: message header too big" in r.text, r
        # A message with a small header and a large body is fine.
        ok = make_message("small-head", body=("y" * 70 + "\r\n") * 200)
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], ok))
    assert len(pt.messages("demo@example.test")) == 1
