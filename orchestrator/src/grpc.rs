//! The gRPC edge (tonic). Protobuf types stop here: requests become domain calls, domain errors
//! become `tonic::Status` in [`status`] only. tower middleware (concurrency limit, timeout) is
//! applied to the server in [`serve`], nowhere else.

use crate::proto::orchestrator_server::{Orchestrator, OrchestratorServer};
use crate::proto::{self, transcript_event::Event};
use crate::Engines;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};
use voice::{AsrOptions, Language, Listener, SpeechEvent};

/// Frames of audio queued between the network and the recognizer thread. When full, the reader
/// waits (back-pressure on the client's stream) rather than dropping audio.
const AUDIO_QUEUE: usize = 64;

/// The one place a domain error becomes a gRPC status.
pub fn status(e: &anyhow::Error) -> Status {
    if let Some(v) = e.downcast_ref::<voice::VoiceError>() {
        return match v {
            voice::VoiceError::InvalidInput(m) => Status::invalid_argument(m.clone()),
            voice::VoiceError::ModelMissing { .. } => Status::failed_precondition(v.to_string()),
            _ => Status::internal(v.to_string()),
        };
    }
    Status::internal(format!("{e:#}"))
}

/// The orchestrator service over the loaded engines.
pub struct OrchestratorService {
    engines: Arc<Engines>,
}

impl OrchestratorService {
    pub fn new(engines: Arc<Engines>) -> Self {
        Self { engines }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::TranscriptEvent, Status>> + Send>>;

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
        }))
    }

    type TranscribeStream = EventStream;

    async fn transcribe(
        &self,
        request: Request<Streaming<proto::AudioIn>>,
    ) -> Result<Response<Self::TranscribeStream>, Status> {
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
}

/// Serves the API on `listener` until `shutdown` fires, behind tower's concurrency limit and
/// timeout.
pub async fn serve(
    engines: Arc<Engines>,
    listener: tokio::net::TcpListener,
    config: &crate::config::ServerConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let layer = tower::ServiceBuilder::new()
        .concurrency_limit(config.max_concurrent_requests.max(1))
        .into_inner();
    tracing::info!(addr = %listener.local_addr()?, "gRPC server listening");
    tonic::transport::Server::builder()
        .timeout(Duration::from_secs(config.request_timeout_s.max(1)))
        .layer(layer)
        .add_service(OrchestratorServer::new(OrchestratorService::new(engines)))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.cancelled_owned())
        .await?;
    Ok(())
}
