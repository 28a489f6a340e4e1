//! [`SemanticIndex`]: every enabled FAQ's question, phrasings and answer as sentence
//! embeddings, and the score of each FAQ for a question: its best question/phrasing cosine
//! plus 0.5 × its answer cosine. Vectors are computed by one background thread (one core) from
//! the FAQ changes the lexical index also receives, through the on-disk cache; a question is
//! embedded on a bounded blocking pool, never on an async worker thread.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use super::engine::{DIM, Engine, Kind, dot};
use super::model_file::{self, ModelSource};
use super::vectors::{TextKey, VectorCache, text_key};
use crate::kb::FaqDoc;

/// Weight of the answer's cosine beside the best question/phrasing cosine.
pub const ANSWER_WEIGHT: f32 = 0.5;
/// Questions embedded at once (each takes one core for 15–25 ms); more wait their turn.
const QUERY_SLOTS: usize = 2;
/// FAQs taken from the queue per round of the background thread.
const FAQS_PER_ROUND: usize = 32;
/// Texts per forward pass of the background thread.
const TEXTS_PER_PASS: usize = 16;
/// While a large base is embedded, progress is saved this often.
const SAVE_EVERY: Duration = Duration::from_secs(60);
/// How often a server without a model looks for one placed by `taxdesk kb model install`…
const LOOK_EVERY: Duration = Duration::from_secs(15);
/// … and tries the download again after a failure.
const FETCH_RETRY: Duration = Duration::from_secs(600);

/// Whether questions are also matched by meaning (`/healthz` `semanticSearch`,
/// `botProfile.semanticSearch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemanticStatus {
    /// No model: lexical search only.
    Off,
    /// The model is being fetched or loaded, or the FAQs embedded for the first time.
    Loading,
    /// Every FAQ has its vectors; [`SemanticIndex::scores`] answers.
    On,
}

impl SemanticStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SemanticStatus::Off => "off",
            SemanticStatus::Loading => "loading",
            SemanticStatus::On => "on",
        }
    }

    fn from_u8(v: u8) -> SemanticStatus {
        match v {
            1 => SemanticStatus::Loading,
            2 => SemanticStatus::On,
            _ => SemanticStatus::Off,
        }
    }
}

/// Where the model and the vector cache live, and where a missing model comes from.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `TAXDESK_KB_MODEL`.
    pub model: PathBuf,
    /// `TAXDESK_KB_MODEL_URL` / `PIP_INDEX_URL`.
    pub source: ModelSource,
    /// `TAXDESK_KB_VECTORS`.
    pub vectors: PathBuf,
    /// CA bundle trusted for the download besides the built-in roots (`PIP_CERT`,
    /// `SSL_CERT_FILE`; default: the system's bundle).
    pub ca_bundle: Option<PathBuf>,
}

/// One FAQ's texts to embed.
#[derive(Debug, Clone, PartialEq)]
struct FaqTexts {
    /// The question and its phrasings (`query: `).
    questions: Vec<String>,
    /// The answer (`passage: `).
    answer: String,
}

impl FaqTexts {
    fn of(doc: &FaqDoc) -> FaqTexts {
        let mut questions: Vec<String> = Vec::with_capacity(1 + doc.similar.len());
        for q in std::iter::once(&doc.question).chain(&doc.similar) {
            let q = q.trim();
            if !q.is_empty() && !questions.iter().any(|have| have == q) {
                questions.push(q.to_string());
            }
        }
        FaqTexts {
            questions,
            answer: doc.answer.trim().to_string(),
        }
    }
}

/// One FAQ's vectors.
struct FaqVectors {
    /// `questions.len() / DIM` rows: the question and each phrasing.
    questions: Vec<f32>,
    answer: Vec<f32>,
    keys: Vec<TextKey>,
}

impl FaqVectors {
    fn score(&self, query: &[f32]) -> f32 {
        let best = self
            .questions
            .chunks_exact(DIM)
            .map(|row| dot(row, query))
            .fold(f32::MIN, f32::max);
        let best = if best == f32::MIN { 0.0 } else { best };
        best + ANSWER_WEIGHT * dot(&self.answer, query)
    }
}

#[derive(Default)]
struct QueueState {
    /// FAQ id → its texts to (re)embed, or `None`: disabled, to drop.
    pending: HashMap<String, Option<FaqTexts>>,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Shared {
    status: AtomicU8,
    /// Texts embedded by this index (not found in the cache): what a restart should not redo.
    embedded: AtomicUsize,
    engine: OnceLock<Arc<Engine>>,
    faqs: RwLock<HashMap<String, FaqVectors>>,
    queue: Arc<Queue>,
    query_slots: tokio::sync::Semaphore,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_all();
    }
}

impl Shared {
    fn status(&self) -> SemanticStatus {
        SemanticStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    fn set_status(&self, s: SemanticStatus) {
        self.status.store(s as u8, Ordering::Release);
    }
}

/// The semantic layer of the knowledge base. Cheap to clone (one shared state).
#[derive(Clone)]
pub struct SemanticIndex {
    shared: Arc<Shared>,
}

impl Default for SemanticIndex {
    fn default() -> Self {
        SemanticIndex::new()
    }
}

impl std::fmt::Debug for SemanticIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticIndex")
            .field("status", &self.status())
            .field("faqs", &self.len())
            .finish()
    }
}

impl SemanticIndex {
    /// Off until a model is [`start`](Self::start)ed or [`enable`](Self::enable)d; FAQs
    /// given to [`upsert`](Self::upsert) meanwhile wait for it.
    pub fn new() -> SemanticIndex {
        SemanticIndex {
            shared: Arc::new(Shared {
                status: AtomicU8::new(SemanticStatus::Off as u8),
                embedded: AtomicUsize::new(0),
                engine: OnceLock::new(),
                faqs: RwLock::new(HashMap::new()),
                queue: Arc::default(),
                query_slots: tokio::sync::Semaphore::new(QUERY_SLOTS),
            }),
        }
    }

    pub fn status(&self) -> SemanticStatus {
        self.shared.status()
    }

    /// Cheap: whether [`scores`](Self::scores) answers now.
    pub fn available(&self) -> bool {
        self.status() == SemanticStatus::On
    }

    /// FAQs that have their vectors.
    pub fn len(&self) -> usize {
        self.shared
            .faqs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Texts this index had to embed (the rest came from the vector cache).
    pub fn embedded_texts(&self) -> usize {
        self.shared.embedded.load(Ordering::Relaxed)
    }

    /// FAQs added, changed or disabled (as the lexical index receives them): their vectors
    /// are (re)computed in the background, from the cache where the text is known.
    pub fn upsert(&self, docs: &[FaqDoc]) {
        if docs.is_empty() {
            return;
        }
        {
            let mut q = self.shared.queue.lock();
            for doc in docs {
                let texts = doc.enabled.then(|| FaqTexts::of(doc));
                q.pending.insert(doc.id.clone(), texts);
            }
        }
        self.shared.queue.wake.notify_all();
    }

    /// Every FAQ with vectors and its score for `question` (best question/phrasing cosine +
    /// [`ANSWER_WEIGHT`] × answer cosine), best first; `None` unless the layer is on.
    /// Embeds the question on a bounded blocking pool (at most two at once).
    pub async fn scores(&self, question: &str) -> Option<Vec<(String, f32)>> {
        if !self.available() {
            return None;
        }
        let _slot = self.shared.query_slots.acquire().await.ok()?;
        let me = self.clone();
        let question = question.to_string();
        tokio::task::spawn_blocking(move || me.scores_blocking(&question))
            .await
            .ok()
            .flatten()
    }

    /// [`scores`](Self::scores) on the calling thread (CPU-bound, 15–25 ms: for `kb eval`
    /// and blocking contexts only).
    pub fn scores_blocking(&self, question: &str) -> Option<Vec<(String, f32)>> {
        if !self.available() {
            return None;
        }
        let engine = self.shared.engine.get()?;
        let query = engine.embed(question, Kind::Query);
        let faqs = self.shared.faqs.read().unwrap_or_else(|e| e.into_inner());
        let mut scored: Vec<(String, f32)> = faqs
            .iter()
            .map(|(id, v)| (id.clone(), v.score(&query)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Some(scored)
    }

    /// Uses `engine` from now on: a background thread embeds the FAQs waiting (reading and
    /// writing the cache at `vectors`), and the layer turns on when none is left. Once only;
    /// later calls are ignored.
    pub fn enable(&self, engine: Arc<Engine>, vectors: PathBuf) {
        if self.shared.engine.set(engine.clone()).is_err() {
            return;
        }
        self.shared.set_status(SemanticStatus::Loading);
        let queue = self.shared.queue.clone();
        let shared = Arc::downgrade(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("kb-embed".into())
            .spawn(move || {
                let cache = VectorCache::open(&vectors);
                tracing::info!(cached = cache.len(), path = %vectors.display(), "FAQ vector cache opened");
                embed_faqs(queue, shared, engine, cache)
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the FAQ embedding thread; lexical search only");
            self.shared.set_status(SemanticStatus::Off);
        }
    }

    /// Finds, fetches or waits for the model, then [`enable`](Self::enable)s it; meanwhile
    /// the server answers lexically. Logs what it does.
    pub fn start(&self, settings: ModelSettings) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut next_fetch = Instant::now();
            let mut announced = false;
            loop {
                let Some(shared) = weak.upgrade() else { return };
                let index = SemanticIndex { shared };
                if index.shared.engine.get().is_some() {
                    return;
                }
                if settings.model.exists() {
                    index.shared.set_status(SemanticStatus::Loading);
                    let path = settings.model.clone();
                    match tokio::task::spawn_blocking(move || Engine::shared(&path)).await {
                        Ok(Ok(engine)) => {
                            tracing::info!(model = %settings.model.display(), "semantic search: model loaded; embedding the FAQs");
                            index.enable(engine, settings.vectors.clone());
                        }
                        Ok(Err(e)) => {
                            index.shared.set_status(SemanticStatus::Off);
                            tracing::error!(error = %e, "semantic search off: the model cannot be used; lexical search only");
                        }
                        Err(e) => {
                            index.shared.set_status(SemanticStatus::Off);
                            tracing::error!(error = %e, "semantic search off: loading the model failed");
                        }
                    }
                    return;
                }
                if settings.source == ModelSource::Off {
                    if !announced {
                        tracing::info!(model = %settings.model.display(), "semantic search off: no model file and fetching is off (TAXDESK_KB_MODEL_URL=off); lexical search only. Install it with `taxdesk kb model install FILE`");
                        announced = true;
                    }
                } else if Instant::now() >= next_fetch {
                    index.shared.set_status(SemanticStatus::Loading);
                    tracing::info!(model = %settings.model.display(), source = ?settings.source, "semantic search loading: no model file yet, fetching it; answering lexically meanwhile");
                    match model_file::fetch(
                        &settings.source,
                        settings.ca_bundle.as_deref(),
                        &settings.model,
                    )
                    .await
                    {
                        Ok(()) => {
                            tracing::info!(model = %settings.model.display(), "embedding model fetched and verified");
                            continue;
                        }
                        Err(e) => {
                            index.shared.set_status(SemanticStatus::Off);
                            next_fetch = Instant::now() + FETCH_RETRY;
                            tracing::warn!(error = %e, retry_in = ?FETCH_RETRY, "semantic search off: fetching the model failed; lexical search only. Air-gapped? `taxdesk kb model install FILE`");
                        }
                    }
                }
                drop(index);
                tokio::time::sleep(LOOK_EVERY).await;
            }
        })
    }

    /// Blocks until the layer is on or `timeout` passes; whether it is on. For tools and
    /// tests; a server never waits for it.
    pub fn wait_until_on(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.status() {
                SemanticStatus::On => return true,
                SemanticStatus::Off if self.shared.engine.get().is_some() => return false,
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.available()
    }
}

/// The background thread: takes queued FAQs, finds their vectors in the cache or embeds
/// them, installs them, turns the layer on when the queue first runs dry, and saves the
/// cache when idle. Ends when the index is dropped.
fn embed_faqs(
    queue: Arc<Queue>,
    shared: Weak<Shared>,
    engine: Arc<Engine>,
    mut cache: VectorCache,
) {
    // The texts in use, by FAQ: what the cache keeps when it is saved.
    let mut in_use: HashMap<String, Vec<TextKey>> = HashMap::new();
    let save = |cache: &mut VectorCache, in_use: &HashMap<String, Vec<TextKey>>| {
        let keep: HashSet<TextKey> = in_use.values().flatten().copied().collect();
        if let Err(e) = cache.save(|k| keep.contains(k)) {
            tracing::warn!(error = %e, "saving the FAQ vector cache failed");
        }
    };
    let mut last_save = Instant::now();
    loop {
        let batch: Vec<(String, Option<FaqTexts>)> = {
            let mut q = queue.lock();
            loop {
                if q.closed {
                    drop(q);
                    if cache.unsaved() > 0 {
                        save(&mut cache, &in_use);
                    }
                    return;
                }
                if !q.pending.is_empty() {
                    break;
                }
                let Some(live) = shared.upgrade() else {
                    continue;
                };
                if live.status() == SemanticStatus::Loading {
                    // Nothing (left) to embed: every FAQ has its vectors.
                    live.set_status(SemanticStatus::On);
                    tracing::info!(faqs = in_use.len(), "semantic search on");
                }
                drop(live);
                if cache.unsaved() > 0 {
                    drop(q);
                    save(&mut cache, &in_use);
                    last_save = Instant::now();
                    q = queue.lock();
                    continue;
                }
                q = queue
                    .wake
                    .wait_timeout(q, Duration::from_secs(5))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            let ids: Vec<String> = q.pending.keys().take(FAQS_PER_ROUND).cloned().collect();
            ids.into_iter()
                .filter_map(|id| q.pending.remove(&id).map(|t| (id, t)))
                .collect()
        };
        let Some(shared) = shared.upgrade() else {
            continue;
        };
        let started = Instant::now();
        let vectors: Vec<(String, Option<FaqVectors>)> = batch
            .into_iter()
            .map(|(id, texts)| {
                let v = texts.map(|t| vectors_of(&t, &engine, &mut cache, &shared.embedded));
                (id, v)
            })
            .collect();
        {
            let mut faqs = shared.faqs.write().unwrap_or_else(|e| e.into_inner());
            for (id, v) in vectors {
                match v {
                    Some(v) => {
                        in_use.insert(id.clone(), v.keys.clone());
                        faqs.insert(id, v);
                    }
                    None => {
                        in_use.remove(&id);
                        faqs.remove(&id);
                    }
                }
            }
        }
        drop(shared);
        tracing::debug!(elapsed = ?started.elapsed(), "FAQ vectors updated");
        if cache.unsaved() > 0 && last_save.elapsed() >= SAVE_EVERY {
            save(&mut cache, &in_use);
            last_save = Instant::now();
        }
    }
}

/// One FAQ's vectors: from the cache, or embedded (and cached).
fn vectors_of(
    texts: &FaqTexts,
    engine: &Engine,
    cache: &mut VectorCache,
    embedded: &AtomicUsize,
) -> FaqVectors {
    let wanted: Vec<(Kind, &str)> = texts
        .questions
        .iter()
        .map(|q| (Kind::Query, q.as_str()))
        .chain(std::iter::once((Kind::Passage, texts.answer.as_str())))
        .collect();
    let keys: Vec<TextKey> = wanted.iter().map(|(k, t)| text_key(*k, t)).collect();
    for kind in [Kind::Query, Kind::Passage] {
        let missing: Vec<(TextKey, &str)> = wanted
            .iter()
            .zip(&keys)
            .filter(|((k, _), key)| *k == kind && cache.get(key).is_none())
            .map(|((_, t), key)| (*key, *t))
            .collect();
        for chunk in missing.chunks(TEXTS_PER_PASS) {
            let strs: Vec<&str> = chunk.iter().map(|(_, t)| *t).collect();
            embedded.fetch_add(strs.len(), Ordering::Relaxed);
            for ((key, _), v) in chunk.iter().zip(engine.embed_batch(&strs, kind)) {
                cache.insert(*key, v);
            }
        }
    }
    let row = |key: &TextKey| {
        cache
            .get(key)
            .map_or_else(|| vec![0.0; DIM], <[f32]>::to_vec)
    };
    let n = texts.questions.len();
    FaqVectors {
        questions: keys[..n].iter().flat_map(row).collect(),
        answer: row(&keys[n]),
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::embed::engine::test_model;

    fn faq(id: &str, question: &str, similar: &[&str], answer: &str) -> FaqDoc {
        FaqDoc {
            id: id.into(),
            category: "测试".into(),
            question: question.into(),
            answer: answer.into(),
            keywords: vec![],
            similar: similar.iter().map(|s| s.to_string()).collect(),
            enabled: true,
        }
    }

    fn base() -> Vec<FaqDoc> {
        vec![
            faq(
                "verify",
                "如何查验一张发票的真伪？",
                &[],
                "登录全国增值税发票查验平台，输入发票代码、号码、开票日期和金额即可查验。",
            ),
            faq(
                "pay",
                "申报后怎么缴纳税款？",
                &["申报完成后如何缴税"],
                "申报成功后，在电子税务局点击立即缴款，通过三方协议从银行账户扣款。",
            ),
            faq(
                "void",
                "数电发票开错了能作废吗？",
                &[],
                "数电发票开具后不能作废，开错了应开具红字发票冲销后重新开具。",
            ),
        ]
    }

    fn top(index: &SemanticIndex, q: &str) -> String {
        index.scores_blocking(q).expect("on")[0].0.clone()
    }

    #[test]
    fn off_without_a_model_and_faqs_wait_for_one() {
        let index = SemanticIndex::new();
        index.upsert(&base());
        assert_eq!(index.status(), SemanticStatus::Off);
        assert!(!index.available());
        assert!(index.scores_blocking("发票真伪").is_none());
        assert!(index.is_empty());
    }

    #[test]
    fn scores_follow_faq_changes_and_a_restart_reuses_the_cache() {
        let Some(engine) = test_model() else { return };
        let dir = std::env::temp_dir().join(format!("taxdesk-sem-{}", uuid::Uuid::new_v4()));
        let cache = dir.join("kb-vectors.bin");

        let index = SemanticIndex::new();
        index.upsert(&base());
        index.enable(engine.clone(), cache.clone());
        assert!(index.wait_until_on(Duration::from_secs(60)));
        assert_eq!(index.len(), 3);
        assert_eq!(
            index.embedded_texts(),
            7,
            "4 questions/phrasings + 3 answers"
        );
        // Colloquial questions that share few characters with the FAQ they mean.
        assert_eq!(top(&index, "对方给的票我想看看是不是假的"), "verify");
        assert_eq!(top(&index, "报完税了钱从哪扣"), "pay");
        assert_eq!(top(&index, "金额开多了 能退回去重开不"), "void");
        let scores = index.scores_blocking("报完税了钱从哪扣").unwrap();
        assert_eq!(scores.len(), 3);
        assert!(scores.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
        // The score is the best phrasing's cosine + half the answer's.
        let q = engine.embed("报完税了钱从哪扣", Kind::Query);
        let expected = dot(&q, &engine.embed("申报完成后如何缴税", Kind::Query))
            .max(dot(&q, &engine.embed("申报后怎么缴纳税款？", Kind::Query)))
            + 0.5 * dot(&q, &engine.embed(&base()[1].answer, Kind::Passage));
        assert!(
            (scores[0].1 - expected).abs() < 1e-5,
            "{} vs {expected}",
            scores[0].1
        );

        // A new phrasing is embedded alone; a disabled FAQ leaves the scores.
        let mut void = base()[2].clone();
        void.similar.push("发票金额开多了怎么办".into());
        let mut verify = base()[0].clone();
        verify.enabled = false;
        index.upsert(&[void, verify]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while index.len() != 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(index.len(), 2);
        assert_eq!(index.embedded_texts(), 8);
        assert!(
            index
                .scores_blocking("发票真伪")
                .unwrap()
                .iter()
                .all(|(id, _)| id != "verify")
        );
        assert!(index.available(), "stays on while it follows changes");

        // Saved when idle (without the disabled FAQ's texts); a restart embeds nothing.
        let new_phrasing = text_key(Kind::Query, "发票金额开多了怎么办");
        let deadline = Instant::now() + Duration::from_secs(30);
        while VectorCache::open(&cache).get(&new_phrasing).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let saved = VectorCache::open(&cache);
        assert!(saved.get(&new_phrasing).is_some());
        assert_eq!(saved.len(), 6, "the disabled FAQ's vectors are not kept");
        drop(index);
        let mut docs = base();
        docs[2].similar.push("发票金额开多了怎么办".into());
        docs[0].enabled = false;
        let again = SemanticIndex::new();
        again.upsert(&docs);
        again.enable(engine, cache);
        assert!(again.wait_until_on(Duration::from_secs(60)));
        assert_eq!(
            again.embedded_texts(),
            0,
            "every vector came from the cache"
        );
        assert_eq!(again.len(), 2);
        assert_eq!(top(&again, "金额开多了 能退回去重开不"), "void");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn questions_are_embedded_off_the_async_workers() {
        let Some(engine) = test_model() else { return };
        let index = SemanticIndex::new();
        index.upsert(&base());
        let dir = std::env::temp_dir().join(format!("taxdesk-sem-{}", uuid::Uuid::new_v4()));
        index.enable(engine, dir.join("v.bin"));
        let waiting = index.clone();
        assert!(
            tokio::task::spawn_blocking(move || waiting.wait_until_on(Duration::from_secs(60)))
                .await
                .unwrap()
        );
        let asks = (0..6).map(|_| {
            let index = index.clone();
            tokio::spawn(async move { index.scores("报完税了钱从哪扣").await })
        });
        for ask in asks {
            let scores = ask.await.unwrap().expect("on");
            assert_eq!(scores[0].0, "pay");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
