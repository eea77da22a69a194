# Sourced by run-swift-tests.sh and mutate.sh: a Debian 13 (trixie) root with Debian's own Swift
# toolchain (swiftlang 6.0.x), in which the EdgekitQA package is built and tested on a Linux host.
# Debian 12's glibc is too old for that toolchain, hence a chroot rather than a host install.
#
#   swift_host_check        can this host do it (root, mount and chroot rights...)? else SKIPPED; lock
#   swift_root_prepare      build or reuse the root, mount proc/sys/dev into it
#   swift_root_copy DEST    copy the package, the app target's sources, the Core ML stubs and demo-golden
#                           to the same places under DEST in the root (tests find demo-golden from #filePath)
#   in_root CMD...          run a shell command line in the root (as root, HOME=/root)
#   swift_skip REASON       print the SKIPPED line and the closing count, exit (0, or 1 when
#                           EDGEKIT_REQUIRE_SWIFT=1)
#
# Environment: EDGEKIT_SWIFT_ROOT (default <repo>/.swift-root, git-ignored), DEBIAN_MIRROR,
# EDGEKIT_SWIFT_CACHE (host folder keeping the downloaded .debs between fresh clones, default
# /var/cache/edgekit-swift; "none" disables it), EDGEKIT_REQUIRE_SWIFT=1 (a skip fails).
#
# Every mount is made in a private mount namespace (unshare) when the kernel allows it, so it is
# invisible to the host and released even if this script is killed; the EXIT/INT/TERM trap
# unmounts it explicitly as well (and is the only guard where unshare is unavailable).

swift_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
swift_repo="$(cd "$swift_here/.." && pwd)"
SWIFT_ROOT="${EDGEKIT_SWIFT_ROOT:-$swift_repo/.swift-root}"
SWIFT_ROOT="$(mkdir -p "$(dirname "$SWIFT_ROOT")" && cd "$(dirname "$SWIFT_ROOT")" && pwd)/$(basename "$SWIFT_ROOT")"
SWIFT_SUITE=trixie
SWIFT_PACKAGES="swiftlang libc6-dev"   # libc6-dev: without it "'sys/param.h' file not found" (CDispatch)
SWIFT_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SWIFT_CACHE="${EDGEKIT_SWIFT_CACHE:-/var/cache/edgekit-swift}"
SWIFT_READY="$SWIFT_ROOT/.edgekit-swift-ready"
swift_mounts=()

swift_log() { echo "[swift $(date +%H:%M:%S)] $*"; }

swift_skip() {
  echo "SKIPPED: the iOS Swift package was NOT compiled or tested: $*"
  echo "swift: 0 passed, 0 failed, 1 skipped"
  if [ "${EDGEKIT_REQUIRE_SWIFT:-0}" = 1 ]; then exit 1; fi
  exit 0
}

swift_unmount_all() {
  local i
  for ((i = ${#swift_mounts[@]} - 1; i >= 0; i--)); do
    umount -R "${swift_mounts[i]}" 2>/dev/null || umount -R -l "${swift_mounts[i]}" 2>/dev/null \
      || echo "warning: could not unmount ${swift_mounts[i]}" >&2
  done
  swift_mounts=()
  # Anything left under the root (a debootstrap killed half-way mounts proc/sys itself).
  local m
  for m in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$SWIFT_ROOT/" | sort -r); do
    umount -R -l "$m" 2>/dev/null || true
  done
}

swift_trap() {
  trap 'swift_unmount_all' EXIT
  trap 'swift_unmount_all; trap - EXIT; echo "interrupted"; exit 130' INT
  trap 'swift_unmount_all; trap - EXIT; echo "terminated"; exit 143' TERM
}

# Re-run the calling script in its own mount namespace (once). Call before anything is mounted.
swift_enter_namespace() {
  if [ -z "${EDGEKIT_SWIFT_NS:-}" ] && [ "$(id -u)" = 0 ] && unshare --mount --propagation private true 2>/dev/null; then
    export EDGEKIT_SWIFT_NS=1
    exec unshare --mount --propagation private bash "$0" "$@"
  fi
}

swift_mount() {  # swift_mount TARGET MOUNT-ARGS...
  local target="$1"; shift
  mount "$@" "$target" || return 1
  swift_mounts+=("$target")
  case " $* " in *" --rbind "*) mount --make-rslave "$target" || return 1 ;; esac
}

swift_mount_all() {
  swift_mount "$SWIFT_ROOT/proc" -t proc proc || return 1
  swift_mount "$SWIFT_ROOT/sys" --rbind /sys || return 1
  swift_mount "$SWIFT_ROOT/dev" --rbind /dev || return 1
  cp -L /etc/resolv.conf "$SWIFT_ROOT/etc/resolv.conf" 2>/dev/null || true
}

in_root() {
  chroot "$SWIFT_ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive bash -c "$*"
}

swift_root_works() {
  [ -f "$SWIFT_READY" ] && in_root 'swift --version' >/dev/null 2>&1
}

# Remove the root, refusing while anything is mounted below it (a bound /dev would be emptied).
swift_root_remove() {
  swift_unmount_all
  if findmnt -rn -o TARGET | grep -qF "$SWIFT_ROOT/"; then
    echo "refusing to delete $SWIFT_ROOT: something is still mounted below it" >&2; return 1
  fi
  rm -rf --one-file-system "$SWIFT_ROOT"
}

# Can this host do it at all? Prints SKIPPED and exits when not. Then takes the root's lock.
swift_host_check() {
  [ "$(id -u)" = 0 ] || swift_skip "needs root (debootstrap, chroot, mount); run as root or see ios-demo/README.md for macOS"
  [ "$(uname -s)" = Linux ] || swift_skip "not Linux (on macOS run 'swift test' in ios-demo/EdgekitQA directly)"
  case "$(uname -m)" in x86_64|aarch64) ;; *) swift_skip "Debian's swiftlang is not built for $(uname -m)" ;; esac
  command -v chroot >/dev/null && command -v mount >/dev/null || swift_skip "no chroot/mount command"
  # Mount and chroot rights: a container without CAP_SYS_ADMIN / CAP_SYS_CHROOT says no here.
  local probe
  probe="$(mktemp -d)"
  if ! mount -t tmpfs -o size=1m none "$probe" 2>/dev/null; then rmdir "$probe"; swift_skip "no right to mount (container without CAP_SYS_ADMIN?)"; fi
  umount "$probe"; rmdir "$probe"
  chroot / true 2>/dev/null || swift_skip "no right to chroot (container without CAP_SYS_CHROOT?)"
  exec 9>"$SWIFT_ROOT.lock" || swift_skip "cannot write $SWIFT_ROOT.lock"
  flock -w 3600 9 || swift_skip "another run has held $SWIFT_ROOT.lock for an hour"
}

swift_root_prepare() {
  local t0 avail need
  t0=$(date +%s)
  swift_trap

  if [ -e "$SWIFT_ROOT" ] && [ ! -f "$SWIFT_READY" ]; then
    swift_log "removing an incomplete root at $SWIFT_ROOT"
    swift_root_remove || swift_skip "could not remove the incomplete root $SWIFT_ROOT"
  fi
  if [ -f "$SWIFT_READY" ]; then
    if swift_mount_all && swift_root_works; then
      swift_log "reusing $SWIFT_ROOT: $(in_root 'swift --version 2>&1 | head -n 1')"
      return 0
    fi
    swift_log "the root at $SWIFT_ROOT does not run swift any more: rebuilding it"
    swift_root_remove || swift_skip "could not remove the broken root $SWIFT_ROOT"
  fi

  mkdir -p "$(dirname "$SWIFT_ROOT")"
  avail=$(df -Pk "$(dirname "$SWIFT_ROOT")" | awk 'NR == 2 { print $4 }')
  need=$((3 * 1024 * 1024))  # about 1.6 GB root + the package's .build; 3 GB leaves room
  [ "${avail:-0}" -ge "$need" ] || swift_skip "not enough disk: $((avail / 1024)) MB free next to $SWIFT_ROOT, about 3000 MB needed"

  if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || swift_skip "debootstrap is not installed and there is no apt-get to install it"
    swift_log "installing debootstrap on the host"
    { apt-get install -y -qq debootstrap >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq debootstrap >/dev/null 2>&1; }; } \
      || swift_skip "debootstrap could not be installed (apt-get install debootstrap failed)"
  fi

  local cache_opt=()
  if [ "$SWIFT_CACHE" != none ] && mkdir -p "$SWIFT_CACHE/debootstrap" "$SWIFT_CACHE/apt" 2>/dev/null; then
    cache_opt=(--cache-dir="$SWIFT_CACHE/debootstrap")
  else
    SWIFT_CACHE=none
  fi
  swift_log "debootstrap --variant=minbase $SWIFT_SUITE $SWIFT_ROOT ($SWIFT_MIRROR)"
  if ! debootstrap --variant=minbase "${cache_opt[@]}" "$SWIFT_SUITE" "$SWIFT_ROOT" "$SWIFT_MIRROR" \
      > "$SWIFT_ROOT.debootstrap.log" 2>&1; then
    tail -n 5 "$SWIFT_ROOT.debootstrap.log"
    swift_root_remove
    swift_skip "debootstrap of Debian $SWIFT_SUITE failed (no access to $SWIFT_MIRROR?); log: $SWIFT_ROOT.debootstrap.log"
  fi
  rm -f "$SWIFT_ROOT.debootstrap.log"
  swift_log "debootstrap done ($(( $(date +%s) - t0 )) s); installing $SWIFT_PACKAGES"
  swift_mount_all || { swift_root_remove; swift_skip "mounting proc/sys/dev into the root failed"; }
  if [ "$SWIFT_CACHE" != none ]; then cp -n "$SWIFT_CACHE"/apt/*.deb "$SWIFT_ROOT/var/cache/apt/archives/" 2>/dev/null || true; fi
  if ! in_root "apt-get update -qq && apt-get install -y -qq --no-install-recommends $SWIFT_PACKAGES" \
      > "$SWIFT_ROOT.apt.log" 2>&1; then
    tail -n 5 "$SWIFT_ROOT.apt.log"
    swift_root_remove
    swift_skip "apt-get install $SWIFT_PACKAGES failed in the Debian $SWIFT_SUITE root; log: $SWIFT_ROOT.apt.log"
  fi
  rm -f "$SWIFT_ROOT.apt.log"
  if [ "$SWIFT_CACHE" != none ]; then cp -n "$SWIFT_ROOT"/var/cache/apt/archives/*.deb "$SWIFT_CACHE/apt/" 2>/dev/null || true; fi
  in_root 'apt-get clean'
  in_root 'swift --version' >/dev/null 2>&1 || { swift_root_remove; swift_skip "swift does not run in the fresh root"; }
  in_root 'swift --version 2>&1 | head -n 1' > "$SWIFT_READY"
  swift_log "root ready in $(( $(date +%s) - t0 )) s: $(cat "$SWIFT_READY"); $(du -sm --one-file-system "$SWIFT_ROOT" | cut -f1) MB"
}

swift_root_copy() {  # swift_root_copy /work/NAME (a path inside the root); keeps the package's .build
  local dest="$SWIFT_ROOT$1" d
  for d in ios-demo/EdgekitQA ios-demo/EdgekitQADemo ios-demo/EdgekitQADemoTests ios-demo/linux-stubs demo-golden; do
    mkdir -p "$dest/$d"
    find "$dest/$d" -mindepth 1 -maxdepth 1 ! -name .build -exec rm -rf {} +
    tar -C "$swift_repo/$d" --exclude=./.build --exclude=./.swiftpm -cf - . | tar -C "$dest/$d" -xf -
  done
}

# Count XCTest cases from a `swift test` log: "Test Case '...' passed/failed".
swift_count() {  # swift_count LOG -> "PASSED FAILED"
  local p f
  p=$(grep -cE "^Test Case '.*' passed" "$1" || true)
  f=$(grep -cE "^Test Case '.*' failed" "$1" || true)
  echo "$p $f"
}
