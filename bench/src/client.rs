//! Clients: GraphQL over HTTP (one shared reqwest client) and graphql-transport-ws
//! subscriptions (tokio-tungstenite).

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// GraphQL over HTTP.
#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    url: String,
}

impl Gql {
    pub fn new(url: String) -> anyhow::Result<Gql> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .context("HTTP client")?;
        Ok(Gql { http, url })
    }

    /// Runs `query` as the token's user; GraphQL errors are errors (with their code).
    pub async fn run(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let resp = self
            .http
            .post(&self.url)
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .context("POST /graphql")?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("POST /graphql answered {status} without JSON"))?;
        if let Some(errors) = body.get("errors") {
            let code = errors[0]["extensions"]["code"].as_str().unwrap_or("?");
            let message = errors[0]["message"].as_str().unwrap_or("?");
            bail!("GraphQL error {code}: {message}");
        }
        Ok(body["data"].clone())
    }
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One graphql-transport-ws connection, acknowledged, with one subscription on it.
pub struct Subscription {
    ws: Stream,
}

/// A `next` payload's data, and when its frame was read off the socket.
pub struct Event {
    pub data: Value,
    pub at: Instant,
}

impl Subscription {
    /// Connects to `url`, sends `connection_init` with the token, waits for the ack and
    /// subscribes to `query` with `variables`.
    pub async fn open(
        url: &str,
        token: &str,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Subscription> {
        Subscription::open_with(url, token, Some(query), variables, None).await
    }

    /// [`open`](Self::open) with a tungstenite configuration (e.g. small buffers, for many
    /// idle connections in one process); without a query it only connects and is acknowledged.
    pub async fn open_with(
        url: &str,
        token: &str,
        query: Option<&str>,
        variables: Value,
        config: Option<WebSocketConfig>,
    ) -> anyhow::Result<Subscription> {
        let mut req = url.into_client_request().context("WebSocket URL")?;
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().context("header")?,
        );
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, config, true)
            .await
            .context("WebSocket connect")?;
        let mut s = Subscription { ws };
        s.send(json!({"type": "connection_init",
                      "payload": {"Authorization": format!("Bearer {token}")}}))
            .await?;
        let ack = tokio::time::timeout(Duration::from_secs(30), s.frame())
            .await
            .map_err(|_| anyhow!("no connection_ack within 30 s"))??;
        if ack.0["type"] != "connection_ack" {
            bail!("expected connection_ack, got {}", ack.0);
        }
        if let Some(query) = query {
            s.send(json!({"id": "1", "type": "subscribe",
                          "payload": {"query": query, "variables": variables}}))
                .await?;
        }
        Ok(s)
    }

    async fn send(&mut self, v: Value) -> anyhow::Result<()> {
        self.ws
            .send(WsMessage::Text(v.to_string().into()))
            .await
            .context("WebSocket send")
    }

    /// The next protocol message (pings answered on the way), and when it arrived.
    async fn frame(&mut self) -> anyhow::Result<(Value, Instant)> {
        loop {
            let m = self
                .ws
                .next()
                .await
                .ok_or_else(|| anyhow!("WebSocket closed"))?
                .context("WebSocket read")?;
            let at = Instant::now();
            match m {
                WsMessage::Text(t) => {
                    let v: Value = serde_json::from_str(t.as_str()).context("a JSON frame")?;
                    if v["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await?;
                        continue;
                    }
                    return Ok((v, at));
                }
                WsMessage::Close(f) => bail!("WebSocket closed by the server: {f:?}"),
                _ => continue,
            }
        }
    }

    /// The next event of the subscription (`payload.data`).
    pub async fn next_event(&mut self) -> anyhow::Result<Event> {
        loop {
            let (v, at) = self.frame().await?;
            match v["type"].as_str() {
                Some("next") => {
                    if let Some(errors) = v["payload"].get("errors") {
                        bail!("subscription error: {errors}");
                    }
                    return Ok(Event {
                        data: v["payload"]["data"].clone(),
                        at,
                    });
                }
                Some("error") => bail!("subscription refused: {}", v["payload"]),
                Some("complete") => bail!("subscription completed by the server"),
                _ => continue,
            }
        }
    }

    /// Closes the connection politely (errors ignored: it is going away anyway).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
