//! Customer data layer: the SQL store (SQLite by default, PostgreSQL by URL), CRM import,
//! sentence embeddings on candle, the vector index (embedded on disk by default, Qdrant at scale)
//! with a BM25 index beside it, and the profile context dialog asks for on every turn.
//! Everything the bot and the campaign know about a customer comes through here.

pub mod config;
pub mod context;
pub mod embed;
pub mod erase;
pub mod error;
pub mod import;
pub mod index;
pub mod privacy;
pub mod profile;
pub mod store;
pub mod synth;

pub use config::RetrievalConfig;
pub use context::SqlProfileStore;
pub use embed::{BertEmbedder, Embedder, FakeEmbedder};
pub use erase::{erase_customer, ErasureReport};
pub use error::RetrievalError;
pub use index::lexical::LexicalIndex;
pub use index::{reciprocal_rank_fusion, Filter, Hit, Payload, Point, VectorIndex};
pub use privacy::{mask_phone_numbers, PhoneNumber, PrivacyKeys, SealedPhone};
pub use profile::{CustomerProfile, Language, ProfileContext, ProfileStore, Snippet, SnippetKind};
pub use store::SqlStore;
