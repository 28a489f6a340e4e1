//! The virtual agent and the knowledge base in GraphQL: askBot, hot questions, bundles,
//! quick links, search, votes, favorites, and staff upkeep.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use taxdesk_chat::Chat;
use taxdesk_chat::entities::faq as row;
use taxdesk_chat::faq::FaqInput;

use crate::common::{Conn, connection, page_request};
use crate::error::{Code, OrGql, coded, load_failed};
use crate::identity::{actor, bureau};
use crate::loaders::Faqs;

/// A question and its answer.
#[derive(SimpleObject, Debug, Clone)]
pub struct Faq {
    /// Imported FAQs keep their source id (e.g. `kb-0042`).
    pub id: ID,
    pub category: String,
    pub question: String,
    pub answer: String,
    pub keywords: Vec<String>,
    pub similar: Vec<String>,
    pub enabled: bool,
    pub useful_count: i32,
    pub useless_count: i32,
    pub updated_at: DateTime<Utc>,
}

impl From<row::Model> for Faq {
    fn from(f: row::Model) -> Self {
        Faq {
            id: ID(f.id),
            category: f.category,
            question: f.question,
            answer: f.answer,
            keywords: serde_json::from_str(&f.keywords).unwrap_or_default(),
            similar: serde_json::from_str(&f.similar).unwrap_or_default(),
            enabled: f.enabled,
            useful_count: f.useful_count,
            useless_count: f.useless_count,
            updated_at: f.updated_at,
        }
    }
}

/// Enabled FAQs of `ids`, in that order, through the page's batching loader.
pub(crate) async fn faqs_by_ids(
    ctx: &Context<'_>,
    ids: &[String],
) -> async_graphql::Result<Vec<Faq>> {
    let mut found = ctx
        .data_unchecked::<DataLoader<Faqs>>()
        .load_many(ids.iter().cloned())
        .await
        .map_err(|e| load_failed(ctx, "FAQs", &e))?;
    Ok(ids
        .iter()
        .filter_map(|id| found.remove(id))
        .map(Faq::from)
        .collect())
}

#[derive(SimpleObject, Debug, Clone)]
pub struct BotReply {
    /// Confident enough to answer.
    pub answered: bool,
    pub faq: Option<Faq>,
    /// 0..1.
    pub confidence: f64,
    /// Related questions (推送相关问题), up to five.
    pub suggestions: Vec<Faq>,
    /// The taxpayer asked for a human, or the bot is unsure: offer `requestHuman`.
    pub handover_suggested: bool,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct QaPackage {
    pub id: ID,
    pub title: String,
    pub faqs: Vec<Faq>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct QuickLink {
    pub title: String,
    pub url: String,
}

/// Who the virtual agent is: what a front end shows before the first message.
#[derive(SimpleObject, Debug, Clone)]
pub struct BotProfile {
    /// The agent's name (`TAXDESK_BOT_NAME`, default 悦悦).
    pub name: String,
    /// The first message of a chat, with the name in it.
    pub greeting: String,
    /// The avatar's image URL; null = draw the name's first character.
    pub avatar_url: Option<String>,
    /// Answers use sentence embeddings beside the lexical ranking.
    pub semantic_search: bool,
    /// Questions may be spoken (speech recognition configured).
    pub voice_input: bool,
}

#[derive(InputObject)]
pub struct AskBotInput {
    pub session_id: Option<ID>,
    pub text: String,
}

#[derive(InputObject)]
pub struct RateAnswerInput {
    pub faq_id: ID,
    pub useful: bool,
    pub session_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpsertFaqInput {
    /// Omitted: a new FAQ.
    pub id: Option<ID>,
    pub category: String,
    pub question: String,
    pub answer: String,
    #[graphql(default)]
    pub keywords: Vec<String>,
    #[graphql(default)]
    pub similar: Vec<String>,
    /// Disable rather than delete.
    #[graphql(default = true)]
    pub enabled: bool,
}

#[derive(InputObject)]
pub struct UpsertQaPackageInput {
    pub id: Option<ID>,
    pub title: String,
    pub faq_ids: Vec<ID>,
    #[graphql(default = true)]
    pub enabled: bool,
}

#[derive(SimpleObject)]
pub struct ImportReport {
    pub inserted: u64,
    pub updated: u64,
}

fn chat<'a>(ctx: &Context<'a>) -> &'a Chat {
    ctx.data_unchecked::<Chat>()
}

#[derive(Default)]
pub struct KbQuery;

#[Object]
impl KbQuery {
    /// The virtual agent's name, greeting and abilities; public, so a page can show them
    /// before sign-in.
    async fn bot_profile(&self, ctx: &Context<'_>) -> BotProfile {
        let c = chat(ctx);
        let p = c.bot_profile();
        BotProfile {
            name: p.name.clone(),
            greeting: p.greeting_text(),
            avatar_url: p.avatar_url.clone(),
            semantic_search: c.semantic_search_available(),
            // Voice input is a later issue (speech recognition, TAXDESK_ASR_URL).
            voice_input: false,
        }
    }

    async fn hot_questions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<Faq>> {
        actor(ctx)?;
        Ok(chat(ctx)
            .hot_questions(first)
            .await
            .or_gql(ctx)?
            .into_iter()
            .map(Faq::from)
            .collect())
    }

    async fn qa_packages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<QaPackage>> {
        actor(ctx)?;
        let rows = chat(ctx).qa_packages().await.or_gql(ctx)?;
        Ok(rows
            .into_iter()
            .map(|(p, faqs)| QaPackage {
                id: ID(p.id),
                title: p.title,
                faqs: faqs.into_iter().map(Faq::from).collect(),
            })
            .collect())
    }

    async fn quick_links(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<QuickLink>> {
        actor(ctx)?;
        let rows = chat(ctx).quick_links().await.or_gql(ctx)?;
        Ok(rows
            .into_iter()
            .map(|l| QuickLink {
                title: l.title,
                url: l.url,
            })
            .collect())
    }

    async fn faq(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Faq>> {
        let a = actor(ctx)?;
        let f = chat(ctx).faq(&id).await.or_gql(ctx)?;
        // A disabled FAQ is only for staff.
        Ok(f.filter(|f| f.enabled || a.role.is_bureau()).map(Faq::from))
    }

    async fn search_faqs(
        &self,
        ctx: &Context<'_>,
        text: String,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<Faq>> {
        actor(ctx)?;
        Ok(chat(ctx)
            .search_faqs(&text, first)
            .await
            .or_gql(ctx)?
            .into_iter()
            .map(Faq::from)
            .collect())
    }

    /// 我的收藏, newest first.
    #[graphql(complexity = "crate::common::page_cost(first, last, child_complexity)")]
    async fn my_favorites(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Conn<Faq>> {
        let a = actor(ctx)?;
        let page = chat(ctx)
            .favorites(&a, &page_request(first, after, last, before))
            .await
            .or_gql(ctx)?;
        Ok(connection(
            page,
            |(fav, _)| fav.id.clone(),
            |(_, f)| Faq::from(f),
        ))
    }
}

#[derive(Default)]
pub struct KbMutation;

#[Object]
impl KbMutation {
    /// Asks the virtual agent, with or without a chat session.
    async fn ask_bot(
        &self,
        ctx: &Context<'_>,
        input: AskBotInput,
    ) -> async_graphql::Result<BotReply> {
        let a = actor(ctx)?;
        let c = chat(ctx);
        if let Some(sid) = &input.session_id {
            c.session(&a, sid).await.or_gql(ctx)?;
        }
        let r = c
            .ask(
                Some(&a),
                input.session_id.as_ref().map(|s| s.as_str()),
                &input.text,
            )
            .await
            .or_gql(ctx)?;
        Ok(BotReply {
            answered: r.answered,
            faq: r.faq.map(Faq::from),
            confidence: f64::from(r.confidence),
            suggestions: r.suggestions.into_iter().map(Faq::from).collect(),
            handover_suggested: r.handover || !r.answered,
        })
    }

    /// 有用 / 无用: one vote per user per FAQ; voting again changes it.
    async fn rate_answer(
        &self,
        ctx: &Context<'_>,
        input: RateAnswerInput,
    ) -> async_graphql::Result<Faq> {
        let a = actor(ctx)?;
        Ok(chat(ctx)
            .rate_answer(
                &a,
                &input.faq_id,
                input.useful,
                input.session_id.as_ref().map(|s| s.as_str()),
            )
            .await
            .or_gql(ctx)?
            .into())
    }

    async fn add_favorite(&self, ctx: &Context<'_>, faq_id: ID) -> async_graphql::Result<Faq> {
        let a = actor(ctx)?;
        Ok(chat(ctx)
            .add_favorite(&a, &faq_id)
            .await
            .or_gql(ctx)?
            .into())
    }

    async fn remove_favorite(&self, ctx: &Context<'_>, faq_id: ID) -> async_graphql::Result<Faq> {
        let a = actor(ctx)?;
        Ok(chat(ctx)
            .remove_favorite(&a, &faq_id)
            .await
            .or_gql(ctx)?
            .into())
    }

    /// Staff: create or change an FAQ (answerable at once).
    async fn upsert_faq(
        &self,
        ctx: &Context<'_>,
        input: UpsertFaqInput,
    ) -> async_graphql::Result<Faq> {
        let a = bureau(ctx)?;
        let f = chat(ctx)
            .upsert_faq(
                &a,
                FaqInput {
                    id: input.id.map(|i| i.0),
                    category: input.category,
                    question: input.question,
                    answer: input.answer,
                    keywords: input.keywords,
                    similar: input.similar,
                    enabled: input.enabled,
                },
            )
            .await
            .or_gql(ctx)?;
        Ok(f.into())
    }

    /// Staff: import FAQs from a JSONL file (one FAQ per line, as the seed), by id.
    async fn import_faqs(
        &self,
        ctx: &Context<'_>,
        upload: Upload,
    ) -> async_graphql::Result<ImportReport> {
        let a = bureau(ctx)?;
        let mut text = String::new();
        let value = upload.value(ctx).map_err(|e| {
            coded(
                Code::InvalidInput,
                "无法读取上传的文件",
                format!("cannot read the upload: {e}"),
            )
        })?;
        std::io::Read::read_to_string(&mut value.into_read(), &mut text).map_err(|_| {
            coded(
                Code::InvalidInput,
                "文件须为 UTF-8 文本",
                "the file must be UTF-8 text",
            )
        })?;
        let docs = taxdesk_chat::faq::parse_faqs(&text).map_err(|e| {
            coded(
                Code::InvalidInput,
                format!("文件格式错误：{e}"),
                format!("bad file: {e}"),
            )
        })?;
        let r = chat(ctx).import_docs(docs).await.or_gql(ctx)?;
        tracing::info!(by = %a.id, inserted = r.inserted, updated = r.updated, "FAQs imported");
        Ok(ImportReport {
            inserted: r.inserted,
            updated: r.updated,
        })
    }

    async fn upsert_qa_package(
        &self,
        ctx: &Context<'_>,
        input: UpsertQaPackageInput,
    ) -> async_graphql::Result<QaPackage> {
        let a = bureau(ctx)?;
        let ids: Vec<String> = input.faq_ids.into_iter().map(|i| i.0).collect();
        let c = chat(ctx);
        let p = c
            .upsert_qa_package(&a, input.id.map(|i| i.0), &input.title, ids, input.enabled)
            .await
            .or_gql(ctx)?;
        let faqs = c
            .qa_packages()
            .await
            .or_gql(ctx)?
            .into_iter()
            .find(|(q, _)| q.id == p.id)
            .map(|(_, f)| f)
            .unwrap_or_default();
        Ok(QaPackage {
            id: ID(p.id),
            title: p.title,
            faqs: faqs.into_iter().map(Faq::from).collect(),
        })
    }
}
