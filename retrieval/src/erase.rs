//! Erasure on request: removes a customer from the SQL store and the vector index together,
//! and reports what went, so an erasure request can be answered with evidence.

use crate::store::ErasedRows;
use crate::{Filter, RetrievalError, SqlStore, VectorIndex};
use serde::{Deserialize, Serialize};

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    pub rows: ErasedRows,
    pub vectors: u64,
}

/// Erases `customer_id` everywhere the data layer keeps it. The index is cleared first: should
/// the SQL step then fail, the request can simply be repeated (both steps are idempotent).
pub async fn erase_customer(
    store: &SqlStore,
    index: &dyn VectorIndex,
    customer_id: &str,
) -> Result<ErasureReport, RetrievalError> {
    let vectors = index.delete(&Filter::customer(customer_id)).await?;
    let rows = store.erase_customer(customer_id).await?;
    tracing::info!(customer_id, ?rows, vectors, "customer erased");
    Ok(ErasureReport { rows, vectors })
}
