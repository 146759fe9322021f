//! Rewrites a GGUF in another weight type with llama.cpp's quantizer, e.g. the bundled Q4_1
//! SmolLM2 into Q4_0, which ggml repacks for its faster x86 kernels (see `dialog::llm::quantize`
//! and the `llm.*` rows of BENCHMARKS.md; setup does not run it, the default stays Q4_1).
//! Run: `cargo run -p dialog --example quantize_gguf -- SRC.gguf DST.gguf q8_0|q4_0 [THREADS]`.
#![allow(clippy::print_stdout)]

use anyhow::{bail, Context};
use dialog::llm::quantize::{requantize, WeightType};
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dst, kind, rest @ ..] = args.as_slice() else {
        bail!("usage: quantize_gguf SRC.gguf DST.gguf q8_0|q4_0 [THREADS]");
    };
    let to = WeightType::parse(kind).with_context(|| format!("unknown type {kind}"))?;
    let threads = match rest.first() {
        Some(t) => t.parse().context("THREADS")?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    };
    requantize(&PathBuf::from(src), &PathBuf::from(dst), to, threads)?;
    println!("{dst}");
    Ok(())
}
