#!/usr/bin/env bash
# Debian packages the test bed needs. Idempotent; prints what it installs.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v openssl >/dev/null || need+=(openssl)
# A TLS-only front for the PostgreSQL 16/18 whose own builds lack SSL (testbed/tls_front.py).
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
# The real node (testbed/node.py): runc + CNI plugins (containerd: tools/containerd), a static busybox for its test image.
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "[system-deps] installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package starts a cluster on 5432 we do not use; the test bed starts its own.
  command -v pg_ctlcluster >/dev/null && pg_ctlcluster 15 main stop 2>/dev/null || true
  # Likewise Debian's pgbouncer service (6432): the test bed starts its own per test module.
  [ -x /etc/init.d/pgbouncer ] && /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
fi
echo "[system-deps] ok"
