//! Tokens: who is signed in, and what happens without a valid token.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Client, TestApp};

#[tokio::test]
async fn me_reflects_the_token_and_records_the_user() {
    let app = TestApp::spawn().await;
    let me = app
        .user("taxpayer", "tp1")
        .gql("{ me { id role displayName taxpayerId email } }", json!({}))
        .await
        .ok();
    assert_eq!(
        me["me"],
        json!({"id": "tp1", "role": "TAXPAYER", "displayName": "TP1", "taxpayerId": "91330000tp1", "email": "tp1@example.com"})
    );
    assert_eq!(
        app.count("SELECT id FROM users WHERE id = 'tp1' AND role = 'TAXPAYER'")
            .await,
        1
    );
    // Seen again: still one row.
    app.user("taxpayer", "tp1")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    assert_eq!(app.count("SELECT id FROM users").await, 1);

    let staff = app.user("staff", "s1");
    let admin = app.user("admin", "a1");
    staff.gql("{ me { id } }", json!({})).await.ok();
    let members = admin
        .gql("{ staffMembers { id role } }", json!({}))
        .await
        .ok();
    assert_eq!(members["staffMembers"].as_array().unwrap().len(), 2);
    let refused = app
        .user("taxpayer", "tp1")
        .gql("{ staffMembers { id } }", json!({}))
        .await;
    assert_eq!(refused.code(), Some("FORBIDDEN"));
}

#[tokio::test]
async fn without_a_valid_token_everything_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let anon = app.anonymous();
    let r = anon.gql("{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));

    let expired = Client {
        token: Some(app.token_with("taxpayer", "tp1", Duration::ZERO, true)),
        ..app.anonymous()
    };
    let r = expired.gql("{ me { id } }", json!({})).await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    assert!(
        r.0["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    let forged = Client {
        token: Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl".into()),
        ..app.anonymous()
    };
    let r = forged
        .gql("mutation { createWorkOrder(input: {title: \"t\", description: \"d\", category: \"其他\"}) { id } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("UNAUTHENTICATED"));
    assert_eq!(app.count("SELECT id FROM work_orders").await, 0);
    assert_eq!(app.count("SELECT id FROM users").await, 0);
}

#[tokio::test]
async fn a_token_claiming_another_role_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.user("staff", "s1")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    // A taxpayer token whose subject is the staff member's id.
    let r = app
        .user("taxpayer", "s1")
        .gql("{ me { id role } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"), "{:?}", r.0);
    let en = r.0["errors"][0]["extensions"]["en"].as_str().unwrap();
    assert!(en.contains("s1 is STAFF"), "{en}");
    let r = app
        .user("taxpayer", "s1")
        .gql(
            "mutation { createWorkOrder(input: {title: \"t\", description: \"d\", category: \"其他\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    assert_eq!(app.count("SELECT id FROM work_orders").await, 0);
    assert_eq!(
        app.count(
            "SELECT id FROM users WHERE id = 's1' AND role = 'STAFF' AND display_name = 'S1'"
        )
        .await,
        1
    );
    // Still staff to everyone, and the staff member still signs in.
    app.user("staff", "s1")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    // The other way round too: a staff token for a taxpayer's id.
    app.user("taxpayer", "tp1")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    let r = app
        .user("admin", "tp1")
        .gql("{ me { id } }", json!({}))
        .await;
    assert_eq!(r.code(), Some("FORBIDDEN"));
    assert_eq!(
        app.count("SELECT id FROM users WHERE id = 'tp1' AND role = 'TAXPAYER'")
            .await,
        1
    );
}

#[tokio::test]
async fn roles_follow_the_identity_provider_when_configured() {
    let app = TestApp::spawn_with(&[("TAXDESK_ROLE_CHANGES", "follow")]).await;
    app.user("staff", "s1")
        .gql("{ me { id } }", json!({}))
        .await
        .ok();
    let me = app
        .user("admin", "s1")
        .gql("{ me { role } }", json!({}))
        .await
        .ok();
    assert_eq!(me["me"]["role"], "ADMIN");
    assert_eq!(
        app.count("SELECT id FROM users WHERE id = 's1' AND role = 'ADMIN'")
            .await,
        1
    );
}
