//! The on-disk form of the embedded indexes: a JSON-lines file that upserts append to (the last
//! line for an id wins on load) and deletions rewrite atomically, so erased text leaves the disk
//! at once instead of lingering until a compaction.

use crate::RetrievalError;
use serde::{de::DeserializeOwned, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One JSON-lines file of records.
#[derive(Debug)]
pub(crate) struct JsonLog {
    path: PathBuf,
}

impl JsonLog {
    /// Opens `dir/file` (creating `dir`) and returns the records in file order.
    pub(crate) fn open<T: DeserializeOwned>(
        dir: &Path,
        file: &str,
    ) -> Result<(Self, Vec<T>), RetrievalError> {
        std::fs::create_dir_all(dir).map_err(|source| RetrievalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(file);
        let mut records = Vec::new();
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
                records.push(serde_json::from_str(line).map_err(|e| {
                    RetrievalError::Index(format!(
                        "{} line {}: {e}; delete the folder and re-index",
                        path.display(),
                        i + 1
                    ))
                })?);
            }
        }
        Ok((Self { path }, records))
    }

    fn lines<T: Serialize>(records: &[T]) -> Result<String, RetrievalError> {
        let mut text = String::new();
        for r in records {
            text.push_str(
                &serde_json::to_string(r).map_err(|e| RetrievalError::Index(e.to_string()))?,
            );
            text.push('\n');
        }
        Ok(text)
    }

    /// Appends records and flushes them to disk.
    pub(crate) fn append<T: Serialize>(&self, records: &[T]) -> Result<(), RetrievalError> {
        let io = |source| RetrievalError::Io {
            path: self.path.clone(),
            source,
        };
        let text = Self::lines(records)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }

    /// Replaces the file with exactly `records` (write to a temporary file, then rename).
    pub(crate) fn rewrite<T: Serialize>(&self, records: &[T]) -> Result<(), RetrievalError> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, Self::lines(records)?).map_err(|source| RetrievalError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &self.path).map_err(|source| RetrievalError::Io {
            path: self.path.clone(),
            source,
        })
    }
}
