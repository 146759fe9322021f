//! The vector index: points (a unit vector plus a payload naming customer, campaign and kind)
//! searched by cosine similarity under payload filters. [`embedded::EmbeddedIndex`] keeps them
//! on local disk (the one-machine default); [`qdrant::QdrantIndex`] talks to a Qdrant server or
//! cluster through qdrant-client. Both pass the same contract tests.

pub mod embedded;
mod ivf;
pub mod lexical;
mod log;
pub mod qdrant;

use crate::RetrievalError;
use serde::{Deserialize, Serialize};

/// What a point is about. Filters match on these fields exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub customer_id: Option<String>,
    pub campaign_id: Option<String>,
    /// `profile`, `history` or `knowledge`.
    pub kind: String,
    /// The text the vector was made from, returned with hits.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub id: u64,
    pub vector: Vec<f32>,
    pub payload: Payload,
}

/// Conditions that must all hold; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub customer_id: Option<String>,
    pub campaign_id: Option<String>,
    pub kind: Option<String>,
}

impl Filter {
    pub fn customer(id: impl Into<String>) -> Self {
        Self {
            customer_id: Some(id.into()),
            ..Self::default()
        }
    }

    pub fn matches(&self, p: &Payload) -> bool {
        let ok = |want: &Option<String>, got: &Option<String>| {
            want.as_ref().is_none_or(|w| got.as_ref() == Some(w))
        };
        ok(&self.customer_id, &p.customer_id)
            && ok(&self.campaign_id, &p.campaign_id)
            && self.kind.as_ref().is_none_or(|k| *k == p.kind)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: u64,
    /// Cosine similarity, higher is closer.
    pub score: f32,
    pub payload: Payload,
}

/// A vector index with payload filters.
#[async_trait::async_trait]
pub trait VectorIndex: Send + Sync {
    /// Dimension of the vectors the index holds.
    fn dim(&self) -> usize;
    /// Inserts or replaces points by id.
    async fn upsert(&self, points: Vec<Point>) -> Result<(), RetrievalError>;
    /// The `k` nearest points that pass `filter`, closest first.
    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>, RetrievalError>;
    /// Deletes every point that passes `filter`; returns how many were removed (erasure).
    async fn delete(&self, filter: &Filter) -> Result<u64, RetrievalError>;
    /// Number of points that pass `filter`.
    async fn count(&self, filter: &Filter) -> Result<u64, RetrievalError>;
}

pub(crate) fn check_dim(want: usize, got: usize) -> Result<(), RetrievalError> {
    if want == got {
        Ok(())
    } else {
        Err(RetrievalError::Dimension { want, got })
    }
}

/// Reciprocal rank fusion: merges ranked lists (dense and lexical) by `Σ 1 / (60 + rank)`, so
/// a snippet found by both rises and neither score scale has to be calibrated against the
/// other. Returns at most `k` hits; a hit's `score` becomes its fused score.
pub fn reciprocal_rank_fusion(lists: &[Vec<Hit>], k: usize) -> Vec<Hit> {
    const K0: f32 = 60.0;
    let mut fused: Vec<Hit> = Vec::new();
    let mut at: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for list in lists {
        for (rank, hit) in list.iter().enumerate() {
            let add = 1.0 / (K0 + rank as f32 + 1.0);
            match at.get(&hit.id) {
                Some(&i) => fused[i].score += add,
                None => {
                    at.insert(hit.id, fused.len());
                    fused.push(Hit {
                        score: add,
                        ..hit.clone()
                    });
                }
            }
        }
    }
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    fused.truncate(k);
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64) -> Hit {
        Hit {
            id,
            score: 0.0,
            payload: Payload {
                customer_id: None,
                campaign_id: None,
                kind: "knowledge".into(),
                text: String::new(),
            },
        }
    }

    #[test]
    fn fusion_prefers_what_both_lists_found() {
        let dense = vec![hit(1), hit(2), hit(3)];
        let lexical = vec![hit(3), hit(4)];
        let ids: Vec<u64> = reciprocal_rank_fusion(&[dense, lexical], 3)
            .iter()
            .map(|h| h.id)
            .collect();
        // 3 is in both lists; 2 and 4 tie at second place of one list, the lower id first.
        assert_eq!(ids, vec![3, 1, 2]);
    }
}
