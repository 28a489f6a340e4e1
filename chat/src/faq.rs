//! The knowledge base's storage: FAQs (imported ones keep their source id), the search
//! index kept in step with every change, votes, favorites, topic bundles, quick links, the
//! ask log and the hot-question ranking.

use std::collections::HashMap;

use chrono::Duration;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Deserialize;
use taxdesk_workflow::error::{Error, Result, check};
use taxdesk_workflow::page::{self, Keyed, Page, PageRequest};
use taxdesk_workflow::{Actor, Role};

use crate::chat::Chat;
use crate::entities::{ask_log, faq, faq_favorite, faq_vote, hot_question, qa_package, quick_link};
use crate::kb::FaqDoc;
use crate::review::{self, NewAskedQuestion, Reason};
use crate::session::service::new_id;

/// A bundle (问答套餐) lists at most this many FAQs.
const MAX_PACKAGE_FAQS: usize = 50;

/// The most phrasings (similar questions) an FAQ keeps: what staff type and what review
/// links add together.
pub const MAX_PHRASINGS: usize = 100;

/// The seed bundles, hot questions and quick links.
const SEED_PACKAGES: &str = include_str!("../data/kb/packages.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedPackages {
    qa_packages: Vec<SeedPackage>,
    hot_questions: Vec<String>,
    quick_links: Vec<SeedLink>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeedPackage {
    id: String,
    title: String,
    faq_ids: Vec<String>,
}

#[derive(Deserialize)]
struct SeedLink {
    title: String,
    url: String,
}

/// What the virtual agent made of a question.
#[derive(Debug, Clone)]
pub struct AskResult {
    pub answered: bool,
    pub faq: Option<faq::Model>,
    pub confidence: f32,
    pub suggestions: Vec<faq::Model>,
    pub handover: bool,
}

#[derive(Debug, Clone)]
pub struct FaqInput {
    /// Given: update (or create with this id); omitted: a new FAQ.
    pub id: Option<String>,
    pub category: String,
    pub question: String,
    pub answer: String,
    pub keywords: Vec<String>,
    pub similar: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportReport {
    pub inserted: u64,
    pub updated: u64,
}

#[derive(Deserialize)]
struct FaqLine {
    id: String,
    category: String,
    question: String,
    answer: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    similar: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// FAQs from JSONL (one object per line, as the seed) or CSV (a header line
/// `id,category,question,answer,keywords,similar`; lists separated by `;`; fields may be
/// quoted with `"`). Line numbers are named in errors.
/// Every FAQ needs an id (at most 64 characters), a question and an answer; an empty file is
/// refused rather than imported as nothing.
pub fn parse_faqs(text: &str) -> std::result::Result<Vec<FaqDoc>, String> {
    let docs = parse_faq_lines(text)?;
    if docs.is_empty() {
        return Err("no FAQs in the file".into());
    }
    for (n, d) in docs.iter().enumerate() {
        let what = if d.id.trim().is_empty() || d.id.chars().count() > 64 {
            Some("id must be 1 to 64 characters")
        } else if d.question.trim().is_empty() {
            Some("question is empty")
        } else if d.answer.trim().is_empty() {
            Some("answer is empty")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(format!("FAQ {} ({:?}): {what}", n + 1, d.id));
        }
    }
    Ok(docs)
}

fn parse_faq_lines(text: &str) -> std::result::Result<Vec<FaqDoc>, String> {
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.trim_start().starts_with('{') {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let f: FaqLine =
                    serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))?;
                Ok(FaqDoc {
                    id: f.id,
                    category: f.category,
                    question: f.question,
                    answer: f.answer,
                    keywords: f.keywords,
                    similar: f.similar,
                    enabled: f.enabled,
                })
            })
            .collect()
    } else {
        let mut out = vec![];
        for (i, line) in text
            .lines()
            .enumerate()
            .skip(1)
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let cols = csv_fields(line);
            if cols.len() < 4 {
                return Err(format!(
                    "line {}: expected id,category,question,answer[,keywords,similar]",
                    i + 1
                ));
            }
            let list = |k: usize| -> Vec<String> {
                cols.get(k)
                    .map(|c| {
                        c.split(';')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            out.push(FaqDoc {
                id: cols[0].clone(),
                category: cols[1].clone(),
                question: cols[2].clone(),
                answer: cols[3].clone(),
                keywords: list(4),
                similar: list(5),
                enabled: true,
            });
        }
        Ok(out)
    }
}

fn index_error(e: crate::kb::KbError) -> Error {
    Error::Database(sea_orm::DbErr::Custom(format!("knowledge index: {e}")))
}

/// One CSV line's fields; `"` quotes a field and `""` is a quote inside it.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    fields.push(cur.trim().to_string());
    fields
}

pub fn doc_of(f: &faq::Model) -> FaqDoc {
    FaqDoc {
        id: f.id.clone(),
        category: f.category.clone(),
        question: f.question.clone(),
        answer: f.answer.clone(),
        keywords: serde_json::from_str(&f.keywords).unwrap_or_default(),
        similar: serde_json::from_str(&f.similar).unwrap_or_default(),
        enabled: f.enabled,
    }
}

impl Keyed for faq_favorite::Model {
    fn key(&self) -> &str {
        &self.id
    }
}

fn forbidden_unless_bureau(actor: &Actor) -> Result<()> {
    if actor.role.is_bureau() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only staff keep the knowledge base".into(),
        ))
    }
}

impl Chat {
    /// At start: seeds an empty knowledge base, then indexes every enabled FAQ.
    pub async fn load_knowledge_base(&self) -> Result<usize> {
        self.seed_if_empty().await?;
        let all = faq::Entity::find()
            .filter(faq::Column::Enabled.eq(true))
            .all(self.wf.db())
            .await?;
        // One commit for the whole base: one per FAQ takes minutes at 10,000 entries.
        self.index_saved(&all)?;
        tracing::info!(faqs = all.len(), "knowledge base indexed");
        Ok(all.len())
    }

    /// Re-indexes the FAQs changed in the database since `since` whose version this instance
    /// does not hold yet, so that an FAQ saved on another instance or by `taxdesk kb import`
    /// is answerable here without a restart. Returns how many were re-indexed.
    pub async fn refresh_knowledge_base(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize> {
        // Ids and versions first: after a big import the window holds many rows, few new.
        let recent: Vec<(String, i32)> = faq::Entity::find()
            .select_only()
            .column(faq::Column::Id)
            .column(faq::Column::Version)
            .filter(faq::Column::UpdatedAt.gte(since))
            .into_tuple()
            .all(self.wf.db())
            .await?;
        let stale: Vec<String> = {
            let held = self.kb_versions.lock().unwrap_or_else(|e| e.into_inner());
            recent
                .into_iter()
                .filter(|(id, v)| held.get(id) != Some(v))
                .map(|(id, _)| id)
                .collect()
        };
        if stale.is_empty() {
            return Ok(0);
        }
        let changed = faq::Entity::find()
            .filter(faq::Column::Id.is_in(stale))
            .all(self.wf.db())
            .await?;
        self.index_saved(&changed)?;
        tracing::info!(
            faqs = changed.len(),
            "knowledge base refreshed from the database"
        );
        Ok(changed.len())
    }

    /// Makes saved FAQs answerable on this instance: the lexical index at once, the semantic
    /// layer in the background, and their versions recorded as held so that the follow loop
    /// does not index them again.
    pub(crate) fn index_saved(&self, saved: &[faq::Model]) -> Result<()> {
        let docs: Vec<FaqDoc> = saved.iter().map(doc_of).collect();
        self.index_docs(&docs, saved.iter().map(|f| (f.id.clone(), f.version)))
    }

    /// [`Chat::index_saved`] for documents already built, with their versions.
    fn index_docs(
        &self,
        docs: &[FaqDoc],
        versions: impl Iterator<Item = (String, i32)>,
    ) -> Result<()> {
        self.kb.upsert_many(docs).map_err(index_error)?;
        self.semantic.upsert(docs);
        self.held_versions(versions);
        Ok(())
    }

    /// Records the FAQ versions the index now holds.
    fn held_versions(&self, versions: impl Iterator<Item = (String, i32)>) {
        let mut held = self.kb_versions.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(versions);
    }

    /// Keeps this instance's index in step with FAQ changes made elsewhere: every `every`,
    /// re-indexes what changed (looking back `every` plus a minute, for clock skew between
    /// instances and transactions committed late). What this instance saved itself is
    /// already held and is skipped.
    pub fn follow_knowledge_base(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let chat = self.clone();
        let look_back =
            Duration::from_std(every).unwrap_or(Duration::seconds(5)) + Duration::minutes(1);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let since = chrono::Utc::now() - look_back;
                if let Err(e) = chat.refresh_knowledge_base(since).await {
                    tracing::warn!(error = %e, "knowledge base refresh failed; retrying");
                }
            }
        })
    }

    /// An empty knowledge base gets the bundled seed: FAQs, bundles, hot questions, links.
    pub async fn seed_if_empty(&self) -> Result<()> {
        if faq::Entity::find().count(self.wf.db()).await? == 0 {
            let report = self.import_docs(crate::kb::seed_faqs()).await?;
            self.seed_extras().await?;
            tracing::info!(faqs = report.inserted, "knowledge base seeded");
        }
        Ok(())
    }

    async fn seed_extras(&self) -> Result<()> {
        let seed: SeedPackages = serde_json::from_str(SEED_PACKAGES)
            .map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("seed packages: {e}"))))?;
        let now = self.wf.now();
        let txn = self.wf.db().begin().await?;
        for (i, p) in seed.qa_packages.iter().enumerate() {
            let row = qa_package::Model {
                id: p.id.clone(),
                title: p.title.clone(),
                faq_ids: serde_json::to_string(&p.faq_ids).unwrap_or_else(|_| "[]".into()),
                position: i as i32,
                enabled: true,
                updated_at: now,
            };
            qa_package::Entity::insert(row.into_active_model())
                .on_conflict(
                    OnConflict::column(qa_package::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        for (i, l) in seed.quick_links.iter().enumerate() {
            let row = quick_link::Model {
                id: format!("link-{i:02}"),
                title: l.title.clone(),
                url: l.url.clone(),
                position: i as i32,
            };
            quick_link::Entity::insert(row.into_active_model())
                .on_conflict(
                    OnConflict::column(quick_link::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        for (i, id) in seed.hot_questions.iter().enumerate() {
            let row = hot_question::Model {
                faq_id: id.clone(),
                rank: i as i32 + 1,
                asks: 0,
                computed_at: now,
            };
            hot_question::Entity::insert(row.into_active_model())
                .on_conflict(
                    OnConflict::column(hot_question::Column::FaqId)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Imports FAQs idempotently by id (insert or update), and indexes them at once.
    pub async fn import_docs(&self, docs: Vec<FaqDoc>) -> Result<ImportReport> {
        let now = self.wf.now();
        let mut report = ImportReport::default();
        let mut versions = Vec::with_capacity(docs.len());
        let txn = self.wf.db().begin().await?;
        // SQLite: take the write lock before reading. `kb import` runs in its own process
        // beside a serving one; a commit of the server between this transaction's reads and
        // its first write would otherwise fail it with SQLITE_BUSY_SNAPSHOT ("database is
        // locked", which no busy timeout waits out). A write statement locks even when it
        // changes nothing.
        if txn.get_database_backend() == DbBackend::Sqlite {
            txn.execute_unprepared("UPDATE faqs SET version = version WHERE 0")
                .await?;
        }
        // What is there already, in a few queries rather than one per FAQ.
        let mut known: HashMap<String, faq::Model> = HashMap::new();
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        for chunk in ids.chunks(500) {
            for f in faq::Entity::find()
                .filter(faq::Column::Id.is_in(chunk.iter().copied()))
                .all(&txn)
                .await?
            {
                known.insert(f.id.clone(), f);
            }
        }
        for d in &docs {
            let existing = known.get(&d.id);
            let row = faq::Model {
                id: d.id.clone(),
                category: d.category.clone(),
                question: d.question.clone(),
                answer: d.answer.clone(),
                keywords: serde_json::to_string(&d.keywords).unwrap_or_else(|_| "[]".into()),
                similar: serde_json::to_string(&d.similar).unwrap_or_else(|_| "[]".into()),
                enabled: d.enabled,
                useful_count: existing.map(|e| e.useful_count).unwrap_or(0),
                useless_count: existing.map(|e| e.useless_count).unwrap_or(0),
                version: existing.map(|e| e.version + 1).unwrap_or(1),
                created_at: existing.map(|e| e.created_at).unwrap_or(now),
                updated_at: now,
            };
            versions.push((row.id.clone(), row.version));
            // A second line with the same id in one file updates the first.
            let update = existing.is_some();
            known.insert(row.id.clone(), row.clone());
            if update {
                faq::Entity::update(row.into_active_model().reset_all())
                    .exec(&txn)
                    .await?;
                report.updated += 1;
            } else {
                faq::Entity::insert(row.into_active_model())
                    .exec_without_returning(&txn)
                    .await?;
                report.inserted += 1;
            }
        }
        txn.commit().await?;
        self.index_docs(&docs, versions.into_iter())?;
        Ok(report)
    }

    /// Staff: create or change an FAQ; searchable at once. Disabling hides it from answers.
    pub async fn upsert_faq(&self, actor: &Actor, input: FaqInput) -> Result<faq::Model> {
        forbidden_unless_bureau(actor)?;
        let category = input.category.trim().to_string();
        if !self.wf.config().categories.contains(&category) {
            return Err(Error::input(
                "category",
                format!("未知的业务类别「{category}」"),
                format!("unknown category {category:?}"),
            ));
        }
        let doc = FaqDoc {
            id: match input.id {
                Some(id) => check::text("id", &id, 1, 64)?,
                None => format!("faq-{}", &uuid::Uuid::now_v7().simple().to_string()[..16]),
            },
            category,
            question: check::text("question", &input.question, 2, 500)?,
            answer: check::text("answer", &input.answer, 1, 10_000)?,
            keywords: input
                .keywords
                .iter()
                .filter_map(|k| check::optional_text("keywords", Some(k), 50).ok().flatten())
                .take(30)
                .collect(),
            similar: input
                .similar
                .iter()
                .filter_map(|k| check::optional_text("similar", Some(k), 500).ok().flatten())
                .take(MAX_PHRASINGS)
                .collect(),
            enabled: input.enabled,
        };
        self.import_docs(vec![doc.clone()]).await?;
        tracing::info!(faq.id = %doc.id, by = %actor.id, enabled = doc.enabled, "FAQ saved");
        self.faq(&doc.id)
            .await?
            .ok_or_else(|| Error::not_found("faq", doc.id))
    }

    pub async fn faq(&self, id: &str) -> Result<Option<faq::Model>> {
        Ok(faq::Entity::find_by_id(id).one(self.wf.reader()).await?)
    }

    /// The FAQ as `actor` may see it: a disabled one (a draft) is only for staff, and to a
    /// taxpayer it does not exist.
    async fn faq_seen_by(&self, actor: &Actor, id: &str) -> Result<faq::Model> {
        self.faq(id)
            .await?
            .filter(|f| f.enabled || actor.role.is_bureau())
            .ok_or_else(|| Error::not_found("faq", id))
    }

    /// The enabled FAQs of `ids`, in that order.
    pub async fn faqs_by_ids(&self, ids: &[String]) -> Result<Vec<faq::Model>> {
        let rows = faq::Entity::find()
            .filter(faq::Column::Id.is_in(ids.iter().cloned()))
            .filter(faq::Column::Enabled.eq(true))
            .all(self.wf.reader())
            .await?;
        let mut by_id: HashMap<String, faq::Model> =
            rows.into_iter().map(|f| (f.id.clone(), f)).collect();
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }

    /// `searchFaqs`: the best matches, best first.
    pub async fn search_faqs(&self, text: &str, first: Option<i32>) -> Result<Vec<faq::Model>> {
        let n = first.unwrap_or(10).clamp(1, 50) as usize;
        let text = check::text("text", text, 1, 200)?;
        let semantic = self.semantic.scores(&text).await;
        let ids: Vec<String> = self
            .kb
            .search_with(&text, semantic.as_deref(), n)
            .into_iter()
            .map(|h| h.id)
            .collect();
        self.faqs_by_ids(&ids).await
    }

    /// `askBot`: the answer when confident, else up to five related questions; every ask is
    /// logged for the hot ranking and for staff to review.
    pub async fn ask(
        &self,
        actor: Option<&Actor>,
        session_id: Option<&str>,
        text: &str,
    ) -> Result<AskResult> {
        let text = check::text("text", text, 1, 500)?;
        // Lexical alone while the semantic layer is off or loading; fused once it is on.
        let semantic = self.semantic.scores(&text).await;
        let a = self.kb.ask_with(&text, semantic.as_deref());
        let best = match &a.best {
            Some(h) => self.faq(&h.id).await?.filter(|f| f.enabled),
            None => None,
        };
        let suggestion_ids: Vec<String> = a.suggestions.iter().map(|h| h.id.clone()).collect();
        let suggestions = self.faqs_by_ids(&suggestion_ids).await?;
        let row = ask_log::Model {
            id: new_id(),
            user_id: actor.map(|a| a.id.clone()),
            session_id: session_id.map(String::from),
            text: text.clone(),
            matched_id: best
                .as_ref()
                .map(|f| f.id.clone())
                .or_else(|| suggestion_ids.first().cloned()),
            confidence: f64::from(a.confidence),
            answered: best.is_some(),
            handover: a.handover,
            at: self.wf.now(),
        };
        let txn = self.wf.db().begin().await?;
        // Not answered and not a request for a human: staff review it.
        if !row.answered && !row.handover {
            let q = NewAskedQuestion::from_ask(&row, Reason::Unanswered, row.at);
            review::service::enqueue(&txn, q).await?;
        }
        ask_log::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        tracing::debug!(
            answered = best.is_some(),
            fused = semantic.is_some(),
            confidence = a.confidence,
            handover = a.handover,
            "bot asked"
        );
        Ok(AskResult {
            answered: best.is_some(),
            faq: best,
            confidence: a.confidence,
            suggestions,
            handover: a.handover,
        })
    }

    /// `rateAnswer`: one vote per user per FAQ; changing it moves both counts by one. A vote
    /// of 无用 puts the question that got this answer (in `session_id` when given) in the
    /// review queue.
    pub async fn rate_answer(
        &self,
        actor: &Actor,
        faq_id: &str,
        useful: bool,
        session_id: Option<&str>,
    ) -> Result<faq::Model> {
        let session_id = check::optional_text("sessionId", session_id, 64)?;
        let session_id = session_id.as_deref();
        // Votes rate answers the bot gives: never a disabled FAQ's, whoever votes.
        let f = self
            .faq(faq_id)
            .await?
            .filter(|f| f.enabled)
            .ok_or_else(|| Error::not_found("faq", faq_id))?;
        let txn = self.wf.db().begin().await?;
        let previous = faq_vote::Entity::find_by_id((faq_id.to_string(), actor.id.clone()))
            .one(&txn)
            .await?;
        if previous.as_ref().map(|v| v.useful) != Some(useful) {
            let row = faq_vote::ActiveModel {
                faq_id: Set(faq_id.to_string()),
                user_id: Set(actor.id.clone()),
                useful: Set(useful),
                at: Set(self.wf.now()),
            };
            faq_vote::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([faq_vote::Column::FaqId, faq_vote::Column::UserId])
                        .update_columns([faq_vote::Column::Useful, faq_vote::Column::At])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
            let (add, sub) = if useful {
                (faq::Column::UsefulCount, faq::Column::UselessCount)
            } else {
                (faq::Column::UselessCount, faq::Column::UsefulCount)
            };
            let mut q = faq::Entity::update_many().col_expr(add, Expr::col(add).add(1));
            if previous.is_some() {
                q = q.col_expr(sub, Expr::col(sub).sub(1));
            }
            q.filter(faq::Column::Id.eq(faq_id)).exec(&txn).await?;
            if !useful {
                let mut asked = ask_log::Entity::find()
                    .filter(ask_log::Column::UserId.eq(actor.id.as_str()))
                    .filter(ask_log::Column::MatchedId.eq(faq_id))
                    .filter(ask_log::Column::Answered.eq(true));
                if let Some(sid) = session_id {
                    asked = asked.filter(ask_log::Column::SessionId.eq(sid));
                }
                // A vote from a list (hot questions, favourites) has no question behind it.
                if let Some(a) = asked.order_by_desc(ask_log::Column::At).one(&txn).await? {
                    let q = NewAskedQuestion::from_ask(&a, Reason::Useless, self.wf.now());
                    review::service::enqueue(&txn, q).await?;
                }
            }
        }
        txn.commit().await?;
        self.faq(&f.id)
            .await?
            .ok_or_else(|| Error::not_found("faq", faq_id))
    }

    pub async fn add_favorite(&self, actor: &Actor, faq_id: &str) -> Result<faq::Model> {
        let f = self
            .faq(faq_id)
            .await?
            .filter(|f| f.enabled)
            .ok_or_else(|| Error::not_found("faq", faq_id))?;
        let row = faq_favorite::Model {
            user_id: actor.id.clone(),
            faq_id: faq_id.into(),
            id: new_id(),
            created_at: self.wf.now(),
        };
        faq_favorite::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::columns([faq_favorite::Column::UserId, faq_favorite::Column::FaqId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.wf.db())
            .await
            .or_else(|e| {
                if matches!(e, sea_orm::DbErr::RecordNotInserted) {
                    Ok(0)
                } else {
                    Err(e)
                }
            })?;
        Ok(f)
    }

    pub async fn remove_favorite(&self, actor: &Actor, faq_id: &str) -> Result<faq::Model> {
        let f = self.faq_seen_by(actor, faq_id).await?;
        faq_favorite::Entity::delete_many()
            .filter(faq_favorite::Column::UserId.eq(actor.id.as_str()))
            .filter(faq_favorite::Column::FaqId.eq(faq_id))
            .exec(self.wf.db())
            .await?;
        Ok(f)
    }

    /// 我的收藏, newest first.
    pub async fn favorites(
        &self,
        actor: &Actor,
        req: &PageRequest,
    ) -> Result<Page<(faq_favorite::Model, faq::Model)>> {
        let mut q =
            faq_favorite::Entity::find().filter(faq_favorite::Column::UserId.eq(actor.id.as_str()));
        if !actor.role.is_bureau() {
            // Favourites of a disabled FAQ are hidden (in the count too), not deleted: they
            // come back if it is enabled again.
            q = q.filter(
                faq_favorite::Column::FaqId.in_subquery(
                    Query::select()
                        .column(faq::Column::Id)
                        .from(faq::Entity)
                        .and_where(faq::Column::Enabled.eq(true))
                        .to_owned(),
                ),
            );
        }
        let p = page::newest_first(self.wf.reader(), q, faq_favorite::Column::Id, req).await?;
        let ids: Vec<String> = p.items.iter().map(|f| f.faq_id.clone()).collect();
        let faqs: HashMap<String, faq::Model> = faq::Entity::find()
            .filter(faq::Column::Id.is_in(ids))
            .all(self.wf.reader())
            .await?
            .into_iter()
            .map(|f| (f.id.clone(), f))
            .collect();
        let items = p
            .items
            .into_iter()
            .filter_map(|fav| faqs.get(&fav.faq_id).cloned().map(|f| (fav, f)))
            .collect();
        Ok(Page {
            items,
            has_next: p.has_next,
            has_previous: p.has_previous,
            total: p.total,
        })
    }

    /// 热点推荐: the ranked list (the seed list until there is traffic).
    pub async fn hot_questions(&self, first: Option<i32>) -> Result<Vec<faq::Model>> {
        let n = first.unwrap_or(8).clamp(1, 50) as u64;
        let ids: Vec<String> = hot_question::Entity::find()
            .order_by_asc(hot_question::Column::Rank)
            .limit(n)
            .all(self.wf.reader())
            .await?
            .into_iter()
            .map(|h| h.faq_id)
            .collect();
        self.faqs_by_ids(&ids).await
    }

    /// The ranking job: answered asks of the last 7 days, most asked first (top 20). With no
    /// traffic the list is left as it is.
    pub async fn rank_hot_questions(&self) -> Result<usize> {
        let since = self.wf.now() - Duration::days(7);
        let asks = ask_log::Entity::find()
            .filter(ask_log::Column::At.gt(since))
            .filter(ask_log::Column::Answered.eq(true))
            .all(self.wf.db())
            .await?;
        let mut counts: HashMap<String, i32> = HashMap::new();
        for a in asks {
            if let Some(id) = a.matched_id {
                *counts.entry(id).or_default() += 1;
            }
        }
        if counts.is_empty() {
            return Ok(0);
        }
        let mut ranked: Vec<(String, i32)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(20);
        let now = self.wf.now();
        let txn = self.wf.db().begin().await?;
        hot_question::Entity::delete_many().exec(&txn).await?;
        for (i, (id, asks)) in ranked.iter().enumerate() {
            let row = hot_question::Model {
                faq_id: id.clone(),
                rank: i as i32 + 1,
                asks: *asks,
                computed_at: now,
            };
            hot_question::Entity::insert(row.into_active_model())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        tracing::info!(ranked = ranked.len(), "hot questions ranked");
        Ok(ranked.len())
    }

    /// 问答套餐 with their FAQs in order.
    pub async fn qa_packages(&self) -> Result<Vec<(qa_package::Model, Vec<faq::Model>)>> {
        let packages = qa_package::Entity::find()
            .filter(qa_package::Column::Enabled.eq(true))
            .order_by_asc(qa_package::Column::Position)
            .all(self.wf.reader())
            .await?;
        let mut out = vec![];
        for p in packages {
            let ids: Vec<String> = serde_json::from_str(&p.faq_ids).unwrap_or_default();
            let faqs = self.faqs_by_ids(&ids).await?;
            out.push((p, faqs));
        }
        Ok(out)
    }

    /// Staff: create or change a bundle.
    pub async fn upsert_qa_package(
        &self,
        actor: &Actor,
        id: Option<String>,
        title: &str,
        faq_ids: Vec<String>,
        enabled: bool,
    ) -> Result<qa_package::Model> {
        forbidden_unless_bureau(actor)?;
        let title = check::text("title", title, 1, 100)?;
        if faq_ids.len() > MAX_PACKAGE_FAQS {
            return Err(Error::input(
                "faqIds",
                format!("一个套餐最多 {MAX_PACKAGE_FAQS} 个问题"),
                format!("a bundle holds at most {MAX_PACKAGE_FAQS} FAQs"),
            ));
        }
        let known = self.faqs_by_ids(&faq_ids).await?;
        if known.len() != faq_ids.len() {
            return Err(Error::input(
                "faqIds",
                "包含不存在或已停用的问题",
                "some FAQ ids do not exist or are disabled",
            ));
        }
        let row = qa_package::Model {
            id: id.unwrap_or_else(|| {
                format!("pkg-{}", &uuid::Uuid::now_v7().simple().to_string()[..12])
            }),
            title,
            faq_ids: serde_json::to_string(&faq_ids).unwrap_or_else(|_| "[]".into()),
            position: qa_package::Entity::find().count(self.wf.db()).await? as i32,
            enabled,
            updated_at: self.wf.now(),
        };
        qa_package::Entity::insert(row.clone().into_active_model())
            .on_conflict(
                OnConflict::column(qa_package::Column::Id)
                    .update_columns([
                        qa_package::Column::Title,
                        qa_package::Column::FaqIds,
                        qa_package::Column::Enabled,
                        qa_package::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.wf.db())
            .await?;
        Ok(qa_package::Entity::find_by_id(row.id.as_str())
            .one(self.wf.db())
            .await?
            .unwrap_or(row))
    }

    pub async fn quick_links(&self) -> Result<Vec<quick_link::Model>> {
        Ok(quick_link::Entity::find()
            .order_by_asc(quick_link::Column::Position)
            .all(self.wf.reader())
            .await?)
    }

    /// Whether the actor is staff (FAQ admin views).
    pub fn keeps_kb(actor: &Actor) -> bool {
        matches!(actor.role, Role::Staff | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_faqs;

    #[test]
    fn jsonl_and_csv() {
        let j = parse_faqs(
            "{\"id\":\"x1\",\"category\":\"其他\",\"question\":\"问\",\"answer\":\"答\"}\n",
        )
        .unwrap();
        assert_eq!(j[0].id, "x1");
        assert!(j[0].enabled);
        let c = parse_faqs(
            "id,category,question,answer,keywords,similar\nx2,其他,\"问, 带逗号\",答,a;b,\n",
        )
        .unwrap();
        assert_eq!(c[0].question, "问, 带逗号");
        assert_eq!(c[0].keywords, ["a", "b"]);
        assert!(parse_faqs("{bad json").is_err());
        assert!(parse_faqs("h\nonly,two").is_err());
    }

    #[test]
    fn refuses_faqs_without_id_question_or_answer_and_empty_files() {
        let line = |id: &str, q: &str, a: &str| {
            format!(
                "{{\"id\":\"{id}\",\"category\":\"其他\",\"question\":\"{q}\",\"answer\":\"{a}\"}}\n"
            )
        };
        assert!(parse_faqs(&line("x1", "问", "答")).is_ok());
        for bad in [
            line("", "问", "答"),
            line("x1", " ", "答"),
            line("x1", "问", ""),
        ] {
            let e = parse_faqs(&bad).unwrap_err();
            assert!(e.starts_with("FAQ 1"), "{e}");
        }
        assert!(parse_faqs(&line(&"x".repeat(65), "问", "答")).is_err());
        assert_eq!(parse_faqs("\n\n").unwrap_err(), "no FAQs in the file");
        let header_only = "id,category,question,answer\n";
        assert!(parse_faqs(header_only).is_err());
    }
}
