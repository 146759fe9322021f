//! Erasure on request: removes a customer from the SQL store, the vector index, the lexical
//! index and the recording files on disk, and reports what went, so an erasure request can be
//! answered with evidence.

use crate::index::lexical::LexicalIndex;
use crate::store::ErasedRows;
use crate::{Filter, PrivacyKeys, RetrievalError, SqlStore, VectorIndex};
use serde::{Deserialize, Serialize};

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    pub rows: ErasedRows,
    pub vectors: u64,
    pub lexical: u64,
    pub recording_files: u64,
}

/// Erases `customer_id` everywhere the data layer keeps it. Indexes and recording files go
/// first and the SQL rows (which name the files) last: should a step fail, the request can
/// simply be repeated, as every step is idempotent.
pub async fn erase_customer(
    store: &SqlStore,
    index: &dyn VectorIndex,
    lexical: &LexicalIndex,
    keys: &PrivacyKeys,
    customer_id: &str,
) -> Result<ErasureReport, RetrievalError> {
    let filter = Filter::customer(customer_id);
    let vectors = index.delete(&filter).await?;
    let lexical = lexical.delete(&filter)?;
    let mut recording_files = 0;
    for r in store.recordings(customer_id, keys).await? {
        match std::fs::remove_file(&r.path) {
            Ok(()) => recording_files += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RetrievalError::Io {
                    path: r.path,
                    source,
                })
            }
        }
    }
    let rows = store.erase_customer(customer_id).await?;
    tracing::info!(
        customer_id,
        ?rows,
        vectors,
        lexical,
        recording_files,
        "customer erased"
    );
    Ok(ErasureReport {
        rows,
        vectors,
        lexical,
        recording_files,
    })
}
