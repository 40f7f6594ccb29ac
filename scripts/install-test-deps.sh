#!/usr/bin/env bash
# Installs what quayctl's tests need, and only what is missing:
#   - PostgreSQL 15 server (Debian package postgresql; /usr/lib/postgresql/15/bin)
#   - podman, runc, skopeo, redis-server (Debian packages)
#   - the OCI distribution conformance suite (<repo>/bin/conformance, via go install)
#   - the Versity S3 gateway, a real S3 server for the S3 storage driver's tests
#     (<repo>/bin/versitygw, via go install)
#
# Idempotent: prints nothing when everything is present, one line per thing it
# installs otherwise, and exits non-zero with a clear message when an install fails.
# Waits for the dpkg lock (another apt run in the background) instead of failing.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFORMANCE_MODULE="github.com/opencontainers/distribution-spec/conformance"
CONFORMANCE_VERSION="v0.0.0-20260831232431-97274622c111"
VERSITYGW_MODULE="github.com/versity/versitygw/cmd/versitygw"
VERSITYGW_VERSION="v1.8.0"
PG_BIN="/usr/lib/postgresql/15/bin"
LOCK_TIMEOUT="${APT_LOCK_TIMEOUT:-600}" # seconds to wait for another apt/dpkg to finish

die() {
	echo "install-test-deps: ERROR: $*" >&2
	exit 1
}

log_tail() {
	# $1 = log file; show its end on stderr so a failure explains itself.
	echo "----- last lines of $1 -----" >&2
	tail -n 40 "$1" >&2 || true
	echo "-----" >&2
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo -n)
	fi
fi

# ---------------------------------------------------------------- what is missing
declare -a missing_pkgs=()

have_cmd() { command -v "$1" >/dev/null 2>&1; }

if [ ! -x "$PG_BIN/postgres" ] || [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
	missing_pkgs+=(postgresql)
fi
have_cmd podman || missing_pkgs+=(podman)
# runc lives in /usr/sbin, which a non-root PATH may lack.
{ have_cmd runc || [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ]; } || missing_pkgs+=(runc)
have_cmd skopeo || missing_pkgs+=(skopeo)
{ have_cmd redis-server || [ -x /usr/bin/redis-server ]; } || missing_pkgs+=(redis-server)

# ---------------------------------------------------------------- Debian packages
# apt_retry LOGFILE CMD...: runs CMD, retrying while another apt/dpkg holds a lock
# (DPkg::Lock::Timeout covers dpkg's frontend lock; the lists lock of
# `apt-get update` and older lock files are not always covered, so retry too).
apt_retry() {
	local logf="$1"
	shift
	local deadline=$((SECONDS + LOCK_TIMEOUT))
	while :; do
		if "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >>"$logf" 2>&1; then
			return 0
		fi
		if grep -qiE 'could not get lock|unable to (acquire|lock)|is another process using it|dpkg was interrupted' "$logf" &&
			[ "$SECONDS" -lt "$deadline" ]; then
			if grep -qi 'dpkg was interrupted' "$logf"; then
				# A previous run died half-way; let dpkg finish its work.
				"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >>"$logf" 2>&1 || true
			fi
			: >"$logf"
			sleep 5
			continue
		fi
		return 1
	done
}

if [ "${#missing_pkgs[@]}" -gt 0 ]; then
	have_cmd apt-get || die "missing ${missing_pkgs[*]} and apt-get is not available; install them by hand (Debian 12 package names: ${missing_pkgs[*]})"
	if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
		die "missing ${missing_pkgs[*]}; run this script as root (or with passwordless sudo) so it can apt-get install them"
	fi
	aptlog="$(mktemp -t install-test-deps-apt.XXXXXX.log)"
	apt_opts=(-o "DPkg::Lock::Timeout=$LOCK_TIMEOUT" -o Dpkg::Use-Pty=0)
	if ! apt_retry "$aptlog" apt-get "${apt_opts[@]}" -q update; then
		log_tail "$aptlog"
		die "apt-get update failed (log: $aptlog); cannot install ${missing_pkgs[*]}"
	fi
	if ! apt_retry "$aptlog" apt-get "${apt_opts[@]}" -q -y install "${missing_pkgs[@]}"; then
		log_tail "$aptlog"
		die "apt-get install ${missing_pkgs[*]} failed (log: $aptlog)"
	fi
	# Re-check that what we asked for is really there now.
	for p in "${missing_pkgs[@]}"; do
		case "$p" in
		postgresql) [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || die "postgresql installed but $PG_BIN/postgres or initdb is missing (log: $aptlog)" ;;
		podman) have_cmd podman || die "podman installed but not on PATH (log: $aptlog)" ;;
		runc) { have_cmd runc || [ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ]; } || die "runc installed but not found (log: $aptlog)" ;;
		skopeo) have_cmd skopeo || die "skopeo installed but not on PATH (log: $aptlog)" ;;
		redis-server) { have_cmd redis-server || [ -x /usr/bin/redis-server ]; } || die "redis-server installed but not found (log: $aptlog)" ;;
		esac
		echo "install-test-deps: installed $p (apt)"
	done
	rm -f "$aptlog"
fi

# ---------------------------------------------------------------- conformance suite
if [ ! -x "$REPO_ROOT/bin/conformance" ]; then
	have_cmd go || die "go is not on PATH; cannot build the OCI conformance suite"
	golog="$(mktemp -t install-test-deps-go.XXXXXX.log)"
	# Built outside the module's go.mod (module@version form), as a static binary.
	if ! (cd "$REPO_ROOT" && GOBIN="$REPO_ROOT/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
		go install "$CONFORMANCE_MODULE@$CONFORMANCE_VERSION") >"$golog" 2>&1; then
		log_tail "$golog"
		die "go install $CONFORMANCE_MODULE@$CONFORMANCE_VERSION failed (log: $golog)"
	fi
	[ -x "$REPO_ROOT/bin/conformance" ] || die "go install succeeded but $REPO_ROOT/bin/conformance is missing (log: $golog)"
	rm -f "$golog"
	echo "install-test-deps: installed bin/conformance ($CONFORMANCE_VERSION)"
fi

# ---------------------------------------------------------------- S3 server (versitygw)
# The first build takes a few minutes; later ones come from the Go build cache.
if [ ! -x "$REPO_ROOT/bin/versitygw" ]; then
	have_cmd go || die "go is not on PATH; cannot build versitygw (the S3 server the storage tests use)"
	golog="$(mktemp -t install-test-deps-go.XXXXXX.log)"
	if ! (cd "$REPO_ROOT" && GOBIN="$REPO_ROOT/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
		go install "$VERSITYGW_MODULE@$VERSITYGW_VERSION") >"$golog" 2>&1; then
		log_tail "$golog"
		die "go install $VERSITYGW_MODULE@$VERSITYGW_VERSION failed (log: $golog)"
	fi
	[ -x "$REPO_ROOT/bin/versitygw" ] || die "go install succeeded but $REPO_ROOT/bin/versitygw is missing (log: $golog)"
	rm -f "$golog"
	echo "install-test-deps: installed bin/versitygw ($VERSITYGW_VERSION)"
fi
