#!/usr/bin/env bash
# Mutation check of the Swift tests (like android-demo/mutate.sh): apply each known-dangerous change
# to a COPY of one source file of the EdgekitQA package (tokenizer, windows, QA geometry, decoder,
# model-check bounds, golden.json reading), rebuild that copy and require `swift test` to FAIL; then
# the same for one-token changes to a copy of the golden files (no rebuild). A mutant that survives means the
# tests no longer guard that rule. Runs in the Debian 13 root of run-swift-tests.sh (needs root;
# prints SKIPPED and exits 0 where that cannot be had, exit 1 with EDGEKIT_REQUIRE_SWIFT=1).
# Prints "N killed, N survived"; exits non-zero when any survived.
#   ios-demo/mutate.sh            # all mutations
#   ios-demo/mutate.sh NAME...    # only these
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=ios-demo/swift-chroot.sh
. "$here/swift-chroot.sh"
swift_enter_namespace "$@"
src="$here/EdgekitQA/Sources/EdgekitQA"
golden_src="$here/../demo-golden"

# name | file (in Sources/EdgekitQA, or golden:PATH in demo-golden) | sed -E expression. Each must change the file.
mutations=(
  # tokenizer
  "cjk-ext-b-f-dropped|UnicodeTables.swift|/^ *\"3400-4DBF,/s/,20000-2A6DF,2A700-2B81F,2B920-2CEAF,/,/"
  "whitespace-1680-2028-2029-dropped|UnicodeTables.swift|/^ *\"9-A,D,20,/s/,1680,/,/; /^ *\"9-A,D,20,/s/,2028-2029,/,/"
  "control-keeps-private-use|UnicodeTables.swift|/^ *\"0-8,B-C,/s/,E000-F8FF,/,/; /^ *\"0-8,B-C,/s/,F0000-FFFFD,100000-10FFFD\"/\"/"
  "control-deletes-unassigned|BertTokenizer.swift|s/\{ CharTables\.removed\.contains\(c\.value\) \}/{ CharTables.removed.contains(c.value) || c.properties.generalCategory == .unassigned }/"
  "wordpiece-no-##-prefix|BertTokenizer.swift|s/start > from \? \[0x23, 0x23\] : \[\]/[]/"
  "lowercase-ignored|BertTokenizer.swift|s/for l in lowercase \? CharTables\.lowercase\(p\) : \[p\]/for l in [p]/"
  "case-flags-ignored|Golden.swift|s/let lo = c\.lowercase \?\? lower/let lo = lower/"
  # windows
  "stride-off-by-one|QaDecoder.swift|s/let step = room - config\.docStride$/let step = room - config.docStride + 1/"
  "last-sep-in-segment-a|QaDecoder.swift|s/^( +)types\[k\] = 1$/\1types[k] = 0/"
  "padding-ignored|QaDecoder.swift|s/let total = target\.map \{ max\(\\\$0, used\) \} \?\? used/let total = used/"
  "pad-to-not-read|QaDecoder.swift|s/padTo: try c\.decodeIfPresent\(Int\.self, forKey: \.padTo\)/padTo: nil/"
  "bucket-need-off-by-one|ModelCheck.swift|s/let need = questionTokens \+ contextTokens \+ 3/let need = questionTokens + contextTokens + 2/"
  "app-geometry-stride-halved|QaGeometry.swift|s/self\.init\(lengths: lengths, docStride: first\.docStride,/self.init(lengths: lengths, docStride: first.docStride \/ 2,/"
  "app-geometry-unpadded|QaGeometry.swift|s/padTo: buckets == nil \? maxLen : nil/padTo: nil/"
  "stored-geometry-ignored|QaGeometry.swift|s/if let stored = g\.qaGeometry \{ self = stored; return \}/_ = g.qaGeometry/"
  # decoder
  "no-answer-from-last-window|QaDecoder.swift|s/minNull = min\(minNull, nullScore\)/minNull = nullScore/"
  "tie-break-reversed|QaDecoder.swift|s/a\.start != b\.start \? a\.start < b\.start : a\.end < b\.end/a.start != b.start ? a.start > b.start : a.end > b.end/"
  "max-answer-len-plus-one|QaDecoder.swift|s/for e in s\.\.<min\(c1, s \+ config\.maxAnswerLen\)/for e in s..<min(c1, s + config.maxAnswerLen + 1)/"
  "cls-out-of-softmax|QaDecoder.swift|s/allowed\[0\] = true/allowed[0] = false/"
  "answers-not-widened-to-words|QaDecoder.swift|s/let start = config\.alignToWords \? ts\.wordStart : ts\.start/let start = ts.start/"
  # model-check bounds
  "tolerance-max-abs-ignored|ModelCheck.swift|s/if let m = bounds\[\"max_abs\"\], !\(worst <= m\)/if let m = bounds[\"max_abs\"], false, !(worst <= m)/"
  "tolerance-cosine-ignored|ModelCheck.swift|s/if !\(cos >= m\)/if false, !(cos >= m)/"
  "tolerance-psnr-ignored|ModelCheck.swift|s/if !\(psnr >= m\)/if false, !(psnr >= m)/"
  "agreement-counts-near-ties|ModelCheck.swift|s/^            if c\.decisive \{/            if true {/"
  "unknown-bounds-accepted|ModelCheck.swift|s/where !known\.contains\(k\)/where false/"
  # one token of a copy of the golden files (the tests must be able to fail on the data too)
  "golden-token-id|golden:golden.json|0,/\"ids\":\[1996,/s//\"ids\":[1997,/"
  "golden-answer-start|golden:golden.json|0,/\"start\":177,/s//\"start\":178,/"
  "golden-doc-stride|golden:golden.json|s/(\"name\":\"long-1\",\"question\":\"[^\"]*\",\"context\":\"[^\"]*\",\"config\":\{\"max_seq_len\":64,\"doc_stride\":)16,/\\117,/"
  "golden-qa-geometry-stride|golden:golden.json|s/(\"qa_geometry\":\{\"lengths\":\[256\],\"doc_stride\":)64,/\\165,/"
  "golden-bucket-len|golden:golden.json|0,/\"context_tokens\":120,\"seq_len\":128/s//\"context_tokens\":120,\"seq_len\":256/"
  "golden-bundle-logit|golden:bundles/coreml-palettize6/golden.json|0,/\"start_logits\":\[(-?)([0-9])/s//\"start_logits\":[\11\2/"
)

t0=$(date +%s)
swift_host_check
swift_root_prepare
work=/work/edgekit-mutants
swift_root_copy "$work"
pkg="$work/ios-demo/EdgekitQA"
log="$SWIFT_ROOT/work/mutant.log"
# Optimised (-O, still testable): the tests run in about 1 s instead of 7 in a debug build, and a
# mutant's rebuild (one changed file) costs about the same.
flags="-Xswiftc -O"
build() { in_root "cd $pkg && nice -n 10 swift build --build-tests $flags" > "$log" 2>&1; }
run_tests() {  # run_tests [golden dir inside the root]: build if needed, then test
  local env=""; [ -n "${1:-}" ] && env="EDGEKIT_GOLDEN_DIR=$1"
  in_root "cd $pkg && $env timeout 600 nice -n 10 swift test $flags" > "$log" 2>&1
}
built() { grep -q "^Test Suite 'All tests' started" "$log"; }
build || { grep -m 5 "error:" "$log"; echo "the unmutated package does not build"; exit 1; }
run_tests || { tail -n 20 "$log"; echo "the unmutated tests fail: fix them first"; exit 1; }
echo "unmutated: swift $(swift_count "$log" | awk '{print $1 " passed, " $2 " failed"}') ($(( $(date +%s) - t0 )) s)"

killed=0
survived=0
for m in "${mutations[@]}"; do
  IFS='|' read -r name file expr <<< "$m"
  if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  t1=$(date +%s)
  if [[ "$file" == golden:* ]]; then
    rel="${file#golden:}"
    gdir="/work/golden-mutant"
    rm -rf "$SWIFT_ROOT$gdir" && cp -r "$golden_src" "$SWIFT_ROOT$gdir"
    sed -E "$expr" "$golden_src/$rel" > "$SWIFT_ROOT$gdir/$rel"
    if cmp -s "$golden_src/$rel" "$SWIFT_ROOT$gdir/$rel"; then
      echo "ERROR $name: the mutation no longer applies to demo-golden/$rel (update mutate.sh)"; survived=$((survived + 1)); continue
    fi
    run_tests "$gdir"; rc=$?
  else
    orig="$SWIFT_ROOT$pkg/Sources/EdgekitQA/$file"
    sed -E "$expr" "$src/$file" > "$orig"
    if cmp -s "$src/$file" "$orig"; then
      echo "ERROR $name: the mutation no longer applies to $file (update mutate.sh)"; survived=$((survived + 1)); continue
    fi
    run_tests; rc=$?
    if [ "$rc" != 0 ] && ! built; then rc=build; fi
    # Restore the copy with a NEW mtime (an old one would leave the mutant in the build); the next
    # `swift test` (source or golden mutant) rebuilds it.
    cp "$src/$file" "$orig" && touch "$orig"
    if [ "$rc" = build ]; then
      echo "ERROR $name: the mutant does not compile"; grep -m 3 "error:" "$log"; survived=$((survived + 1)); continue
    fi
  fi
  if [ "$rc" = 0 ]; then
    echo "SURVIVED $name: swift test passes with it ($(( $(date +%s) - t1 )) s)"; survived=$((survived + 1))
  else
    read -r p f <<< "$(swift_count "$log")"
    first="$(grep -m 1 -E "error: |XCTAssert|fatal" "$log" | sed -E 's|^.*/Tests/EdgekitQATests/||' | cut -c 1-150 || true)"
    [ "$rc" = 124 ] && first="timed out"
    echo "killed $name ($(( $(date +%s) - t1 )) s): $p passed, $f failed; $first"; killed=$((killed + 1))
  fi
done
in_root "rm -rf /work/golden-mutant"
echo "swift mutants: $killed killed, $survived survived ($(( $(date +%s) - t0 )) s)"
[ "$survived" -eq 0 ] && [ "$killed" -gt 0 ]
