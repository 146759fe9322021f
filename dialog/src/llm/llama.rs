//! llama.cpp engine (llama-cpp-2): one worker thread owns the model and its context; callers
//! send requests over a bounded channel and receive tokens back as they are decoded. The chat
//! template comes from the GGUF. The evaluated prompt is kept in the KV cache, so a request
//! sharing a prefix with the previous one (the static system prompt) only evaluates the rest.

use super::{cut_at_stop, GenerationOutput, GenerationRequest, LanguageModel, StopReason};
use crate::{DialogError, LlmConfig};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::OnceLock;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// llama.cpp's backend may be initialised once per process.
static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

fn backend() -> Result<&'static LlamaBackend, DialogError> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| DialogError::Llm(format!("llama.cpp backend: {e}")))
}

/// Tokens a worker sends back for one request.
enum Event {
    Piece(String),
    Done(Result<GenerationOutput, DialogError>),
}

struct Job {
    request: GenerationRequest,
    cancel: CancellationToken,
    events: SyncSender<Event>,
}

/// A GGUF model on llama.cpp, shared by every call of the process.
pub struct LlamaCppModel {
    name: String,
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for LlamaCppModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaCppModel")
            .field("name", &self.name)
            .finish()
    }
}

impl LlamaCppModel {
    /// Loads the model on a dedicated worker thread and waits until it is ready.
    pub fn load(config: &LlmConfig) -> Result<Self, DialogError> {
        let path = config.model_path.clone();
        if !path.exists() {
            return Err(DialogError::ModelMissing { path });
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (jobs, rx) = mpsc::sync_channel::<Job>(config.queue_depth.max(1));
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), DialogError>>(1);
        let config = config.clone();
        std::thread::Builder::new()
            .name("llm-worker".into())
            .spawn(move || worker(config, rx, ready_tx))
            .map_err(|e| DialogError::Llm(format!("cannot start the LLM worker thread: {e}")))?;
        ready_rx.recv().map_err(|_| DialogError::WorkerGone)??;
        Ok(Self { name, jobs })
    }
}

impl LanguageModel for LlamaCppModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate(
        &self,
        request: &GenerationRequest,
        cancel: &CancellationToken,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerationOutput, DialogError> {
        if request.messages.is_empty() {
            return Err(DialogError::InvalidRequest(
                "a generation needs at least one message".into(),
            ));
        }
        // A child token lets a sink's `Break` stop the worker without cancelling the caller's.
        let stop = cancel.child_token();
        let (events, rx) = mpsc::sync_channel(64);
        self.jobs
            .send(Job {
                request: request.clone(),
                cancel: stop.clone(),
                events,
            })
            .map_err(|_| DialogError::WorkerGone)?;
        let mut sink_broke = false;
        for event in rx {
            match event {
                Event::Piece(piece) => {
                    if !sink_broke && on_token(&piece).is_break() {
                        sink_broke = true;
                        stop.cancel();
                    }
                }
                Event::Done(result) => return result,
            }
        }
        Err(DialogError::WorkerGone)
    }
}

/// The worker's state: the model, one context, and the tokens currently in its KV cache.
struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: LlamaChatTemplate,
    cached: Vec<LlamaToken>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
}

fn worker(config: LlmConfig, jobs: Receiver<Job>, ready: SyncSender<Result<(), DialogError>>) {
    let setup = || -> Result<(&'static LlamaBackend, LlamaModel), DialogError> {
        let backend = backend()?;
        let model =
            LlamaModel::load_from_file(backend, &config.model_path, &LlamaModelParams::default())
                .map_err(|e| {
                DialogError::Llm(format!("loading {}: {e}", config.model_path.display()))
            })?;
        Ok((backend, model))
    };
    let (backend, model) = match setup() {
        Ok(v) => v,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let engine = (|| -> Result<Engine<'_>, DialogError> {
        let template = model
            .chat_template(None)
            .map_err(|e| DialogError::Llm(format!("the GGUF has no usable chat template: {e}")))?;
        let n_batch = 512u32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(config.context_tokens.max(256)))
            .with_n_batch(n_batch)
            .with_n_threads(config.threads.max(1) as i32)
            .with_n_threads_batch(config.threads.max(1) as i32);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| DialogError::Llm(format!("creating a llama.cpp context: {e}")))?;
        Ok(Engine {
            model: &model,
            ctx,
            template,
            cached: Vec::new(),
            batch: LlamaBatch::new(n_batch as usize, 1),
            n_batch: n_batch as usize,
        })
    })();
    let mut engine = match engine {
        Ok(e) => {
            let _ = ready.send(Ok(()));
            e
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    tracing::info!(model = %config.model_path.display(), threads = config.threads, "LLM worker ready");
    for job in jobs {
        let events = job.events.clone();
        let result = engine.run(&job);
        if result.is_err() {
            // The KV cache may be half-written: forget it rather than trust it.
            engine.cached.clear();
            engine.ctx.clear_kv_cache();
        }
        let _ = events.send(Event::Done(result));
    }
}

impl Engine<'_> {
    fn prompt(&self, request: &GenerationRequest) -> Result<String, DialogError> {
        let chat = request
            .messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DialogError::InvalidRequest(format!("message with a NUL byte: {e}")))?;
        self.model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| DialogError::Llm(format!("applying the chat template: {e}")))
    }

    /// Evaluates `tokens` from position `start`, in batches; logits only for the last token.
    fn eval(&mut self, tokens: &[LlamaToken], start: usize) -> Result<(), DialogError> {
        let total = tokens.len();
        let mut pos = start;
        while pos < total {
            let end = (pos + self.n_batch).min(total);
            self.batch.clear();
            for (i, &t) in tokens[pos..end].iter().enumerate() {
                let p = pos + i;
                self.batch
                    .add(t, p as i32, &[0], p + 1 == total)
                    .map_err(|e| DialogError::Llm(format!("batch: {e}")))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| DialogError::Llm(format!("decode: {e}")))?;
            pos = end;
        }
        Ok(())
    }

    fn run(&mut self, job: &Job) -> Result<GenerationOutput, DialogError> {
        let started = Instant::now();
        let request = &job.request;
        let prompt = self.prompt(request)?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), false, true);
        let n_ctx = self.ctx.n_ctx() as usize;
        if tokens.len() + request.max_tokens as usize > n_ctx {
            return Err(DialogError::InvalidRequest(format!(
                "prompt of {} tokens plus {} new ones exceeds the {n_ctx}-token context",
                tokens.len(),
                request.max_tokens
            )));
        }
        // Reuse the longest common prefix with what is already in the KV cache; keep at least
        // one token to evaluate so there are fresh logits.
        let common = self
            .cached
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count();
        let reuse = common.min(tokens.len().saturating_sub(1));
        self.ctx
            .kv_cache_seq_rm(0, Some(reuse as u32), None)
            .map_err(|e| DialogError::Llm(format!("kv cache: {e}")))?;
        self.cached.truncate(reuse);
        self.eval(&tokens, reuse)?;
        self.cached = tokens.clone();

        let mut sampler = self.sampler(request)?;
        let mut out = GenerationOutput {
            text: String::new(),
            stop_reason: StopReason::MaxTokens,
            prompt_tokens: tokens.len() as u32,
            cached_prompt_tokens: reuse as u32,
            generated_tokens: 0,
            first_token_ms: 0.0,
            total_ms: 0.0,
        };
        let mut pending = Vec::<u8>::new();
        let mut sent = 0usize;
        let vocab = self.model.vocab();
        let mut pos = tokens.len();
        while out.generated_tokens < request.max_tokens {
            if job.cancel.is_cancelled() {
                out.stop_reason = StopReason::Cancelled;
                break;
            }
            // `sample` also accepts the token into the chain (grammar state, penalties).
            let token = sampler.sample(&self.ctx, self.batch.n_tokens() - 1);
            if out.generated_tokens == 0 {
                out.first_token_ms = started.elapsed().as_secs_f64() * 1e3;
            }
            if vocab.is_eog(token) {
                out.stop_reason = StopReason::EndOfTurn;
                break;
            }
            out.generated_tokens += 1;
            pending.extend(vocab.token_to_piece(token, false, None));
            // Hand out only complete UTF-8; a multi-byte character may span tokens.
            let valid = match std::str::from_utf8(&pending) {
                Ok(s) => s.len(),
                Err(e) => e.valid_up_to(),
            };
            out.text
                .push_str(&String::from_utf8_lossy(&pending[..valid]));
            pending.drain(..valid);
            let stopped = cut_at_stop(&mut out.text, &request.stop);
            // Never send text a stop string may still claim: hold back its longest prefix.
            let hold = if stopped {
                0
            } else {
                held_back(&out.text, &request.stop)
            };
            let safe = floor_char_boundary(&out.text, out.text.len() - hold);
            if safe > sent {
                let piece = out.text[sent..safe].to_string();
                sent = safe;
                if job.events.send(Event::Piece(piece)).is_err() {
                    out.stop_reason = StopReason::Cancelled;
                    break;
                }
            }
            if stopped {
                out.stop_reason = StopReason::StopString;
                break;
            }
            self.batch.clear();
            self.batch
                .add(token, pos as i32, &[0], true)
                .map_err(|e| DialogError::Llm(format!("batch: {e}")))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| DialogError::Llm(format!("decode: {e}")))?;
            self.cached.push(token);
            pos += 1;
        }
        if out.stop_reason != StopReason::StopString
            && out.stop_reason != StopReason::Cancelled
            && sent < out.text.len()
        {
            let _ = job.events.send(Event::Piece(out.text[sent..].to_string()));
        }
        out.total_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(out)
    }

    fn sampler(&self, request: &GenerationRequest) -> Result<LlamaSampler, DialogError> {
        let mut chain = Vec::new();
        if let Some(grammar) = &request.grammar {
            chain.push(
                LlamaSampler::grammar(self.model, grammar, "root")
                    .map_err(|e| DialogError::InvalidRequest(format!("GBNF grammar: {e}")))?,
            );
        }
        if request.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            chain.push(LlamaSampler::top_k(40));
            chain.push(LlamaSampler::top_p(0.95, 1));
            chain.push(LlamaSampler::temp(request.temperature));
            chain.push(LlamaSampler::dist(request.seed));
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of a stop string.
fn held_back(text: &str, stop: &[String]) -> usize {
    stop.iter()
        .flat_map(|s| {
            (1..s.len())
                .rev()
                .filter(move |&n| s.is_char_boundary(n))
                .map(move |n| &s[..n])
        })
        .filter(|prefix| text.ends_with(prefix))
        .map(str::len)
        .max()
        .unwrap_or(0)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_partial_stop_strings() {
        let stop = vec!["\nUser:".to_string()];
        assert_eq!(held_back("Hello\nUs", &stop), 3);
        assert_eq!(held_back("Hello", &stop), 0);
    }
}
