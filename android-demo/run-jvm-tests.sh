#!/usr/bin/env bash
# Compile the plain-Kotlin tokenizer / QA decoder of the Android demo and run its JVM unit tests
# against golden files exported by edgekit from the real all-MiniLM-L6-v2 tokenizer.
# Needs only a JDK, kotlinc and JUnit 4 (Debian: apt-get install -y kotlin junit4); no Android SDK.
# Prints a closing "N passed, N failed" line; exits non-zero on any failure.
#   GOLDEN_DIR=path/to/dir ./run-jvm-tests.sh   # test other golden.json + vocab.txt (e.g. from `edgekit bundle`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
golden_dir="${GOLDEN_DIR:-$here/../demo-golden}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
for f in "$golden_dir/golden.json" "$golden_dir/vocab.txt" "$junit" "$hamcrest"; do
  [ -f "$f" ] || { echo "missing $f (apt-get install -y kotlin junit4; golden files: python -m edgekit.golden --out demo-golden)" >&2; echo "0 passed, 1 failed"; exit 1; }
done
command -v kotlinc >/dev/null || { echo "kotlinc not found: apt-get install -y kotlin" >&2; echo "0 passed, 1 failed"; exit 1; }

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
main_src="$here/app/src/main/java/ai/edgekit/demo/qa"
test_src="$here/app/src/test/java/ai/edgekit/demo/qa"
echo "compiling with $(kotlinc -version 2>&1 | tail -n 1)"
kotlinc -nowarn -d "$build/classes" -cp "$junit:$hamcrest" \
  "$main_src"/*.kt "$test_src"/*.kt "$here/jvm-test-runner/RunJvmTests.kt" 2>&1 | grep -v "^warning" || true
[ -f "$build/classes/ai/edgekit/demo/runner/RunJvmTestsKt.class" ] || { echo "compilation failed"; echo "0 passed, 1 failed"; exit 1; }

# Type-check the Android-only sources (app UI, LiteRT wrapper, instrumented tests) against
# signature stubs: catches compile errors here although they only run on a device.
stub_ok=1
javac -nowarn -d "$build/stubs" -cp "$junit" $(find "$here/jvm-test-runner/stubs" -name '*.java') || stub_ok=0
if [ "$stub_ok" = 1 ]; then
  kotlinc -nowarn -d "$build/app" -cp "$build/stubs:$junit" \
    "$here"/app/src/main/java/ai/edgekit/demo/*.kt "$main_src"/*.kt "$here"/app/src/androidTest/java/ai/edgekit/demo/*.kt \
    2>&1 | grep -v "^warning\|^OpenJDK" || true
  [ -f "$build/app/ai/edgekit/demo/MainActivity.class" ] || stub_ok=0
fi
if [ "$stub_ok" = 1 ]; then echo "app + androidTest sources compile against API stubs: ok"; else echo "FAIL app sources do not compile against the API stubs"; fi

stdlib="$(dirname "$(readlink -f "$(command -v kotlinc)")")/../lib/kotlin-stdlib.jar"
[ -f "$stdlib" ] || stdlib=/usr/share/java/kotlin-stdlib.jar
export EDGEKIT_GOLDEN_DIR="$golden_dir"
export EDGEKIT_EXTRA_FAILED=$((1 - stub_ok)) EDGEKIT_EXTRA_PASSED=$stub_ok
java -cp "$build/classes:$stdlib:$junit:$hamcrest" ai.edgekit.demo.runner.RunJvmTestsKt \
  ai.edgekit.demo.qa.UnitTests ai.edgekit.demo.qa.TokenizerGoldenTest ai.edgekit.demo.qa.QaDecoderGoldenTest \
  ai.edgekit.demo.qa.ModelCheckGoldenTest
