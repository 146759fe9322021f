//! Embedded on-disk vector index: exact (flat) cosine search over unit vectors held in memory,
//! persisted to one file in the index folder by an atomic rewrite after each change. Exact search
//! is the reference every approximate index is measured against; the retrieval wave decides
//! whether an ANN structure replaces it at 100k points.

use super::{check_dim, Filter, Hit, Point, VectorIndex};
use crate::RetrievalError;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

const FILE: &str = "points.jsonl";

/// Exact cosine search, stored under one folder.
#[derive(Debug)]
pub struct EmbeddedIndex {
    dim: usize,
    path: PathBuf,
    points: RwLock<Vec<Point>>,
}

impl EmbeddedIndex {
    /// Opens (or creates) the index in `dir` for vectors of `dim` dimensions.
    pub fn open(dir: &Path, dim: usize) -> Result<Self, RetrievalError> {
        std::fs::create_dir_all(dir).map_err(|source| RetrievalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE);
        let mut points = Vec::new();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|source| RetrievalError::Io {
                path: path.clone(),
                source,
            })?;
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let p: Point = serde_json::from_str(line).map_err(|e| {
                    RetrievalError::Index(format!("{} line {}: {e}", path.display(), i + 1))
                })?;
                check_dim(dim, p.vector.len())?;
                points.push(p);
            }
        }
        Ok(Self {
            dim,
            path,
            points: RwLock::new(points),
        })
    }

    fn persist(&self, points: &[Point]) -> Result<(), RetrievalError> {
        let mut text = String::new();
        for p in points {
            text.push_str(
                &serde_json::to_string(p).map_err(|e| RetrievalError::Index(e.to_string()))?,
            );
            text.push('\n');
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|source| RetrievalError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &self.path).map_err(|source| RetrievalError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn poisoned() -> RetrievalError {
        RetrievalError::Index("index lock poisoned by a panic in another thread".into())
    }
}

#[async_trait::async_trait]
impl VectorIndex for EmbeddedIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    async fn upsert(&self, new: Vec<Point>) -> Result<(), RetrievalError> {
        for p in &new {
            check_dim(self.dim, p.vector.len())?;
        }
        let mut points = self.points.write().map_err(|_| Self::poisoned())?;
        let mut next = points.clone();
        for p in new {
            match next.iter_mut().find(|q| q.id == p.id) {
                Some(q) => *q = p,
                None => next.push(p),
            }
        }
        // Written to disk first: memory changes only once the change is durable.
        self.persist(&next)?;
        *points = next;
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>, RetrievalError> {
        check_dim(self.dim, vector.len())?;
        let points = self.points.read().map_err(|_| Self::poisoned())?;
        let mut hits: Vec<Hit> = points
            .iter()
            .filter(|p| filter.matches(&p.payload))
            .map(|p| Hit {
                id: p.id,
                score: p.vector.iter().zip(vector).map(|(a, b)| a * b).sum(),
                payload: p.payload.clone(),
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(k);
        Ok(hits)
    }

    async fn delete(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let mut points = self.points.write().map_err(|_| Self::poisoned())?;
        let kept: Vec<Point> = points
            .iter()
            .filter(|p| !filter.matches(&p.payload))
            .cloned()
            .collect();
        let removed = (points.len() - kept.len()) as u64;
        if removed > 0 {
            self.persist(&kept)?;
            *points = kept;
        }
        Ok(removed)
    }

    async fn count(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let points = self.points.read().map_err(|_| Self::poisoned())?;
        Ok(points.iter().filter(|p| filter.matches(&p.payload)).count() as u64)
    }
}
