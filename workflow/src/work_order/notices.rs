//! The words of work-order notifications and emails, in Chinese.

use super::machine::NoticeKind;
use crate::entities::work_order;

pub(super) struct Text {
    pub title: String,
    pub body: String,
}

pub(super) fn render(kind: NoticeKind, o: &work_order::Model, note: Option<&str>) -> Text {
    let n = &o.number;
    let t = &o.title;
    let with_note = |s: String| match note {
        Some(x) if !x.is_empty() => format!("{s}\n{x}"),
        _ => s,
    };
    let (title, body) = match kind {
        NoticeKind::WorkOrderCreated => (
            format!("新工单 {n}"),
            format!("工单 {n}「{t}」（{}）已提交，等待分派。", o.category),
        ),
        NoticeKind::WorkOrderDispatched => (
            format!("工单 {n} 已分派给您"),
            with_note(format!("请及时受理工单 {n}「{t}」。")),
        ),
        NoticeKind::WorkOrderReassigned => (
            format!("工单 {n} 已改派"),
            format!("工单 {n}「{t}」已改由其他人员处理，您无需继续办理。"),
        ),
        NoticeKind::WorkOrderProgress => (
            format!("工单 {n} 有新进展"),
            with_note(format!("您的工单「{t}」有新的处理进展：")),
        ),
        NoticeKind::WorkOrderCompleted => (
            format!("工单 {n} 已办结"),
            with_note(format!("您的工单「{t}」已办结，欢迎评价。处理结果：")),
        ),
        NoticeKind::WorkOrderUrged => (
            format!("工单 {n} 被催办（第 {} 次）", o.urge_count),
            with_note(format!("纳税人催办工单 {n}「{t}」，请尽快处理。")),
        ),
        NoticeKind::WorkOrderEscalated => (
            format!("工单 {n} 已升级为{}", priority_zh(&o.priority)),
            format!(
                "工单 {n}「{t}」已被催办 {} 次，优先级已提升。",
                o.urge_count
            ),
        ),
        NoticeKind::WorkOrderTerminated => (
            format!("工单 {n} 已被纳税人终止"),
            with_note(format!("纳税人终止了工单 {n}「{t}」。")),
        ),
        NoticeKind::WorkOrderOverdue => (
            format!("工单 {n} 已超期"),
            format!("工单 {n}「{t}」已超过办理期限，优先级已提升，请尽快处理。"),
        ),
    };
    Text { title, body }
}

fn priority_zh(p: &str) -> &'static str {
    match p {
        "URGENT" => "紧急",
        "HIGH" => "高优先级",
        _ => "普通",
    }
}

/// A minimal HTML version of the same text for email clients that prefer it.
pub(super) fn html(text: &Text) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body: Vec<String> = text
        .body
        .lines()
        .map(|l| format!("<p>{}</p>", esc(l)))
        .collect();
    format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><body><h3>{}</h3>{}<p>—— 征纳互动服务平台</p></body></html>",
        esc(&text.title),
        body.join("")
    )
}
