#!/usr/bin/env bash
# Build the iOS demo's Swift package (ios-demo/EdgekitQA) and run its XCTest cases with a real
# Swift toolchain on Linux: Debian 13's swiftlang in a Debian 13 root made with debootstrap in
# <repo>/.swift-root (git-ignored; reused while `swift --version` works in it). Needs root.
# The first run downloads about 0.65 GB (kept in /var/cache/edgekit-swift), takes about 2.5 min and
# leaves 2.6 GB; later runs reuse the root (about 30 s).
#
# Closing line: "swift: N passed, M failed" (the XCTest cases, plus one for the type-check of the
# app target's Core ML glue against linux-stubs/). Exit 0 when all pass, 1 otherwise.
# When this host cannot do it (not root, no mount/chroot rights, no disk, no debootstrap, no
# mirror) it prints "SKIPPED: ..." and "swift: 0 passed, 0 failed, 1 skipped" and exits 0, so a
# plain `make test` still runs everything else; EDGEKIT_REQUIRE_SWIFT=1 makes a skip exit 1.
# Writes the tests' "golden cases: ..." line to $EDGEKIT_GOLDEN_COUNTS_DIR/swift.txt when set
# (compared with the Kotlin JVM tests' by check-golden-counts.sh).
#   ios-demo/run-swift-tests.sh
#   EDGEKIT_GOLDEN_DIR=/abs/dir ios-demo/run-swift-tests.sh   # other golden.json + vocab.txt (copied in)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=ios-demo/swift-chroot.sh
. "$here/swift-chroot.sh"
swift_enter_namespace "$@"

t0=$(date +%s)
counts_file=""
if [ -n "${EDGEKIT_GOLDEN_COUNTS_DIR:-}" ]; then
  mkdir -p "$EDGEKIT_GOLDEN_COUNTS_DIR" && counts_file="$EDGEKIT_GOLDEN_COUNTS_DIR/swift.txt" && rm -f "$counts_file"
fi
swift_host_check
swift_root_prepare
t1=$(date +%s)

work=/work/edgekit
swift_root_copy "$work"
golden_env=""
if [ -n "${EDGEKIT_GOLDEN_DIR:-}" ]; then
  mkdir -p "$SWIFT_ROOT/work/golden-override"
  rm -rf "$SWIFT_ROOT/work/golden-override/"*
  cp -r "$EDGEKIT_GOLDEN_DIR"/. "$SWIFT_ROOT/work/golden-override/"
  golden_env="EDGEKIT_GOLDEN_DIR=/work/golden-override"
fi
log="$SWIFT_ROOT/work/swift-test.log"
swift_log "swift build (package EdgekitQA, debug, tests included)"
if ! in_root "cd $work/ios-demo/EdgekitQA && nice -n 10 swift build --build-tests" > "$log" 2>&1; then
  grep -E "error:" "$log" | head -n 30
  tail -n 5 "$log"
  echo "FAIL swift build ($(( $(date +%s) - t1 )) s)"
  echo "swift: 0 passed, 1 failed"
  exit 1
fi
echo "swift build: ok, $(grep -c ' warning: ' "$log" || true) warnings ($(( $(date +%s) - t1 )) s)"
t2=$(date +%s)
in_root "cd $work/ios-demo/EdgekitQA && $golden_env swift test --skip-build" > "$log" 2>&1
rc=$?
grep -E "^Test Case '.*' (passed|failed)|error: |^golden cases:" "$log" || true
grep -E "Executed [0-9]+ tests?, with" "$log" | tail -n 1 | sed 's/^[[:space:]]*/XCTest: /'
read -r passed failed <<< "$(swift_count "$log")"
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
  tail -n 20 "$log"; failed=1   # crashed or could not start: never a pass
fi
golden_line="$(grep -m 1 '^golden cases:' "$log" || true)"
if [ -n "$counts_file" ] && [ "$rc" = 0 ] && [ -n "$golden_line" ]; then echo "$golden_line" > "$counts_file"; fi
echo "swift test: $(( $(date +%s) - t2 )) s"

# The app target's Core ML glue + its Xcode test type-checked against the EdgekitQA module just built
# and signature stubs of Core ML (linux-stubs/); SwiftUI views are not (see ios-demo/README.md).
# Counted as one more passed or failed check.
t3=$(date +%s)
glue="cd $work/ios-demo && set -e && out=/tmp/app-glue && rm -rf \$out && mkdir -p \$out
  mods=\$(dirname \$(find EdgekitQA/.build -path '*/debug/*' -name EdgekitQA.swiftmodule -print -quit))
  swiftc -parse-as-library -module-name CoreML -emit-module -emit-module-path \$out/CoreML.swiftmodule linux-stubs/CoreML.swift
  swiftc -parse-as-library -module-name EdgekitQADemo -enable-testing -I \$mods -I \$out -emit-module \
    -emit-module-path \$out/EdgekitQADemo.swiftmodule EdgekitQADemo/CoreMLQaModel.swift
  swiftc -parse-as-library -typecheck -I \$mods -I \$out EdgekitQADemoTests/CoreMLGoldenTests.swift"
if in_root "$glue" > "$log" 2>&1; then
  echo "app glue (CoreMLQaModel.swift, CoreMLGoldenTests.swift) type-checks against EdgekitQA + Core ML stubs: ok ($(( $(date +%s) - t3 )) s)"
  passed=$((passed + 1))
else
  grep -E "error:" "$log" | head -n 20; tail -n 3 "$log"
  echo "FAIL the app's Core ML glue does not compile against the EdgekitQA package + Core ML stubs"
  failed=$((failed + 1)); rc=1
fi
echo "total $(( $(date +%s) - t0 )) s (root ready after $(( t1 - t0 )) s)"
echo "swift: $passed passed, $failed failed"
[ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
