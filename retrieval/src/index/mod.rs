//! The vector index: points (a unit vector plus a payload naming customer, campaign and kind)
//! searched by cosine similarity under payload filters. [`embedded::EmbeddedIndex`] keeps them
//! on local disk (the one-machine default); [`qdrant::QdrantIndex`] talks to a Qdrant server or
//! cluster through qdrant-client. Both pass the same contract tests.

pub mod embedded;
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
