//! The seam where the virtual agent plugs in. Until the knowledge base lands, the greeting
//! bot answers every question with a pointer to a human.

use async_trait::async_trait;

/// What the virtual agent says to one question.
#[derive(Debug, Clone)]
pub struct BotAnswer {
    pub text: String,
    /// The bot is unsure: offer `requestHuman`.
    pub handover_suggested: bool,
}

#[async_trait]
pub trait Bot: Send + Sync + 'static {
    fn greeting(&self) -> String;
    async fn answer(&self, session_id: Option<&str>, question: &str) -> BotAnswer;
}

/// Greets, and suggests a human for every question.
pub struct GreetingBot;

#[async_trait]
impl Bot for GreetingBot {
    fn greeting(&self) -> String {
        "您好，我是智能客服小税，请问有什么可以帮您？输入“转人工”可联系人工客服。".into()
    }

    async fn answer(&self, _session_id: Option<&str>, _question: &str) -> BotAnswer {
        BotAnswer {
            text: "抱歉，这个问题我暂时无法回答。您可以点击“转人工”或输入“转人工”联系人工客服。"
                .into(),
            handover_suggested: true,
        }
    }
}

/// Words in a message that ask for a human (转人工 / 人工 / 人工客服 / 找真人 / 我要真人 /
/// 不想和机器人聊 …), after folding width and traditional characters. "人工" inside another
/// word (人工智能, 人工费, 个人工资, 法人工商 …) does not count.
pub fn asks_for_human(text: &str) -> bool {
    let t: String = crate::kb::text::fold(text)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    let chars: Vec<char> = t.chars().collect();
    let human = chars.windows(2).enumerate().any(|(i, w)| {
        w == ['人', '工']
            && !chars
                .get(i + 2)
                .is_some_and(|c| "智费成资作商伤龄降造湖林合种岛授繁流呼晶关节耳".contains(*c))
    });
    let real_person = t.contains("真人") && !t.contains("真人秀");
    let not_a_robot = t.contains("机器人")
        && ["不要", "不想", "不跟", "不和", "别用"]
            .iter()
            .any(|k| t.contains(k));
    let in_english = ["human", "realperson", "liveagent"]
        .iter()
        .any(|k| t.contains(k));
    human || real_person || not_a_robot || in_english
}

#[cfg(test)]
mod tests {
    use super::asks_for_human;

    #[test]
    fn recognises_requests_for_a_human() {
        for t in [
            "转人工",
            "我要 转人工",
            "人工客服在吗",
            "人工",
            "找真人",
            "轉人工",
            "找个人工",
            "不想跟机器人聊了",
            "真人",
            "ＨＵＭＡＮ",
        ] {
            assert!(asks_for_human(t), "{t}");
        }
        for t in [
            "人工智能是什么",
            "发票怎么开",
            "个人所得税汇算",
            "个人工资薪金所得",
            "人工费能税前扣除吗",
            "法人工商变更",
            "智能客服能回答什么",
        ] {
            assert!(!asks_for_human(t), "{t}");
        }
    }
}
