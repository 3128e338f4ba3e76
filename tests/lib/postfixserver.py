"""
postfixserver: a private Postfix instance on loopback (its own main.cf,
master.cf, queue and Maildirs; the system's Postfix is not touched), as a
real receiving MTA for postern's outbound tests, optionally a smarthost
that requires AUTH over TLS with a private Dovecot as its SASL server.

    pf = PostfixServer(workdir, ["bob@far.test"], cert=(crt, key))
    pf.start(); ...; pf.stop()

Mail for the mailboxes is delivered by virtual(8) into
MAILDIR/DOMAIN/LOCAL/new/ as the postern user. With sasl_users
({user: password}) a Dovecot auth server is started, smtpd offers AUTH
only after STARTTLS, and only authenticated clients may send (mynetworks
is empty); `wrapper_port` is a second smtpd with implicit TLS.
"""
import os
import pwd
import grp
import shutil
import socket
import subprocess
import time
from pathlib import Path

POSTFIX = "/usr/sbin/postfix"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, timeout, banner=b"220"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if not banner or s.recv(512).startswith(banner):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


class PostfixServer:
    def __init__(self, workdir, mailboxes, cert=None, sasl_users=None, mail_user="postern", hostname="mx.far.test"):
        self.top = Path(workdir) / "postfix"
        self.top.mkdir()
        self.top.chmod(0o755)
        self.mailboxes = list(mailboxes)
        self.domains = sorted({a.split("@")[1] for a in self.mailboxes})
        self.cert = cert
        self.sasl_users = sasl_users
        self.hostname = hostname
        self.port = _free_port()
        self.wrapper_port = _free_port() if sasl_users else None
        self.cfg = self.top / "etc"
        self.queue = self.top / "spool"
        self.data = self.top / "lib"
        self.mbase = self.top / "mail"
        self.logfile = self.top / "maillog"
        pw = pwd.getpwnam(mail_user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.dovecot = None

    def maildir_files(self, address):
        local, domain = address.split("@")
        d = self.mbase / domain / local / "new"
        return sorted(d.iterdir()) if d.is_dir() else []

    def wait_mail(self, address, n=1, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            files = self.maildir_files(address)
            if len(files) >= n:
                return [f.read_bytes() for f in files]
            time.sleep(0.1)
        raise AssertionError("Postfix delivered %d messages to %s in %ss, wanted %d; log:\n%s"
                             % (len(self.maildir_files(address)), address, timeout, n, self.log_tail()))

    def log_tail(self, n=40):
        try:
            return "".join(self.logfile.read_text(errors="replace").splitlines(True)[-n:])
        except OSError:
            return "(no log)"

    def _start_dovecot(self):
        d = self.top / "dovecot"
        d.mkdir()
        (d / "run").mkdir()
        (d / "state").mkdir()
        passwd = d / "passwd"
        passwd.write_text("".join("%s:{PLAIN}%s::::::\n" % (u, p) for u, p in self.sasl_users.items()))
        passwd.chmod(0o644)
        self.auth_socket = d / "auth-client"
        conf = d / "dovecot.conf"
        conf.write_text("""\
protocols =
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = static
  args = uid=postern gid=postern home=/nonexistent
}}
service auth {{
  unix_listener {sock} {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""".format(d=d, passwd=passwd, sock=self.auth_socket))
        self.dovecot = subprocess.Popen(["dovecot", "-F", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                        stdout=open(d / "stdout.log", "wb"), stderr=subprocess.STDOUT)
        end = time.monotonic() + 20
        while not self.auth_socket.exists():
            if self.dovecot.poll() is not None or time.monotonic() > end:
                raise AssertionError("dovecot auth did not start:\n%s" % (d / "stdout.log").read_text(errors="replace"))
            time.sleep(0.1)

    def start(self):
        for d in (self.cfg, self.queue, self.data, self.mbase):
            d.mkdir(mode=0o755, exist_ok=True)
        os.chown(self.data, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)
        os.chown(self.mbase, self.uid, self.gid)
        (self.cfg / "vmailbox").write_text("".join("%s %s/%s/\n" % (a, a.split("@")[1], a.split("@")[0])
                                                   for a in self.mailboxes))
        tls = ""
        if self.cert:
            tls = """\
smtpd_tls_cert_file = {c}
smtpd_tls_key_file = {k}
smtpd_tls_security_level = {lvl}
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
""".format(c=self.cert[0], k=self.cert[1], lvl="encrypt" if self.sasl_users else "may")
        sasl = ""
        if self.sasl_users:
            self._start_dovecot()
            sasl = """\
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = {sock}
smtpd_tls_auth_only = yes
smtpd_sasl_authenticated_header = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
""".format(sock=self.auth_socket)
        else:
            sasl = """\
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = permit_auth_destination, reject
"""
        main = """\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = {host}
mydomain = far.test
myorigin = $myhostname
mydestination =
relay_domains =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 192.0.2.1/32
smtpd_banner = $myhostname ESMTP Postfix
biff = no
alias_maps =
alias_database =
local_recipient_maps =
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {mbase}
virtual_mailbox_maps = texthash:{cfg}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = {uid}
maillog_file = {log}
maillog_file_prefixes = {top}
""".format(queue=self.queue, data=self.data, host=self.hostname, domains=", ".join(self.domains),
           mbase=self.mbase, cfg=self.cfg, uid=self.uid, gid=self.gid, log=self.logfile, top=self.top) + tls + sasl
        (self.cfg / "main.cf").write_text(main)
        master = "127.0.0.1:{port} inet n - n - - smtpd\n".format(port=self.port)
        if self.wrapper_port:
            master += "127.0.0.1:{p} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\n".format(p=self.wrapper_port)
        master += """\
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
local      unix  - n n -  - local
virtual    unix  - n n -  - virtual
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
"""
        (self.cfg / "master.cf").write_text(master)
        r = subprocess.run([POSTFIX, "-c", str(self.cfg), "check"], capture_output=True, text=True)
        if r.returncode:
            raise AssertionError("postfix check failed:\n" + r.stdout + r.stderr)
        r = subprocess.run([POSTFIX, "-c", str(self.cfg), "start"], capture_output=True, text=True)
        if r.returncode:
            raise AssertionError("postfix start failed:\n" + r.stdout + r.stderr + self.log_tail())
        if not _wait_port(self.port, 30):
            raise AssertionError("Postfix does not answer on %d:\n%s" % (self.port, self.log_tail()))
        return self

    def stop(self):
        subprocess.run([POSTFIX, "-c", str(self.cfg), "stop"], capture_output=True)
        pidf = self.queue / "pid" / "master.pid"
        end = time.monotonic() + 20
        while pidf.exists() and time.monotonic() < end:
            time.sleep(0.1)
        if self.dovecot and self.dovecot.poll() is None:
            self.dovecot.terminate()
            try:
                self.dovecot.wait(20)
            except subprocess.TimeoutExpired:
                self.dovecot.kill()


def make_ca_and_cert(directory, names):
    """A test CA and a certificate for names (DNS SANs) signed by it.
    Returns (ca.pem, cert.pem, key.pem), all readable by everyone."""
    d = Path(directory)
    ca_key, ca = d / "ca.key", d / "ca.pem"
    key, csr, crt = d / "srv.key", d / "srv.csr", d / "srv.pem"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=postern test CA", "-days", "2",
        "-keyout", str(ca_key), "-out", str(ca), "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + names[0], "-keyout", str(key),
        "-out", str(csr))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-out", str(crt), "-extfile", str(ext))
    for p in (ca, key, crt):
        p.chmod(0o644)
    return ca, crt, key
