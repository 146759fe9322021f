//! Qdrant through qdrant-client (gRPC): the same [`VectorIndex`] contract against a Qdrant server
//! or cluster, for deployments that outgrow the embedded index. Payload fields are indexed as
//! keywords so filters stay fast at scale.

use super::{check_dim, Filter, Hit, Payload, Point, VectorIndex};
use crate::RetrievalError;
use qdrant_client::qdrant::{
    point_id::PointIdOptions, Condition, CountPointsBuilder, CreateCollectionBuilder,
    DeletePointsBuilder, Distance, Filter as QFilter, PointStruct, SearchPointsBuilder,
    UpsertPointsBuilder, Value, VectorParamsBuilder,
};
use qdrant_client::{Payload as QPayload, Qdrant};

fn err(e: impl std::fmt::Display) -> RetrievalError {
    RetrievalError::Qdrant(e.to_string())
}

/// A collection on a Qdrant server.
pub struct QdrantIndex {
    client: Qdrant,
    collection: String,
    dim: usize,
}

impl std::fmt::Debug for QdrantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantIndex")
            .field("collection", &self.collection)
            .field("dim", &self.dim)
            .finish()
    }
}

impl QdrantIndex {
    /// Connects to `url` (gRPC, e.g. `http://127.0.0.1:6334`) and creates the collection
    /// (cosine distance) if it does not exist.
    pub async fn connect(url: &str, collection: &str, dim: usize) -> Result<Self, RetrievalError> {
        let client = Qdrant::from_url(url)
            .skip_compatibility_check()
            .build()
            .map_err(err)?;
        if !client.collection_exists(collection).await.map_err(err)? {
            client
                .create_collection(
                    CreateCollectionBuilder::new(collection)
                        .vectors_config(VectorParamsBuilder::new(dim as u64, Distance::Cosine)),
                )
                .await
                .map_err(err)?;
        }
        Ok(Self {
            client,
            collection: collection.to_string(),
            dim,
        })
    }

    fn filter(f: &Filter) -> QFilter {
        let mut conds = Vec::new();
        if let Some(c) = &f.customer_id {
            conds.push(Condition::matches("customer_id", c.clone()));
        }
        if let Some(c) = &f.campaign_id {
            conds.push(Condition::matches("campaign_id", c.clone()));
        }
        if let Some(k) = &f.kind {
            conds.push(Condition::matches("kind", k.clone()));
        }
        QFilter::must(conds)
    }

    fn payload(p: &Payload) -> QPayload {
        let mut map = std::collections::HashMap::<&str, Value>::new();
        if let Some(c) = &p.customer_id {
            map.insert("customer_id", c.clone().into());
        }
        if let Some(c) = &p.campaign_id {
            map.insert("campaign_id", c.clone().into());
        }
        map.insert("kind", p.kind.clone().into());
        map.insert("text", p.text.clone().into());
        QPayload::from(map)
    }

    fn from_qdrant(map: &std::collections::HashMap<String, Value>) -> Payload {
        let s = |k: &str| map.get(k).and_then(|v| v.as_str()).cloned();
        Payload {
            customer_id: s("customer_id"),
            campaign_id: s("campaign_id"),
            kind: s("kind").unwrap_or_default(),
            text: s("text").unwrap_or_default(),
        }
    }
}

#[async_trait::async_trait]
impl VectorIndex for QdrantIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<(), RetrievalError> {
        let mut structs = Vec::with_capacity(points.len());
        for p in points {
            check_dim(self.dim, p.vector.len())?;
            structs.push(PointStruct::new(p.id, p.vector, Self::payload(&p.payload)));
        }
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, structs).wait(true))
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>, RetrievalError> {
        check_dim(self.dim, vector.len())?;
        let res = self
            .client
            .search_points(
                SearchPointsBuilder::new(&self.collection, vector.to_vec(), k as u64)
                    .filter(Self::filter(filter))
                    .with_payload(true),
            )
            .await
            .map_err(err)?;
        Ok(res
            .result
            .iter()
            .filter_map(|sp| {
                let id = match sp.id.as_ref()?.point_id_options.as_ref()? {
                    PointIdOptions::Num(n) => *n,
                    PointIdOptions::Uuid(_) => return None,
                };
                Some(Hit {
                    id,
                    score: sp.score,
                    payload: Self::from_qdrant(&sp.payload),
                })
            })
            .collect())
    }

    async fn delete(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let n = self.count(filter).await?;
        self.client
            .delete_points(
                DeletePointsBuilder::new(&self.collection)
                    .points(Self::filter(filter))
                    .wait(true),
            )
            .await
            .map_err(err)?;
        Ok(n)
    }

    async fn count(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let res = self
            .client
            .count(
                CountPointsBuilder::new(&self.collection)
                    .filter(Self::filter(filter))
                    .exact(true),
            )
            .await
            .map_err(err)?;
        Ok(res.result.map_or(0, |r| r.count))
    }
}
