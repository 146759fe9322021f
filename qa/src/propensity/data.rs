//! Training data from any CSV: one id column, one 0/1 (or yes/no) label column, every other column
//! a numeric feature (empty or `NA` cells are missing values). Rows are kept in file order.

use super::PropensityError;
use std::path::Path;

/// Rows of numeric features with an id and, for training data, a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub feature_names: Vec<String>,
    pub ids: Vec<String>,
    /// Row-major, `ids.len() × feature_names.len()`; `NaN` is a missing value.
    pub features: Vec<f64>,
    /// Empty when the data was read without a label column.
    pub labels: Vec<bool>,
}

impl Dataset {
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    pub fn cols(&self) -> usize {
        self.feature_names.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.features[i * self.cols()..(i + 1) * self.cols()]
    }

    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|&&y| y).count()
    }

    /// The rows at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut features = Vec::with_capacity(idx.len() * self.cols());
        for &i in idx {
            features.extend_from_slice(self.row(i));
        }
        Dataset {
            feature_names: self.feature_names.clone(),
            ids: idx.iter().map(|&i| self.ids[i].clone()).collect(),
            features,
            labels: if self.labels.is_empty() {
                Vec::new()
            } else {
                idx.iter().map(|&i| self.labels[i]).collect()
            },
        }
    }

    /// The same rows with their features reordered (and narrowed) to `names`.
    pub fn select(&self, names: &[String]) -> Result<Dataset, PropensityError> {
        let pos: Vec<Option<usize>> = names
            .iter()
            .map(|n| self.feature_names.iter().position(|f| f == n))
            .collect();
        let missing: Vec<&str> = names
            .iter()
            .zip(&pos)
            .filter(|(_, p)| p.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(PropensityError::FeatureMismatch {
                missing: missing.join(", "),
            });
        }
        let pos: Vec<usize> = pos.into_iter().flatten().collect();
        let mut features = Vec::with_capacity(self.rows() * pos.len());
        for i in 0..self.rows() {
            let row = self.row(i);
            features.extend(pos.iter().map(|&j| row[j]));
        }
        Ok(Dataset {
            feature_names: names.to_vec(),
            ids: self.ids.clone(),
            features,
            labels: self.labels.clone(),
        })
    }

    /// Writes the rows as CSV (id, features, label as 0/1), the format [`read_csv`] reads.
    pub fn write_csv(&self, path: &Path, id: &str, label: &str) -> Result<(), PropensityError> {
        let csv_err = |source| PropensityError::Csv {
            path: path.to_path_buf(),
            source,
        };
        let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
        let mut header = vec![id.to_string()];
        header.extend(self.feature_names.iter().cloned());
        header.push(label.to_string());
        w.write_record(&header).map_err(csv_err)?;
        for i in 0..self.rows() {
            let mut rec = vec![self.ids[i].clone()];
            rec.extend(self.row(i).iter().map(|v| {
                if v.is_nan() {
                    String::new()
                } else {
                    v.to_string()
                }
            }));
            rec.push(if self.labels.get(i).copied().unwrap_or(false) {
                "1".into()
            } else {
                "0".into()
            });
            w.write_record(&rec).map_err(csv_err)?;
        }
        w.flush().map_err(|source| PropensityError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Reads `path`: `id` names the id column; `label`, when given, the 0/1 label column (also
/// `yes`/`no`, `true`/`false`, any case); every other column is a numeric feature.
pub fn read_csv(path: &Path, id: &str, label: Option<&str>) -> Result<Dataset, PropensityError> {
    read_table(path, id, label, None)
}

/// Reads the id column and the named feature columns of `path` (in that order), for scoring;
/// other columns (a label, notes) are ignored. A label column is read too when `label` is
/// given and present.
pub fn read_features(
    path: &Path,
    id: &str,
    features: &[String],
    label: Option<&str>,
) -> Result<Dataset, PropensityError> {
    read_table(path, id, label, Some(features))
}

fn read_table(
    path: &Path,
    id: &str,
    label: Option<&str>,
    only: Option<&[String]>,
) -> Result<Dataset, PropensityError> {
    let csv_err = |source| PropensityError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| PropensityError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(str::to_string)
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(PropensityError::Empty {
            path: path.to_path_buf(),
        });
    }
    let find = |name: &str, role: &'static str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| PropensityError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_string(),
                role,
                available: header.join(", "),
            })
    };
    let id_col = find(id, "id")?;
    let (label_col, feature_cols) = match only {
        None => {
            let label_col = label.map(|l| find(l, "label")).transpose()?;
            let cols = (0..header.len())
                .filter(|&c| c != id_col && Some(c) != label_col)
                .collect();
            (label_col, cols)
        }
        Some(names) => (
            label.and_then(|l| header.iter().position(|h| h == l)),
            names
                .iter()
                .map(|n| find(n, "feature"))
                .collect::<Result<Vec<usize>, _>>()?,
        ),
    };
    if feature_cols.is_empty() {
        return Err(PropensityError::NoFeatures {
            path: path.to_path_buf(),
        });
    }
    let mut data = Dataset {
        feature_names: feature_cols.iter().map(|&c| header[c].clone()).collect(),
        ids: Vec::new(),
        features: Vec::new(),
        labels: Vec::new(),
    };
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        let line = record.position().map_or(0, |p| p.line());
        data.ids
            .push(record.get(id_col).unwrap_or_default().to_string());
        for &c in &feature_cols {
            let cell = record.get(c).unwrap_or_default();
            data.features.push(
                parse_number(cell).ok_or_else(|| PropensityError::NonNumeric {
                    path: path.to_path_buf(),
                    line,
                    column: header[c].clone(),
                    value: cell.to_string(),
                })?,
            );
        }
        if let Some(c) = label_col {
            let cell = record.get(c).unwrap_or_default();
            data.labels
                .push(parse_label(cell).ok_or_else(|| PropensityError::BadLabel {
                    path: path.to_path_buf(),
                    line,
                    column: header[c].clone(),
                    value: cell.to_string(),
                })?);
        }
    }
    if data.ids.is_empty() {
        return Err(PropensityError::Empty {
            path: path.to_path_buf(),
        });
    }
    if let (Some(c), None) = (label_col, only) {
        let positives = data.positives();
        if positives == 0 || positives == data.rows() {
            return Err(PropensityError::SingleClass {
                path: path.to_path_buf(),
                column: header[c].clone(),
                class: if positives == 0 {
                    "negative"
                } else {
                    "positive"
                },
            });
        }
    }
    Ok(data)
}

/// A feature cell: a number, or `NaN` for an empty / `NA` / `NaN` / `null` cell.
fn parse_number(cell: &str) -> Option<f64> {
    if cell.is_empty() || ["na", "nan", "null"].contains(&cell.to_ascii_lowercase().as_str()) {
        return Some(f64::NAN);
    }
    cell.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_label(cell: &str) -> Option<bool> {
    match cell.to_ascii_lowercase().as_str() {
        "1" | "1.0" | "yes" | "y" | "true" => Some(true),
        "0" | "0.0" | "no" | "n" | "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells() {
        assert_eq!(parse_number("2.5"), Some(2.5));
        assert!(parse_number("").is_some_and(f64::is_nan));
        assert!(parse_number("NA").is_some_and(f64::is_nan));
        assert_eq!(parse_number("abc"), None);
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_label("Yes"), Some(true));
        assert_eq!(parse_label("0"), Some(false));
        assert_eq!(parse_label("maybe"), None);
    }
}
