//! Simulated phone lines, the demo's [`LinePlacer`]: a placed call rings a simulated callee
//! (persona from the customer's profile); an answering callee connects to the orchestrator's
//! own gRPC `Call` stream as a telephony gateway would — bearer token, 8 kHz μ-law, 20 ms frames
//! — so the demo's calls take the production path end to end. A no-answer persona never
//! connects.

use crate::callee::{CalleeEngines, CalleeLink, CalleeReport, PersonaKind, SimulatedCallee};
use crate::campaign::{LinePlacer, Placed};
use crate::dialer::DialTicket;
use crate::proto::orchestrator_client::OrchestratorClient;
use crate::proto::{self, call_in, call_out};
use crate::session::{voice_language, CallEvent, CallSetup};
use crate::transport::{LineCodec, LineFormat};
use async_trait::async_trait;
use retrieval::SqlStore;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// A callee's end of a gRPC `Call` stream.
pub struct GrpcCalleeLink {
    to_server: mpsc::Sender<proto::CallIn>,
    events: mpsc::Receiver<CallEvent>,
    codec: LineCodec,
}

impl GrpcCalleeLink {
    /// Opens a `Call` stream with `start` and returns the link once the server accepted it.
    pub async fn connect(
        channel: Channel,
        token: &str,
        start: proto::CallStart,
    ) -> anyhow::Result<Self> {
        let format = LineFormat::PHONE_ULAW;
        let (tx, rx) = mpsc::channel::<proto::CallIn>(64);
        tx.send(proto::CallIn {
            msg: Some(call_in::Msg::Start(start)),
        })
        .await?;
        let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        let bearer: MetadataValue<_> = format!("Bearer {token}").parse()?;
        request.metadata_mut().insert("authorization", bearer);
        let mut client = OrchestratorClient::new(channel);
        let mut inbound = client.call(request).await?.into_inner();
        let (ev_tx, ev_rx) = mpsc::channel::<CallEvent>(256);
        let mut decoder = LineCodec::new(format)?;
        tokio::spawn(async move {
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = ev_tx
                            .send(CallEvent::Ended {
                                at_ms: 0,
                                outcome: "failed".into(),
                                reason: format!("stream error: {}", status.message()),
                                turns: 0,
                                barge_ins: 0,
                            })
                            .await;
                        return;
                    }
                };
                let at_ms = msg.at_ms;
                let event = match msg.msg {
                    Some(call_out::Msg::Audio(a)) => match decoder.decode(&a.data) {
                        Ok(frames) => {
                            for pcm in frames {
                                if ev_tx.send(CallEvent::Audio { at_ms, pcm }).await.is_err() {
                                    return;
                                }
                            }
                            continue;
                        }
                        Err(_) => continue,
                    },
                    Some(call_out::Msg::Clear(_)) => CallEvent::Clear { at_ms },
                    Some(call_out::Msg::Ended(e)) => CallEvent::Ended {
                        at_ms,
                        outcome: e.outcome,
                        reason: e.reason,
                        turns: e.turns,
                        barge_ins: e.barge_ins,
                    },
                    _ => continue,
                };
                if ev_tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(Self {
            to_server: tx,
            events: ev_rx,
            codec: LineCodec::new(format)?,
        })
    }
}

#[async_trait]
impl CalleeLink for GrpcCalleeLink {
    async fn send_audio(&mut self, pcm: &[i16]) -> anyhow::Result<()> {
        let data = self.codec.encode(pcm)?;
        self.to_server
            .send(proto::CallIn {
                msg: Some(call_in::Msg::Audio(proto::AudioFrame { data })),
            })
            .await
            .map_err(|_| anyhow::anyhow!("the call stream closed"))
    }

    fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.try_recv().ok()
    }

    async fn hang_up(&mut self) {
        let _ = self
            .to_server
            .send(proto::CallIn {
                msg: Some(call_in::Msg::Hangup(proto::Hangup {
                    reason: "callee hung up".into(),
                })),
            })
            .await;
    }
}

/// One simulated call as the demo saw it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimulatedCall {
    pub call_id: String,
    pub customer_id: String,
    pub language: String,
    pub segment: String,
    pub persona: PersonaKind,
    pub report: Option<CalleeReport>,
    pub error: Option<String>,
}

/// Places calls to simulated callees over the gRPC `Call` stream.
pub struct SimulatedLines {
    pub channel: Channel,
    pub token: String,
    pub engines: Arc<CalleeEngines>,
    pub store: SqlStore,
    /// Line clock speed of the callees (1.0 = real time).
    pub speed: f64,
    /// Every call placed, in order.
    pub calls: Mutex<Vec<SimulatedCall>>,
}

impl std::fmt::Debug for SimulatedLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedLines").finish_non_exhaustive()
    }
}

#[async_trait]
impl LinePlacer for SimulatedLines {
    async fn place(&self, ticket: &DialTicket, setup: CallSetup) -> Placed {
        let profile = match self.store.profile(&setup.customer_id).await {
            Ok(Some(p)) => p,
            Ok(None) => return Placed::Failed("customer not in the store".into()),
            Err(e) => return Placed::Failed(e.to_string()),
        };
        let persona = PersonaKind::for_customer(&profile, setup.seed);
        let mut record = SimulatedCall {
            call_id: setup.call_id.clone(),
            customer_id: setup.customer_id.clone(),
            language: setup.language.code().to_string(),
            segment: ticket.segment.clone(),
            persona,
            report: None,
            error: None,
        };
        if persona == PersonaKind::NoAnswer {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(record);
            }
            return Placed::NoAnswer;
        }
        let start = proto::CallStart {
            attempt_id: setup.attempt_id.clone().unwrap_or_default(),
            call_id: setup.call_id.clone(),
            campaign_id: setup.campaign_id.clone(),
            customer_id: setup.customer_id.clone(),
            language: setup.language.code().to_string(),
            format: Some(proto::AudioFormat {
                sample_rate: 8000,
                encoding: proto::Encoding::Pcmu as i32,
            }),
            seed: setup.seed,
        };
        let link = match GrpcCalleeLink::connect(self.channel.clone(), &self.token, start).await {
            Ok(link) => link,
            Err(e) => {
                // Not connected: the dialer completes the attempt as failed.
                record.error = Some(format!("{e:#}"));
                if let Ok(mut calls) = self.calls.lock() {
                    calls.push(record);
                }
                return Placed::Failed(format!("{e:#}"));
            }
        };
        let callee = SimulatedCallee {
            persona,
            language: voice_language(setup.language),
            seed: setup.seed,
            speed: self.speed,
            max_ms: 240_000,
        };
        // Connected: whatever happens now, the session stores the call and its attempt.
        match callee.run(self.engines.clone(), Box::new(link)).await {
            Ok(report) => record.report = Some(report),
            Err(e) => record.error = Some(format!("{e:#}")),
        }
        let placed = Placed::Answered;
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(record);
        }
        placed
    }
}
