#!/usr/bin/env bash
# A signed debug APK of the demo app WITHOUT Gradle or the Android SDK, from Debian's tools: a link
# check (the app's classes + Kotlin's stdlib dex, the manifest links against the framework
# resources, the APK aligns and signs). It CANNOT run a model: LiteRT (org.tensorflow.lite and its
# native library) is only in Google's Maven, so it is not in this APK; on a device the app starts
# and every model job ends with "error: NoClassDefFoundError: org/tensorflow/lite/Interpreter...".
# Build the real app with Gradle (README).
#   Needs: bash android-env.sh --apk-tools (Kotlin 2.0.21, android.jar, bullseye's dx) and
#   apt-get install -y aapt zipalign apksigner android-framework-res
#   ./assemble-debug-apk.sh [OUT.apk]      # default build/edgekit-demo-debug.apk under android-demo/
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
env_dir="${ANDROID_ENV_DIR:-$here/../.android-env}"
out="${1:-$here/build/edgekit-demo-debug.apk}"
framework=/usr/share/android-framework-res/framework-res.apk
for tool in aapt zipalign apksigner keytool java; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y aapt zipalign apksigner android-framework-res" >&2; exit 1; }
done
[ -f "$framework" ] || { echo "missing $framework: apt-get install -y android-framework-res" >&2; exit 1; }
[ -f "$env_dir/dx/dx.jar" ] && [ -f "$env_dir/android.jar" ] || bash "$here/android-env.sh" --apk-tools
[ -f "$env_dir/dx/dx.jar" ] || { echo "no dx: $(cat "$env_dir/UNAVAILABLE.txt" 2>/dev/null)" >&2; exit 1; }

t0=$(date +%s)
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
stdlib="$env_dir/kotlinc/lib/kotlin-stdlib.jar"
# Compile-time only: LiteRT's stubs and the API-29/30 shim are on the class path, never in the APK.
javac -nowarn -d "$build/stubs" -cp "$env_dir/android.jar" \
  $(find "$here/jvm-test-runner/stubs/org" "$here/jvm-test-runner/api-shim" -name '*.java')
# dx reads Java 8 class files (version 52) without invokedynamic: -jvm-target 1.8 and lambdas as classes.
"$env_dir/kotlinc/bin/kotlinc" -no-jdk -no-reflect -jvm-target 1.8 -Xlambdas=class -Xsam-conversions=class -nowarn -d "$build/classes" \
  -cp "$build/stubs:$env_dir/android.jar:$stdlib" \
  "$here"/app/src/main/java/ai/edgekit/demo/*.kt "$here"/app/src/main/java/ai/edgekit/demo/qa/*.kt 2>&1 | grep -v "^OpenJDK" || true
[ -f "$build/classes/ai/edgekit/demo/MainActivity.class" ] || { echo "compilation failed" >&2; exit 1; }
# Kotlin's stdlib without its Java 9 module-info (dx predates multi-release jars).
python3 - "$stdlib" "$build/stdlib.jar" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as dst:
    for item in src.infolist():
        if not item.filename.startswith("META-INF/versions/") and item.filename != "module-info.class":
            dst.writestr(item, src.read(item))
EOF
mkdir -p "$build/apk"
# The app's own classes dex at its minSdk 24. Kotlin 2.0.21's stdlib has 3 methods with invokedynamic
# (compareBy(vararg), Sequence.asStream, Uuid) that Gradle's D8 desugars and dx cannot: it goes into
# a second dex made at min-sdk 26 (native multidex): a link check, not a build for API 24 devices.
java -cp "$env_dir/dx/dx.jar" com.android.dx.command.Main --dex --min-sdk-version=24 \
  --output="$build/apk/classes.dex" "$build/classes"
java -cp "$env_dir/dx/dx.jar" com.android.dx.command.Main --dex --min-sdk-version=26 \
  --output="$build/apk/classes2.dex" "$build/stdlib.jar"
# The Gradle build's namespace/minSdk/targetSdk (app/build.gradle.kts) go into the manifest here.
sed 's#<manifest xmlns:android="http://schemas.android.com/apk/res/android">#<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="ai.edgekit.demo">#' \
  "$here/app/src/main/AndroidManifest.xml" > "$build/AndroidManifest.xml"
aapt package -f -M "$build/AndroidManifest.xml" -I "$framework" -A "$here/app/src/main/assets" \
  --min-sdk-version 24 --target-sdk-version 35 --version-code 1 --version-name 0.1.0 -0 tflite \
  -F "$build/unsigned.apk"
(cd "$build/apk" && aapt add "$build/unsigned.apk" classes.dex classes2.dex >/dev/null)
zipalign -f 4 "$build/unsigned.apk" "$build/aligned.apk"
keytool -genkeypair -keystore "$build/debug.keystore" -storepass android -keypass android -alias androiddebugkey \
  -dname "CN=Android Debug,O=Android,C=US" -keyalg RSA -keysize 2048 -validity 30 >/dev/null 2>&1
mkdir -p "$(dirname "$out")"
apksigner sign --ks "$build/debug.keystore" --ks-pass pass:android --key-pass pass:android --out "$out" "$build/aligned.apk"
apksigner verify "$out"
methods="$(python3 -c "import struct,zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); print(' + '.join(str(struct.unpack_from('<I', z.read(n), 88)[0]) for n in ('classes.dex', 'classes2.dex')))" "$out")"
echo "signed debug APK: $out ($(du -k "$out" | cut -f1) KB, $methods method ids (app + stdlib), $(( $(date +%s) - t0 )) s) -- a link check: it has no LiteRT and cannot run a model"
