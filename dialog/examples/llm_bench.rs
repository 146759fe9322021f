//! Prints llama.cpp figures for the GGUF, one line per figure (`key value unit (notes)`): time to
//! first token and to the first whole sentence with the system prompt cached, and aggregate
//! tokens/s with 1, 4 and 8 calls decoded together.
//! Run: `cargo run -p dialog --example llm_bench [-- --threads N[,N...]] [--model PATH ...]`
//! (default: the configured model, 1 thread; several models or thread counts run one after the
//! other, each printing its own lines).
#![allow(clippy::print_stdout)]

use anyhow::{bail, Context};
use dialog::llm::llama::LlamaCppModel;
use dialog::{ChatMessage, GenerationRequest, LanguageModel, LlmConfig, Role};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const SYSTEM: &str =
    "You are Ava, a friendly phone agent for Sunrise Insurance. You are calling customers \
about car insurance. Answer the caller in one or two short, polite sentences.";

const QUESTIONS: [&str; 8] = [
    "How much does the car insurance cost per month?",
    "I am busy right now, can you call me tomorrow?",
    "Does the policy cover theft and fire?",
    "I already have insurance with another company.",
    "What discount can you give me if I sign today?",
    "Can my daughter drive my car with this policy?",
    "How do I make a claim after an accident?",
    "Why are you calling me at dinner time?",
];

/// Requests each concurrent caller makes back to back in the throughput runs.
const ROUNDS: usize = 3;
const MAX_TOKENS: u32 = 48;

fn request(question: &str) -> GenerationRequest {
    let mut req = GenerationRequest::new(vec![
        ChatMessage::new(Role::System, SYSTEM),
        ChatMessage::new(Role::User, question),
    ]);
    req.max_tokens = MAX_TOKENS;
    req
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time to the first piece and to the first complete sentence, as the caller sees them.
fn latency(model: &LlamaCppModel, question: &str) -> anyhow::Result<(f64, f64)> {
    let t = Instant::now();
    let (mut first_token, mut first_sentence) = (None, None);
    let mut text = String::new();
    model.generate(
        &request(question),
        &CancellationToken::new(),
        &mut |piece| {
            first_token.get_or_insert_with(|| ms(t));
            text.push_str(piece);
            if first_sentence.is_none() && text.contains(['.', '!', '?', '。', '！', '？']) {
                first_sentence = Some(ms(t));
            }
            ControlFlow::Continue(())
        },
    )?;
    let done = ms(t);
    // A reply without a sentence mark is one sentence, complete when it ends.
    Ok((first_token.unwrap_or(done), first_sentence.unwrap_or(done)))
}

/// CPU seconds this process has used (user + system), from /proc; `None` where there is none.
/// On a shared machine wall-clock rates drift with the load, CPU time per token less so.
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    // Linux reports clock ticks of 1/100 s (USER_HZ).
    Some((user + system) / 100.0)
}

/// Aggregate generated tokens per second with `calls` callers generating at once, and CPU
/// milliseconds per generated token.
fn throughput(model: &LlamaCppModel, calls: usize) -> anyhow::Result<(f64, Option<f64>)> {
    let cpu = cpu_s();
    let t = Instant::now();
    let tokens = std::thread::scope(|s| {
        let handles: Vec<_> = (0..calls)
            .map(|c| {
                s.spawn(move || -> anyhow::Result<u32> {
                    let mut tokens = 0;
                    for round in 0..ROUNDS {
                        let q = QUESTIONS[(c + round) % QUESTIONS.len()];
                        let out =
                            model.generate(&request(q), &CancellationToken::new(), &mut |_| {
                                ControlFlow::Continue(())
                            })?;
                        tokens += out.generated_tokens;
                    }
                    Ok(tokens)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a caller thread panicked"))?
            })
            .sum::<anyhow::Result<u32>>()
    })?;
    let rate = f64::from(tokens) / t.elapsed().as_secs_f64();
    let cpu_ms = cpu
        .zip(cpu_s())
        .map(|(before, after)| (after - before) * 1e3 / f64::from(tokens.max(1)));
    Ok((rate, cpu_ms))
}

fn main() -> anyhow::Result<()> {
    let mut config = LlmConfig {
        model_path: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(LlmConfig::default().model_path),
        ..LlmConfig::default()
    };
    let mut models = Vec::new();
    let mut threads = vec![config.threads];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--threads" => {
                threads = value
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .context("--threads N[,N...]")?;
            }
            "--model" => models.push(PathBuf::from(value)),
            other => bail!("unknown argument {other} (use --threads N[,N...], --model PATH ...)"),
        }
    }
    if models.is_empty() {
        models.push(config.model_path.clone());
    }
    // Several models and thread counts are measured one after the other in this process, so
    // they see about the same machine load.
    for path in &models {
        for &n in &threads {
            config.model_path.clone_from(path);
            config.threads = n;
            bench(&config)?;
        }
    }
    Ok(())
}

fn bench(config: &LlmConfig) -> anyhow::Result<()> {
    let model = LlamaCppModel::load(config)?;
    let notes = format!(
        "{}, threads={}, {MAX_TOKENS} max tokens",
        model.name(),
        config.threads
    );

    // The first request evaluates the system prompt; later ones reuse it.
    let (cold_token, _) = latency(&model, "Hello?")?;
    let (mut first_token, mut first_sentence) = (Vec::new(), Vec::new());
    for q in QUESTIONS {
        let (token, sentence) = latency(&model, q)?;
        first_token.push(token);
        first_sentence.push(sentence);
    }
    println!(
        "llm.first_token_ms {:.1} ms (p50 of {}, system prompt cached; {cold_token:.1} cold; {notes})",
        median(first_token),
        QUESTIONS.len()
    );
    println!(
        "llm.first_sentence_ms {:.1} ms (p50 of {}, up to the first . ! ? or the end; {notes})",
        median(first_sentence),
        QUESTIONS.len()
    );

    let mut x1 = 0.0;
    for calls in [1usize, 4, 8] {
        let (rate, cpu_ms) = throughput(&model, calls)?;
        let cpu = cpu_ms.map_or(String::new(), |c| format!("{c:.1} CPU ms per token; "));
        if calls == 1 {
            x1 = rate;
            println!(
                "llm.tokens_per_s_x{calls} {rate:.1} tokens/s (one call, {ROUNDS} replies; {cpu}{notes})"
            );
        } else {
            println!(
                "llm.tokens_per_s_x{calls} {rate:.1} tokens/s (aggregate of {calls} calls decoded together, {ROUNDS} replies each, {:.2}x one call; {cpu}{notes})",
                rate / x1
            );
        }
    }
    Ok(())
}
