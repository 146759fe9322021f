//! The approximate path of the embedded index: an inverted-file (IVF) coarse quantizer. Spherical
//! k-means, trained on a seeded sample, splits the unit sphere into cells; a search scores the
//! centroids, then only the points of the `nprobe` closest cells, exactly. Also the dot product
//! every search runs, written with AVX2/FMA because this crate builds at opt-level 1.

use crate::RetrievalError;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

/// Sample points per cell for training, k-means iterations, and the seed of both.
const SAMPLE_PER_LIST: usize = 16;
const ITERATIONS: usize = 10;
const SEED: u64 = 0x1f_2024;
/// Rows per matrix product when assigning points to cells (bounds the score matrix's memory).
const ASSIGN_ROWS: usize = 4096;

/// Dot product of two slices (over the shorter length), eight lanes at a time with fused
/// multiply-add and four independent accumulators.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut lanes = [0f32; 8];
    let mut i = 0;
    // SAFETY: AVX2 and FMA are enabled for the whole build (the cfg above), and every load reads
    // 8 floats starting at an index i + j with i + j + 8 <= n, inside both slices.
    unsafe {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1, mut s2, mut s3) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        while i + 32 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            s2 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 16)),
                _mm256_loadu_ps(pb.add(i + 16)),
                s2,
            );
            s3 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 24)),
                _mm256_loadu_ps(pb.add(i + 24)),
                s3,
            );
            i += 32;
        }
        while i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
        _mm256_storeu_ps(lanes.as_mut_ptr(), s);
    }
    let mut sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    while i < n {
        sum += a[i] * b[i];
        i += 1;
    }
    sum
}

/// Dot product over eight independent accumulators, as a plain indexed loop (iterator adaptors
/// are not inlined at opt-level 1). Used where AVX2/FMA are not enabled at build time.
#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
)))]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
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

fn matrix_error(e: candle_core::Error) -> RetrievalError {
    RetrievalError::Index(format!("coarse quantizer matrix product failed: {e}"))
}

/// The nearest centroid (largest dot product) of every row of `rows`, by matrix products on
/// candle's CPU backend (multi-threaded gemm), `ASSIGN_ROWS` rows at a time.
pub(crate) fn nearest_centroids(
    rows: &[f32],
    centroids: &[f32],
    dim: usize,
) -> Result<Vec<u32>, RetrievalError> {
    let lists = centroids.len() / dim;
    let c = Tensor::from_slice(centroids, (lists, dim), &Device::Cpu).map_err(matrix_error)?;
    let ct = c.t().map_err(matrix_error)?;
    let mut out = Vec::with_capacity(rows.len() / dim);
    for chunk in rows.chunks(ASSIGN_ROWS * dim) {
        let x = Tensor::from_slice(chunk, (chunk.len() / dim, dim), &Device::Cpu)
            .map_err(matrix_error)?;
        let best = x
            .matmul(&ct)
            .and_then(|s| s.argmax(1))
            .and_then(|b| b.to_vec1::<u32>())
            .map_err(matrix_error)?;
        out.extend(best);
    }
    Ok(out)
}

fn normalize(v: &mut [f32]) -> bool {
    let n = dot(v, v).sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x /= n);
        true
    } else {
        false
    }
}

/// How many cells for `n` points: about 4·√n (the low end of the usual 4–16·√n), so a cell
/// holds about √n/4 points and scoring the centroids costs about as much as scanning a few
/// dozen cells.
pub(crate) fn lists_for(n: usize) -> usize {
    ((4.0 * (n as f64).sqrt()) as usize).clamp(1, 4096)
}

/// Spherical k-means over a seeded sample of the `n` unit vectors in `vectors` (row-major,
/// `dim` wide): unit centroids, `lists` of them (fewer if there are fewer points).
pub(crate) fn train(vectors: &[f32], dim: usize, lists: usize) -> Result<Vec<f32>, RetrievalError> {
    let n = vectors.len() / dim;
    let lists = lists.min(n).max(1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(SEED);
    // A uniform sample without replacement (partial Fisher-Yates over the row numbers).
    let m = (lists * SAMPLE_PER_LIST).min(n);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in 0..m {
        let j = rng.random_range(i..n);
        order.swap(i, j);
    }
    let mut sample = Vec::with_capacity(m * dim);
    for &r in &order[..m] {
        let r = r as usize;
        sample.extend_from_slice(&vectors[r * dim..(r + 1) * dim]);
    }
    // Initial centroids: the first `lists` sampled points (already a random choice).
    let mut centroids = sample[..lists * dim].to_vec();
    let mut sums = vec![0f32; lists * dim];
    let mut sizes = vec![0usize; lists];
    for _ in 0..ITERATIONS {
        let assigned = nearest_centroids(&sample, &centroids, dim)?;
        sums.iter_mut().for_each(|x| *x = 0.0);
        sizes.iter_mut().for_each(|x| *x = 0);
        for (row, &c) in assigned.iter().enumerate() {
            let c = c as usize;
            sizes[c] += 1;
            let (sum, x) = (
                &mut sums[c * dim..(c + 1) * dim],
                &sample[row * dim..(row + 1) * dim],
            );
            for (s, x) in sum.iter_mut().zip(x) {
                *s += x;
            }
        }
        for c in 0..lists {
            let centroid = &mut centroids[c * dim..(c + 1) * dim];
            if sizes[c] > 0 {
                centroid.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
                if normalize(centroid) {
                    continue;
                }
            }
            // An empty (or degenerate) cell restarts at a random sampled point.
            let r = rng.random_range(0..m);
            centroid.copy_from_slice(&sample[r * dim..(r + 1) * dim]);
        }
    }
    Ok(centroids)
}

/// The inverted file: centroids and, per cell, the slots of the points assigned to it.
#[derive(Debug, Clone)]
pub(crate) struct Ivf {
    pub(crate) centroids: Vec<f32>,
    pub(crate) lists: Vec<Vec<u32>>,
    /// The cell of every slot.
    pub(crate) cell_of: Vec<u32>,
    /// How many points the quantizer was trained for (it is retrained as the index grows).
    pub(crate) trained_for: usize,
}

impl Ivf {
    /// Trains on `vectors` and assigns every one of them.
    pub(crate) fn build(vectors: &[f32], dim: usize) -> Result<Self, RetrievalError> {
        let n = vectors.len() / dim;
        let centroids = train(vectors, dim, lists_for(n))?;
        let cell_of = nearest_centroids(vectors, &centroids, dim)?;
        let mut ivf = Self {
            lists: Vec::new(),
            centroids,
            cell_of,
            trained_for: n,
        };
        ivf.rebuild_lists(dim);
        Ok(ivf)
    }

    pub(crate) fn rebuild_lists(&mut self, dim: usize) {
        let mut lists = vec![Vec::new(); self.centroids.len() / dim];
        for (slot, &c) in self.cell_of.iter().enumerate() {
            lists[c as usize].push(slot as u32);
        }
        self.lists = lists;
    }

    /// The `nprobe` cells whose centroids are closest to `query`.
    pub(crate) fn probe(&self, query: &[f32], dim: usize, nprobe: usize) -> Vec<u32> {
        let mut scored: Vec<(f32, u32)> = self
            .centroids
            .chunks_exact(dim)
            .enumerate()
            .map(|(c, centroid)| (dot(centroid, query), c as u32))
            .collect();
        let nprobe = nprobe.clamp(1, scored.len().max(1));
        if nprobe < scored.len() {
            scored.select_nth_unstable_by(nprobe - 1, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(nprobe);
        }
        scored.into_iter().map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_naive_sum_for_every_tail_length() {
        for n in [0, 1, 7, 8, 9, 31, 32, 33, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
            let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 0.25).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!(
                (dot(&a, &b) - naive).abs() <= 1e-3 * naive.abs().max(1.0),
                "n={n}"
            );
        }
    }

    #[test]
    fn every_point_sits_in_the_cell_of_its_nearest_centroid() {
        let dim = 8;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let centres: Vec<Vec<f32>> = (0..4)
            .map(|_| (0..dim).map(|_| rng.random_range(-1f32..1.0)).collect())
            .collect();
        let mut rows = Vec::new();
        for i in 0..400 {
            let mut v: Vec<f32> = centres[i % 4]
                .iter()
                .map(|x| x + rng.random_range(-0.2f32..0.2))
                .collect();
            normalize(&mut v);
            rows.extend(v);
        }
        let ivf = Ivf::build(&rows, dim).unwrap_or_else(|e| panic!("{e}"));
        let total: usize = ivf.lists.iter().map(Vec::len).sum();
        assert_eq!(total, 400);
        let score = |row: &[f32], c: u32| dot(row, &ivf.centroids[c as usize * dim..][..dim]);
        for (i, row) in rows.chunks_exact(dim).enumerate() {
            let best = ivf.probe(row, dim, 1)[0];
            assert!(
                (score(row, best) - score(row, ivf.cell_of[i])).abs() < 1e-4,
                "row {i}"
            );
        }
    }
}
