//! The words of booking notifications and emails, in Chinese.

use chrono_tz::Asia::Shanghai;

use super::machine::NoticeKind;
use crate::entities::booking;
use crate::workflow::WorkflowConfig;

pub(super) struct Text {
    pub title: String,
    pub body: String,
}

fn when(b: &booking::Model) -> String {
    b.start_at
        .with_timezone(&Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn what(b: &booking::Model, c: &WorkflowConfig) -> String {
    c.service_type(&b.service_type)
        .map(|s| s.name.clone())
        .unwrap_or_else(|| b.service_type.clone())
}

pub(super) fn render(kind: NoticeKind, b: &booking::Model, c: &WorkflowConfig) -> Text {
    let (w, t) = (when(b), what(b, c));
    let reason = b
        .reason
        .as_deref()
        .map(|r| format!("原因：{r}"))
        .unwrap_or_default();
    let (title, body) = match kind {
        NoticeKind::BookingConfirmed => (
            format!("预约成功：{t}"),
            format!("您已预约 {w}（北京时间）的「{t}」，届时请进入在线服务。"),
        ),
        NoticeKind::BookingInvited => (
            format!("税务局邀请您参加「{t}」"),
            format!(
                "税务局邀请您于 {w}（北京时间）参加「{t}」，请在个人中心接受或拒绝。{}",
                b.note.clone().unwrap_or_default()
            ),
        ),
        NoticeKind::BookingAccepted => (
            format!("纳税人已接受邀请：{t}"),
            format!("纳税人已接受 {w} 的「{t}」邀请。"),
        ),
        NoticeKind::BookingRejected => (
            format!("纳税人拒绝了邀请：{t}"),
            format!("纳税人拒绝了 {w} 的「{t}」邀请。{reason}"),
        ),
        NoticeKind::BookingCancelled => (
            format!("预约已取消：{t}"),
            format!("{w} 的「{t}」预约已取消。{reason}"),
        ),
        NoticeKind::BookingRescheduled => (
            format!("预约已改期：{t}"),
            format!("「{t}」预约已改到 {w}（北京时间）。"),
        ),
        NoticeKind::BookingStarted => (
            format!("预约服务开始：{t}"),
            format!("{w} 的「{t}」已开始，请进入会话。"),
        ),
        NoticeKind::BookingExpired => (
            format!("邀请已过期：{t}"),
            format!("{w} 的「{t}」邀请未被答复，已过期。"),
        ),
    };
    Text { title, body }
}

pub(super) fn reminder(b: &booking::Model, c: &WorkflowConfig) -> Text {
    let (w, t) = (when(b), what(b, c));
    Text {
        title: format!("预约提醒：{t} 将于 {w} 开始"),
        body: format!("您预约的「{t}」将于 {w}（北京时间）开始，请准时进入在线服务。"),
    }
}

pub(super) fn html(t: &Text) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    format!(
        "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><body><h3>{}</h3><p>{}</p><p>—— 征纳互动服务平台</p></body></html>",
        esc(&t.title),
        esc(&t.body)
    )
}
