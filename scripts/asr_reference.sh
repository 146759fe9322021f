#!/usr/bin/env bash
# faster-whisper (PyPI, CTranslate2 int8, 2 threads) and our Whisper on candle (voice's
# asr_bench), one after the other in the same run, on the same clips and model files: the 16 kHz
# ASR test clips and the corpus's clean Piper clips (short call-centre phrases). Compare the
# "latency p50" of faster-whisper with asr_bench's "one-shot p50" (same thing: whole clip in,
# text out) and RTFs with RTFs.
# Makes target/asr-ref/venv with faster-whisper from PyPI on first use. Needs scripts/setup.sh's
# models. Usage: scripts/asr_reference.sh [CLIP.wav...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE
venv=target/asr-ref/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import faster_whisper" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "faster-whisper==1.2.1"
fi
if [ $# -gt 0 ]; then
  clips=("$@")
else
  clips=(voice/tests/data/asr_en_*.wav voice/tests/data/corpus/en*_piper-joe_clean.wav)
fi
echo "== faster-whisper on ${#clips[@]} clips"
"$venv/bin/python" scripts/asr_reference.py "${clips[@]}"
echo "== voice asr_bench on the same ${#clips[@]} clips"
# The whole workspace's examples: `-p voice` alone would resolve other dependency features and
# rebuild them. Our default (8-bit decoder) and the exact f32 decoder, base only.
cargo build -q --workspace --examples
ASR_BENCH_ONLY="whisper-base" target/debug/examples/asr_bench 2 500 "${clips[@]}"
