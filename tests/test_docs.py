"""The documentation says what the code does: every configuration key is in
docs/configuration.md and etc/postern.conf.example, every SMTP reply listed
in docs/smtp.md is one the server can send, and the README opens with the
two commands."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_configuration_docs_match_the_key_table():
    p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "config-doc.py"), "--check"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_every_documented_reply_is_in_the_server():
    doc = open(os.path.join(ROOT, "docs", "smtp.md")).read()
    src = open(os.path.join(ROOT, "src", "smtp", "server.c")).read()
    replies = re.findall(r"`(\d{3}[ -]\d\.\d\.\d [^`]*)`", doc)
    assert len(replies) > 40
    missing = []
    for r in replies:
        # The server's format strings put %s where the doc has a name.
        text = r[4:]
        parts = [p for p in re.split(r"<addr>|HOSTNAME|USER|ID|n octets|<max_message_size>|\bN\b|SCORE", text) if p.strip()]
        if not all(p.strip() in src for p in parts):
            missing.append(r)
    assert not missing, "documented but not in src/smtp/server.c: %s" % missing


def test_readme_opens_with_the_two_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    first_block = text.split("```")[1]
    assert "make demo" in first_block and "make check" in first_block
