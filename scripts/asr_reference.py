#!/usr/bin/env python3
"""faster-whisper on the same model files and clips as voice's asr_bench: the reference our
Whisper-on-candle engine is measured against for short-utterance latency.

CTranslate2 int8 on CPU, 2 threads, greedy (beam 1), language forced, no timestamps, no VAD
filter and no conditioning on previous text: the same decoding as ours. Prints one line per clip
(audio length, latency, RTF, text) and a summary line per model.

Run through scripts/asr_reference.sh, which makes the venv (faster-whisper from PyPI) and runs
asr_bench on the same clips right after. By hand:
    python3 -m venv target/asr-ref/venv
    target/asr-ref/venv/bin/pip install faster-whisper==1.2.1
    OMP_WAIT_POLICY=PASSIVE target/asr-ref/venv/bin/python scripts/asr_reference.py CLIP.wav...

models/whisper-*/ hold model.bin, config.json and tokenizer.json but no CTranslate2 vocabulary
file; one is written next to symlinks of the model files under target/asr-ref/ (token strings by
id from tokenizer.json, then Whisper's 1501 timestamp tokens).
"""

import argparse
import json
import os
import statistics
import sys
import time
import wave
from pathlib import Path

import numpy as np
from faster_whisper import WhisperModel

ROOT = Path(__file__).resolve().parent.parent


def ct2_dir(model: str) -> Path:
    """models/<model> plus the vocabulary.json CTranslate2 needs, under target/asr-ref/."""
    src = ROOT / "models" / model
    if not (src / "model.bin").is_file():
        sys.exit(f"{src / 'model.bin'} is missing: run scripts/setup.sh")
    dst = ROOT / "target" / "asr-ref" / model
    dst.mkdir(parents=True, exist_ok=True)
    for name in ["model.bin", "config.json", "tokenizer.json"]:
        link = dst / name
        if not link.exists():
            link.symlink_to(src / name)
    vocab = dst / "vocabulary.json"
    if not vocab.exists():
        tok = json.loads((src / "tokenizer.json").read_text())
        by_id = {i: t for t, i in tok["model"]["vocab"].items()}
        by_id.update({a["id"]: a["content"] for a in tok["added_tokens"]})
        n = max(by_id) + 1
        tokens = [by_id.get(i, f"<|unused{i}|>") for i in range(n)]
        tokens += [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
        vocab.write_text(json.dumps(tokens))
    return dst


def read_clip(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: want 16 kHz mono 16-bit")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--models", default="whisper-base,whisper-tiny.en")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--language", default="en")
    args = ap.parse_args()
    if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        print("note: OMP_WAIT_POLICY is not PASSIVE; 2-thread timings suffer on a busy machine",
              file=sys.stderr)
    clips = [(p.name, read_clip(p)) for p in args.clips]
    for model_name in args.models.split(","):
        started = time.perf_counter()
        model = WhisperModel(str(ct2_dir(model_name)), device="cpu",
                             compute_type=args.compute_type, cpu_threads=args.threads,
                             num_workers=1)
        print(f"faster-whisper {model_name}: loaded in {time.perf_counter() - started:.2f} s, "
              f"{args.compute_type}, {args.threads} threads", flush=True)

        def run(audio: np.ndarray) -> str:
            segments, _ = model.transcribe(
                audio, language=args.language, beam_size=1, best_of=1, temperature=0.0,
                without_timestamps=True, condition_on_previous_text=False, vad_filter=False)
            return "".join(s.text for s in segments).strip()

        run(clips[0][1])  # warm-up
        latencies, total_audio, total_s = [], 0.0, 0.0
        for name, audio in clips:
            audio_s = len(audio) / 16000
            t0 = time.perf_counter()
            text = run(audio)
            elapsed = time.perf_counter() - t0
            latencies.append(elapsed * 1000)
            total_audio += audio_s
            total_s += elapsed
            print(f"faster-whisper {model_name} {name}: audio {audio_s:.2f} s, "
                  f"{elapsed * 1000:7.1f} ms, RTF {elapsed / audio_s:.3f}: {text}", flush=True)
        print(f"faster-whisper {model_name}: {len(clips)} clips, audio {total_audio:.2f} s; "
              f"RTF {total_s / total_audio:.3f}; latency p50 {statistics.median(latencies):.0f} ms, "
              f"max {max(latencies):.0f} ms", flush=True)


if __name__ == "__main__":
    main()
