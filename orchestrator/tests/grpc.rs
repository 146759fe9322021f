//! The gRPC edge end to end: a real tonic server in-process on 127.0.0.1 and a real client, over
//! fake engines (fast, deterministic) with the real dialogue stack and a SQLite store: auth and
//! roles, bad input with its status, a whole `Call`, and barge-in asserted from frame
//! timestamps. tests/demo.rs runs the same path on the real engines.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use orchestrator::app::App;
use orchestrator::auth::{AuthConfig, Role, SecretToken, TokenEntry};
use orchestrator::grpc::OrchestratorService;
use orchestrator::metrics::Metrics;
use orchestrator::proto::orchestrator_client::OrchestratorClient;
use orchestrator::proto::{
    call_in, call_out, transcript_event::Event, AudioFormat, AudioFrame, AudioIn, CallIn, CallRef,
    CallStart, CustomerRef, Encoding, HealthRequest,
};
use orchestrator::{Config, Engines};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const TOKENS: [(Role, &str); 4] = [
    (Role::Operator, "operator-token-0123456789"),
    (Role::Qa, "qa-token-0123456789abcdef"),
    (Role::QaAdmin, "qa-admin-token-0123456789"),
    (Role::Admin, "admin-token-0123456789abc"),
];

fn token(role: Role) -> &'static str {
    TOKENS.iter().find(|(r, _)| *r == role).unwrap().1
}

struct Server {
    channel: Channel,
    app: Arc<App>,
    shutdown: CancellationToken,
    _tmp: tempfile::TempDir,
}

async fn start(script: &[&str]) -> Server {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default().with_data_in(tmp.path());
    config.dialog.campaign = root.join("dialog/data/campaigns/family_education_insurance.yaml");
    config.dialog.nlu_dir = root.join("dialog/data/nlu");
    config.server.auth = AuthConfig {
        tokens: TOKENS
            .iter()
            .map(|(role, t)| TokenEntry {
                role: *role,
                token: Some(SecretToken::new(*t)),
                token_env: None,
            })
            .collect(),
        ..AuthConfig::default()
    };
    let engines = Arc::new(Engines::fake(script));
    let app = Arc::new(
        App::build(&config, engines, Metrics::new(), None, None)
            .await
            .unwrap(),
    );
    let customers = retrieval::synth::generate(60, 3, 0.5);
    let now = orchestrator::session::now_ms();
    let csv = retrieval::synth::to_csv(&customers, now);
    let report = retrieval::import::import_customers(
        &app.store,
        &app.keys,
        &config.retrieval.crm,
        retrieval::import::Format::Csv,
        &csv,
        now,
    )
    .await
    .unwrap();
    assert!(report.accepted > 30, "{report:?}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let (token, server, service) = (
        shutdown.clone(),
        config.server.clone(),
        OrchestratorService::with_app(app.clone(), None),
    );
    tokio::spawn(async move {
        orchestrator::grpc::serve(service, listener, &server, token)
            .await
            .unwrap();
    });
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect_lazy();
    Server {
        channel,
        app,
        shutdown,
        _tmp: tmp,
    }
}

fn authed<T>(msg: T, role: Option<Role>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(role) = role {
        let v: MetadataValue<_> = format!("Bearer {}", token(role)).parse().unwrap();
        r.metadata_mut().insert("authorization", v);
    }
    r
}

async fn an_english_customer(app: &App) -> String {
    let rows = retrieval::synth::generate(60, 3, 0.5);
    for c in rows.iter().filter(|c| c.language == "en") {
        if app.store.profile(&c.customer_id).await.unwrap().is_some() {
            return c.customer_id.clone();
        }
    }
    panic!("no English customer imported");
}

fn tone(ms: usize) -> Vec<i16> {
    (0..ms * 16)
        .map(|i| ((i as f32 * 0.2).sin() * 6000.0) as i16)
        .collect()
}

fn frames(pcm: &[i16]) -> Vec<CallIn> {
    pcm.chunks(320)
        .map(|c| CallIn {
            msg: Some(call_in::Msg::Audio(AudioFrame {
                data: c.iter().flat_map(|s| s.to_le_bytes()).collect(),
            })),
        })
        .collect()
}

fn start_msg(customer_id: &str) -> CallIn {
    CallIn {
        msg: Some(call_in::Msg::Start(CallStart {
            customer_id: customer_id.into(),
            language: "en".into(),
            format: Some(AudioFormat {
                sample_rate: 16_000,
                encoding: Encoding::Pcm16le as i32,
            }),
            seed: 1,
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_map_to_roles_and_roles_gate_calls() {
    let s = start(&[]).await;
    let mut client = OrchestratorClient::new(s.channel.clone());
    // No token, a wrong token: UNAUTHENTICATED.
    let err = client
        .health(authed(HealthRequest {}, None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    let mut wrong = tonic::Request::new(HealthRequest {});
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer not-a-known-token-123".parse().unwrap(),
    );
    assert_eq!(
        client.health(wrong).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // Any role may ask for health.
    let h = client
        .health(authed(HealthRequest {}, Some(Role::Qa)))
        .await
        .unwrap();
    assert_eq!(h.into_inner().engines, vec!["fake"]);
    // Raw recordings: operator and qa are refused, qa-admin and admin get through to the lookup.
    for role in [Role::Operator, Role::Qa] {
        let err = client
            .get_recording(authed(
                CallRef {
                    call_id: "c1".into(),
                },
                Some(role),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied, "{role}: {err}");
    }
    for role in [Role::QaAdmin, Role::Admin] {
        let err = client
            .get_recording(authed(
                CallRef {
                    call_id: "c1".into(),
                },
                Some(role),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound, "{role}: {err}");
    }
    // Customer profiles are masked and admin-only.
    let id = an_english_customer(&s.app).await;
    let err = client
        .get_customer(authed(
            CustomerRef {
                customer_id: id.clone(),
            },
            Some(Role::Operator),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let c = client
        .get_customer(authed(CustomerRef { customer_id: id }, Some(Role::Admin)))
        .await
        .unwrap()
        .into_inner();
    assert!(c.phone_masked.contains("****"), "{}", c.phone_masked);
    // The standard health service needs no token (load balancers probe it).
    let mut health = tonic_health::pb::health_client::HealthClient::new(s.channel.clone());
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().status, 1);
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_status() {
    let s = start(&[]).await;
    let mut client = OrchestratorClient::new(s.channel.clone());
    let op = Some(Role::Operator);
    let call = |msgs: Vec<CallIn>| authed(tokio_stream::iter(msgs), op);
    // The first message must be `start`.
    let err = client.call(call(frames(&tone(20)))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    // Unknown customer.
    let err = client
        .call(call(vec![start_msg("nobody")]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    // A rate a line does not have, and a missing encoding.
    let id = an_english_customer(&s.app).await;
    let mut bad = start_msg(&id);
    if let Some(call_in::Msg::Start(st)) = bad.msg.as_mut() {
        st.format = Some(AudioFormat {
            sample_rate: 44_100,
            encoding: Encoding::Pcm16le as i32,
        });
    }
    let err = client.call(call(vec![bad])).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    assert!(err.message().contains("8000 or 16000"), "{err}");
    // An oversized frame mid-call: the stream ends with INVALID_ARGUMENT, the call is stored.
    let mut msgs = vec![start_msg(&id)];
    msgs.extend(frames(&vec![0i16; 3200]));
    msgs.push(CallIn {
        msg: Some(call_in::Msg::Audio(AudioFrame {
            data: vec![0u8; 32_000],
        })),
    });
    let (tx, rx) = mpsc::channel(64);
    for m in msgs {
        tx.send(m).await.unwrap();
    }
    let mut out = client
        .call(authed(ReceiverStream::new(rx), op))
        .await
        .unwrap()
        .into_inner();
    let mut call_id = String::new();
    let status = loop {
        match out.message().await {
            Ok(Some(m)) => {
                if let Some(call_out::Msg::Accepted(a)) = m.msg {
                    call_id = a.call_id;
                }
            }
            Ok(None) => panic!("the stream ended without an error"),
            Err(status) => break status,
        }
    };
    drop(tx);
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(status.message().contains("200 ms"), "{status}");
    let stored = s
        .app
        .store
        .call(&call_id)
        .await
        .unwrap()
        .expect("record kept");
    assert_eq!(stored.outcome, "failed");
    // Unknown call ids.
    let err = client
        .get_call(authed(
            CallRef {
                call_id: "nope".into(),
            },
            Some(Role::Qa),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    // No campaign runner on this server: a clear UNIMPLEMENTED, not a crash.
    let err = client
        .get_campaign(authed(
            orchestrator::proto::CampaignRef {
                campaign_id: "x".into(),
            },
            op,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    s.shutdown.cancel();
}

/// What a client saw on a call.
#[derive(Debug, Default)]
struct Seen {
    audio_at: Vec<u64>,
    clears: Vec<u64>,
    finals: Vec<(u64, String)>,
    turns: Vec<String>,
    ended: Option<(String, String)>,
    call_id: String,
}

/// Plays a scripted caller: after each bot utterance ends (no bot audio for 200 ms of line
/// time), says the next utterance (the audio `utterance`); with `barge_after_ms`, starts the next utterance that long
/// into the bot's second reply instead. One caller frame per tick of the line clock.
async fn scripted_call(
    s: &Server,
    utterances: usize,
    barge_after_ms: Option<u64>,
    utterance: &[i16],
) -> Seen {
    let mut client = OrchestratorClient::new(s.channel.clone());
    let id = an_english_customer(&s.app).await;
    let (tx, rx) = mpsc::channel(8);
    tx.send(start_msg(&id)).await.unwrap();
    let mut stream = client
        .call(authed(ReceiverStream::new(rx), Some(Role::Operator)))
        .await
        .unwrap()
        .into_inner();
    let (out_tx, mut out) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(m)) = stream.message().await {
            if out_tx.send(m).is_err() {
                return;
            }
        }
    });
    let mut seen = Seen::default();
    let mut line_ms = 0u64;
    let mut speech: Vec<i16> = Vec::new();
    let mut said = 0;
    let mut last_bot_audio: Option<u64> = None;
    let mut bot_replies = 0;
    let mut in_reply_since: Option<u64> = None;
    let mut ticks = 0;
    // The line clock runs at 4x real time: fast, but the fake engines keep up with it, as a
    // real line's far end waits for nobody. Assertions use the frames' line time only.
    let mut clock = tokio::time::interval(std::time::Duration::from_millis(5));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        clock.tick().await;
        // Read what the server sent, without blocking the line clock for long.
        while let Ok(m) = out.try_recv() {
            let Some(msg) = m.msg else { continue };
            match msg {
                call_out::Msg::Accepted(a) => seen.call_id = a.call_id,
                call_out::Msg::Audio(_) => {
                    seen.audio_at.push(m.at_ms);
                    if last_bot_audio.is_none_or(|last| m.at_ms > last + 200) {
                        bot_replies += 1;
                        in_reply_since = Some(m.at_ms);
                    }
                    last_bot_audio = Some(m.at_ms);
                }
                call_out::Msg::Clear(_) => seen.clears.push(m.at_ms),
                call_out::Msg::Final(t) => seen.finals.push((m.at_ms, t.text)),
                call_out::Msg::Turn(t) => seen.turns.push(t.action),
                call_out::Msg::Ended(e) => {
                    seen.ended = Some((e.outcome, e.reason));
                    return seen;
                }
                _ => {}
            }
        }
        // The caller answers each bot utterance once: the greeting, then each reply.
        let bot_quiet =
            bot_replies > said && last_bot_audio.is_some_and(|last| line_ms > last + 200);
        let barge_due = matches!((barge_after_ms, in_reply_since), (Some(after), Some(since))
            if bot_replies == 2 && line_ms >= since + after);
        if speech.is_empty() && said < utterances && (bot_quiet || barge_due) {
            speech = utterance.to_vec();
            said += 1;
            in_reply_since = None;
        }
        let frame: Vec<i16> = if speech.is_empty() {
            vec![0; 320]
        } else {
            speech.drain(..320.min(speech.len())).collect()
        };
        if tx.send(frames(&frame).remove(0)).await.is_err() {
            break;
        }
        line_ms += 20;
        ticks += 1;
        assert!(ticks < 20_000, "the call never ended: {seen:?}");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_over_the_call_stream_is_stored() {
    let s = start(&[
        "okay go on",
        "that's too expensive for me",
        "alright sign me up",
    ])
    .await;
    let seen = scripted_call(&s, 3, None, &said(&[800])).await;
    assert!(!seen.audio_at.is_empty(), "{seen:?}");
    assert_eq!(seen.finals.len(), 3, "{seen:?}");
    assert_eq!(seen.turns.len(), 3, "{seen:?}");
    assert_eq!(seen.turns[1], "discount_offer", "{seen:?}");
    let (outcome, reason) = seen.ended.clone().unwrap();
    assert_eq!(
        (outcome.as_str(), reason.as_str()),
        ("converted", "outcome")
    );
    // Stored whole: the record, its turns, actions, events, latencies and the sealed recording.
    let call = s.app.store.call(&seen.call_id).await.unwrap().unwrap();
    assert_eq!(call.outcome, "converted");
    assert!(call.turns.len() >= 6, "{:?}", call.turns);
    let facts = s
        .app
        .store
        .call_facts(&seen.call_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(facts.metrics.len(), 3);
    assert!(facts.metrics.iter().all(|m| m.v2v_line_ms.is_some()));
    // Each turn started on the speculative final at the caller's pause and the final confirmed
    // it: no turn was dropped, and the reply was ready when the hang-over ended.
    let kinds: Vec<&str> = facts.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "speculation_confirmed")
            .count(),
        3,
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"turn_dropped"), "{kinds:?}");
    let rec = s
        .app
        .store
        .recording_of(&seen.call_id, &s.app.keys)
        .await
        .unwrap()
        .unwrap();
    assert!(rec.path.to_string_lossy().ends_with(".wav.sealed"));
    let wav = orchestrator::records::open_recording(&rec.path, &s.app.keys).unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    assert_eq!(reader.spec().channels, 2);
    s.shutdown.cancel();
}

/// Speech bursts of the given lengths (ms) with 100 ms pauses between them (shorter than the
/// VAD's hang-over: one utterance) and after the last.
fn said(bursts_ms: &[usize]) -> Vec<i16> {
    let mut pcm = Vec::new();
    for &ms in bursts_ms {
        pcm.extend(tone(ms));
        pcm.extend(vec![0i16; 16 * 100]);
    }
    pcm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speculative_turn_is_dropped_when_the_caller_goes_on() {
    // The caller pauses after "okay go on" and goes on: the turn started on the speculation at
    // that pause is dropped, and the bot answers the price objection, once.
    let s = start(&[
        "okay go on | but that's too expensive for me",
        "alright sign me up",
    ])
    .await;
    let seen = scripted_call(&s, 2, None, &said(&[800, 800])).await;
    assert_eq!(
        seen.turns.first().map(String::as_str),
        Some("discount_offer"),
        "{seen:?}"
    );
    let facts = s
        .app
        .store
        .call_facts(&seen.call_id)
        .await
        .unwrap()
        .unwrap();
    let dropped: Vec<&str> = facts
        .events
        .iter()
        .filter(|e| e.kind == "turn_dropped")
        .map(|e| e.detail.as_str())
        .collect();
    // The second pause's speculation (the whole sentence) replaced the first; the final then
    // confirmed it.
    assert_eq!(
        dropped,
        vec![r#"{"caller_text":"okay go on","why":"newer_speculation"}"#],
    );
    assert!(facts
        .events
        .iter()
        .any(|e| e.kind == "speculation_confirmed" && e.detail.contains("too expensive")));
    // The dropped reply never reached the line: the caller's first final is followed by one
    // reply, and no bot audio came between the greeting and that final.
    let (first_final_at, _) = seen.finals[0].clone();
    let greeting_end = seen
        .audio_at
        .iter()
        .copied()
        .filter(|&t| t < first_final_at)
        .max();
    let caller_start = first_final_at.saturating_sub(1700 + 300);
    assert!(
        greeting_end.is_none_or(|t| t < caller_start + 100),
        "bot audio at {greeting_end:?} while the caller spoke (final at {first_final_at})"
    );
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_the_bot_within_the_bound() {
    // The second reply (the pitch) is long; the caller talks over it 600 ms in.
    let s = start(&["okay go on", "how much is it", "alright sign me up"]).await;
    let seen = scripted_call(&s, 3, Some(600), &said(&[800])).await;
    assert!(!seen.clears.is_empty(), "no barge-in: {seen:?}");
    let clear = seen.clears[0];
    // The last bot frame sent before the clear ends at most 150 ms after it.
    let last_before = seen
        .audio_at
        .iter()
        .copied()
        .filter(|&t| t <= clear + 150)
        .filter(|&t| t >= clear.saturating_sub(1000))
        .max()
        .unwrap();
    assert!(
        last_before + 20 <= clear + 150,
        "bot audio until {last_before} after clear at {clear}"
    );
    // Nothing more of that reply: the next bot frame answers the caller's new utterance.
    let next = seen.audio_at.iter().copied().find(|&t| t > clear + 150);
    let final_after = seen
        .finals
        .iter()
        .find(|(at, _)| *at > clear)
        .map(|(at, _)| *at);
    if let (Some(next), Some(final_at)) = (next, final_after) {
        assert!(
            next >= final_at,
            "bot spoke at {next} before the caller finished at {final_at}"
        );
    }
    let facts = s
        .app
        .store
        .call_facts(&seen.call_id)
        .await
        .unwrap()
        .unwrap();
    assert!(facts.events.iter().any(|e| e.kind == "barge_in"));
    assert!(facts.metrics.iter().any(|m| m.interrupted));
    s.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcribe_streams_events_for_each_utterance() {
    let s = start(&["call me back tomorrow", "not interested"]).await;
    let mut client = OrchestratorClient::new(s.channel.clone());
    let mut audio = Vec::new();
    for _ in 0..2 {
        audio.extend(tone(1000).iter().flat_map(|s| s.to_le_bytes()));
        audio.extend(vec![0u8; 600 * 32]);
    }
    let chunks: Vec<AudioIn> = audio
        .chunks(640)
        .enumerate()
        .map(|(i, c)| AudioIn {
            language: if i == 0 { "en".into() } else { String::new() },
            pcm16le: c.to_vec(),
        })
        .collect();
    let mut events = client
        .transcribe(authed(tokio_stream::iter(chunks), Some(Role::Qa)))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    while let Some(ev) = events.message().await.unwrap() {
        match ev.event.unwrap() {
            Event::SpeechStarted(_) => got.push("start".to_string()),
            Event::Partial(_) => {}
            Event::Final(t) => got.push(format!("final:{}", t.text)),
        }
    }
    assert_eq!(
        got,
        vec![
            "start",
            "final:call me back tomorrow",
            "start",
            "final:not interested"
        ]
    );
    s.shutdown.cancel();
}
