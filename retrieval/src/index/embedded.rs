//! Embedded on-disk vector index: exact cosine search over unit vectors held in memory, with
//! per-customer and per-campaign posting lists so the product's filtered searches scan only the
//! points they can return. Persisted as JSON lines (see `log.rs`): upserts append, deletions
//! rewrite the file so erased points leave the disk at once.

use super::log::JsonLog;
use super::{check_dim, Filter, Hit, Point, VectorIndex};
use crate::RetrievalError;
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

const FILE: &str = "points.jsonl";

/// Exact cosine search, stored under one folder.
#[derive(Debug)]
pub struct EmbeddedIndex {
    dim: usize,
    log: JsonLog,
    state: RwLock<State>,
}

#[derive(Debug, Default)]
struct State {
    points: Vec<Point>,
    by_id: HashMap<u64, usize>,
    by_customer: HashMap<String, Vec<usize>>,
    by_campaign: HashMap<String, Vec<usize>>,
}

impl State {
    fn insert(&mut self, p: Point) {
        if let Some(&i) = self.by_id.get(&p.id) {
            if self.points[i].payload.customer_id == p.payload.customer_id
                && self.points[i].payload.campaign_id == p.payload.campaign_id
            {
                self.points[i] = p;
                return;
            }
            // The point moves to another customer or campaign: rebuild the postings.
            self.points[i] = p;
            self.reindex();
            return;
        }
        let i = self.points.len();
        self.by_id.insert(p.id, i);
        if let Some(c) = &p.payload.customer_id {
            self.by_customer.entry(c.clone()).or_default().push(i);
        }
        if let Some(c) = &p.payload.campaign_id {
            self.by_campaign.entry(c.clone()).or_default().push(i);
        }
        self.points.push(p);
    }

    fn reindex(&mut self) {
        let points = std::mem::take(&mut self.points);
        *self = State::default();
        points.into_iter().for_each(|p| self.insert(p));
    }

    /// Positions that may pass `filter`: a posting list when the filter names a customer or a
    /// campaign, else every point.
    fn candidates(&self, filter: &Filter) -> Box<dyn Iterator<Item = usize> + '_> {
        let list = match (&filter.customer_id, &filter.campaign_id) {
            (Some(c), _) => self.by_customer.get(c),
            (None, Some(c)) => self.by_campaign.get(c),
            (None, None) => return Box::new(0..self.points.len()),
        };
        Box::new(list.into_iter().flatten().copied())
    }
}

/// Dot product over eight independent accumulators, written as a plain indexed loop: this crate
/// builds at opt-level 1, where iterator adaptors are not inlined and cost ten times more.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut i = 0;
    while i + 8 <= n {
        acc[0] += a[i] * b[i];
        acc[1] += a[i + 1] * b[i + 1];
        acc[2] += a[i + 2] * b[i + 2];
        acc[3] += a[i + 3] * b[i + 3];
        acc[4] += a[i + 4] * b[i + 4];
        acc[5] += a[i + 5] * b[i + 5];
        acc[6] += a[i + 6] * b[i + 6];
        acc[7] += a[i + 7] * b[i + 7];
        i += 8;
    }
    while i < n {
        acc[0] += a[i] * b[i];
        i += 1;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + (acc[4] + acc[5]) + (acc[6] + acc[7])
}

impl EmbeddedIndex {
    /// Opens (or creates) the index in `dir` for vectors of `dim` dimensions.
    pub fn open(dir: &Path, dim: usize) -> Result<Self, RetrievalError> {
        let (log, records) = JsonLog::open::<Point>(dir, FILE)?;
        let lines = records.len();
        let mut state = State::default();
        for p in records {
            check_dim(dim, p.vector.len())?;
            state.insert(p);
        }
        let index = Self {
            dim,
            log,
            state: RwLock::new(state),
        };
        if lines > 2 * index.read()?.points.len() + 1024 {
            let state = index.read()?;
            index.log.rewrite(&state.points)?; // compact replaced points
        }
        Ok(index)
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>, RetrievalError> {
        self.state.read().map_err(|_| Self::poisoned())
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
        let mut state = self.state.write().map_err(|_| Self::poisoned())?;
        // Written to disk first: memory changes only once the change is durable.
        self.log.append(&new)?;
        new.into_iter().for_each(|p| state.insert(p));
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Hit>, RetrievalError> {
        check_dim(self.dim, vector.len())?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let state = self.read()?;
        // Keep the best k (score, position) in a small sorted buffer.
        let mut best: Vec<(f32, u64, usize)> = Vec::with_capacity(k + 1);
        for i in state.candidates(filter) {
            let p = &state.points[i];
            if !filter.matches(&p.payload) {
                continue;
            }
            let score = dot(&p.vector, vector);
            if best.len() == k && score <= best[k - 1].0 {
                continue;
            }
            let at = best.partition_point(|b| b.0 > score || (b.0 == score && b.1 < p.id));
            best.insert(at, (score, p.id, i));
            best.truncate(k);
        }
        Ok(best
            .into_iter()
            .map(|(score, id, i)| Hit {
                id,
                score,
                payload: state.points[i].payload.clone(),
            })
            .collect())
    }

    async fn delete(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let mut state = self.state.write().map_err(|_| Self::poisoned())?;
        let before = state.points.len();
        let kept: Vec<Point> = state
            .points
            .iter()
            .filter(|p| !filter.matches(&p.payload))
            .cloned()
            .collect();
        let removed = (before - kept.len()) as u64;
        if removed > 0 {
            self.log.rewrite(&kept)?;
            state.points = kept;
            state.reindex();
        }
        Ok(removed)
    }

    async fn count(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let state = self.read()?;
        Ok(state
            .candidates(filter)
            .filter(|&i| filter.matches(&state.points[i].payload))
            .count() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::dot;

    #[test]
    fn dot_matches_the_naive_sum_for_every_tail_length() {
        for n in [0, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - naive).abs() <= 1e-3 * naive.abs().max(1.0),
                "n={n}"
            );
        }
    }
}
