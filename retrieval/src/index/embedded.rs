//! Embedded on-disk vector index. Vectors sit in one contiguous block in memory; small indexes
//! and filtered searches whose customer or campaign posting list is short are scanned exactly,
//! larger ones go through an inverted file (`ivf.rs`: k-means cells, `nprobe` probed, exact
//! scores inside them). Persisted as JSON lines (see `log.rs`): upserts append, deletions rewrite
//! the file so erased points leave the disk at once.

use super::ivf::{dot, nearest_centroids, Ivf};
use super::log::JsonLog;
use super::{check_dim, Filter, Hit, Payload, Point, VectorIndex};
use crate::RetrievalError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

const FILE: &str = "points.jsonl";

/// When the embedded index stops scanning exactly and how widely it probes. The defaults give
/// recall@10 ≥ 0.95 at 100k points (see `examples/data_bench.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnnOptions {
    /// Below this many points (in the index, or in a filter's posting list) search is exact.
    pub exact_below: usize,
    /// Cells probed per approximate search (of about 4·√n cells); more is slower and closer to
    /// exact.
    pub nprobe: usize,
}

impl Default for AnnOptions {
    fn default() -> Self {
        Self {
            exact_below: 20_000,
            nprobe: 32,
        }
    }
}

/// Cosine search (exact when small, IVF when large), stored under one folder.
#[derive(Debug)]
pub struct EmbeddedIndex {
    dim: usize,
    log: JsonLog,
    state: RwLock<State>,
}

/// The points by slot: `vectors[slot * dim..]`, `ids[slot]`, `payloads[slot]`.
#[derive(Debug)]
struct State {
    dim: usize,
    options: AnnOptions,
    vectors: Vec<f32>,
    ids: Vec<u64>,
    payloads: Vec<Payload>,
    by_id: HashMap<u64, u32>,
    by_customer: HashMap<String, Vec<u32>>,
    by_campaign: HashMap<String, Vec<u32>>,
    /// Present once the index holds `exact_below` points or more.
    ivf: Option<Ivf>,
}

/// A point as written to the log, borrowed from the state (same JSON as [`Point`]).
#[derive(Serialize)]
struct StoredPoint<'a> {
    id: u64,
    vector: &'a [f32],
    payload: &'a Payload,
}

/// The best `k` (score, id, slot) seen so far, closest first; ties go to the lower id.
struct TopK {
    k: usize,
    best: Vec<(f32, u64, u32)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    fn push(&mut self, score: f32, id: u64, slot: u32) {
        if let Some(last) = self.best.last() {
            if self.best.len() == self.k && (score < last.0 || (score == last.0 && id >= last.1)) {
                return;
            }
        }
        let at = self
            .best
            .partition_point(|b| b.0 > score || (b.0 == score && b.1 < id));
        self.best.insert(at, (score, id, slot));
        self.best.truncate(self.k);
    }
}

fn remove_from(list: &mut Vec<u32>, slot: u32) {
    if let Some(i) = list.iter().position(|&s| s == slot) {
        list.swap_remove(i);
    }
}

impl State {
    fn new(dim: usize, options: AnnOptions) -> Self {
        Self {
            dim,
            options,
            vectors: Vec::new(),
            ids: Vec::new(),
            payloads: Vec::new(),
            by_id: HashMap::new(),
            by_customer: HashMap::new(),
            by_campaign: HashMap::new(),
            ivf: None,
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn vector(&self, slot: u32) -> &[f32] {
        let at = slot as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    fn add_postings(&mut self, slot: u32) {
        let p = &self.payloads[slot as usize];
        if let Some(c) = &p.customer_id {
            self.by_customer.entry(c.clone()).or_default().push(slot);
        }
        if let Some(c) = &p.campaign_id {
            self.by_campaign.entry(c.clone()).or_default().push(slot);
        }
    }

    fn remove_postings(&mut self, slot: u32) {
        let p = &self.payloads[slot as usize];
        for (map, key) in [
            (&mut self.by_customer, &p.customer_id),
            (&mut self.by_campaign, &p.campaign_id),
        ] {
            if let Some(key) = key {
                if let Some(list) = map.get_mut(key) {
                    remove_from(list, slot);
                    if list.is_empty() {
                        map.remove(key);
                    }
                }
            }
        }
    }

    /// Inserts or replaces points; assigns them to cells when the inverted file exists and
    /// (re)trains it when the index has outgrown it.
    fn upsert(&mut self, points: Vec<Point>) -> Result<(), RetrievalError> {
        let mut touched = Vec::with_capacity(points.len());
        for p in points {
            let slot = match self.by_id.get(&p.id) {
                Some(&slot) => {
                    self.remove_postings(slot);
                    let at = slot as usize * self.dim;
                    self.vectors[at..at + self.dim].copy_from_slice(&p.vector);
                    self.payloads[slot as usize] = p.payload;
                    slot
                }
                None => {
                    let slot = u32::try_from(self.len()).map_err(|_| {
                        RetrievalError::Index("the embedded index holds at most 2^32 points".into())
                    })?;
                    self.by_id.insert(p.id, slot);
                    self.ids.push(p.id);
                    self.vectors.extend_from_slice(&p.vector);
                    self.payloads.push(p.payload);
                    slot
                }
            };
            self.add_postings(slot);
            touched.push(slot);
        }
        let n = self.len();
        let outgrown = match &self.ivf {
            None => n >= self.options.exact_below,
            Some(ivf) => n >= 2 * ivf.trained_for,
        };
        if outgrown {
            self.ivf = Some(Ivf::build(&self.vectors, self.dim)?);
            tracing::debug!(points = n, "embedded index: inverted file trained");
        } else if let Some(ivf) = &mut self.ivf {
            touched.sort_unstable();
            touched.dedup();
            let mut rows = Vec::with_capacity(touched.len() * self.dim);
            for &slot in &touched {
                let at = slot as usize * self.dim;
                rows.extend_from_slice(&self.vectors[at..at + self.dim]);
            }
            let cells = nearest_centroids(&rows, &ivf.centroids, self.dim)?;
            for (&slot, cell) in touched.iter().zip(cells) {
                match ivf.cell_of.get(slot as usize).copied() {
                    Some(old) if old == cell => continue,
                    Some(old) => {
                        remove_from(&mut ivf.lists[old as usize], slot);
                        ivf.cell_of[slot as usize] = cell;
                    }
                    None => ivf.cell_of.push(cell), // new slots come in order
                }
                ivf.lists[cell as usize].push(slot);
            }
        }
        Ok(())
    }

    /// Removes every point that passes `filter`, compacting the slots; returns how many went.
    fn delete(&mut self, filter: &Filter) -> usize {
        let keep: Vec<bool> = self.payloads.iter().map(|p| !filter.matches(p)).collect();
        let removed = keep.iter().filter(|k| !**k).count();
        if removed == 0 {
            return 0;
        }
        let dim = self.dim;
        let mut next = 0usize;
        for (slot, &k) in keep.iter().enumerate() {
            if k {
                if next != slot {
                    self.vectors
                        .copy_within(slot * dim..(slot + 1) * dim, next * dim);
                }
                next += 1;
            }
        }
        self.vectors.truncate(next * dim);
        let mut flags = keep.iter();
        self.ids.retain(|_| flags.next().copied().unwrap_or(false));
        let mut flags = keep.iter();
        self.payloads
            .retain(|_| flags.next().copied().unwrap_or(false));
        self.by_id.clear();
        self.by_customer.clear();
        self.by_campaign.clear();
        for slot in 0..self.len() as u32 {
            self.by_id.insert(self.ids[slot as usize], slot);
            self.add_postings(slot);
        }
        if self.len() < self.options.exact_below / 2 {
            self.ivf = None;
        } else if let Some(ivf) = &mut self.ivf {
            let mut flags = keep.iter();
            ivf.cell_of
                .retain(|_| flags.next().copied().unwrap_or(false));
            ivf.rebuild_lists(dim);
        }
        removed
    }

    fn score_into(&self, top: &mut TopK, slots: &[u32], query: &[f32], filter: &Filter) {
        for &slot in slots {
            let payload = &self.payloads[slot as usize];
            if !filter.matches(payload) {
                continue;
            }
            top.push(dot(self.vector(slot), query), self.ids[slot as usize], slot);
        }
    }

    /// The slots a filter's customer or campaign restricts it to, if it names one.
    fn posting(&self, filter: &Filter) -> Option<&[u32]> {
        let list = match (&filter.customer_id, &filter.campaign_id) {
            (Some(c), _) => self.by_customer.get(c),
            (None, Some(c)) => self.by_campaign.get(c),
            (None, None) => return None,
        };
        Some(list.map_or(&[][..], Vec::as_slice))
    }

    fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Vec<(f32, u64, u32)> {
        let mut top = TopK::new(k);
        let posting = self.posting(filter);
        let exact = |top: &mut TopK| match posting {
            Some(slots) => self.score_into(top, slots, query, filter),
            None => {
                for slot in 0..self.len() as u32 {
                    if filter.matches(&self.payloads[slot as usize]) {
                        top.push(dot(self.vector(slot), query), self.ids[slot as usize], slot);
                    }
                }
            }
        };
        match (&self.ivf, posting) {
            (Some(ivf), p) if p.is_none_or(|p| p.len() >= self.options.exact_below) => {
                for cell in ivf.probe(query, self.dim, self.options.nprobe) {
                    self.score_into(&mut top, &ivf.lists[cell as usize], query, filter);
                }
                // A selective filter may leave the probed cells short of k: scan exactly.
                if top.best.len() < k {
                    top = TopK::new(k);
                    exact(&mut top);
                }
            }
            _ => exact(&mut top),
        }
        top.best
    }

    fn stored(&self) -> Vec<StoredPoint<'_>> {
        (0..self.len() as u32)
            .map(|slot| StoredPoint {
                id: self.ids[slot as usize],
                vector: self.vector(slot),
                payload: &self.payloads[slot as usize],
            })
            .collect()
    }
}

impl EmbeddedIndex {
    /// Opens (or creates) the index in `dir` for vectors of `dim` dimensions, with the default
    /// [`AnnOptions`].
    pub fn open(dir: &Path, dim: usize) -> Result<Self, RetrievalError> {
        Self::open_with(dir, dim, AnnOptions::default())
    }

    /// Opens (or creates) the index in `dir` with the given search options.
    pub fn open_with(dir: &Path, dim: usize, options: AnnOptions) -> Result<Self, RetrievalError> {
        if options.nprobe == 0 {
            return Err(RetrievalError::InvalidInput(
                "ann.nprobe must be at least 1".into(),
            ));
        }
        let (log, records) = JsonLog::open::<Point>(dir, FILE)?;
        let lines = records.len();
        for p in &records {
            check_dim(dim, p.vector.len())?;
        }
        let mut state = State::new(dim, options);
        state.upsert(records)?;
        let index = Self {
            dim,
            log,
            state: RwLock::new(state),
        };
        {
            let state = index.read()?;
            if lines > 2 * state.len() + 1024 {
                index.log.rewrite(&state.stored())?; // compact replaced points
            }
        }
        Ok(index)
    }

    /// Changes how many cells an approximate search probes (benchmarks sweep it).
    pub fn set_nprobe(&self, nprobe: usize) -> Result<(), RetrievalError> {
        let mut state = self.state.write().map_err(|_| Self::poisoned())?;
        state.options.nprobe = nprobe.max(1);
        Ok(())
    }

    /// Whether searches without a short posting list go through the inverted file, and over how
    /// many cells.
    pub fn cells(&self) -> Result<Option<usize>, RetrievalError> {
        Ok(self.read()?.ivf.as_ref().map(|ivf| ivf.lists.len()))
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
        state.upsert(new)
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
        Ok(state
            .search(vector, k, filter)
            .into_iter()
            .map(|(score, id, slot)| Hit {
                id,
                score,
                payload: state.payloads[slot as usize].clone(),
            })
            .collect())
    }

    async fn delete(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let mut state = self.state.write().map_err(|_| Self::poisoned())?;
        let doomed = state.payloads.iter().filter(|p| filter.matches(p)).count();
        if doomed == 0 {
            return Ok(0);
        }
        // The file first, without the doomed points: erased vectors leave the disk before memory.
        let kept: Vec<StoredPoint<'_>> = state
            .stored()
            .into_iter()
            .filter(|p| !filter.matches(p.payload))
            .collect();
        self.log.rewrite(&kept)?;
        drop(kept);
        Ok(state.delete(filter) as u64)
    }

    async fn count(&self, filter: &Filter) -> Result<u64, RetrievalError> {
        let state = self.read()?;
        let n = match state.posting(filter) {
            Some(slots) => slots
                .iter()
                .filter(|&&s| filter.matches(&state.payloads[s as usize]))
                .count(),
            None => state.payloads.iter().filter(|p| filter.matches(p)).count(),
        };
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn unit(mut v: Vec<f32>) -> Vec<f32> {
        crate::embed::normalize(&mut v);
        v
    }

    fn points(n: usize, dim: usize, seed: u64) -> Vec<Point> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let centres: Vec<Vec<f32>> = (0..40)
            .map(|_| unit((0..dim).map(|_| rng.random_range(-1f32..1.0)).collect()))
            .collect();
        (0..n)
            .map(|i| Point {
                id: i as u64,
                vector: unit(
                    centres[i % centres.len()]
                        .iter()
                        .map(|x| x + rng.random_range(-0.3f32..0.3))
                        .collect(),
                ),
                payload: Payload {
                    customer_id: Some(format!("c{}", i % 300)),
                    campaign_id: Some(format!("k{}", i % 3)),
                    kind: if i % 2 == 0 { "history" } else { "profile" }.into(),
                    text: format!("point {i}"),
                },
            })
            .collect()
    }

    /// The inverted-file path against the exact one on the same points: high recall, filters
    /// honoured, deletions and replacements kept in step with the cells, and a reload that
    /// trains the same quantizer.
    #[tokio::test]
    async fn the_inverted_file_agrees_with_an_exact_scan() {
        let dim = 32;
        let data = points(3000, dim, 1);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let exact_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ann = AnnOptions {
            exact_below: 1000,
            nprobe: 64,
        };
        let index =
            EmbeddedIndex::open_with(dir.path(), dim, ann).unwrap_or_else(|e| panic!("{e}"));
        let exact = EmbeddedIndex::open_with(
            exact_dir.path(),
            dim,
            AnnOptions {
                exact_below: usize::MAX,
                nprobe: 1,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for chunk in data.chunks(700) {
            index
                .upsert(chunk.to_vec())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            exact
                .upsert(chunk.to_vec())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(index.cells().unwrap_or_else(|e| panic!("{e}")).is_some());
        // Erase a customer and move a point to another one, in both.
        for ix in [&index, &exact] {
            assert_eq!(
                ix.delete(&Filter::customer("c7")).await.unwrap_or_default(),
                10
            );
            let mut moved = data[8].clone();
            moved.payload.customer_id = Some("c9".into());
            ix.upsert(vec![moved])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let reopened =
            EmbeddedIndex::open_with(dir.path(), dim, ann).unwrap_or_else(|e| panic!("{e}"));
        let queries = points(100, dim, 2);
        let kind = Filter {
            kind: Some("profile".into()),
            ..Filter::default()
        };
        let (mut found, mut total) = (0, 0);
        for q in &queries {
            for filter in [Filter::default(), kind.clone()] {
                let want = exact
                    .search(&q.vector, 10, &filter)
                    .await
                    .unwrap_or_default();
                for ix in [&index, &reopened] {
                    let got = ix.search(&q.vector, 10, &filter).await.unwrap_or_default();
                    assert_eq!(got.len(), 10);
                    assert!(got.iter().all(|h| filter.matches(&h.payload)));
                    assert!(got
                        .iter()
                        .all(|h| h.payload.customer_id.as_deref() != Some("c7")));
                    found += got
                        .iter()
                        .filter(|h| want.iter().any(|w| w.id == h.id))
                        .count();
                    total += 10;
                }
            }
            // A customer's posting list is searched exactly.
            let f = Filter::customer("c9");
            let want = exact.search(&q.vector, 5, &f).await.unwrap_or_default();
            let got = index.search(&q.vector, 5, &f).await.unwrap_or_default();
            assert_eq!(got, want);
        }
        let recall = found as f64 / total as f64;
        assert!(recall >= 0.9, "recall {recall}");
        assert_eq!(
            reopened
                .count(&Filter::customer("c9"))
                .await
                .unwrap_or_default(),
            11
        );
    }
}
