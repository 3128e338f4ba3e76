#!/bin/sh
# `make demo`: writes a demo configuration under ./demo (domain example.test,
# mailbox demo@example.test with password "demo", SMTP on loopback port
# 2525, submission on 5870, the dashboard on 8025, a self-signed certificate,
# DKIM keys) and runs the server in the foreground.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
demo="$top/demo"
port=${POSTERN_DEMO_PORT:-2525}
user=postern
[ "$(id -u)" = 0 ] || user=$(id -un)

mkdir -p "$demo/data"
chmod 755 "$demo"
if [ ! -f "$demo/cert.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=mx.example.test" \
		-keyout "$demo/key.pem" -out "$demo/cert.pem" 2>/dev/null
	chmod 600 "$demo/key.pem"
fi
[ "$(id -u)" = 0 ] && chown -R "$user" "$demo/data"
cat > "$demo/postern.conf" <<CONF
# The demo configuration written by \`make demo\`.
[server]
hostname = mx.example.test
user = $user
data_dir = $demo/data
domains = example.test

[smtp]
listen = 127.0.0.1:$port, [::1]:$port

[submission]
listen = 127.0.0.1:${POSTERN_DEMO_SUBMISSION_PORT:-5870}

[tls]
certificate = $demo/cert.pem
key = $demo/key.pem

[dns]
timeout = 2s

[web]
listen = 127.0.0.1:${POSTERN_DEMO_WEB_PORT:-8025}
admins = demo@example.test
CONF
bin="$top/build/postern"
"$bin" -c "$demo/postern.conf" user list | grep -qx demo@example.test ||
	printf 'demo\n' | "$bin" -c "$demo/postern.conf" user add demo@example.test --password-stdin
ls "$demo/data/dkim/example.test/"*.key >/dev/null 2>&1 ||
	"$bin" -c "$demo/postern.conf" dkim keygen --domain example.test >/dev/null
cat <<MSG

postern demo: domain example.test, mailbox demo@example.test, SMTP on 127.0.0.1:$port and [::1]:$port.

In another terminal, send it a message (STARTTLS with the self-signed certificate):
  swaks --server 127.0.0.1:$port --tls --to demo@example.test --from you@example.org
It lands as a file in:
  $demo/data/mail/example.test/demo/new/
Send as demo (submission, AUTH over STARTTLS, DKIM-signed; password "demo"):
  swaks --server 127.0.0.1:${POSTERN_DEMO_SUBMISSION_PORT:-5870} --tls -au demo@example.test -ap demo \\
        --from demo@example.test --to demo@example.test
Dashboard: http://127.0.0.1:${POSTERN_DEMO_WEB_PORT:-8025}/ (demo@example.test / demo)
Grade a message: send one to the address \`$bin -c $demo/postern.conf selftest new\` prints.
Configuration: $demo/postern.conf   Stop: Ctrl-C.

MSG
exec "$bin" -c "$demo/postern.conf" serve
