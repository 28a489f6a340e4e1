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

/// Words in a message that ask for a human (转人工 / 人工 / 人工客服 / 找真人 …).
pub fn asks_for_human(text: &str) -> bool {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    ["转人工", "人工客服", "人工服务", "找真人", "真人客服"]
        .iter()
        .any(|k| t.contains(k))
        || t == "人工"
}

#[cfg(test)]
mod tests {
    use super::asks_for_human;

    #[test]
    fn recognises_requests_for_a_human() {
        for t in ["转人工", "我要 转人工", "人工客服在吗", "人工", "找真人"] {
            assert!(asks_for_human(t), "{t}");
        }
        for t in ["人工智能是什么", "发票怎么开", "个人所得税汇算"] {
            assert!(!asks_for_human(t), "{t}");
        }
    }
}
