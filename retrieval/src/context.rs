//! [`SqlProfileStore`], the real [`ProfileStore`]: profile attributes from SQL plus the snippets
//! (profile summary, call history, campaign knowledge) most relevant to the current turn, found by
//! dense search and BM25 together and merged by reciprocal rank fusion. It also indexes those
//! snippets, under ids derived from their content so re-indexing is idempotent.

use crate::index::lexical::{Document, LexicalIndex};
use crate::{
    reciprocal_rank_fusion, CustomerProfile, Embedder, Filter, Hit, Payload, Point, ProfileContext,
    ProfileStore, RetrievalError, Snippet, SnippetKind, SqlStore, VectorIndex,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Profiles and turn context over the SQL store, an embedder, a vector and a lexical index.
#[derive(Clone)]
pub struct SqlProfileStore {
    store: SqlStore,
    embedder: Arc<dyn Embedder>,
    index: Arc<dyn VectorIndex>,
    lexical: Arc<LexicalIndex>,
}

impl std::fmt::Debug for SqlProfileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlProfileStore")
            .field("store", &self.store)
            .finish()
    }
}

/// A stable point id for a snippet: the same text of the same owner always gets the same id.
fn snippet_id(kind: SnippetKind, owner: &str, text: &str) -> u64 {
    let h = Sha256::new()
        .chain_update(kind.as_str())
        .chain_update([0])
        .chain_update(owner)
        .chain_update([0])
        .chain_update(text)
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_le_bytes(b) >> 1 // Qdrant ids fit in 63 bits comfortably
}

fn kind_of(kind: &str) -> SnippetKind {
    match kind {
        "profile" => SnippetKind::Profile,
        "history" => SnippetKind::History,
        _ => SnippetKind::Knowledge,
    }
}

/// The profile as one sentence for the index (no phone number, no exact birth data).
pub fn profile_summary(p: &CustomerProfile) -> String {
    let mut parts = vec![p.display_name.clone()];
    if let Some(a) = p.age {
        parts.push(format!("age {a}"));
    }
    if let Some(o) = &p.occupation {
        parts.push(o.clone());
    }
    if let Some(r) = &p.region {
        parts.push(format!("lives in {r}"));
    }
    if let Some(i) = p.income_band {
        parts.push(format!("income band {i} of 5"));
    }
    match p.children_in_school {
        Some(0) | None => {}
        Some(n) => parts.push(format!("{n} children in school")),
    }
    if let Some(n) = p.recent_purchases {
        parts.push(format!("{n} recent purchases"));
    }
    if !p.interests.is_empty() {
        parts.push(format!("interested in {}", p.interests.join(", ")));
    }
    if let Some(s) = p.price_sensitivity {
        parts.push(if s > 0.6 {
            "price sensitive".into()
        } else if s < 0.3 {
            "buys on quality".into()
        } else {
            "moderately price aware".into()
        });
    }
    if let Some(s) = &p.segment {
        parts.push(format!("segment {s}"));
    }
    parts.join(", ")
}

impl SqlProfileStore {
    pub fn new(
        store: SqlStore,
        embedder: Arc<dyn Embedder>,
        index: Arc<dyn VectorIndex>,
        lexical: Arc<LexicalIndex>,
    ) -> Self {
        Self {
            store,
            embedder,
            index,
            lexical,
        }
    }

    /// Embeds on the blocking pool: the model must not run inside an async task's poll.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RetrievalError> {
        let embedder = Arc::clone(&self.embedder);
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
        .map_err(|e| RetrievalError::Embed(format!("embedding task failed: {e}")))?
    }

    /// Embeds and indexes snippets (dense and lexical) in one batch; returns how many.
    pub async fn index_snippets(&self, payloads: Vec<Payload>) -> Result<usize, RetrievalError> {
        if payloads.is_empty() {
            return Ok(0);
        }
        let vectors = self
            .embed(payloads.iter().map(|p| p.text.clone()).collect())
            .await?;
        let mut points = Vec::with_capacity(payloads.len());
        let mut docs = Vec::with_capacity(payloads.len());
        for (payload, vector) in payloads.into_iter().zip(vectors) {
            let owner = payload
                .customer_id
                .as_deref()
                .or(payload.campaign_id.as_deref())
                .unwrap_or("");
            let id = snippet_id(kind_of(&payload.kind), owner, &payload.text);
            docs.push(Document {
                id,
                payload: payload.clone(),
            });
            points.push(Point {
                id,
                vector,
                payload,
            });
        }
        let n = points.len();
        self.index.upsert(points).await?;
        self.lexical.upsert(docs)?;
        Ok(n)
    }

    /// (Re)indexes a customer: their profile summary and one snippet per CRM call log and per
    /// stored call. The customer's old snippets are replaced. Returns how many were indexed.
    pub async fn index_customer(&self, customer_id: &str) -> Result<usize, RetrievalError> {
        let Some(profile) = self.store.profile(customer_id).await? else {
            return Err(RetrievalError::InvalidInput(format!(
                "customer {customer_id} is not in the store: import them before indexing"
            )));
        };
        let payload = |kind: SnippetKind, text: String| Payload {
            customer_id: Some(customer_id.to_string()),
            campaign_id: None,
            kind: kind.as_str().into(),
            text,
        };
        let mut snippets = vec![payload(SnippetKind::Profile, profile_summary(&profile))];
        for log in self.store.call_logs(customer_id).await? {
            let notes = if log.notes.is_empty() {
                String::new()
            } else {
                format!(": {}", log.notes)
            };
            snippets.push(payload(
                SnippetKind::History,
                format!("{}{notes}", log.outcome),
            ));
        }
        for call in self.store.calls_of(customer_id).await? {
            let said: Vec<&str> = call
                .turns
                .iter()
                .filter(|t| t.speaker == "caller")
                .map(|t| t.text.as_str())
                .collect();
            snippets.push(payload(
                SnippetKind::History,
                format!(
                    "{} ({}): {}",
                    call.outcome,
                    call.campaign_id,
                    said.join(" ")
                ),
            ));
        }
        let filter = Filter::customer(customer_id);
        self.index.delete(&filter).await?;
        self.lexical.delete(&filter)?;
        self.index_snippets(snippets).await
    }

    /// Indexes a campaign's product knowledge, one snippet per text.
    pub async fn index_knowledge(
        &self,
        campaign_id: &str,
        texts: &[&str],
    ) -> Result<usize, RetrievalError> {
        self.index_snippets(
            texts
                .iter()
                .map(|t| Payload {
                    customer_id: None,
                    campaign_id: Some(campaign_id.to_string()),
                    kind: SnippetKind::Knowledge.as_str().into(),
                    text: (*t).to_string(),
                })
                .collect(),
        )
        .await
    }
}

#[async_trait::async_trait]
impl ProfileStore for SqlProfileStore {
    async fn profile(&self, customer_id: &str) -> Result<Option<CustomerProfile>, RetrievalError> {
        self.store.profile(customer_id).await
    }

    async fn context(
        &self,
        customer_id: &str,
        campaign_id: &str,
        turn_text: &str,
        k: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        if mostly_cjk(turn_text) {
            // The sentence model reads English: on a Chinese turn its ranking is noise, and
            // embedding the turn is nearly all of the time the context takes. BM25 over
            // characters and bigrams ranks Chinese alone.
            let profile = self.store.profile(customer_id).await?;
            return self
                .assemble(customer_id, campaign_id, turn_text, None, profile, k)
                .await;
        }
        // The profile query runs while the turn is embedded.
        let (profile, vectors) = tokio::join!(
            self.store.profile(customer_id),
            self.embed(vec![turn_text.to_string()])
        );
        let query = vectors?.pop().unwrap_or_default();
        self.assemble(
            customer_id,
            campaign_id,
            turn_text,
            Some(&query),
            profile?,
            k,
        )
        .await
    }

    async fn context_with_embedding(
        &self,
        customer_id: &str,
        campaign_id: &str,
        turn_text: &str,
        turn_vec: &[f32],
        k: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        if turn_vec.len() != self.embedder.dim() {
            return Err(RetrievalError::InvalidInput(format!(
                "turn embedding has {} dimensions, the profile store's embedder {}: embed the \
                 turn with the same model or call context()",
                turn_vec.len(),
                self.embedder.dim()
            )));
        }
        let profile = self.store.profile(customer_id).await?;
        self.assemble(
            customer_id,
            campaign_id,
            turn_text,
            Some(turn_vec),
            profile,
            k,
        )
        .await
    }
}

/// Whether most letters of `text` are Chinese, Japanese or Korean characters.
fn mostly_cjk(text: &str) -> bool {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphanumeric()) {
        letters += 1;
        if crate::index::lexical::is_cjk(c) {
            cjk += 1;
        }
    }
    letters > 0 && cjk * 2 > letters
}

impl SqlProfileStore {
    /// The context from the profile and the turn's embedding: dense (when `query` is given) and
    /// lexical rankings over the customer's and the campaign's snippets, fused.
    async fn assemble(
        &self,
        customer_id: &str,
        campaign_id: &str,
        turn_text: &str,
        query: Option<&[f32]>,
        profile: Option<CustomerProfile>,
        k: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        let Some(profile) = profile else {
            return Err(RetrievalError::InvalidInput(format!(
                "customer {customer_id} is not in the store (unknown or erased)"
            )));
        };
        let mine = Filter::customer(customer_id);
        let knowledge = Filter {
            campaign_id: Some(campaign_id.to_string()),
            kind: Some(SnippetKind::Knowledge.as_str().into()),
            ..Filter::default()
        };
        let wide = k.max(1) * 2;
        // One dense and one lexical ranking over the customer's and the campaign's snippets
        // (scores are comparable within each), fused by rank.
        let by_score = |mut hits: Vec<Hit>| {
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
            hits.truncate(wide);
            hits
        };
        let mut dense = Vec::new();
        if let Some(query) = query {
            dense = self.index.search(query, wide, &mine).await?;
            dense.extend(self.index.search(query, wide, &knowledge).await?);
        }
        let mut lexical = self.lexical.search(turn_text, wide, &mine)?;
        lexical.extend(self.lexical.search(turn_text, wide, &knowledge)?);
        let lists = [by_score(dense), by_score(lexical)];
        let snippets = reciprocal_rank_fusion(&lists, k)
            .into_iter()
            .map(|h| Snippet {
                kind: kind_of(&h.payload.kind),
                text: h.payload.text,
                score: h.score,
            })
            .collect();
        Ok(ProfileContext { profile, snippets })
    }
}
