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
/// 不想和机器人聊 / 叫工作人员来 / 换个人 / 有没有活人 …), after folding width and
/// traditional characters. Generic rules of how people ask, not a list of sentences:
/// "人工" and its homophones after 转/找/要 (转人功), the pinyin initials "rg" after 转/找,
/// a person noun (工作人员, 专员, 坐席 …) with a call for them (叫/找/让/换/转 …, 在吗),
/// 换个人, 活人/真人, and a complaint about the machine. "人工" inside another word (人工智能,
/// 人工费, 个人工资, 法人工商 …) does not count.
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
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    // 转人功 / 找人公 / 转rg: a typed or dictated 人工 after a verb of transfer.
    let transfer = ["转", "找", "要", "赚", "接"];
    let sounds_like = ["人功", "人公", "仁工", "人弓", "rg", "rengong"];
    let homophone = transfer
        .iter()
        .any(|v| sounds_like.iter().any(|s| t.contains(&format!("{v}{s}"))))
        || t == "rg";
    let real_person = (t.contains("真人") && !t.contains("真人秀")) || t.contains("活人");
    let person = has(&["工作人员", "客服人员", "专员", "坐席", "座席", "懂行的"]);
    let calls = has(&["叫", "找", "让", "换", "转接", "联系", "在吗", "在不在"]);
    let another_person = has(&["换个人", "换人", "换一个人", "别的人来"]);
    let machine = t.contains("机器");
    let not_a_robot = machine
        && has(&[
            "不要",
            "不想",
            "不跟",
            "不和",
            "别用",
            "别让",
            "不明白",
            "不懂",
            "听不懂",
            "没用",
        ]);
    let in_english = ["human", "realperson", "liveagent"]
        .iter()
        .any(|k| t.contains(k));
    human
        || homophone
        || real_person
        || (person && calls)
        || another_person
        || not_a_robot
        || in_english
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
            "转人功",
            "轉人工",
            "找真人",
            "转rg",
            "有没有活人",
            "叫你们工作人员来",
            "客服专员在吗",
            "能不能换个人跟我说",
            "机器说不明白",
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
            "工作人员的工资要交个税吗",
            "转让股权怎么交税",
            "换了工作个税怎么办",
        ] {
            assert!(!asks_for_human(t), "{t}");
        }
    }
}
