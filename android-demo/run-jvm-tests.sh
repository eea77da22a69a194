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
  [ -f "$f" ] || { echo "missing $f (apt-get install -y kotlin junit4; golden files: python -m edgekit.apps.golden --out demo-golden)" >&2; echo "0 passed, 1 failed"; exit 1; }
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

# Type-check the Android-only sources (app UI, LiteRT wrapper, instrumented tests) with Kotlin 2.0.21
# against the REAL API-23 android.jar (android-env.sh fetches both into .android-env/): catches
# compile errors here although they only run on a device. Stubbed: only LiteRT and androidx.test
# (jvm-test-runner/stubs, not in android.jar) and the API-29/30 insets calls made under
# SDK_INT >= 30 (jvm-test-runner/api-shim, ahead of android.jar). -no-jdk: java.* comes from
# android.jar too, as on a device.
android_env="${ANDROID_ENV_DIR:-$here/../.android-env}"
api_passed=0 api_failed=0
if [ -x "$android_env/kotlinc/bin/kotlinc" ] && [ -f "$android_env/android.jar" ]; then
  t_api=$(date +%s)
  android_jar="$android_env/android.jar"
  api_failed=1
  if javac -nowarn -d "$build/stubs" -cp "$android_jar:$junit:$hamcrest" \
      $(find "$here/jvm-test-runner/stubs" "$here/jvm-test-runner/api-shim" -name '*.java'); then
    "$android_env/kotlinc/bin/kotlinc" -no-jdk -no-reflect -jvm-target 17 -nowarn -d "$build/app" \
      -cp "$build/stubs:$android_jar:$android_env/kotlinc/lib/kotlin-stdlib.jar:$junit:$hamcrest" \
      "$here"/app/src/main/java/ai/edgekit/demo/*.kt "$main_src"/*.kt "$here"/app/src/androidTest/java/ai/edgekit/demo/*.kt \
      2>&1 | grep -v "^OpenJDK" || true
    if [ -f "$build/app/ai/edgekit/demo/MainActivity.class" ] && [ -f "$build/app/ai/edgekit/demo/GoldenInstrumentedTest.class" ]; then
      api_passed=1 api_failed=0
    fi
  fi
  if [ "$api_passed" = 1 ]; then
    echo "app + androidTest sources compile against the real android.jar (API 23) with $(cat "$android_env/VERSIONS.kotlin" 2>/dev/null): ok ($(( $(date +%s) - t_api )) s)"
  else
    echo "FAIL app sources do not compile against the real android.jar (API 23)"
  fi
else
  echo "SKIP compiling the app against the real android.jar: $(cat "$android_env/UNAVAILABLE.txt" 2>/dev/null || echo "no $android_env (bash android-demo/android-env.sh)")"
fi

stdlib="$(dirname "$(readlink -f "$(command -v kotlinc)")")/../lib/kotlin-stdlib.jar"
[ -f "$stdlib" ] || stdlib=/usr/share/java/kotlin-stdlib.jar
export EDGEKIT_GOLDEN_DIR="$golden_dir"
export EDGEKIT_EXTRA_FAILED=$api_failed EDGEKIT_EXTRA_PASSED=$api_passed
java -cp "$build/classes:$stdlib:$junit:$hamcrest" ai.edgekit.demo.runner.RunJvmTestsKt \
  ai.edgekit.demo.qa.UnitTests ai.edgekit.demo.qa.TokenizerGoldenTest ai.edgekit.demo.qa.QaDecoderGoldenTest \
  ai.edgekit.demo.qa.ModelCheckGoldenTest ai.edgekit.demo.qa.InferenceThreadTest
