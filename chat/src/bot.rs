//! The seam where the virtual agent plugs in. Until the knowledge base lands, the greeting
//! bot answers every question with a pointer to a human. Its name, greeting and avatar are
//! configuration ([`BotProfile`]), the same whichever bot answers.

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
    async fn answer(&self, session_id: Option<&str>, question: &str) -> BotAnswer;
}

/// Who the virtual agent is to the people who read its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotProfile {
    /// Shown wherever a person reads the agent's name (default 悦悦).
    pub name: String,
    /// The first message of every chat; `{name}` is replaced by the name.
    pub greeting: String,
    /// An image URL for the agent's avatar; none = the front end draws its initial.
    pub avatar_url: Option<String>,
}

/// The seed's name of the virtual agent.
pub const DEFAULT_BOT_NAME: &str = "悦悦";
/// The default greeting (`{name}` is the agent's name).
pub const DEFAULT_GREETING: &str =
    "您好，我是智能客服{name}，请问有什么可以帮您？输入“转人工”可联系人工客服。";
/// The avatar bundled with the web front end.
pub const DEFAULT_AVATAR_URL: &str = "/img/yueyue.svg";

impl Default for BotProfile {
    fn default() -> Self {
        BotProfile {
            name: DEFAULT_BOT_NAME.into(),
            greeting: DEFAULT_GREETING.into(),
            avatar_url: Some(DEFAULT_AVATAR_URL.into()),
        }
    }
}

impl BotProfile {
    /// The greeting with the agent's name in it.
    pub fn greeting_text(&self) -> String {
        self.greeting.replace("{name}", &self.name)
    }
}

/// Greets, and suggests a human for every question.
pub struct GreetingBot;

#[async_trait]
impl Bot for GreetingBot {
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
