//! Short-lived signed download links for one attachment and one user:
//! `/attachments/{id}?user=<user id>&exp=<unix seconds>&sig=<hex HMAC-SHA256>`, the HMAC
//! taken over `id|user|exp` with the link secret. A page can put such a link in
//! `<img src>` or `<a href>`, which cannot send an `Authorization` header, without putting
//! the bearer token itself in a URL (where logs, histories and `Referer` keep it).
//!
//! The link only says who asks; whether that user may see the attachment is checked on
//! every download, exactly as for a bearer token.

use std::fmt::Write as _;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What a link key is derived from the JWT secret with, so that the JWT secret itself is
/// never the key of anything that appears in a URL.
const DERIVATION_LABEL: &[u8] = b"taxdesk download links v1";

/// Why a signed link is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// The signature does not match the attachment, the user and the expiry (tampered,
    /// made for someone else, or signed with another secret), or a part is malformed.
    Invalid,
    /// The signature holds but the link's time is up.
    Expired,
}

/// Signs and checks download links. Cheap to clone.
#[derive(Clone)]
pub struct DownloadLinks {
    /// Keyed once; cloned for each signature.
    keyed: HmacSha256,
    ttl: Duration,
}

impl std::fmt::Debug for DownloadLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadLinks")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl DownloadLinks {
    /// Links signed with `key` (`TAXDESK_LINK_SECRET`), valid for `ttl`.
    pub fn new(key: &[u8], ttl: Duration) -> DownloadLinks {
        DownloadLinks {
            keyed: keyed(key),
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// Links whose key is HMAC-SHA256(`jwt_secret`, a fixed label): every instance with the
    /// same JWT secret checks the others' links, and the JWT secret is never used as is.
    pub fn derived_from_jwt_secret(jwt_secret: &[u8], ttl: Duration) -> DownloadLinks {
        let key = keyed(jwt_secret)
            .chain_update(DERIVATION_LABEL)
            .finalize()
            .into_bytes();
        DownloadLinks::new(&key, ttl)
    }

    /// How long a fresh link stays valid (at least; see [`DownloadLinks::expiry`]).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The expiry of a link made at `now` (seconds since the epoch): `now + ttl`, rounded up
    /// to a step of a tenth of the lifetime (1 s to 60 s), so that the same attachment asked
    /// for again soon after gets the same URL and the browser's cache can serve it.
    pub fn expiry(&self, now: u64) -> u64 {
        let ttl = self.ttl.as_secs().max(1);
        let step = (ttl / 10).clamp(1, 60);
        (now.saturating_add(ttl))
            .div_ceil(step)
            .saturating_mul(step)
    }

    /// The download URL of `attachment_id` for `user_id`, made at `now`.
    pub fn url(&self, attachment_id: &str, user_id: &str, now: u64) -> String {
        let exp = self.expiry(now);
        let sig = hex(&self.signature(attachment_id, user_id, exp));
        format!(
            "/attachments/{}?user={}&exp={exp}&sig={sig}",
            percent_encode(attachment_id),
            percent_encode(user_id),
        )
    }

    /// Whether `sig` (hex) signs `attachment_id`, `user_id` and `exp`, and `exp` is not past
    /// at `now`. The comparison takes the same time wherever the first difference is.
    pub fn check(
        &self,
        attachment_id: &str,
        user_id: &str,
        exp: &str,
        sig: &str,
        now: u64,
    ) -> Result<(), LinkRefusal> {
        // `|` separates the parts; an id holding one could pass for another split.
        if attachment_id.contains('|') || exp.is_empty() || !exp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(LinkRefusal::Invalid);
        }
        let exp: u64 = exp.parse().map_err(|_| LinkRefusal::Invalid)?;
        let sig = unhex(sig).ok_or(LinkRefusal::Invalid)?;
        let mut mac = self.mac();
        mac.update(&message(attachment_id, user_id, exp));
        mac.verify_slice(&sig).map_err(|_| LinkRefusal::Invalid)?;
        if now > exp {
            return Err(LinkRefusal::Expired);
        }
        Ok(())
    }

    fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    fn signature(&self, attachment_id: &str, user_id: &str, exp: u64) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(&message(attachment_id, user_id, exp));
        mac.finalize().into_bytes().to_vec()
    }
}

/// `id|user|exp`: the attachment id never holds `|` (checked), `exp` is digits, so the
/// user id is whatever lies between the first and the last `|`.
fn message(attachment_id: &str, user_id: &str, exp: u64) -> Vec<u8> {
    format!("{attachment_id}|{user_id}|{exp}").into_bytes()
}

/// HMAC-SHA256 keyed with `key`. HMAC takes keys of every length (a long one is hashed
/// first), so this cannot fail.
fn keyed(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a user id (Chinese,
/// `&`, `=`, spaces …) survives a query string.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn links() -> DownloadLinks {
        DownloadLinks::new(
            b"a-link-secret-of-at-least-32-bytes!!",
            Duration::from_secs(600),
        )
    }

    /// The `user`, `exp` and `sig` of a URL made by [`DownloadLinks::url`].
    fn parts(url: &str) -> (String, String, String) {
        let query = url.split_once('?').expect("a query").1;
        let get = |name: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(&format!("{name}=")))
                .expect(name)
                .to_string()
        };
        (get("user"), get("exp"), get("sig"))
    }

    #[test]
    fn a_fresh_link_checks_and_names_its_parts() {
        let l = links();
        let url = l.url("a1", "tp1", NOW);
        assert!(url.starts_with("/attachments/a1?user=tp1&exp="), "{url}");
        let (user, exp, sig) = parts(&url);
        assert_eq!(sig.len(), 64);
        let exp_n: u64 = exp.parse().unwrap();
        assert!((NOW + 600..NOW + 660).contains(&exp_n), "{exp_n}");
        assert_eq!(l.check("a1", &user, &exp, &sig, NOW), Ok(()));
        assert_eq!(l.check("a1", &user, &exp, &sig, exp_n), Ok(()));
        assert_eq!(
            l.check("a1", &user, &exp, &sig, exp_n + 1),
            Err(LinkRefusal::Expired)
        );
    }

    #[test]
    fn every_part_is_bound_by_the_signature() {
        let l = links();
        let (user, exp, sig) = parts(&l.url("a1", "tp1", NOW));
        let later = (exp.parse::<u64>().unwrap() + 3600).to_string();
        let mut flipped = sig.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for (id, user, exp, sig) in [
            ("a2", user.as_str(), exp.as_str(), sig.as_str()),
            ("a1", "tp2", exp.as_str(), sig.as_str()),
            ("a1", user.as_str(), later.as_str(), sig.as_str()),
            ("a1", user.as_str(), exp.as_str(), flipped.as_str()),
            ("a1", user.as_str(), exp.as_str(), ""),
            ("a1", user.as_str(), exp.as_str(), "zz"),
            ("a1", user.as_str(), "", sig.as_str()),
            ("a1", user.as_str(), "-1", sig.as_str()),
        ] {
            assert_eq!(
                l.check(id, user, exp, sig, NOW),
                Err(LinkRefusal::Invalid),
                "{id} {user} {exp} {sig}"
            );
        }
        // Another secret's links are not ours.
        let other = DownloadLinks::new(b"another-secret-of-at-least-32-bytes", l.ttl());
        assert_eq!(
            other.check("a1", &user, &exp, &sig, NOW),
            Err(LinkRefusal::Invalid)
        );
    }

    #[test]
    fn a_bar_in_the_id_cannot_move_the_split() {
        let l = links();
        // Signed for user "b|c" on attachment "a" …
        let (_, exp, sig) = parts(&l.url("a", "b|c", NOW));
        // … is not a link for user "c" on attachment "a|b".
        assert_eq!(
            l.check("a|b", "c", &exp, &sig, NOW),
            Err(LinkRefusal::Invalid)
        );
    }

    #[test]
    fn user_ids_are_percent_encoded() {
        let url = links().url("a1", "张 三&x=y", NOW);
        assert!(
            url.contains("user=%E5%BC%A0%20%E4%B8%89%26x%3Dy&exp="),
            "{url}"
        );
    }

    #[test]
    fn derived_keys_follow_the_jwt_secret_but_are_not_it() {
        let secret = b"taxdesk-test-secret-0123456789abcdef";
        let ttl = Duration::from_secs(600);
        let a = DownloadLinks::derived_from_jwt_secret(secret, ttl);
        let b = DownloadLinks::derived_from_jwt_secret(secret, ttl);
        let raw = DownloadLinks::new(secret, ttl);
        let (user, exp, sig) = parts(&a.url("a1", "tp1", NOW));
        assert_eq!(b.check("a1", &user, &exp, &sig, NOW), Ok(()));
        assert_eq!(
            raw.check("a1", &user, &exp, &sig, NOW),
            Err(LinkRefusal::Invalid)
        );
    }

    #[test]
    fn expiry_rounds_up_to_a_tenth_of_the_lifetime() {
        let tiny = DownloadLinks::new(b"k", Duration::from_secs(1));
        assert_eq!(tiny.expiry(NOW), NOW + 1);
        let ten_minutes = links();
        assert_eq!(ten_minutes.expiry(NOW) % 60, 0);
        assert_eq!(ten_minutes.expiry(NOW + 1), ten_minutes.expiry(NOW + 2));
    }
}
