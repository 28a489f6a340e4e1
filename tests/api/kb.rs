//! The virtual agent and the knowledge base end to end.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Client, TestApp};

async fn ask(c: &Client, text: &str) -> serde_json::Value {
    c.gql(
        "mutation($t: String!) { askBot(input: {text: $t}) { answered confidence handoverSuggested faq { id question } suggestions { id question } } }",
        json!({"t": text}),
    )
    .await
    .ok()["askBot"]
        .clone()
}

#[tokio::test]
async fn the_bot_answers_suggests_and_learns_new_faqs() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let a = ask(&tp, "什么是数电发票？").await;
    assert_eq!(a["answered"], true, "{a}");
    assert_eq!(a["faq"]["id"], "kb-0001");
    assert!(a["confidence"].as_f64().unwrap() > 0.5);

    let u = ask(&tp, "今天晚上吃什么好呢").await;
    assert_eq!(u["answered"], false, "{u}");
    assert_eq!(u["faq"], serde_json::Value::Null);
    // Too vague to pick one FAQ: related questions instead. (Next to the base, 出口退税怎么申报
    // is now answered with 留抵退税 by the lexical engine: a known false answer of short
    // questions, see README.)
    for vague in ["退税", "发票怎么弄", "社保"] {
        let v = ask(&tp, vague).await;
        assert_eq!(v["answered"], false, "{vague}: {v}");
        assert_eq!(v["faq"], serde_json::Value::Null, "{vague}: {v}");
        let s = v["suggestions"].as_array().unwrap();
        assert!((1..=5).contains(&s.len()), "{vague}: {v}");
        assert!(s.iter().all(|f| f["question"].is_string()), "{vague}: {v}");
    }
    let h = ask(&tp, "我要转人工").await;
    assert_eq!(h["handoverSuggested"], true);

    // Seed data: hot questions, bundles, quick links, search; an imported FAQ keeps its id.
    let seed = tp.gql("{ hotQuestions(first: 3) { id } qaPackages { id title faqs { id } } quickLinks { title url } faq(id: \"kb-0042\") { id question } searchFaqs(text: \"个税汇算\", first: 3) { id } }", json!({})).await.ok();
    assert_eq!(seed["hotQuestions"][0]["id"], "kb-0041");
    assert!(seed["qaPackages"].as_array().unwrap().len() >= 3);
    assert!(!seed["quickLinks"].as_array().unwrap().is_empty());
    assert_eq!(seed["faq"]["id"], "kb-0042");
    assert_eq!(seed["searchFaqs"].as_array().unwrap().len(), 3);

    // Staff add an FAQ: answerable at once.
    let staff = app.user("staff", "s1");
    let q = "mutation($i: UpsertFaqInput!) { upsertFaq(input: $i) { id enabled } }";
    let added = staff
        .gql(q, json!({"i": {"category": "其他", "question": "税务局的停车场晚上开放吗？", "answer": "晚上八点后关闭。", "keywords": ["停车场"]}}))
        .await
        .ok();
    let id = added["upsertFaq"]["id"].as_str().unwrap().to_string();
    let a = ask(&tp, "税务局停车场晚上开吗").await;
    assert_eq!(a["faq"]["id"], id.as_str(), "{a}");
    // Disabled: no longer answered. Taxpayers cannot edit.
    staff.gql(q, json!({"i": {"id": id, "category": "其他", "question": "税务局的停车场晚上开放吗？", "answer": "晚上八点后关闭。", "enabled": false}})).await.ok();
    assert_ne!(
        ask(&tp, "税务局停车场晚上开吗").await["faq"]["id"],
        id.as_str()
    );
    assert_eq!(
        tp.gql(
            q,
            json!({"i": {"category": "其他", "question": "x?", "answer": "y"}})
        )
        .await
        .code(),
        Some("FORBIDDEN")
    );
    assert!(
        app.count("SELECT id FROM ask_log").await >= 5,
        "every ask is logged"
    );
    let unanswered = staff
        .gql(
            "{ unansweredQuestions(first: 10) { totalCount } }",
            json!({}),
        )
        .await
        .ok();
    assert!(
        unanswered["unansweredQuestions"]["totalCount"]
            .as_i64()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn votes_favorites_and_hot_questions() {
    let dir = std::env::temp_dir().join(format!("taxdesk-toml-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("taxdesk.toml");
    std::fs::write(&toml, "[cron]\n\"kb.hot_rank\" = \"* * * * * *\"\n").unwrap();
    let app = TestApp::spawn_with(&[("TAXDESK_CONFIG", toml.to_str().unwrap())]).await;
    let tp = app.user("taxpayer", "tp1");
    let rate = |useful: bool| json!({"i": {"faqId": "kb-0002", "useful": useful}});
    let q = "mutation($i: RateAnswerInput!) { rateAnswer(input: $i) { usefulCount uselessCount } }";
    assert_eq!(
        tp.gql(q, rate(true)).await.ok()["rateAnswer"],
        json!({"usefulCount": 1, "uselessCount": 0})
    );
    assert_eq!(
        tp.gql(q, rate(true)).await.ok()["rateAnswer"],
        json!({"usefulCount": 1, "uselessCount": 0}),
        "no double vote"
    );
    assert_eq!(
        tp.gql(q, rate(false)).await.ok()["rateAnswer"],
        json!({"usefulCount": 0, "uselessCount": 1}),
        "changed"
    );

    tp.gql(
        "mutation { addFavorite(faqId: \"kb-0003\") { id } }",
        json!({}),
    )
    .await
    .ok();
    tp.gql(
        "mutation { addFavorite(faqId: \"kb-0004\") { id } }",
        json!({}),
    )
    .await
    .ok();
    tp.gql(
        "mutation { addFavorite(faqId: \"kb-0004\") { id } }",
        json!({}),
    )
    .await
    .ok();
    tp.gql(
        "mutation { removeFavorite(faqId: \"kb-0003\") { id } }",
        json!({}),
    )
    .await
    .ok();
    let favs = tp
        .gql(
            "{ myFavorites { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(favs["myFavorites"]["totalCount"], 1);
    assert_eq!(favs["myFavorites"]["edges"][0]["node"]["id"], "kb-0004");
    assert_eq!(
        tp.gql(
            "mutation { addFavorite(faqId: \"nope\") { id } }",
            json!({})
        )
        .await
        .code(),
        Some("NOT_FOUND")
    );

    // A question asked again and again rises to the top once the ranking runs.
    let question = ask(&tp, "什么是数电发票？").await;
    let hot_id = question["faq"]["id"].as_str().unwrap().to_string();
    for _ in 0..4 {
        ask(&tp, "什么是数电发票？").await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let hot = tp
            .gql("{ hotQuestions(first: 1) { id } }", json!({}))
            .await
            .ok();
        if hot["hotQuestions"][0]["id"] == hot_id.as_str() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not ranked: {hot}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `taxdesk kb import FILE` on the database of a running server: CSV and JSONL, idempotent
/// by id, a source id kept as the GraphQL id, answerable on the running server without a
/// restart; a bad file writes nothing.
#[tokio::test]
async fn kb_import_from_files_reaches_a_running_server() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let csv = app.data_dir.join("faqs.csv");
    std::fs::write(
        &csv,
        "id,category,question,answer,keywords,similar\n\
         kb-9001,其他,税务局的停车场晚上开放吗？,停车场晚上八点后关闭。,停车场;停车,\"停车场几点关门, 晚上能停吗\"\n",
    )
    .unwrap();
    let config = app.config();
    let r = taxdesk::kb_import::import_file(&config, &csv)
        .await
        .unwrap();
    assert_eq!((r.inserted, r.updated), (1, 0));
    let r = taxdesk::kb_import::import_file(&config, &csv)
        .await
        .unwrap();
    assert_eq!((r.inserted, r.updated), (0, 1), "again: updated in place");
    assert_eq!(
        app.count("SELECT id FROM faqs WHERE id = 'kb-9001'").await,
        1
    );

    // JSONL updates a seed FAQ by its source id.
    let jsonl = app.data_dir.join("faqs.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": \"kb-0042\", \"category\": \"其他\", \"question\": \"导入后的问题？\", \"answer\": \"导入后的答案。\"}\n",
    )
    .unwrap();
    let r = taxdesk::kb_import::import_file(&config, &jsonl)
        .await
        .unwrap();
    assert_eq!((r.inserted, r.updated), (0, 1));

    // The running server follows the table: no restart.
    let mut answered = serde_json::Value::Null;
    for _ in 0..100 {
        answered = ask(&tp, "税务局停车场晚上几点关门").await;
        if answered["faq"]["id"] == "kb-9001" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(answered["faq"]["id"], "kb-9001", "{answered}");
    let f = tp
        .gql("{ faq(id: \"kb-0042\") { id question answer } }", json!({}))
        .await
        .ok();
    assert_eq!(f["faq"]["question"], "导入后的问题？");

    // A bad line refuses the whole file.
    let bad = app.data_dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"id\": \"kb-9002\", \"category\": \"其他\", \"question\": \"好的问题？\", \"answer\": \"好的答案。\"}\n\
         {\"id\": \"kb-9003\", \"category\": \"其他\", \"question\": \"\", \"answer\": \"没有问题的答案。\"}\n",
    )
    .unwrap();
    let e = taxdesk::kb_import::import_file(&config, &bad)
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("question is empty"), "{e:#}");
    assert_eq!(
        app.count("SELECT id FROM faqs WHERE id IN ('kb-9002', 'kb-9003')")
            .await,
        0
    );
}

/// In a chat the bot's reply names the FAQ it answered with and the related questions it
/// offered, so a front end can show 有用/无用, 收藏 and clickable questions.
#[tokio::test]
async fn bot_replies_in_a_chat_carry_their_faq_or_suggestions() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let id = crate::chat::open(&tp).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let last_reply = |text: &'static str| {
        let tp = &tp;
        let id = id.clone();
        async move {
            crate::chat::send(tp, &id, "TEXT", text, None).await.ok();
            tp.gql(
                "query($id: ID!) { messages(sessionId: $id, last: 1) { edges { node { senderRole text faq { id } suggestions { id question } } } } }",
                json!({"id": id}),
            )
            .await
            .ok()["messages"]["edges"][0]["node"]
                .clone()
        }
    };
    let answered = last_reply("什么是数电发票？").await;
    assert_eq!(answered["senderRole"], "BOT");
    assert_eq!(answered["faq"]["id"], "kb-0001", "{answered}");
    // … with related questions to follow (not itself).
    let related = answered["suggestions"].as_array().unwrap();
    assert!(related.len() <= 5 && related.iter().all(|f| f["id"] != "kb-0001"));

    let unsure = last_reply("退税").await;
    assert_eq!(unsure["faq"], serde_json::Value::Null, "{unsure}");
    let s = unsure["suggestions"].as_array().unwrap();
    assert!((1..=5).contains(&s.len()), "{unsure}");
    let first = s[0]["question"].as_str().unwrap();
    assert!(
        unsure["text"].as_str().unwrap().contains(first),
        "the text lists the same questions: {unsure}"
    );
    // The taxpayer's own messages carry nothing of the kind.
    let mine = tp
        .gql(
            "query($id: ID!) { messages(sessionId: $id, last: 2) { edges { node { senderRole faq { id } suggestions { id } } } } }",
            json!({"id": id}),
        )
        .await
        .ok();
    assert_eq!(
        mine["messages"]["edges"][0]["node"],
        json!({"senderRole": "TAXPAYER", "faq": null, "suggestions": []})
    );
}

/// Each instance follows the `faqs` table but re-indexes only what it does not hold: what it
/// saved itself is skipped, a change made elsewhere is picked up once.
#[tokio::test]
async fn an_instance_reindexes_only_what_others_changed() {
    use taxdesk_chat::Chat;
    use taxdesk_chat::kb::FaqDoc;
    let app = TestApp::spawn().await;
    let config = app.config();
    let instance = || async {
        let conn = taxdesk::db::connect(&config.database_url).await.unwrap();
        let wf =
            taxdesk_workflow::Workflow::new(conn, taxdesk::app::workflow_config(&config).unwrap());
        let chat = Chat::new(wf, taxdesk::app::chat_config(&config)).unwrap();
        assert!(chat.load_knowledge_base().await.unwrap() >= 160);
        chat
    };
    let (a, b) = (instance().await, instance().await);
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(a.refresh_knowledge_base(since).await.unwrap(), 0);

    let doc = FaqDoc {
        id: "kb-9100".into(),
        category: "其他".into(),
        question: "办税服务厅的自助终端能打印完税证明吗？".into(),
        answer: "可以，自助终端支持打印完税证明。".into(),
        keywords: vec!["自助终端".into()],
        similar: vec![],
        enabled: true,
    };
    a.import_docs(vec![doc]).await.unwrap();
    assert_eq!(
        a.refresh_knowledge_base(since).await.unwrap(),
        0,
        "a holds it"
    );
    assert!(b.knowledge_index().get("kb-9100").is_none());
    assert_eq!(
        b.refresh_knowledge_base(since).await.unwrap(),
        1,
        "b picks it up"
    );
    assert_eq!(b.refresh_knowledge_base(since).await.unwrap(), 0, "once");
    let answer = b.knowledge_index().ask("自助终端能打完税证明吗");
    assert_eq!(answer.best.map(|h| h.id).as_deref(), Some("kb-9100"));
}

/// `taxdesk kb import` on a database no server has started yet: it gets the seed first, as
/// `serve` would give it, and the import adds to it.
#[tokio::test]
async fn kb_import_into_an_empty_database_keeps_the_seed() {
    let app = TestApp::spawn().await;
    let mut config = app.config();
    let db = app.data_dir.join("fresh.db");
    config.database_url = format!("sqlite://{}", db.display());
    let file = app.data_dir.join("one.jsonl");
    std::fs::write(
        &file,
        "{\"id\": \"kb-9200\", \"category\": \"其他\", \"question\": \"税务局食堂对外开放吗？\", \"answer\": \"不对外开放。\"}\n",
    )
    .unwrap();
    let r = taxdesk::kb_import::import_file(&config, &file)
        .await
        .unwrap();
    assert_eq!((r.inserted, r.updated), (1, 0));
    let conn = taxdesk::db::connect(&config.database_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM faqs",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    assert_eq!(n, 161, "the 160 seed FAQs and the imported one");
}

/// A bundle lists at most 50 FAQs: a longer list is refused before anything is read.
#[tokio::test]
async fn a_bundle_holds_at_most_fifty_faqs() {
    let app = TestApp::spawn().await;
    let staff = app.user("admin", "boss");
    let ids = |n: usize| -> Vec<String> { (1..=n).map(|i| format!("kb-{i:04}")).collect() };
    let q = "mutation($i: UpsertQaPackageInput!) { upsertQaPackage(input: $i) { id faqs { id } } }";
    let too_long = staff
        .gql(q, json!({"i": {"title": "全部", "faqIds": ids(51)}}))
        .await;
    assert_eq!(too_long.code(), Some("INVALID_INPUT"), "{:?}", too_long.0);
    assert_eq!(too_long.0["errors"][0]["extensions"]["field"], "faqIds");
    let packages = app.count("SELECT id FROM qa_packages").await;
    let ok = staff
        .gql(q, json!({"i": {"title": "五十问", "faqIds": ids(50)}}))
        .await
        .ok();
    assert_eq!(ok["upsertQaPackage"]["faqs"].as_array().unwrap().len(), 50);
    assert_eq!(app.count("SELECT id FROM qa_packages").await, packages + 1);
}
