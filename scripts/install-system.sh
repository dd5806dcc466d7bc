#!/usr/bin/env bash
# Installs the Debian packages the stack and its tests need, only those missing.
# mmdebstrap builds the Asterisk 22 root; postgresql is the records database; sip-tester (SIPp)
# makes real SIP calls in tests; espeak-ng and sox render the voice prompts; chromium (headless)
# runs the console's browser test; logrotate rotates Asterisk's logs under `make install`;
# prometheus (promtool) checks the alerting rules in deploy/prometheus, and a test scrapes a
# live stack with it. npm installs the browser phone's SIP library (Makefile, supervisor/phone):
# Debian's npm only where no Node.js with npm is on the machine already. kamailio is the SIP
# edge of the high-availability topology (docs/ha.md), tested on hosts made of network
# namespaces that ping (iputils-ping) checks. postgresql-15-auto-failover (pg_auto_failover: a
# monitor and a keeper per node) fails the records over to their streaming standby (docs/ha.md).
# keepalived moves the edge's shared address to the second Kamailio when the first dies (VRRP);
# its Debian service starts only once /etc/keepalived/keepalived.conf exists.
set -euo pipefail
packages=(mmdebstrap postgresql sip-tester espeak-ng sox chromium logrotate prometheus kamailio iputils-ping
  postgresql-15-auto-failover keepalived)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them as root: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "Installing Debian packages: ${missing[*]}"
# One retry: a flaky download must not fail a CI run that has no second chance.
for attempt in 1 2; do
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    # The tests start prometheus themselves (own config, free port, loopback): the Debian
    # service the package just started would only hold port 9090 for nothing.
    if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now prometheus 2>/dev/null || true
    fi
    # Likewise Kamailio: the tests start their own edge, and a regency's is set up by hand.
    if [[ " ${missing[*]} " == *" kamailio "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now kamailio 2>/dev/null || true
    fi
    exit 0
  fi
  echo "apt-get failed (attempt $attempt)" >&2
  sleep 3
done
exit 1
