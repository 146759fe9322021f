//! Prints the production NLU's reading of each argument (`-- en "text" ...` / `-- zh ...`).
use dialog::nlu::NluEngine;
use dialog::Understand;
use retrieval::{BertEmbedder, Language};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bert = Arc::new(BertEmbedder::load(&root.join("models/all-MiniLM-L6-v2"))?);
    let nlu = NluEngine::load(&root.join("dialog/data/nlu"), Some(bert))?;
    let mut lang = Language::En;
    for a in std::env::args().skip(1) {
        if let Some(l) = Language::parse(&a) {
            lang = l;
            continue;
        }
        let r = nlu.understand(&a, lang)?;
        let kws: Vec<String> = r
            .keywords
            .iter()
            .map(|k| format!("{}{}", if k.negated { "!" } else { "" }, k.key))
            .collect();
        eprintln!(
            "{a:<50} {} {:.2} sent {:.2} kw [{}]",
            r.intent.as_str(),
            r.confidence,
            r.sentiment.score,
            kws.join(",")
        );
    }
    Ok(())
}
