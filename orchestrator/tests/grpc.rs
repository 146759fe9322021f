//! The gRPC edge end to end: a real tonic server in-process on 127.0.0.1 and a real client,
//! over fake engines (fast) — the real engines are exercised by tests/demo.rs.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use dialog::llm::FakeLlm;
use orchestrator::config::ServerConfig;
use orchestrator::engines::VadFactory;
use orchestrator::proto::orchestrator_client::OrchestratorClient;
use orchestrator::proto::{transcript_event::Event, AudioIn, HealthRequest};
use orchestrator::Engines;
use retrieval::FakeEmbedder;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use voice::asr::FakeAsr;
use voice::tts::FakeTts;
use voice::vad::EnergyVad;

fn fake_engines() -> Engines {
    let asr = Arc::new(FakeAsr {
        script: vec!["call me back tomorrow".into(), "not interested".into()],
    });
    let new_vad: VadFactory = Arc::new(|| Ok(Box::new(EnergyVad::new(500.0, 300))));
    Engines {
        new_vad,
        asr_en: asr.clone(),
        asr_zh: asr,
        tts_en: Arc::new(FakeTts),
        tts_zh: Arc::new(FakeTts),
        llm: Some(Arc::new(FakeLlm)),
        embedder: Arc::new(FakeEmbedder::default()),
        load_ms: vec![("fake", 0.0)],
    }
}

fn tone(ms: usize) -> Vec<u8> {
    (0..ms * 16)
        .flat_map(|i| (((i as f32 * 0.2).sin() * 6000.0) as i16).to_le_bytes())
        .collect()
}

async fn start() -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        orchestrator::grpc::serve(
            Arc::new(fake_engines()),
            listener,
            &ServerConfig::default(),
            token,
        )
        .await
        .unwrap();
    });
    (url, shutdown)
}

#[tokio::test]
async fn transcribe_streams_events_for_each_utterance() {
    let (url, shutdown) = start().await;
    let mut client = OrchestratorClient::connect(url).await.unwrap();
    assert_eq!(
        client
            .health(HealthRequest {})
            .await
            .unwrap()
            .into_inner()
            .engines,
        vec!["fake"]
    );

    // Two utterances of 1 s separated by 0.6 s silence, sent in 20 ms chunks.
    let mut audio = Vec::new();
    for _ in 0..2 {
        audio.extend(tone(1000));
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
        .transcribe(tokio_stream::iter(chunks))
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
    shutdown.cancel();
}

#[tokio::test]
async fn bad_input_is_an_invalid_argument() {
    let (url, shutdown) = start().await;
    let mut client = OrchestratorClient::connect(url).await.unwrap();
    let bad_lang = vec![AudioIn {
        language: "fr".into(),
        pcm16le: vec![0, 0],
    }];
    let err = client
        .transcribe(tokio_stream::iter(bad_lang))
        .await
        .expect_err("unknown language");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let odd = vec![AudioIn {
        language: "en".into(),
        pcm16le: vec![0, 0, 0],
    }];
    let err = client
        .transcribe(tokio_stream::iter(odd))
        .await
        .expect_err("odd byte count");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    shutdown.cancel();
}
