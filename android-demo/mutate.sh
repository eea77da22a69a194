#!/usr/bin/env bash
# Mutation check of the JVM tests: apply each known-dangerous change to a COPY of one source file,
# recompile only that file against the unmutated classes, run the JVM tests, and require them to
# FAIL. A mutant that survives means the golden files no longer guard that rule.
# Needs what run-jvm-tests.sh needs (JDK, kotlinc, JUnit 4). Prints "N killed, N survived".
#   GOLDEN_DIR=path ./mutate.sh     # other golden.json + vocab.txt (default ../demo-golden)
#   ./mutate.sh NAME...             # only these mutations
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
golden_dir="${GOLDEN_DIR:-$here/../demo-golden}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
command -v kotlinc >/dev/null || { echo "kotlinc not found: apt-get install -y kotlin" >&2; exit 1; }
qa="$here/app/src/main/java/ai/edgekit/demo/qa"
tests="$here/app/src/test/java/ai/edgekit/demo/qa"
stdlib="$(dirname "$(readlink -f "$(command -v kotlinc)")")/../lib/kotlin-stdlib.jar"
[ -f "$stdlib" ] || stdlib=/usr/share/java/kotlin-stdlib.jar

# name | file (in qa/) | sed expression (-E). Each must change the file, or the script fails.
mutations=(
  "cjk-ext-b-f-dropped|UnicodeTables.kt|/val CJK:/s/,20000-2A6DF,2A700-2B81F,2B920-2CEAF,/,/"
  "whitespace-1680-2028-2029-dropped|UnicodeTables.kt|/val WHITESPACE:/s/,1680,/,/; /val WHITESPACE:/s/,2028-2029,/,/"
  "control-keeps-private-use|UnicodeTables.kt|/val REMOVED:/s/,E000-F8FF,/,/; /val REMOVED:/s/,F0000-FFFFD,100000-10FFFD\"/\"/"
  "control-deletes-unassigned|BertTokenizer.kt|s/REMOVED\.contains\(c\) \|\| c in 0xD800\.\.0xDFFF$/REMOVED.contains(c) || c in 0xD800..0xDFFF || Character.getType(c) == Character.UNASSIGNED.toInt()/"
  "no-answer-from-last-window|QaPipeline.kt|s/minNull = Math\.min\(minNull, nullScore\)/minNull = nullScore/"
  "tie-break-reversed|QaPipeline.kt|s/compareBy<Candidate>\(\{ -it\.score \}, \{ it\.start \}, \{ it\.end \}\)/compareBy<Candidate>({ -it.score }, { -it.start }, { -it.end })/"
  "tolerance-max-abs-ignored|ModelCheck.kt|s/if \(maxAbs != null \&\& !\(worst <= maxAbs\)\)/if (false \&\& maxAbs != null \&\& !(worst <= maxAbs))/"
  "agreement-counts-near-ties|ModelCheck.kt|s/if \(c\.decisive\) \{/if (true) {/"
  "job-error-never-reported|InferenceThread.kt|s/\} catch \(t: Throwable\) \{/} catch (t: RuntimeException) {/"
)

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
t0=$(date +%s)
echo "compiling the unmutated classes with $(kotlinc -version 2>&1 | tail -n 1)"
kotlinc -nowarn -d "$build/base" -cp "$junit:$hamcrest" "$qa"/*.kt "$tests"/*.kt "$here/jvm-test-runner/RunJvmTests.kt" \
  2>&1 | grep -v "^warning\|^OpenJDK" || true
[ -f "$build/base/ai/edgekit/demo/runner/RunJvmTestsKt.class" ] || { echo "base compilation failed"; exit 1; }
classes="ai.edgekit.demo.qa.UnitTests ai.edgekit.demo.qa.TokenizerGoldenTest ai.edgekit.demo.qa.QaDecoderGoldenTest ai.edgekit.demo.qa.ModelCheckGoldenTest ai.edgekit.demo.qa.InferenceThreadTest"
export EDGEKIT_GOLDEN_DIR="$golden_dir" EDGEKIT_EXTRA_FAILED=0 EDGEKIT_EXTRA_PASSED=0
run_tests() { java -cp "$1:$build/base:$stdlib:$junit:$hamcrest" ai.edgekit.demo.runner.RunJvmTestsKt $classes; }
run_tests "$build/none" > "$build/base.log" 2>&1 || { tail -n 20 "$build/base.log"; echo "the unmutated tests fail: fix them first"; exit 1; }
echo "unmutated: $(tail -n 1 "$build/base.log") ($(( $(date +%s) - t0 )) s)"

killed=0
survived=0
for m in "${mutations[@]}"; do
  IFS='|' read -r name file expr <<< "$m"
  if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  t1=$(date +%s)
  dir="$build/$name"
  mkdir -p "$dir/src" "$dir/classes"
  sed -E "$expr" "$qa/$file" > "$dir/src/$file"
  if cmp -s "$qa/$file" "$dir/src/$file"; then
    echo "ERROR $name: the mutation no longer applies to $file (update mutate.sh)"; survived=$((survived + 1)); continue
  fi
  # Only the mutated file is recompiled; its classes shadow the originals on the class path.
  if ! kotlinc -nowarn -d "$dir/classes" -cp "$build/base:$junit" "$dir/src/$file" > "$dir/compile.log" 2>&1 \
      || ! ls "$dir/classes/ai/edgekit/demo/qa/"*.class >/dev/null 2>&1; then
    echo "ERROR $name: the mutant does not compile"; cat "$dir/compile.log"; survived=$((survived + 1)); continue
  fi
  if run_tests "$dir/classes" > "$dir/test.log" 2>&1; then
    echo "SURVIVED $name: the JVM tests pass with it ($(( $(date +%s) - t1 )) s)"; survived=$((survived + 1))
  else
    first="$(grep -m 1 '^FAIL' "$dir/test.log" | cut -c 1-160 || true)"
    echo "killed $name ($(( $(date +%s) - t1 )) s): $(tail -n 1 "$dir/test.log"); ${first}"; killed=$((killed + 1))
  fi
done
echo "$killed killed, $survived survived ($(( $(date +%s) - t0 )) s)"
[ "$survived" -eq 0 ] && [ "$killed" -gt 0 ]
