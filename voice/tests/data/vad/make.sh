#!/usr/bin/env bash
# Regenerates the VAD test cases: espeak-ng utterances, trimmed to their true speech bounds with
# sox, joined by known pauses; each <case>.wav gets a <case>.json with the true bounds in ms.
# Needs espeak-ng and sox (scripts/setup.sh installs both). Output is deterministic.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fmt=(-r 16000 -c 1 -b 16)
# No dither and a fixed random seed, so the files come out byte-identical on every run.
sox() { command sox -D -R "$@"; }

# utter NAME TEXT: synthesize, convert to 16 kHz mono, trim leading/trailing silence.
utter() {
  espeak-ng -v en-us -s 160 -w "$tmp/$1.raw.wav" "$2"
  sox "$tmp/$1.raw.wav" "${fmt[@]}" "$tmp/$1.wav" \
    silence 1 0.005 0.5% reverse silence 1 0.005 0.5% reverse
}
# pause NAME SECONDS: digital silence.
pause() { sox -n "${fmt[@]}" "$tmp/$1.wav" trim 0 "$2"; }
# noise NAME SECONDS: faint pink noise (about -50 dBFS), no speech.
noise() { sox -n "${fmt[@]}" "$tmp/$1.wav" synth "$2" pinknoise vol 0.015; }
samples() { soxi -s "$1"; }

# build CASE PART... : concatenates parts (utterances u*, pauses p*) and writes CASE.json.
build() {
  local case=$1; shift
  local files=() pos=0 spans=() ends_in_speech=false
  for part in "$@"; do
    files+=("$tmp/$part.wav")
    local n; n=$(samples "$tmp/$part.wav")
    if [[ $part == u* ]]; then
      spans+=("[$((pos / 16)), $(((pos + n) / 16))]")
      ends_in_speech=true
    else
      ends_in_speech=false
    fi
    pos=$((pos + n))
  done
  if [ ${#files[@]} -eq 1 ]; then cp "${files[0]}" "$case.wav"; else sox "${files[@]}" "$case.wav"; fi
  local joined; joined=$(IFS=,; echo "${spans[*]:-}")
  printf '{ "utterances_ms": [%s], "ends_in_speech": %s }\n' "$joined" "$ends_in_speech" \
    > "$case.json"
}

# phone CASE FROM: FROM's audio over a G.711 line (8 kHz μ-law and back) with faint line noise
# (pink, about -45 dBFS); same true bounds.
phone() {
  sox "$2.wav" -r 8000 -e u-law -b 8 "$tmp/line.wav"
  sox "$tmp/line.wav" "${fmt[@]}" -e signed-integer "$tmp/back.wav"
  local n; n=$(samples "$tmp/back.wav")
  sox -n "${fmt[@]}" "$tmp/hiss.wav" synth "${n}s" pinknoise vol 0.005
  sox -m "$tmp/back.wav" "$tmp/hiss.wav" "$1.wav"
  cp "$2.json" "$1.json"
}

utter u1 "I would like to hear more about the offer"
utter u2 "Please call me back tomorrow morning"
utter u3 "No thank you"
pause p05 0.5
pause p1 1.0
pause p2 2.0

build silence p2
noise n2 2.0 && build quiet_noise n2
build one_utterance p05 u1 p1
build three_utterances p05 u1 p1 u2 p1 u3 p1
build ends_in_speech p05 u2
phone three_utterances_phone three_utterances
