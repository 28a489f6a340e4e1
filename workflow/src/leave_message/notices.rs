//! The words of offline-message notifications and emails, in Chinese.

use chrono_tz::Asia::Shanghai;

use super::machine::NoticeKind;
use crate::entities::leave_message;

pub(super) struct Text {
    pub title: String,
    pub body: String,
}

/// The first characters of a text on one line, for titles and to-dos.
pub(super) fn excerpt(s: &str, n: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(n).collect();
    if one_line.chars().count() > n {
        out.push('…');
    }
    out
}

pub(super) fn render(kind: NoticeKind, m: &leave_message::Model, note: Option<&str>) -> Text {
    let q = excerpt(&m.content, 20);
    let c = &m.category;
    let when = m
        .created_at
        .with_timezone(&Shanghai)
        .format("%Y-%m-%d %H:%M");
    let with_note = |s: String| match note {
        Some(x) if !x.is_empty() => format!("{s}\n{x}"),
        _ => s,
    };
    let (title, body) = match kind {
        NoticeKind::LeaveMessageSubmitted => (
            format!("新留言（{c}）"),
            with_note(format!("纳税人留言「{q}」，请及时答复。")),
        ),
        NoticeKind::LeaveMessageReplied => (
            "您的留言已有答复".to_string(),
            with_note(format!("您于 {when} 提交的留言（{c}）「{q}」已有答复：")),
        ),
        NoticeKind::LeaveMessageFollowedUp => (
            format!("留言有追问（{c}）"),
            with_note(format!("纳税人对您答复的留言「{q}」提出了追问：")),
        ),
        NoticeKind::LeaveMessageClosed => (
            "您的留言已关闭".to_string(),
            format!("您于 {when} 提交的留言（{c}）「{q}」已由工作人员关闭。"),
        ),
    };
    Text { title, body }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_line_and_marked_when_cut() {
        assert_eq!(excerpt("发票\n额度  不足", 20), "发票 额度 不足");
        assert_eq!(excerpt("一二三四五六", 3), "一二三…");
        assert_eq!(excerpt("一二三", 3), "一二三");
    }
}
