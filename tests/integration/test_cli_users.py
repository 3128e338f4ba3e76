"""
`postern user ...` and `postern alias ...`: exit statuses (0 ok, 1 failure,
2 usage, see src/cli.h), plain and --json listings, passwords stored as crypt
hashes, and that the running daemon sees changes at once.
"""
import json
import warnings

import pytest

from mailfile import make_message
from posterntest import json_strings, stored_hash
from replies import MAIL_OK, RCPT_OK, user_unknown
from smtpconn import is_queued

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt


@pytest.fixture
def store(postern_factory):
    """A postern with an empty store, not running."""
    return postern_factory(start=False, users=False)


def ok(p):
    assert p.returncode == 0, "rc=%d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr)
    return p


def listed_users(pt):
    return set(ok(pt.cli("user", "list")).stdout.split())


def json_listing(pt, what):
    p = ok(pt.cli(what, "list", "--json"))
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        raise AssertionError("%s list --json is not JSON (%s): %r" % (what, e, p.stdout))


def test_user_add_list_del(store):
    ok(store.cli("user", "add", "demo@example.test", "--no-password"))
    ok(store.cli("user", "add", "Alice@Example.TEST", "--no-password"))
    assert listed_users(store) >= {"demo@example.test", "alice@example.test"}
    assert "Alice@Example.TEST" not in listed_users(store)

    p = store.cli("user", "add", "demo@example.test", "--no-password")
    assert p.returncode == 1 and p.stderr.strip(), (p.returncode, p.stderr)

    ok(store.cli("user", "del", "demo@example.test"))
    assert "demo@example.test" not in listed_users(store)
    assert "alice@example.test" in listed_users(store)
    p = store.cli("user", "del", "demo@example.test")
    assert p.returncode == 1 and p.stderr.strip()


def test_user_list_json(store):
    ok(store.cli("user", "add", "demo@example.test", "--no-password"))
    ok(store.cli("user", "add", "bob@example.test", "--password-stdin", input="pw-bob\n"))
    data = json_listing(store, "user")
    strings = set(json_strings(data))
    assert {"demo@example.test", "bob@example.test"} <= strings, data
    assert "pw-bob" not in json.dumps(data)
    # if entries are objects with a password flag, it must be right
    if isinstance(data, list) and data and isinstance(data[0], dict):
        by_addr = {next(v for v in e.values() if isinstance(v, str) and "@" in v): e for e in data}
        for addr, has in (("demo@example.test", False), ("bob@example.test", True)):
            flags = [v for k, v in by_addr[addr].items() if "pass" in k.lower() and isinstance(v, bool)]
            if flags:
                assert flags[0] is has, by_addr[addr]


def test_user_add_foreign_domain(store):
    p = store.cli("user", "add", "someone@other.test", "--no-password")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "other.test" in p.stderr
    assert "someone@other.test" not in listed_users(store)


@pytest.mark.parametrize("addr", ["not-an-address", "@example.test", "a/b@example.test", ".hidden@example.test"])
def test_user_add_bad_address(store, addr):
    p = store.cli("user", "add", addr, "--no-password")
    assert p.returncode in (1, 2), (p.returncode, p.stdout, p.stderr)
    assert p.stderr.strip()
    assert addr.lower() not in listed_users(store)


def test_user_passwd(store):
    ok(store.cli("user", "add", "demo@example.test", "--password-stdin", input="first-pw\n"))
    h1 = stored_hash(store, "demo@example.test")
    assert h1 and "first-pw" not in h1
    assert crypt.crypt("first-pw", h1) == h1, "stored value is not a crypt hash of the password"

    p = ok(store.cli("user", "passwd", "demo@example.test", "--password-stdin", input="second-pw\n"))
    assert "second-pw" not in p.stdout + p.stderr
    h2 = stored_hash(store, "demo@example.test")
    assert h2 != h1
    assert crypt.crypt("second-pw", h2) == h2
    assert crypt.crypt("first-pw", h2) != h2

    p = store.cli("user", "passwd", "nobody@example.test", "--password-stdin", input="x-pw\n")
    assert p.returncode == 1 and p.stderr.strip()


def test_alias_add_list_del(store):
    for u in ("a@example.test", "b@example.test"):
        ok(store.cli("user", "add", u, "--no-password"))
    ok(store.cli("alias", "add", "list@example.test", "a@example.test", "b@example.test"))
    ok(store.cli("alias", "add", "@catch.test", "a@example.test"))
    out = ok(store.cli("alias", "list")).stdout
    for s in ("list@example.test", "a@example.test", "b@example.test", "@catch.test"):
        assert s in out, out
    strings = set(json_strings(json_listing(store, "alias")))
    assert {"list@example.test", "a@example.test", "b@example.test", "@catch.test"} <= strings, strings

    ok(store.cli("alias", "del", "list@example.test", "a@example.test"))
    pairs = ok(store.cli("alias", "list")).stdout
    lines = [l for l in pairs.splitlines() if "list@example.test" in l]
    assert lines and all("a@example.test" not in l for l in lines) and any("b@example.test" in l for l in lines), pairs

    ok(store.cli("alias", "del", "list@example.test"))
    assert "list@example.test" not in ok(store.cli("alias", "list")).stdout
    p = store.cli("alias", "del", "list@example.test")
    assert p.returncode == 1

    p = store.cli("alias", "add", "x@other.test", "a@example.test")
    assert p.returncode == 1 and "other.test" in p.stderr


def test_usage_errors(store):
    for argv in (["user", "frobnicate"], ["user", "add"], ["alias", "add", "list@example.test"]):
        p = store.cli(*argv)
        assert p.returncode == 2, (argv, p.returncode, p.stdout, p.stderr)
        assert p.stderr.strip(), argv


def test_new_user_receives_mail_without_restart(postern):
    def rcpt(addr):
        with postern.session() as c:
            assert c.cmd("MAIL FROM:<sender@example.org>") == MAIL_OK
            return c.cmd("RCPT TO:<%s>" % addr)

    assert rcpt("newbie@example.test") == user_unknown("newbie@example.test")
    postern.add_user("newbie@example.test")
    assert rcpt("newbie@example.test") == RCPT_OK
    assert is_queued(postern.deliver("newbie@example.test", make_message("welcome")))
    assert len(postern.messages("newbie@example.test")) == 1

    postern.add_alias("team@example.test", "newbie@example.test", "demo@example.test")
    assert is_queued(postern.deliver("team@example.test", make_message("team")))
    assert len(postern.messages("newbie@example.test")) == 2
    assert len(postern.messages("demo@example.test")) == 1

    ok(postern.cli("user", "del", "carol@example.test"))
    assert rcpt("carol@example.test") == user_unknown("carol@example.test")
