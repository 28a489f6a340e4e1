//! Security headers. Every response says `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`; every HTML page (`/`, `/staff`, `/login`, GraphiQL) gets a
//! Content-Security-Policy: scripts and styles only from files of this origin (no inline
//! script, no `eval`), images also as `data:`/`blob:`, media as `blob:` (screen sharing and
//! calls), fetches and the WebSocket to this origin, no plugins, no `<base>`, and
//! `frame-ancestors` from `TAXDESK_FRAME_ANCESTORS` (the portal is embedded in the e-tax
//! site). No `X-Frame-Options`: it could only contradict `frame-ancestors`, which wins
//! in every browser that knows both.
//!
//! GraphiQL's policy differs in two points, both about styles: its editor components insert
//! `<style>` elements at run time (`style-src 'unsafe-inline'`; scripts stay strict), and its
//! stylesheet carries its fonts as `data:` URLs.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policies, rendered once at start.
pub struct SecurityHeaders {
    page: HeaderValue,
    graphiql: HeaderValue,
}

/// The origin (`https://host[:port]`) of an absolute http(s) URL, if it is a plain one; an
/// image source a page needs besides its own (a configured bot avatar on a CDN).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    plain.then(|| format!("{scheme}://{authority}"))
}

impl SecurityHeaders {
    /// `frame_ancestors` as the configuration validated them; `avatar_url` is the bot's
    /// avatar (`TAXDESK_BOT_AVATAR_URL`), allowed as an image source when it is elsewhere.
    pub fn new(frame_ancestors: &[String], avatar_url: Option<&str>) -> anyhow::Result<Self> {
        let ancestors = frame_ancestors.join(" ");
        let avatar = match avatar_url.map(|u| (u, origin_of(u))) {
            Some((_, Some(origin))) => format!(" {origin}"),
            Some((u, None)) if u.contains("://") => {
                tracing::warn!(
                    url = u,
                    "the bot avatar's URL is not a plain http(s) origin; pages will not load it"
                );
                String::new()
            }
            _ => String::new(),
        };
        let common = format!(
            "default-src 'self'; script-src 'self'; connect-src 'self'; media-src 'self' blob:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
        );
        let page = format!(
            "{common}; style-src 'self'; img-src 'self' data: blob:{avatar}; font-src 'self'"
        );
        let graphiql = format!(
            "{common}; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
             font-src 'self' data:"
        );
        Ok(SecurityHeaders {
            page: HeaderValue::from_str(&page).context("the pages' Content-Security-Policy")?,
            graphiql: HeaderValue::from_str(&graphiql)
                .context("GraphiQL's Content-Security-Policy")?,
        })
    }

    /// GraphiQL's policy (its handler sets it; other HTML gets the pages' one).
    pub fn graphiql(&self) -> HeaderValue {
        self.graphiql.clone()
    }
}

fn is_html(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .get(..9)
                .is_some_and(|m| m.eq_ignore_ascii_case("text/html"))
        })
}

/// The middleware: the headers of every response, and the pages' CSP on any HTML that
/// does not carry its own.
pub async fn apply(
    State(policies): State<Arc<SecurityHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    let mut resp = next.run(req).await;
    let html = is_html(&resp);
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.remove(header::X_FRAME_OPTIONS);
    if html && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, policies.page.clone());
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_origins_are_taken_from_urls() {
        assert_eq!(
            origin_of("https://cdn.example.gov.cn:8443/img/a.svg?x=1").as_deref(),
            Some("https://cdn.example.gov.cn:8443")
        );
        assert_eq!(origin_of("/img/yueyue.svg"), None);
        assert_eq!(origin_of("javascript://x"), None);
        assert_eq!(origin_of("https://a.example;script-src *"), None);
        assert_eq!(origin_of("https:///nohost"), None);
    }

    #[test]
    fn policies_carry_the_frame_ancestors_and_no_inline_script() {
        let ancestors = vec![
            "'self'".to_string(),
            "https://etax.example.gov.cn".to_string(),
        ];
        let p = SecurityHeaders::new(&ancestors, Some("https://cdn.example/a.png")).unwrap();
        let page = p.page.to_str().unwrap();
        assert!(
            page.contains("frame-ancestors 'self' https://etax.example.gov.cn"),
            "{page}"
        );
        assert!(
            page.contains("img-src 'self' data: blob: https://cdn.example;"),
            "{page}"
        );
        assert!(!page.contains("unsafe"), "{page}");
        let graphiql = p.graphiql().to_str().unwrap().to_string();
        assert!(graphiql.contains("script-src 'self';"), "{graphiql}");
        assert!(!graphiql.contains("unsafe-eval"), "{graphiql}");
    }
}
