#!/usr/bin/env bash
# Fetch, once, what the Android compile check of run-jvm-tests.sh needs, into an ignored folder
# (default <repo>/.android-env, or ANDROID_ENV_DIR):
#   kotlinc/      JetBrains' Kotlin compiler 2.0.21 (the npm package kotlin-compiler: `npm pack`)
#   android.jar   the real API-23 android.jar: Debian bullseye's libandroid-23-java (what
#                 android-sdk-platform-23 depends on), downloaded by a private apt and unpacked
#                 with dpkg-deb -x; the machine's apt and dpkg never see it
#   dx/           (only with --apk-tools, for assemble-debug-apk.sh) bullseye's dalvik-exchange (dx)
# A second run does nothing when both are there. When a piece cannot be had it says why in
# UNAVAILABLE.txt and exits 0: run-jvm-tests.sh then reports the real-API check as skipped.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="${ANDROID_ENV_DIR:-$here/../.android-env}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
KOTLIN_VERSION=2.0.21
apk_tools=0
[ "${1:-}" = "--apk-tools" ] && apk_tools=1
t0=$(date +%s)

unavailable() {
  echo "$1" > "$dest/UNAVAILABLE.txt"
  echo "Android compile environment NOT fetched: $1 (the real-API compile check will be skipped)" >&2
  exit 0
}

if [ -x "$dest/kotlinc/bin/kotlinc" ] && [ -f "$dest/android.jar" ] && [ ! -f "$dest/UNAVAILABLE.txt" ] \
    && { [ "$apk_tools" = 0 ] || [ -f "$dest/dx/dx.jar" ]; }; then
  echo "Android compile environment already there: $dest ($(cat "$dest/VERSIONS" 2>/dev/null | tr '\n' ' '))"
  exit 0
fi
rm -f "$dest/UNAVAILABLE.txt"

# ---- Kotlin 2.0.21 from npm ---------------------------------------------------------------------
if [ ! -x "$dest/kotlinc/bin/kotlinc" ]; then
  command -v npm >/dev/null || unavailable "npm not found (apt-get install -y npm)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null 2>"$tmp/npm.log") \
    || unavailable "npm pack kotlin-compiler@$KOTLIN_VERSION failed: $(tail -n 2 "$tmp/npm.log" | tr '\n' ' ')"
  tar -xzf "$tmp"/kotlin-compiler-*.tgz -C "$tmp"
  rm -rf "$dest/kotlinc"
  mv "$tmp/package" "$dest/kotlinc"
  chmod +x "$dest/kotlinc/bin/"*
  [ -f "$dest/kotlinc/lib/kotlin-stdlib.jar" ] || unavailable "the kotlin-compiler npm package has no lib/kotlin-stdlib.jar"
  echo "kotlin-compiler $KOTLIN_VERSION" > "$dest/VERSIONS.kotlin"
fi

# ---- android.jar (API 23) from Debian bullseye, by a private apt ---------------------------------
if [ ! -f "$dest/android.jar" ] || { [ "$apk_tools" = 1 ] && [ ! -f "$dest/dx/dx.jar" ]; }; then
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || unavailable "apt-get/dpkg-deb not found (not Debian)"
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || unavailable "$keyring missing (apt-get install debian-archive-keyring)"
  # The archive this machine's apt is set up with (deb822 .sources first, then one-line lists).
  mirror="$(awk 'BEGIN { RS = "" } /Types: *deb/ && !/-security/ && /debian-archive-keyring|debian/ {
             for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i + 1); exit } }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $3 !~ /-security$/ { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)"
  [ -n "$mirror" ] || unavailable "no Debian archive in this machine's apt sources"
  apt_root="$dest/apt"
  mkdir -p "$apt_root/etc/apt/sources.list.d" "$apt_root/etc/apt/apt.conf.d" "$apt_root/etc/apt/preferences.d" \
    "$apt_root/var/lib/apt/lists/partial" "$apt_root/var/cache/apt/archives/partial" "$apt_root/var/lib/dpkg"
  touch "$apt_root/var/lib/dpkg/status"
  printf 'Types: deb\nURIs: %s\nSuites: bullseye\nComponents: main\nSigned-By: %s\n' "$mirror" "$keyring" \
    > "$apt_root/etc/apt/sources.list.d/bullseye.sources"
  apt_opts=(-o "Dir=$apt_root" -o "Dir::State::status=$apt_root/var/lib/dpkg/status" -o APT::Architecture=amd64
            -o "APT::Architectures::=amd64" -o Acquire::Languages=none -o Acquire::Check-Valid-Until=false
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root -q)
  apt-get "${apt_opts[@]}" update > "$apt_root/update.log" 2>&1 \
    || unavailable "apt-get update (bullseye) failed: $(grep -E '^(E|Err)' "$apt_root/update.log" | head -n 2 | tr '\n' ' ')"
  version="$(apt-cache "${apt_opts[@]}" show --no-all-versions libandroid-23-java 2>/dev/null | awk '/^Version:/ { print $2; exit }')"
  [ -n "$version" ] || unavailable "Debian bullseye has no libandroid-23-java"
  debs="$apt_root/debs"
  mkdir -p "$debs"
  wanted=libandroid-23-java
  [ "$apk_tools" = 1 ] && wanted="$wanted dalvik-exchange"
  (cd "$debs" && apt-get "${apt_opts[@]}" download $wanted > "$apt_root/download.log" 2>&1) \
    || unavailable "apt-get download $wanted failed: $(tail -n 2 "$apt_root/download.log" | tr '\n' ' ')"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$apt_root/x"; done
  if [ "$apk_tools" = 1 ]; then
    mkdir -p "$dest/dx"
    cp -L "$(find "$apt_root/x" -name 'com.android.dx-*.jar' | head -n 1)" "$dest/dx/dx.jar"
  fi
  jar="$apt_root/x/usr/lib/android-sdk/platforms/android-23/android.jar"  # a symlink into usr/share/java
  [ -e "$jar" ] || jar="$(find "$apt_root/x" -name 'android-23.jar' | head -n 1)"
  [ -n "$jar" ] && [ -e "$jar" ] || unavailable "libandroid-23-java $version has no android.jar"
  cp -L "$jar" "$dest/android.jar"
  echo "android.jar API 23 (Debian bullseye libandroid-23-java $version)" > "$dest/VERSIONS.android"
  rm -rf "$apt_root"
fi
cat "$dest/VERSIONS.kotlin" "$dest/VERSIONS.android" > "$dest/VERSIONS"
echo "Android compile environment: $dest ($(tr '\n' ' ' < "$dest/VERSIONS")) in $(( $(date +%s) - t0 )) s, $(du -sh "$dest" | cut -f1) on disk"
