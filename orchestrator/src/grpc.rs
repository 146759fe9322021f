//! The gRPC edge (tonic). Protobuf types stop here: requests become domain calls, and domain
//! errors become `tonic::Status` in [`status`] only. tower middleware (auth, load shedding,
//! timeouts, tracing) is stacked in [`serve`], nowhere else. [`GrpcLine`] is the `Call` stream
//! as a [`CallTransport`].

use crate::app::App;
use crate::auth::{require, require_permission, Permission, Role};
use crate::campaign::CampaignRunner;
use crate::proto::orchestrator_server::{Orchestrator, OrchestratorServer};
use crate::proto::{self, call_in, call_out, transcript_event::Event};
use crate::session::{now_ms, CallEvent, CallSession, CallSetup};
use crate::transport::{CallTransport, LineCodec, LineEncoding, LineFormat, TransportError};
use crate::Engines;
use async_trait::async_trait;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use voice::{AsrOptions, Language, Listener, SpeechEvent};

/// Frames of audio queued between the network and the recognizer thread. When full, the reader
/// waits (back-pressure on the client's stream) rather than dropping audio.
const AUDIO_QUEUE: usize = 64;
/// Messages queued toward a `Call` client; a client that stops reading fills it and then stalls
/// the call, which ends after [`SEND_TIMEOUT`].
const CALL_OUT_QUEUE: usize = 32;
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The one place a domain error becomes a gRPC status.
pub fn status(e: &anyhow::Error) -> Status {
    if let Some(v) = e.downcast_ref::<voice::VoiceError>() {
        return match v {
            voice::VoiceError::InvalidInput(m) => Status::invalid_argument(m.clone()),
            voice::VoiceError::ModelMissing { .. } => Status::failed_precondition(v.to_string()),
            _ => Status::internal(v.to_string()),
        };
    }
    if let Some(r) = e.downcast_ref::<retrieval::RetrievalError>() {
        return match r {
            retrieval::RetrievalError::InvalidInput(m) => Status::invalid_argument(m.clone()),
            _ => Status::internal(r.to_string()),
        };
    }
    if let Some(t) = e.downcast_ref::<TransportError>() {
        return match t {
            TransportError::InvalidAudio(m) => Status::invalid_argument(m.clone()),
            _ => Status::unavailable(t.to_string()),
        };
    }
    if let Some(c) = e.downcast_ref::<crate::campaign::CampaignError>() {
        return match c {
            crate::campaign::CampaignError::NotFound(m) => Status::not_found(m.clone()),
            crate::campaign::CampaignError::Invalid(m) => Status::invalid_argument(m.clone()),
            crate::campaign::CampaignError::State(m) => Status::failed_precondition(m.clone()),
        };
    }
    Status::internal(format!("{e:#}"))
}

fn internal(e: impl Into<anyhow::Error>) -> Status {
    status(&e.into())
}

/// The orchestrator service.
pub struct OrchestratorService {
    engines: Arc<Engines>,
    /// The whole product; `None` serves only `Health` and `Transcribe` (engines alone).
    app: Option<Arc<App>>,
    campaigns: Option<Arc<CampaignRunner>>,
    call_slots: Arc<Semaphore>,
    max_calls: usize,
}

impl OrchestratorService {
    /// Engines only: `Health` and `Transcribe`.
    pub fn new(engines: Arc<Engines>) -> Self {
        Self {
            engines,
            app: None,
            campaigns: None,
            call_slots: Arc::new(Semaphore::new(0)),
            max_calls: 0,
        }
    }

    /// The whole API over an assembled app and its campaign runner.
    pub fn with_app(app: Arc<App>, campaigns: Option<Arc<CampaignRunner>>) -> Self {
        let max_calls = app.config.server.max_calls.max(1);
        Self {
            engines: app.engines.clone(),
            app: Some(app),
            campaigns,
            call_slots: Arc::new(Semaphore::new(max_calls)),
            max_calls,
        }
    }

    fn app(&self) -> Result<&Arc<App>, Status> {
        self.app.as_ref().ok_or_else(|| {
            Status::unimplemented("this server runs the engines only (no store configured)")
        })
    }

    fn campaigns(&self) -> Result<&Arc<CampaignRunner>, Status> {
        self.campaigns
            .as_ref()
            .ok_or_else(|| Status::unimplemented("this server runs no campaign dialer"))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::TranscriptEvent, Status>> + Send>>;
type CallOutStream = Pin<Box<dyn Stream<Item = Result<proto::CallOut, Status>> + Send>>;

fn pcm_from_le(bytes: &[u8]) -> Result<Vec<i16>, Status> {
    if !bytes.len().is_multiple_of(2) {
        return Err(Status::invalid_argument(
            "pcm16le must hold an even number of bytes",
        ));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// The `Call` stream as a line: reads `CallIn` audio, writes `CallOut` messages.
pub struct GrpcLine {
    inbound: Streaming<proto::CallIn>,
    codec: LineCodec,
    ready: VecDeque<Vec<i16>>,
    out: mpsc::Sender<Result<proto::CallOut, Status>>,
}

impl std::fmt::Debug for GrpcLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcLine").finish_non_exhaustive()
    }
}

fn format_from_proto(f: Option<proto::AudioFormat>) -> Result<LineFormat, Status> {
    let f = f.ok_or_else(|| {
        Status::invalid_argument("start.format is missing: give sample_rate and encoding")
    })?;
    let encoding = match proto::Encoding::try_from(f.encoding) {
        Ok(proto::Encoding::Pcm16le) => LineEncoding::Pcm16,
        Ok(proto::Encoding::Pcmu) => LineEncoding::Ulaw,
        Ok(proto::Encoding::Pcma) => LineEncoding::Alaw,
        _ => {
            return Err(Status::invalid_argument(
                "start.format.encoding must be PCM16LE, PCMU or PCMA",
            ))
        }
    };
    LineFormat {
        sample_rate: f.sample_rate,
        encoding,
    }
    .validate()
    .map_err(|e| Status::invalid_argument(e.to_string()))
}

fn format_to_proto(f: LineFormat) -> proto::AudioFormat {
    proto::AudioFormat {
        sample_rate: f.sample_rate,
        encoding: match f.encoding {
            LineEncoding::Pcm16 => proto::Encoding::Pcm16le,
            LineEncoding::Ulaw => proto::Encoding::Pcmu,
            LineEncoding::Alaw => proto::Encoding::Pcma,
        } as i32,
    }
}

#[async_trait]
impl CallTransport for GrpcLine {
    async fn recv(&mut self) -> Result<Option<Vec<i16>>, TransportError> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            match self.inbound.message().await {
                Ok(Some(proto::CallIn {
                    msg: Some(call_in::Msg::Audio(frame)),
                })) => self.ready.extend(self.codec.decode(&frame.data)?),
                Ok(Some(proto::CallIn {
                    msg: Some(call_in::Msg::Hangup(_)),
                }))
                | Ok(None) => return Ok(None),
                Ok(Some(proto::CallIn {
                    msg: Some(call_in::Msg::Start(_)),
                })) => {
                    return Err(TransportError::InvalidAudio(
                        "a second `start` message on a call in progress".into(),
                    ))
                }
                Ok(Some(proto::CallIn { msg: None })) => {
                    return Err(TransportError::InvalidAudio(
                        "an empty CallIn message (set audio or hangup)".into(),
                    ))
                }
                Err(status) => return Err(TransportError::Gone(status.message().to_string())),
            }
        }
    }

    async fn send(&mut self, event: CallEvent) -> Result<(), TransportError> {
        let (at_ms, msg) = match event {
            CallEvent::Accepted { call_id } => (
                0,
                call_out::Msg::Accepted(proto::CallAccepted {
                    call_id,
                    format: Some(format_to_proto(self.codec.format())),
                }),
            ),
            CallEvent::Audio { at_ms, pcm } => (
                at_ms,
                call_out::Msg::Audio(proto::AudioFrame {
                    data: self.codec.encode(&pcm)?,
                }),
            ),
            CallEvent::Clear { at_ms } => (
                at_ms,
                call_out::Msg::Clear(proto::ClearAudio {
                    reason: "barge_in".into(),
                }),
            ),
            CallEvent::SpeechStarted { at_ms } => (
                at_ms,
                call_out::Msg::SpeechStarted(proto::SpeechStarted { at_ms }),
            ),
            CallEvent::Partial { at_ms, text } => (
                at_ms,
                call_out::Msg::Partial(proto::Transcript {
                    text,
                    ..Default::default()
                }),
            ),
            CallEvent::Final {
                at_ms,
                text,
                start_ms,
                end_ms,
                avg_logprob,
            } => (
                at_ms,
                call_out::Msg::Final(proto::Transcript {
                    text,
                    start_ms,
                    end_ms,
                    avg_logprob,
                }),
            ),
            CallEvent::Turn {
                at_ms,
                info,
                v2v_ms,
            } => (
                at_ms,
                call_out::Msg::Turn(proto::TurnInfo {
                    index: info.index,
                    caller_text: info.caller_text,
                    intent: info.intent,
                    confidence: info.confidence,
                    sentiment: info.sentiment,
                    keywords: info.keywords,
                    action: info.action,
                    rule: info.rule,
                    reply: info.reply,
                    v2v_ms: v2v_ms.unwrap_or_default(),
                }),
            ),
            CallEvent::HandOff {
                at_ms,
                reason,
                summary,
                agent_assigned,
            } => (
                at_ms,
                call_out::Msg::HandOff(proto::HandOff {
                    reason,
                    summary,
                    agent_assigned,
                }),
            ),
            CallEvent::Ended {
                at_ms,
                outcome,
                reason,
                turns,
                barge_ins,
            } => (
                at_ms,
                call_out::Msg::Ended(proto::CallEnded {
                    outcome,
                    reason,
                    turns,
                    barge_ins,
                    duration_ms: at_ms,
                }),
            ),
        };
        let out = proto::CallOut {
            at_ms,
            msg: Some(msg),
        };
        match tokio::time::timeout(SEND_TIMEOUT, self.out.send(Ok(out))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(TransportError::Gone("the client closed the call".into())),
            Err(_) => Err(TransportError::Stalled(SEND_TIMEOUT)),
        }
    }
}

fn customer_to_proto(p: &retrieval::CustomerProfile, phone_masked: String) -> proto::Customer {
    proto::Customer {
        customer_id: p.customer_id.clone(),
        display_name: p.display_name.clone(),
        language: p.language.code().to_string(),
        phone_masked,
        region: p.region.clone().unwrap_or_default(),
        segment: p.segment.clone().unwrap_or_default(),
        do_not_call: p.do_not_call,
        calls_so_far: p.calls_so_far,
    }
}

fn summary_to_proto(c: &retrieval::store::CallRecord) -> proto::CallSummary {
    proto::CallSummary {
        call_id: c.id.clone(),
        customer_id: c.customer_id.clone(),
        campaign_id: c.campaign_id.clone(),
        outcome: c.outcome.clone(),
        started_at_ms: c.started_at_ms,
        ended_at_ms: c.ended_at_ms,
    }
}

fn campaign_status_to_proto(s: crate::campaign::CampaignView) -> proto::CampaignStatus {
    proto::CampaignStatus {
        campaign_id: s.campaign_id,
        state: s.state,
        queued: s.queued,
        dialing: s.dialing,
        completed: s.completed,
        do_not_call_skipped: s.do_not_call_skipped,
        exhausted: s.exhausted,
        outcomes: s.outcomes.into_iter().collect(),
        live_calls: s.live_calls,
        agents_available: s.agents_available,
        abandoned_handoff_rate: s.abandoned_handoff_rate,
    }
}

fn id_arg(value: &str, what: &str) -> Result<String, Status> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Status::invalid_argument(format!("{what} is empty")));
    }
    if v.len() > 128 {
        return Err(Status::invalid_argument(format!(
            "{what} is longer than 128 characters"
        )));
    }
    Ok(v.to_string())
}

#[tonic::async_trait]
impl Orchestrator for OrchestratorService {
    async fn health(
        &self,
        _: Request<proto::HealthRequest>,
    ) -> Result<Response<proto::HealthReply>, Status> {
        Ok(Response::new(proto::HealthReply {
            version: env!("CARGO_PKG_VERSION").to_string(),
            engines: self
                .engines
                .load_ms
                .iter()
                .map(|(n, _)| (*n).to_string())
                .collect(),
            active_calls: (self.max_calls - self.call_slots.available_permits()) as u32,
        }))
    }

    type TranscribeStream = EventStream;

    async fn transcribe(
        &self,
        request: Request<Streaming<proto::AudioIn>>,
    ) -> Result<Response<Self::TranscribeStream>, Status> {
        require_permission(request.extensions(), Permission::ReadTranscripts)
            .or_else(|_| require(request.extensions(), &[Role::Operator, Role::Admin]))?;
        let mut inbound = request.into_inner();
        let first = inbound
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty audio stream"))??;
        let language: Language = if first.language.is_empty() {
            Language::English
        } else {
            first
                .language
                .parse()
                .map_err(|e: voice::VoiceError| Status::invalid_argument(e.to_string()))?
        };
        let (audio_tx, mut audio_rx) = mpsc::channel::<Vec<i16>>(AUDIO_QUEUE);
        let (out_tx, out_rx) = mpsc::channel::<Result<proto::TranscriptEvent, Status>>(AUDIO_QUEUE);
        let cancel = CancellationToken::new();

        // Network side: decode PCM and hand it to the recognizer thread.
        let reader_out = out_tx.clone();
        let reader_cancel = cancel.clone();
        audio_tx
            .send(pcm_from_le(&first.pcm16le)?)
            .await
            .map_err(|_| Status::internal("recognizer stopped"))?;
        tokio::spawn(async move {
            while let Some(msg) = inbound.next().await {
                let pcm = match msg.and_then(|m| pcm_from_le(&m.pcm16le)) {
                    Ok(p) => p,
                    Err(s) => {
                        let _ = reader_out.send(Err(s)).await;
                        reader_cancel.cancel();
                        return;
                    }
                };
                if audio_tx.send(pcm).await.is_err() {
                    return;
                }
            }
        });

        // Engine side: VAD + Whisper on a blocking thread, never in an async poll.
        let engines = self.engines.clone();
        tokio::task::spawn_blocking(move || {
            let mut run = || -> anyhow::Result<()> {
                let asr = engines.asr(language).start(&AsrOptions {
                    language,
                    initial_prompt: None,
                })?;
                let mut listener = Listener::new((engines.new_vad)()?, asr);
                let send = |events: Vec<SpeechEvent>| {
                    events.into_iter().all(|e| {
                        let event = match e {
                            // Transcription reports what was said, not guesses at turn ends.
                            SpeechEvent::Speculative { .. } => return true,
                            SpeechEvent::Started { at_ms } => {
                                Event::SpeechStarted(proto::SpeechStarted { at_ms })
                            }
                            SpeechEvent::Partial {
                                start_ms,
                                transcript: t,
                            } => Event::Partial(proto::Transcript {
                                text: t.text,
                                start_ms,
                                end_ms: 0,
                                avg_logprob: t.avg_logprob,
                            }),
                            SpeechEvent::Final {
                                start_ms,
                                end_ms,
                                transcript: t,
                            } => Event::Final(proto::Transcript {
                                text: t.text,
                                start_ms,
                                end_ms,
                                avg_logprob: t.avg_logprob,
                            }),
                        };
                        out_tx
                            .blocking_send(Ok(proto::TranscriptEvent { event: Some(event) }))
                            .is_ok()
                    })
                };
                while let Some(pcm) = audio_rx.blocking_recv() {
                    // A closed response stream means the client left: stop work for it.
                    if cancel.is_cancelled() || !send(listener.push(&pcm)?) {
                        return Ok(());
                    }
                }
                send(listener.flush()?);
                Ok(())
            };
            if let Err(e) = run() {
                tracing::warn!(error = %e, "transcribe stream failed");
                let _ = out_tx.blocking_send(Err(status(&e)));
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    type CallStream = CallOutStream;

    async fn call(
        &self,
        request: Request<Streaming<proto::CallIn>>,
    ) -> Result<Response<Self::CallStream>, Status> {
        require(request.extensions(), &[Role::Operator, Role::Admin])?;
        let app = self.app()?.clone();
        let mut inbound = request.into_inner();
        let start = match inbound.message().await? {
            Some(proto::CallIn {
                msg: Some(call_in::Msg::Start(start)),
            }) => start,
            Some(_) => {
                return Err(Status::invalid_argument(
                    "the first CallIn message must be `start`",
                ))
            }
            None => {
                return Err(Status::invalid_argument(
                    "the call stream closed before `start`",
                ))
            }
        };
        let customer_id = id_arg(&start.customer_id, "start.customer_id")?;
        let language: retrieval::Language = match start.language.as_str() {
            "en" => retrieval::Language::En,
            "zh" => retrieval::Language::Zh,
            other => {
                return Err(Status::invalid_argument(format!(
                    "start.language {other:?}: use \"en\" or \"zh\""
                )))
            }
        };
        let format = format_from_proto(start.format)?;
        let script = app.calls.manager.campaign().id.clone();
        let campaign_id = if start.campaign_id.is_empty() || start.campaign_id == script {
            script
        } else {
            let known = match &self.campaigns {
                Some(c) => c.knows(&start.campaign_id),
                None => false,
            };
            if !known {
                return Err(Status::not_found(format!(
                    "campaign {:?} is not running here",
                    start.campaign_id
                )));
            }
            start.campaign_id.clone()
        };
        if app
            .store
            .profile(&customer_id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(Status::not_found(format!(
                "customer {customer_id:?} is not in the store: import them first"
            )));
        }
        let permit = self.call_slots.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "all {} call slots are busy: retry later",
                self.max_calls
            ))
        })?;
        let call_id = if start.call_id.is_empty() {
            format!("call-{}-{}", now_ms(), rand::random::<u32>())
        } else {
            id_arg(&start.call_id, "start.call_id")?
        };
        let attempt_id = (!start.attempt_id.is_empty()).then(|| start.attempt_id.clone());
        // A campaign experiment's variants for this attempt, chosen when it was dialed.
        let variants = match (&attempt_id, &self.campaigns) {
            (Some(a), Some(runner)) => runner.variants_for(a),
            _ => Default::default(),
        };
        let setup = CallSetup {
            call_id,
            attempt_id,
            campaign_id,
            customer_id,
            language,
            seed: start.seed,
            variants,
        };
        let (out_tx, out_rx) = mpsc::channel(CALL_OUT_QUEUE);
        let line = GrpcLine {
            inbound,
            codec: LineCodec::new(format).map_err(|e| Status::invalid_argument(e.to_string()))?,
            ready: VecDeque::new(),
            out: out_tx.clone(),
        };
        let ctx = app.calls.clone();
        tokio::spawn(async move {
            let finished = CallSession::run(ctx, setup, Box::new(line)).await;
            if let Some(m) = finished
                .end_reason
                .strip_prefix("line_error: invalid audio from the line: ")
            {
                let _ = out_tx
                    .send(Err(Status::invalid_argument(m.to_string())))
                    .await;
            }
            drop(permit);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn create_campaign(
        &self,
        request: Request<proto::CreateCampaignRequest>,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        require_permission(request.extensions(), Permission::ManageCampaigns)?;
        let r = request.into_inner();
        let view = self
            .campaigns()?
            .create(&r.yaml, &r.customer_query)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(campaign_status_to_proto(view)))
    }

    async fn start_campaign(
        &self,
        request: Request<proto::CampaignRef>,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        self.campaign_command(request, "start").await
    }

    async fn pause_campaign(
        &self,
        request: Request<proto::CampaignRef>,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        self.campaign_command(request, "pause").await
    }

    async fn resume_campaign(
        &self,
        request: Request<proto::CampaignRef>,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        self.campaign_command(request, "resume").await
    }

    async fn stop_campaign(
        &self,
        request: Request<proto::CampaignRef>,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        self.campaign_command(request, "stop").await
    }

    async fn get_campaign(
        &self,
        request: Request<proto::CampaignRef>,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        self.campaign_command(request, "status").await
    }

    async fn set_agents(
        &self,
        request: Request<proto::SetAgentsRequest>,
    ) -> Result<Response<proto::SetAgentsReply>, Status> {
        require_permission(request.extensions(), Permission::SetAgents)?;
        let agents = request.into_inner().agents;
        let now = self
            .campaigns()?
            .set_agents(agents)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(proto::SetAgentsReply { agents: now }))
    }

    async fn import_customers(
        &self,
        request: Request<proto::ImportCustomersRequest>,
    ) -> Result<Response<proto::ImportCustomersReply>, Status> {
        require_permission(request.extensions(), Permission::ImportCustomers)?;
        let app = self.app()?;
        let r = request.into_inner();
        let format = match r.format.as_str() {
            "" | "csv" => retrieval::import::Format::Csv,
            "jsonl" => retrieval::import::Format::JsonLines,
            other => {
                return Err(Status::invalid_argument(format!(
                    "format {other:?}: use \"csv\" or \"jsonl\""
                )))
            }
        };
        let report = retrieval::import::import_customers(
            &app.store,
            &app.keys,
            &app.config.retrieval.crm,
            format,
            &r.data,
            now_ms(),
        )
        .await
        .map_err(internal)?;
        Ok(Response::new(proto::ImportCustomersReply {
            accepted: report.accepted as u64,
            rejected: report
                .rejected
                .into_iter()
                .map(|r| proto::RejectedRow {
                    line: r.line as u64,
                    reason: r.reason,
                })
                .collect(),
        }))
    }

    async fn get_customer(
        &self,
        request: Request<proto::CustomerRef>,
    ) -> Result<Response<proto::Customer>, Status> {
        require_permission(request.extensions(), Permission::ReadCustomers)?;
        let app = self.app()?;
        let id = id_arg(&request.into_inner().customer_id, "customer_id")?;
        let profile = app
            .store
            .profile(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("customer {id:?} not found")))?;
        let masked = match app.store.phone_sealed(&id).await.map_err(internal)? {
            Some(sealed) => {
                let e164 = app.keys.decrypt(&sealed).map_err(internal)?;
                retrieval::PhoneNumber::parse(&e164, "CN")
                    .map(|p| p.to_string())
                    .unwrap_or_else(|_| "(unreadable)".into())
            }
            None => String::new(),
        };
        Ok(Response::new(customer_to_proto(&profile, masked)))
    }

    async fn erase_customer(
        &self,
        request: Request<proto::CustomerRef>,
    ) -> Result<Response<proto::EraseCustomerReply>, Status> {
        require_permission(request.extensions(), Permission::EraseCustomers)?;
        let app = self.app()?;
        let id = id_arg(&request.into_inner().customer_id, "customer_id")?;
        if app.store.profile(&id).await.map_err(internal)?.is_none() {
            return Err(Status::not_found(format!("customer {id:?} not found")));
        }
        let report =
            retrieval::erase_customer(&app.store, app.index.as_ref(), &app.lexical, &app.keys, &id)
                .await
                .map_err(internal)?;
        let r = report.rows;
        Ok(Response::new(proto::EraseCustomerReply {
            customer_id: id,
            rows: r.total(),
            recordings: report.recording_files as u64,
        }))
    }

    async fn list_calls(
        &self,
        request: Request<proto::ListCallsRequest>,
    ) -> Result<Response<proto::ListCallsReply>, Status> {
        require_permission(request.extensions(), Permission::ReadCalls)?;
        let app = self.app()?;
        let r = request.into_inner();
        let limit = if r.limit == 0 { 100 } else { r.limit.min(1000) };
        let calls = app
            .store
            .list_calls(
                Some(r.campaign_id.as_str()).filter(|s| !s.is_empty()),
                Some(r.customer_id.as_str()).filter(|s| !s.is_empty()),
                i64::from(limit),
            )
            .await
            .map_err(internal)?;
        Ok(Response::new(proto::ListCallsReply {
            calls: calls.iter().map(summary_to_proto).collect(),
        }))
    }

    async fn get_call(
        &self,
        request: Request<proto::CallRef>,
    ) -> Result<Response<proto::CallDetail>, Status> {
        let role = require_permission(request.extensions(), Permission::ReadCalls)?;
        let app = self.app()?;
        let id = id_arg(&request.into_inner().call_id, "call_id")?;
        let call = app
            .store
            .call(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("call {id:?} not found")))?;
        let facts = app.store.call_facts(&id).await.map_err(internal)?;
        let turns = if role.may(Permission::ReadTranscripts) {
            call.turns
                .iter()
                .map(|t| proto::CallTurn {
                    speaker: t.speaker.clone(),
                    text: t.text.clone(),
                    latency_ms: t.latency_ms.unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let qa = if role.may(Permission::ReadGrades) {
            app.store
                .qa_grades(&id)
                .await
                .map_err(internal)?
                .into_iter()
                .map(|g| proto::QaCheck {
                    criterion: g.criterion,
                    score: g.score,
                    max_score: g.max_score,
                    notes: g.notes,
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Response::new(proto::CallDetail {
            call: Some(summary_to_proto(&call)),
            turns,
            events: facts
                .map(|f| {
                    f.events
                        .into_iter()
                        .map(|e| format!("{} {} {}", e.at_ms, e.kind, e.detail))
                        .collect()
                })
                .unwrap_or_default(),
            qa,
        }))
    }

    async fn get_recording(
        &self,
        request: Request<proto::CallRef>,
    ) -> Result<Response<proto::Recording>, Status> {
        require_permission(request.extensions(), Permission::ReadRawAudio)?;
        let app = self.app()?;
        let id = id_arg(&request.into_inner().call_id, "call_id")?;
        let rec = app
            .store
            .recording_of(&id, &app.keys)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("call {id:?} has no recording")))?;
        let keys = app.keys.clone();
        let path = rec.path.clone();
        let wav = tokio::task::spawn_blocking(move || crate::records::open_recording(&path, &keys))
            .await
            .map_err(internal)?
            .map_err(|e| status(&e))?;
        tracing::info!(call_id = %id, "raw recording read");
        Ok(Response::new(proto::Recording {
            call_id: id,
            wav,
            duration_ms: rec.duration_ms.max(0) as u64,
        }))
    }
}

impl OrchestratorService {
    async fn campaign_command(
        &self,
        request: Request<proto::CampaignRef>,
        command: &str,
    ) -> Result<Response<proto::CampaignStatus>, Status> {
        require_permission(request.extensions(), Permission::ManageCampaigns)?;
        let id = id_arg(&request.into_inner().campaign_id, "campaign_id")?;
        let runner = self.campaigns()?;
        let view = match command {
            "start" => runner.start(&id).await,
            "pause" => runner.pause(&id).await,
            "resume" => runner.resume(&id).await,
            "stop" => runner.stop(&id).await,
            _ => runner.status(&id).await,
        }
        .map_err(|e| status(&e))?;
        Ok(Response::new(campaign_status_to_proto(view)))
    }
}

/// Serves the API on `listener` until `shutdown` fires, with the standard health and reflection
/// services, behind the edge's tower layers (auth, load shedding, timeouts, tracing).
pub async fn serve(
    service: OrchestratorService,
    listener: tokio::net::TcpListener,
    config: &crate::config::ServerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<OrchestratorServer<OrchestratorService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let auth = crate::auth::AuthLayer::from_config(&config.auth)?;
    tracing::info!(addr = %listener.local_addr()?, "gRPC server listening");
    tonic::transport::Server::builder()
        .layer(crate::edge::edge_layers(&config.edge, auth))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(OrchestratorServer::new(service))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await?;
    Ok(())
}
