//! A disabled FAQ (an internal draft) is invisible to taxpayers everywhere: votes on it are
//! refused as unknown, their favourites of it are hidden, an old bot reply no longer links it,
//! and search, hot questions and bundles leave it out.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp};

const FAQ: &str = "kb-0002";

async fn set_enabled(staff: &Client, enabled: bool) {
    let f = staff
        .gql(
            "query($id: ID!) { faq(id: $id) { category question answer } }",
            json!({"id": FAQ}),
        )
        .await
        .ok()["faq"]
        .clone();
    staff
        .gql(
            "mutation($i: UpsertFaqInput!) { upsertFaq(input: $i) { enabled } }",
            json!({"i": {"id": FAQ, "category": f["category"], "question": f["question"],
                         "answer": f["answer"], "enabled": enabled}}),
        )
        .await
        .ok();
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|a| a.iter().filter_map(|f| f["id"].as_str()).collect())
        .unwrap_or_default()
}

/// Everything a taxpayer can reach of `FAQ`, as ids (or nulls) that name it.
async fn what_the_taxpayer_sees(tp: &Client, session: &str) -> Value {
    let q = "query($s: ID!, $id: ID!) {
        faq(id: $id) { id }
        searchFaqs(text: \"怎样开具数电发票\", first: 50) { id }
        hotQuestions(first: 50) { id }
        qaPackages { faqs { id } }
        myFavorites { totalCount edges { node { id answer } } }
        messages(sessionId: $s, last: 1) { edges { node { senderRole faq { id answer } suggestions { id } } } }
    }";
    let d = tp.gql(q, json!({"s": session, "id": FAQ})).await.ok();
    let packaged: Vec<&str> = d["qaPackages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| ids(&p["faqs"]))
        .collect();
    let reply = &d["messages"]["edges"][0]["node"];
    json!({
        "faq": d["faq"]["id"],
        "search": ids(&d["searchFaqs"]).contains(&FAQ),
        "hot": ids(&d["hotQuestions"]).contains(&FAQ),
        "packages": packaged.contains(&FAQ),
        "favorites": d["myFavorites"]["totalCount"],
        "favorite": d["myFavorites"]["edges"][0]["node"]["id"],
        "reply": {"role": reply["senderRole"], "faq": reply["faq"]["id"],
                  "suggested": ids(&reply["suggestions"]).contains(&FAQ)},
    })
}

#[tokio::test]
async fn a_disabled_faq_is_invisible_to_taxpayers() {
    let app = TestApp::spawn().await;
    let tp = app.user("taxpayer", "tp1");
    let staff = app.user("admin", "boss");
    let session = crate::chat::open(&tp).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::chat::send(
        &tp,
        &session,
        "TEXT",
        "在电子税务局怎样开具数电发票？",
        None,
    )
    .await
    .ok();
    let rate = |useful: bool| json!({"i": {"faqId": FAQ, "useful": useful}});
    let vote = "mutation($i: RateAnswerInput!) { rateAnswer(input: $i) { id answer usefulCount } }";
    tp.gql(vote, rate(true)).await.ok();
    tp.gql(
        "mutation($id: ID!) { addFavorite(faqId: $id) { id } }",
        json!({"id": FAQ}),
    )
    .await
    .ok();
    assert_eq!(
        what_the_taxpayer_sees(&tp, &session).await,
        json!({"faq": FAQ, "search": true, "hot": true, "packages": true,
               "favorites": 1, "favorite": FAQ,
               "reply": {"role": "BOT", "faq": FAQ, "suggested": false}}),
        "before: the FAQ is everywhere"
    );

    set_enabled(&staff, false).await;
    assert_eq!(
        what_the_taxpayer_sees(&tp, &session).await,
        json!({"faq": null, "search": false, "hot": false, "packages": false,
               "favorites": 0, "favorite": null,
               "reply": {"role": "BOT", "faq": null, "suggested": false}}),
        "disabled: nothing names it"
    );
    let votes_before = app
        .count("SELECT * FROM faq_votes WHERE faq_id = 'kb-0002' AND useful = false")
        .await;
    for (what, r) in [
        ("vote", tp.gql(vote, rate(false)).await),
        (
            "favourite",
            tp.gql(
                "mutation($id: ID!) { addFavorite(faqId: $id) { id answer } }",
                json!({"id": FAQ}),
            )
            .await,
        ),
        (
            "unfavourite",
            tp.gql(
                "mutation($id: ID!) { removeFavorite(faqId: $id) { id answer } }",
                json!({"id": FAQ}),
            )
            .await,
        ),
    ] {
        assert_eq!(r.code(), Some("NOT_FOUND"), "{what}: {:?}", r.0);
        assert_eq!(r.0["data"], Value::Null, "{what} leaks nothing: {:?}", r.0);
    }
    // Nothing was written: the vote is not counted, the favourite stays (hidden).
    assert_eq!(
        app.count("SELECT * FROM faq_votes WHERE faq_id = 'kb-0002' AND useful = false")
            .await,
        votes_before
    );
    assert_eq!(
        app.count(
            "SELECT * FROM faqs WHERE id = 'kb-0002' AND useful_count = 1 AND useless_count = 0"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT * FROM faq_favorites WHERE faq_id = 'kb-0002'")
            .await,
        1
    );
    // Staff still see and keep the draft.
    let seen = staff
        .gql(
            "query($id: ID!) { faq(id: $id) { id enabled } }",
            json!({"id": FAQ}),
        )
        .await
        .ok();
    assert_eq!(seen["faq"], json!({"id": FAQ, "enabled": false}));

    // Enabled again: the favourite is back.
    set_enabled(&staff, true).await;
    let favs = tp
        .gql(
            "{ myFavorites { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await
        .ok();
    assert_eq!(favs["myFavorites"]["totalCount"], 1);
    assert_eq!(favs["myFavorites"]["edges"][0]["node"]["id"], FAQ);
}
