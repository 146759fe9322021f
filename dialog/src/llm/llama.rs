//! llama.cpp engine (llama-cpp-2): one worker thread owns the model and one context whose KV
//! cache holds up to `parallel` sequences. Each running request is a sequence; every step puts
//! the next token of each generating sequence, plus prompt chunks of newly arrived requests, into
//! one batch and decodes it once, so concurrent calls share one pass over the weights.
//!
//! The KV cache is unified: a new request starts from the longest evaluated prefix any sequence
//! holds (the static system prompt, or the same call's previous turn), shared with `seq_cp`
//! without copying data, and evaluates only the rest. A finished sequence keeps its tokens for
//! the call's next turn until its cells are needed. The chat template comes from the GGUF.

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
use llama_cpp_2::DecodeError;
use std::collections::VecDeque;
use std::ffi::CStr;
use std::num::NonZeroU32;
use std::ops::ControlFlow;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::OnceLock;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// llama.cpp's backend may be initialised once per process.
static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

pub(crate) fn backend() -> Result<&'static LlamaBackend, DialogError> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            let backend = LlamaBackend::init().map_err(|e| e.to_string());
            // Once per process, so a crash report says which kernels and buffers ran.
            tracing::info!(system_info = system_info(), "llama.cpp backend");
            backend
        })
        .as_ref()
        .map_err(|e| DialogError::Llm(format!("llama.cpp backend: {e}")))
}

/// llama.cpp's system-info line: the CPU features its kernels were compiled for (`AVX2 = 1`,
/// `AVX512 = 1`, `REPACK = 1`, …), then the extra weight buffer types the CPU backend offers on
/// this host (`CPU_REPACK`; `AMX` would mean ggml's AMX backend is in, which `.cargo/config.toml`
/// keeps out). Read once per process; needs no model.
pub fn system_info() -> &'static str {
    static INFO: OnceLock<String> = OnceLock::new();
    INFO.get_or_init(|| {
        // SAFETY: returns a NUL-terminated string owned by a static std::string in llama.cpp,
        // valid until the next call; this OnceLock makes ours the only call (llama-cpp-2 makes
        // none), and the text is copied before returning.
        let features = unsafe { CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
        let features = features.to_string_lossy();
        let buffers = extra_buffer_types();
        format!(
            "{} | extra buffer types: {}",
            features.trim().trim_end_matches('|').trim_end(),
            if buffers.is_empty() {
                "none".to_string()
            } else {
                buffers.join(", ")
            }
        )
    })
}

/// Names of the CPU device's extra buffer types (weights repacked for its kernels at load).
fn extra_buffer_types() -> Vec<String> {
    use llama_cpp_sys_2 as sys;
    // SAFETY: plain C call; returns ggml's static CPU device, or null if there is none.
    let device = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) };
    if device.is_null() {
        return Vec::new();
    }
    // SAFETY: `device` is a valid device from the registry above.
    let registry = unsafe { sys::ggml_backend_dev_backend_reg(device) };
    // SAFETY: `registry` is valid and the name is a NUL-terminated literal.
    let address = unsafe {
        sys::ggml_backend_reg_get_proc_address(
            registry,
            c"ggml_backend_dev_get_extra_bufts".as_ptr(),
        )
    };
    // SAFETY: under this name a backend registers a function of exactly this type (the typedef
    // of ggml-backend.h); a null address becomes `None`.
    let get_extra_bufts: sys::ggml_backend_dev_get_extra_bufts_t =
        unsafe { std::mem::transmute(address) };
    let Some(get_extra_bufts) = get_extra_bufts else {
        return Vec::new();
    };
    let mut names = Vec::new();
    // SAFETY: returns a static, null-terminated array of static buffer types.
    let mut next = unsafe { get_extra_bufts(device) };
    // SAFETY: `next` walks the array up to and including its null terminator; each buffer type
    // is valid for the whole process and its name is a static NUL-terminated string.
    unsafe {
        while !next.is_null() && !(*next).is_null() {
            names.push(
                CStr::from_ptr(sys::ggml_backend_buft_name(*next))
                    .to_string_lossy()
                    .into_owned(),
            );
            next = next.add(1);
        }
    }
    names
}

/// What the worker sends back for one request.
enum Event {
    Piece(String),
    Done(Result<GenerationOutput, DialogError>),
}

struct Job {
    request: GenerationRequest,
    cancel: CancellationToken,
    /// Sized for every piece plus `Done`, so the worker never waits on a slow caller.
    events: SyncSender<Event>,
    submitted: Instant,
}

impl Job {
    /// Answers without starting: the request is finished before its first token.
    fn answer(self, result: Result<GenerationOutput, DialogError>) {
        let _ = self.events.try_send(Event::Done(result));
    }

    fn empty_output(&self, stop_reason: StopReason, prompt_tokens: usize) -> GenerationOutput {
        GenerationOutput {
            text: String::new(),
            stop_reason,
            prompt_tokens: prompt_tokens as u32,
            cached_prompt_tokens: 0,
            generated_tokens: 0,
            first_token_ms: 0.0,
            total_ms: ms_since(self.submitted),
        }
    }
}

/// A GGUF model on llama.cpp, shared by every call of the process. Requests from several
/// threads are decoded together (up to `parallel`); more wait in a bounded queue of
/// `queue_depth`, and beyond that [`LanguageModel::generate`] blocks its caller (back-pressure).
pub struct LlamaCppModel {
    name: String,
    jobs: SyncSender<Job>,
    /// KV cells of the context: no request generates more tokens than this.
    n_ctx: usize,
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
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<usize, DialogError>>(1);
        let worker_config = config.clone();
        std::thread::Builder::new()
            .name("llm-worker".into())
            .spawn(move || worker(worker_config, rx, ready_tx))
            .map_err(|e| DialogError::Llm(format!("cannot start the LLM worker thread: {e}")))?;
        let n_ctx = ready_rx.recv().map_err(|_| DialogError::WorkerGone)??;
        Ok(Self { name, jobs, n_ctx })
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
        // At most one piece per generated token, one flush and `Done`.
        let capacity = (request.max_tokens as usize).min(self.n_ctx) + 2;
        let (events, rx) = mpsc::sync_channel(capacity);
        self.jobs
            .send(Job {
                request: request.clone(),
                cancel: stop.clone(),
                events,
                submitted: Instant::now(),
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

fn worker(config: LlmConfig, jobs: Receiver<Job>, ready: SyncSender<Result<usize, DialogError>>) {
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
    let mut engine = match Engine::new(backend, &model, &config) {
        Ok(e) => {
            let _ = ready.send(Ok(e.n_ctx));
            e
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    tracing::info!(
        model = %config.model_path.display(),
        threads = config.threads,
        sequences = engine.slots.len(),
        "LLM worker ready"
    );
    engine.serve(&jobs);
}

/// One llama.cpp sequence: the tokens its KV cells hold and, while busy, the request using it.
struct Slot {
    seq: i32,
    /// Tokens whose keys and values this sequence holds, at positions `0..len`.
    cached: Vec<LlamaToken>,
    /// Engine step at which the slot was last busy; the least recent idle slot is reused first.
    last_used: u64,
    active: Option<Active>,
}

/// A request being served by a slot.
struct Active {
    job: Job,
    prompt: Vec<LlamaToken>,
    sampler: LlamaSampler,
    out: GenerationOutput,
    /// Sampled but not yet decoded; goes into the next batch. `None` while the prompt is fed.
    next: Option<LlamaToken>,
    /// Bytes of a UTF-8 character split across tokens.
    pending: Vec<u8>,
    /// Bytes of `out.text` already handed to the caller.
    sent: usize,
}

impl Active {
    /// Cells this request may occupy: its prompt and every token it may generate.
    fn reserved(&self) -> usize {
        self.prompt.len() + self.job.request.max_tokens as usize
    }

    /// Takes a sampled token: streams its text, and says why the request ends, if it does.
    fn take(&mut self, token: LlamaToken, model: &LlamaModel) -> Option<StopReason> {
        let vocab = model.vocab();
        let request = &self.job.request;
        if self.out.generated_tokens == 0 {
            self.out.first_token_ms = ms_since(self.job.submitted);
        }
        if vocab.is_eog(token) {
            return Some(StopReason::EndOfTurn);
        }
        self.out.generated_tokens += 1;
        self.pending
            .extend(vocab.token_to_piece(token, false, None));
        // Hand out only complete UTF-8; a multi-byte character may span tokens.
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        self.out
            .text
            .push_str(&String::from_utf8_lossy(&self.pending[..valid]));
        self.pending.drain(..valid);
        let stopped = cut_at_stop(&mut self.out.text, &request.stop);
        // Never send text a stop string may still claim: hold back its longest prefix.
        let hold = if stopped {
            0
        } else {
            held_back(&self.out.text, &request.stop)
        };
        let safe = floor_char_boundary(&self.out.text, self.out.text.len() - hold);
        if safe > self.sent {
            let piece = self.out.text[self.sent..safe].to_string();
            self.sent = safe;
            if self.job.events.try_send(Event::Piece(piece)).is_err() {
                // The caller is gone.
                return Some(StopReason::Cancelled);
            }
        }
        if stopped {
            return Some(StopReason::StopString);
        }
        if self.out.generated_tokens >= request.max_tokens {
            return Some(StopReason::MaxTokens);
        }
        self.next = Some(token);
        None
    }

    /// Sends what is left and the result.
    fn finish(mut self, reason: StopReason) {
        self.out.stop_reason = reason;
        if reason != StopReason::StopString
            && reason != StopReason::Cancelled
            && self.sent < self.out.text.len()
        {
            let rest = self.out.text[self.sent..].to_string();
            let _ = self.job.events.try_send(Event::Piece(rest));
        }
        self.out.total_ms = ms_since(self.job.submitted);
        let _ = self.job.events.try_send(Event::Done(Ok(self.out)));
    }
}

/// What became of a request offered to the engine.
enum Admission {
    /// It runs in a slot, or it was answered at once.
    Taken,
    /// No slot or too few KV cells now; offer it again after a step.
    Wait(Job),
}

/// Tokens one slot put into the current batch.
struct Planned {
    slot: usize,
    tokens: Vec<LlamaToken>,
    /// Batch index of the logits to sample from, when this step ends the prompt or decodes a
    /// generated token.
    logits: Option<i32>,
}

/// The worker's state: the model, one context, and its sequences.
struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: LlamaChatTemplate,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    n_ctx: usize,
    slots: Vec<Slot>,
    step: u64,
}

impl<'m> Engine<'m> {
    fn new(
        backend: &LlamaBackend,
        model: &'m LlamaModel,
        config: &LlmConfig,
    ) -> Result<Self, DialogError> {
        let template = model
            .chat_template(None)
            .map_err(|e| DialogError::Llm(format!("the GGUF has no usable chat template: {e}")))?;
        let parallel = config.parallel.clamp(1, 256);
        let n_batch = config.batch_tokens.max(parallel).max(32);
        let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(config.context_tokens.max(256)))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(parallel)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| DialogError::Llm(format!("creating a llama.cpp context: {e}")))?;
        let slots = (0..parallel as i32)
            .map(|seq| Slot {
                seq,
                cached: Vec::new(),
                last_used: 0,
                active: None,
            })
            .collect();
        Ok(Self {
            model,
            n_ctx: ctx.n_ctx() as usize,
            ctx,
            template,
            batch: LlamaBatch::new(n_batch as usize, 1),
            n_batch: n_batch as usize,
            slots,
            step: 0,
        })
    }

    fn busy(&self) -> usize {
        self.slots.iter().filter(|s| s.active.is_some()).count()
    }

    /// Serves requests until every sender is gone and the last request has finished.
    fn serve(&mut self, jobs: &Receiver<Job>) {
        let mut waiting = VecDeque::<Job>::new();
        let mut open = true;
        loop {
            if self.busy() == 0 && waiting.is_empty() {
                if !open {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => waiting.push_back(job),
                    Err(_) => return,
                }
            }
            // Take no more from the channel than there are free slots: the rest stay queued
            // there, so its bound is what callers feel.
            let free = self.slots.len() - self.busy();
            while open && waiting.len() < free {
                match jobs.try_recv() {
                    Ok(job) => waiting.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            while let Some(job) = waiting.pop_front() {
                if let Admission::Wait(job) = self.admit(job) {
                    waiting.push_front(job);
                    break;
                }
            }
            if self.busy() > 0 {
                self.step();
            }
        }
    }

    fn tokenize(&self, request: &GenerationRequest) -> Result<Vec<LlamaToken>, DialogError> {
        let chat = request
            .messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DialogError::InvalidRequest(format!("message with a NUL byte: {e}")))?;
        let prompt = self
            .model
            .apply_chat_template(&self.template, &chat, true)
            .map_err(|e| DialogError::Llm(format!("applying the chat template: {e}")))?;
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), false, true);
        if tokens.is_empty() {
            return Err(DialogError::InvalidRequest("the prompt is empty".into()));
        }
        Ok(tokens)
    }

    /// Starts `job` in a free slot, answers it at once, or hands it back to wait.
    fn admit(&mut self, job: Job) -> Admission {
        if job.cancel.is_cancelled() {
            let out = job.empty_output(StopReason::Cancelled, 0);
            job.answer(Ok(out));
            return Admission::Taken;
        }
        let tokens = match self.tokenize(&job.request) {
            Ok(t) => t,
            Err(e) => {
                job.answer(Err(e));
                return Admission::Taken;
            }
        };
        let need = tokens.len() + job.request.max_tokens as usize;
        if need > self.n_ctx {
            let e = DialogError::InvalidRequest(format!(
                "prompt of {} tokens plus {} new ones exceeds the {}-token context \
                 (raise llm.context_tokens or lower max_tokens)",
                tokens.len(),
                job.request.max_tokens,
                self.n_ctx
            ));
            job.answer(Err(e));
            return Admission::Taken;
        }
        if job.request.max_tokens == 0 {
            let out = job.empty_output(StopReason::MaxTokens, tokens.len());
            job.answer(Ok(out));
            return Admission::Taken;
        }
        let reserved: usize = self
            .slots
            .iter()
            .filter_map(|s| s.active.as_ref().map(Active::reserved))
            .sum();
        // The idle slot that already holds most of this prompt (the call's previous turn), else
        // the least recently used one.
        let target = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active.is_none())
            .max_by_key(|(_, s)| (common_prefix(&s.cached, &tokens), u64::MAX - s.last_used))
            .map(|(i, _)| i);
        let Some(target) = target else {
            return Admission::Wait(job);
        };
        if reserved + need > self.n_ctx {
            // Only running requests hold these cells, and they will finish.
            return Admission::Wait(job);
        }
        // Free idle sequences' cells, least recently used first, until this request fits.
        let mut idle: Vec<usize> = (0..self.slots.len())
            .filter(|&i| i != target && self.slots[i].active.is_none())
            .filter(|&i| !self.slots[i].cached.is_empty())
            .collect();
        idle.sort_by_key(|&i| self.slots[i].last_used);
        let mut kept: usize = idle.iter().map(|&i| self.slots[i].cached.len()).sum();
        for i in idle {
            if reserved + need + kept <= self.n_ctx {
                break;
            }
            kept -= self.slots[i].cached.len();
            self.forget(i);
        }
        let sampler = match sampler(self.model, &job.request) {
            Ok(s) => s,
            Err(e) => {
                job.answer(Err(e));
                return Admission::Taken;
            }
        };
        let reused = match self.reuse_prefix(target, &tokens) {
            Ok(n) => n,
            Err(e) => {
                self.forget(target);
                job.answer(Err(e));
                return Admission::Taken;
            }
        };
        tracing::debug!(
            seq = self.slots[target].seq,
            prompt = tokens.len(),
            reused,
            "LLM request admitted"
        );
        let mut out = job.empty_output(StopReason::MaxTokens, tokens.len());
        out.cached_prompt_tokens = reused as u32;
        self.slots[target].active = Some(Active {
            job,
            prompt: tokens,
            sampler,
            out,
            next: None,
            pending: Vec::new(),
            sent: 0,
        });
        Admission::Taken
    }

    /// Makes slot `target` hold the longest evaluated prefix of `tokens` found in any sequence,
    /// keeping at least the last prompt token to evaluate (its logits start the reply). Returns
    /// how many prompt tokens are reused.
    fn reuse_prefix(&mut self, target: usize, tokens: &[LlamaToken]) -> Result<usize, DialogError> {
        let limit = tokens.len() - 1;
        let own = common_prefix(&self.slots[target].cached, tokens).min(limit);
        let donor = self
            .slots
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != target)
            .map(|(i, s)| (common_prefix(&s.cached, tokens).min(limit), i))
            .max();
        let kv = |e| DialogError::Llm(format!("KV cache: {e}"));
        let seq = self.slots[target].seq;
        match donor {
            Some((shared, donor)) if shared > own => {
                let from = self.slots[donor].seq;
                self.ctx.kv_cache_seq_rm(seq, None, None).map_err(kv)?;
                // Same cells, one more sequence id on them: nothing is recomputed or copied.
                self.ctx
                    .kv_cache_seq_cp(from, seq, Some(0), Some(shared as u32))
                    .map_err(kv)?;
                self.slots[target].cached = tokens[..shared].to_vec();
                Ok(shared)
            }
            _ => {
                self.ctx
                    .kv_cache_seq_rm(seq, Some(own as u32), None)
                    .map_err(kv)?;
                self.slots[target].cached.truncate(own);
                Ok(own)
            }
        }
    }

    /// Drops what slot `i` holds in the KV cache.
    fn forget(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.cached.clear();
        if let Err(e) = self.ctx.kv_cache_seq_rm(slot.seq, None, None) {
            tracing::warn!(seq = slot.seq, "clearing an LLM sequence failed: {e}");
        }
    }

    fn finish(&mut self, i: usize, reason: StopReason) {
        let slot = &mut self.slots[i];
        slot.last_used = self.step;
        if let Some(active) = slot.active.take() {
            active.finish(reason);
        }
    }

    fn fail(&mut self, i: usize, error: DialogError) {
        self.slots[i].last_used = self.step;
        if let Some(active) = self.slots[i].active.take() {
            active.job.answer(Err(error));
        }
        // The sequence may be half-written: forget it rather than trust it.
        self.forget(i);
    }

    /// One decode: the next token of every generating sequence and prompt chunks of the others,
    /// then one sampled token for each sequence whose logits are ready.
    fn step(&mut self) {
        self.step += 1;
        for i in 0..self.slots.len() {
            if self.slots[i]
                .active
                .as_ref()
                .is_some_and(|a| a.job.cancel.is_cancelled())
            {
                self.finish(i, StopReason::Cancelled);
            }
        }
        let plan = match self.fill_batch() {
            Ok(plan) => plan,
            Err(e) => {
                // Only a bug in the batch arithmetic gets here; fail every running request.
                for i in 0..self.slots.len() {
                    if self.slots[i].active.is_some() {
                        self.fail(i, DialogError::Llm(format!("batch: {e}")));
                    }
                }
                return;
            }
        };
        if plan.is_empty() {
            return;
        }
        let mut decoded = self.ctx.decode(&mut self.batch);
        if matches!(decoded, Err(DecodeError::NoKvCacheSlot)) {
            // Idle sequences kept for later turns hold the cells: free them and retry once.
            // A failed slot search leaves the cache as it was.
            for i in 0..self.slots.len() {
                if self.slots[i].active.is_none() && !self.slots[i].cached.is_empty() {
                    self.forget(i);
                }
            }
            decoded = self.ctx.decode(&mut self.batch);
        }
        if let Err(e) = decoded {
            for p in plan {
                self.fail(p.slot, DialogError::Llm(format!("decode: {e}")));
            }
            return;
        }
        for p in plan {
            let slot = &mut self.slots[p.slot];
            slot.cached.extend_from_slice(&p.tokens);
            let Some(idx) = p.logits else { continue };
            let Some(active) = slot.active.as_mut() else {
                continue;
            };
            // Checked again after the decode, so a barge-in during it costs no further token.
            let reason = if active.job.cancel.is_cancelled() {
                Some(StopReason::Cancelled)
            } else {
                // `sample` also accepts the token into the chain (grammar state).
                let token = active.sampler.sample(&self.ctx, idx);
                active.take(token, self.model)
            };
            if let Some(reason) = reason {
                self.finish(p.slot, reason);
            }
        }
    }

    /// Puts this step's tokens into the batch: first one token per generating sequence (they
    /// must not wait), then prompt tokens, oldest request first, while there is room.
    fn fill_batch(&mut self) -> Result<Vec<Planned>, llama_cpp_2::llama_batch::BatchAddError> {
        self.batch.clear();
        let mut plan = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(token) = slot.active.as_mut().and_then(|a| a.next.take()) else {
                continue;
            };
            self.batch
                .add(token, slot.cached.len() as i32, &[slot.seq], true)?;
            plan.push(Planned {
                slot: i,
                tokens: vec![token],
                logits: Some(self.batch.n_tokens() - 1),
            });
        }
        let mut feeding: Vec<usize> = (0..self.slots.len())
            .filter(|&i| {
                let slot = &self.slots[i];
                slot.active
                    .as_ref()
                    .is_some_and(|a| slot.cached.len() < a.prompt.len())
            })
            .collect();
        feeding.sort_by_key(|&i| self.slots[i].active.as_ref().map(|a| a.job.submitted));
        for i in feeding {
            let room = self.n_batch - self.batch.n_tokens() as usize;
            if room == 0 {
                break;
            }
            let slot = &self.slots[i];
            let Some(active) = slot.active.as_ref() else {
                continue;
            };
            let done = slot.cached.len();
            let end = (done + room).min(active.prompt.len());
            for (pos, &token) in active.prompt.iter().enumerate().take(end).skip(done) {
                self.batch.add(
                    token,
                    pos as i32,
                    &[slot.seq],
                    pos + 1 == active.prompt.len(),
                )?;
            }
            plan.push(Planned {
                slot: i,
                tokens: active.prompt[done..end].to_vec(),
                logits: (end == active.prompt.len()).then(|| self.batch.n_tokens() - 1),
            });
        }
        Ok(plan)
    }
}

/// The sampler chain of one request; each sequence has its own (grammar state, random draw).
fn sampler(model: &LlamaModel, request: &GenerationRequest) -> Result<LlamaSampler, DialogError> {
    let mut chain = Vec::new();
    if let Some(grammar) = &request.grammar {
        chain.push(
            LlamaSampler::grammar(model, grammar, "root")
                .map_err(|e| DialogError::InvalidRequest(format!("GBNF grammar: {e}")))?,
        );
    }
    if request.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        if request.top_k > 0 {
            chain.push(LlamaSampler::top_k(
                i32::try_from(request.top_k).unwrap_or(i32::MAX),
            ));
        }
        if request.top_p < 1.0 {
            chain.push(LlamaSampler::top_p(request.top_p, 1));
        }
        chain.push(LlamaSampler::temp(request.temperature));
        chain.push(LlamaSampler::dist(request.seed));
    }
    Ok(LlamaSampler::chain_simple(chain))
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
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

    #[test]
    fn common_prefix_counts_equal_leading_tokens() {
        let t = |v: &[i32]| v.iter().map(|&i| LlamaToken(i)).collect::<Vec<_>>();
        assert_eq!(common_prefix(&t(&[1, 2, 3]), &t(&[1, 2, 4, 5])), 2);
        assert_eq!(common_prefix(&t(&[]), &t(&[1])), 0);
        assert_eq!(common_prefix(&t(&[1, 2]), &t(&[1, 2])), 2);
    }
}
