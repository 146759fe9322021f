//! A softmax (multinomial logistic) classifier over a dense part (a sentence embedding, or none)
//! and the sparse hashed n-grams. Trained full-batch with candle from zero weights, so training
//! is deterministic; inference is a plain dot product (microseconds).

use super::features::{SparseVec, HASH_DIM};
use crate::DialogError;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The input of the classifier for one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVec {
    /// Sentence embedding (empty when the model uses none).
    pub dense: Vec<f32>,
    pub sparse: SparseVec,
}

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Full-batch Adam steps.
    pub epochs: usize,
    pub learning_rate: f64,
    /// L2 penalty on the weights (not the bias), added to the mean cross-entropy.
    pub l2: f64,
    /// Weight each example by the inverse frequency of its class, so a class with fewer
    /// training turns counts as much as the others.
    #[serde(default)]
    pub balanced: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 300,
            learning_rate: 0.05,
            l2: 1e-3,
            balanced: false,
        }
    }
}

/// Weights `[classes, dense_dim + HASH_DIM]` and bias `[classes]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearClassifier {
    classes: usize,
    dense_dim: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

fn candle(e: candle_core::Error) -> DialogError {
    DialogError::Nlu(format!("candle: {e}"))
}

impl LinearClassifier {
    pub fn classes(&self) -> usize {
        self.classes
    }

    pub fn dense_dim(&self) -> usize {
        self.dense_dim
    }

    /// Trains on `examples` with class indices `labels` (each `< classes`).
    pub fn train(
        examples: &[FeatureVec],
        labels: &[usize],
        classes: usize,
        config: &TrainConfig,
    ) -> Result<Self, DialogError> {
        let n = examples.len();
        if n == 0 || n != labels.len() || labels.iter().any(|&l| l >= classes) {
            return Err(DialogError::InvalidRequest(format!(
                "training needs as many labels as examples (got {n} and {}), each below {classes}",
                labels.len()
            )));
        }
        let dense_dim = examples[0].dense.len();
        if examples.iter().any(|e| e.dense.len() != dense_dim) {
            return Err(DialogError::InvalidRequest(
                "every training example needs the same dense dimension".into(),
            ));
        }
        let dim = dense_dim + HASH_DIM;
        let mut matrix = vec![0f32; n * dim];
        for (row, e) in matrix.chunks_exact_mut(dim).zip(examples) {
            row[..dense_dim].copy_from_slice(&e.dense);
            for &(i, v) in &e.sparse {
                row[dense_dim + i as usize] = v;
            }
        }
        let dev = Device::Cpu;
        let x = Tensor::from_vec(matrix, (n, dim), &dev).map_err(candle)?;
        let y = Tensor::from_vec(
            labels.iter().map(|&l| l as u32).collect::<Vec<_>>(),
            n,
            &dev,
        )
        .map_err(candle)?;
        // Per-example weights summing to 1: uniform, or inverse class frequency.
        let mut counts = vec![0usize; classes];
        labels.iter().for_each(|&l| counts[l] += 1);
        let raw: Vec<f32> = labels
            .iter()
            .map(|&l| {
                if config.balanced {
                    1.0 / counts[l] as f32
                } else {
                    1.0
                }
            })
            .collect();
        let total: f32 = raw.iter().sum();
        let sample_weights =
            Tensor::from_vec(raw.iter().map(|w| w / total).collect::<Vec<_>>(), n, &dev)
                .map_err(candle)?;
        let y_column = y.unsqueeze(1).map_err(candle)?;
        let w = Var::zeros((classes, dim), DType::F32, &dev).map_err(candle)?;
        let b = Var::zeros(classes, DType::F32, &dev).map_err(candle)?;
        let mut opt = AdamW::new(
            vec![w.clone(), b.clone()],
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )
        .map_err(candle)?;
        for _ in 0..config.epochs {
            let logits = x
                .matmul(&w.as_tensor().t().map_err(candle)?)
                .and_then(|l| l.broadcast_add(b.as_tensor()))
                .map_err(candle)?;
            let loss = candle_nn::ops::log_softmax(&logits, 1)
                .and_then(|lp| lp.gather(&y_column, 1)?.squeeze(1))
                .and_then(|nll| (nll * &sample_weights)?.sum_all()?.neg())
                .and_then(|ce| ce + (w.as_tensor().sqr()?.sum_all()? * config.l2)?)
                .map_err(candle)?;
            opt.backward_step(&loss).map_err(candle)?;
        }
        Ok(Self {
            classes,
            dense_dim,
            weights: w
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(candle)?,
            bias: b.as_tensor().to_vec1().map_err(candle)?,
        })
    }

    /// Class probabilities (softmax), in class order.
    pub fn probabilities(&self, features: &FeatureVec) -> Vec<f32> {
        let dim = self.dense_dim + HASH_DIM;
        let mut logits: Vec<f32> = self
            .weights
            .chunks_exact(dim)
            .zip(&self.bias)
            .map(|(row, b)| {
                let dense: f32 = row.iter().zip(&features.dense).map(|(w, x)| w * x).sum();
                let sparse: f32 = features
                    .sparse
                    .iter()
                    .filter_map(|&(i, v)| row.get(self.dense_dim + i as usize).map(|w| w * v))
                    .sum();
                b + dense + sparse
            })
            .collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        logits.iter_mut().for_each(|l| *l = (*l - max).exp());
        let sum: f32 = logits.iter().sum();
        logits.iter_mut().for_each(|l| *l /= sum);
        logits
    }

    /// The tensors `{prefix}.weight` and `{prefix}.bias` for a safetensors file.
    pub fn to_tensors(
        &self,
        prefix: &str,
        out: &mut HashMap<String, Tensor>,
    ) -> Result<(), DialogError> {
        let dim = self.dense_dim + HASH_DIM;
        let dev = Device::Cpu;
        out.insert(
            format!("{prefix}.weight"),
            Tensor::from_slice(&self.weights, (self.classes, dim), &dev).map_err(candle)?,
        );
        out.insert(
            format!("{prefix}.bias"),
            Tensor::from_slice(&self.bias, self.classes, &dev).map_err(candle)?,
        );
        Ok(())
    }

    /// Reads `{prefix}.weight` and `{prefix}.bias` back; checks the shapes.
    pub fn from_tensors(
        prefix: &str,
        tensors: &HashMap<String, Tensor>,
        classes: usize,
    ) -> Result<Self, DialogError> {
        let get = |name: String| {
            tensors
                .get(&name)
                .ok_or_else(|| DialogError::Nlu(format!("tensor {name} is missing")))
        };
        let w = get(format!("{prefix}.weight"))?;
        let b = get(format!("{prefix}.bias"))?;
        let (rows, dim) = w.dims2().map_err(candle)?;
        if rows != classes || dim < HASH_DIM || b.dims() != [classes] {
            return Err(DialogError::Nlu(format!(
                "{prefix}: expected {classes} classes and at least {HASH_DIM} features, found \
                 weight {:?} and bias {:?}; retrain with `cargo run -p dialog --example train_nlu`",
                w.dims(),
                b.dims()
            )));
        }
        Ok(Self {
            classes,
            dense_dim: dim - HASH_DIM,
            weights: w
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
                .map_err(candle)?,
            bias: b
                .to_dtype(DType::F32)
                .and_then(|t| t.to_vec1())
                .map_err(candle)?,
        })
    }
}
