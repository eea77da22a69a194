#!/usr/bin/env bash
# Compare the golden cases the Kotlin JVM tests and the Swift tests replayed: both runners write
# their "golden cases: tokenizer N, decoder N, qa N, bundle N, buckets N" line to
# $EDGEKIT_GOLDEN_COUNTS_DIR (kotlin.txt by android-demo's RunJvmTests, swift.txt by
# run-swift-tests.sh) after a passing run; the lines must be equal. `make test` runs it after
# test-jvm and test-ios. When the Swift tests were skipped (no swift.txt) it says SKIPPED, exit 0.
#   ios-demo/check-golden-counts.sh [DIR]    (default $EDGEKIT_GOLDEN_COUNTS_DIR, else <repo>/out/golden-counts)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-${EDGEKIT_GOLDEN_COUNTS_DIR:-$here/../out/golden-counts}}"
kotlin="$(cat "$dir/kotlin.txt" 2>/dev/null || true)"
swift="$(cat "$dir/swift.txt" 2>/dev/null || true)"
echo "kotlin: ${kotlin:-(none)}"
echo "swift:  ${swift:-(none)}"
if [ -z "$kotlin" ]; then echo "FAIL: no Kotlin count in $dir/kotlin.txt (run android-demo/run-jvm-tests.sh with EDGEKIT_GOLDEN_COUNTS_DIR set)"; exit 1; fi
if [ -z "$swift" ]; then echo "SKIPPED: no Swift count in $dir/swift.txt (the Swift tests were skipped or failed): counts not compared"; exit 0; fi
if [ "$kotlin" != "$swift" ]; then echo "FAIL: the Kotlin and Swift tests replay different golden cases"; exit 1; fi
echo "golden counts: equal"
