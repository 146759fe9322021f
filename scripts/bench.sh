#!/usr/bin/env bash
# Runs every benchmark binary and prints its figures. The numbers go into BENCHMARKS.md by hand,
# with the date; each line printed names the figure. Same build profile as the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE
run() { echo "== cargo run -q $*"; cargo run -q "$@"; }
run -p voice --example asr_bench
run -p voice --example tts_bench
run -p voice --example vad_bench
run -p voice --example audio_bench
run -p dialog --example llm_bench -- --threads 1
run -p retrieval --example embed_bench
run -p voice --example zh_tts_bench
run -p voice --example concurrent_streams -- 16 20
run -p retrieval --example data_bench -- vector
run -p retrieval --example data_bench -- ingest
run -p retrieval --example data_bench -- import
run -p retrieval --example data_bench -- context
run -p qa --example qa_bench
run -p dialog --example nlu_bench
run -p dialog --example dialog_bench
run -p dialog --example qualify -- --threads 1
bash scripts/asr_reference.sh
run -p orchestrator --bin ringwise -- demo --calls 8
run -p orchestrator --example call_bench -- scripted --lines 1 --calls 5
run -p orchestrator --example call_bench -- scripted --lines 4 --calls 8
run -p orchestrator --example call_bench -- real --calls-x1 6 --calls-x4 8
run -p orchestrator --example call_bench -- fake --calls 5000
run -p qa --example propensity_bench
