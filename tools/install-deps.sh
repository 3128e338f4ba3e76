#!/bin/sh
# Installs the Debian 12 packages postern needs to build, test and demo,
# skipping those already present, and creates the `postern` system user the
# daemon runs as. Run as root.
set -eu

BUILD="gcc clang libclang-rt-14-dev make pkg-config libevent-dev libssl-dev libsqlite3-dev libcrypt-dev libunbound-dev dns-root-data libpsl-dev publicsuffix openssl libexpat1-dev zlib1g-dev libzip-dev libjansson-dev libcurl4-openssl-dev"
TEST="python3 python3-pytest python3-dnspython python3-yaml python3-spf spfquery python3-dkim opendkim-tools nsd ldnsutils swaks dovecot-imapd postfix postgrey sqlite3 procps chromium python3-websocket"
missing=""
for p in $BUILD $TEST; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "postern: missing Debian packages:$missing; run this as root" >&2
		exit 1
	fi
	echo "installing:$missing"
	# Postfix is only a test peer and benchmark anchor: keep it unconfigured.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$(id -u)" = 0 ] && ! id postern >/dev/null 2>&1; then
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postern
fi
