//! Customer data layer: the SQL store (SQLite by default, PostgreSQL by URL), sentence
//! embeddings on candle, and the vector index (embedded on disk by default, Qdrant at scale).
//! Everything the bot and the campaign know about a customer comes through here.

pub mod config;
pub mod embed;
pub mod erase;
pub mod error;
pub mod index;
pub mod privacy;
pub mod profile;
pub mod store;
pub mod synth;

pub use config::RetrievalConfig;
pub use embed::{BertEmbedder, Embedder, FakeEmbedder};
pub use erase::{erase_customer, ErasureReport};
pub use error::RetrievalError;
pub use index::{Filter, Hit, Payload, Point, VectorIndex};
pub use privacy::{PhoneNumber, PrivacyKeys};
pub use profile::{CustomerProfile, Language, ProfileContext, ProfileStore, Snippet, SnippetKind};
pub use store::SqlStore;
