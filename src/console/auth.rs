//! The console's token: every request but `/healthz` carries it, as a bearer header, the
//! console's cookie, or once as `?token=` (which sets the cookie and redirects to the
//! same URL without it, so the token does not stay in the address bar or in history).
//! Browsers keep cookies per host, not per port, so the cookie is named after the port
//! the browser used (the `Host` header's; behind a published container port that is the
//! host's port, not the console's own): two consoles on one host do not log each other
//! out.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::server::Shared;

/// The name of the cookie holding the token of the console on `port`.
pub(crate) fn cookie_name(port: u16) -> String {
    format!("rh_console_{port}")
}

/// A fresh random token: 128 bits from the operating system, hex-encoded.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source answers");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first differing byte, so the time taken does not
/// tell how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a request presents in its headers (bearer or cookie `cookie`), if any.
fn presented<'a>(headers: &'a HeaderMap, cookie: &str) -> Option<&'a str> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == cookie)
        .map(|(_, v)| v)
}

/// Whether a request comes from the console's own pages: a browser says where a request
/// comes from (`Sec-Fetch-Site`, `Origin`); a cookie alone does not prove it, since any
/// page on the same host (another port) is the same site. Requests without either header
/// (scripts with the bearer token) pass.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return site == "same-origin" || site == "none";
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// `?token=` in a query string, and the query without it.
fn from_query(query: &str) -> (Option<&str>, String) {
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("token=") {
            Some(t) => {
                token = Some(t);
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    (token, rest.join("&"))
}

/// Lets a request through when it carries the token; a GET with the right `?token=` gets
/// the cookie and a redirect to the same URL without it (also when it already has the
/// cookie); anything else gets 401.
pub(crate) async fn require(State(shared): State<Shared>, req: Request, next: Next) -> Response {
    let token = shared.token.as_str();
    let cookie = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .map(cookie_name)
        .unwrap_or_else(|| shared.cookie.to_string());
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let query = req.uri().query().unwrap_or("");
    if let (Some(t), rest) = from_query(query) {
        if same(t, token) && req.method() == axum::http::Method::GET {
            let path = req.uri().path();
            let to = if rest.is_empty() {
                path.to_string()
            } else {
                format!("{path}?{rest}")
            };
            let cookie = format!("{cookie}={token}; HttpOnly; SameSite=Strict; Path=/");
            return ([(header::SET_COOKIE, cookie)], Redirect::to(&to)).into_response();
        }
    }
    if presented(req.headers(), &cookie).is_some_and(|t| same(t, token)) {
        if req.method() != axum::http::Method::GET && !same_origin(req.headers()) {
            return (
                StatusCode::FORBIDDEN,
                "403: a form posted from another origin (another port counts) is refused\n",
            )
                .into_response();
        }
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"redis-harness console\"")],
        "401: this console needs its token: open the URL it printed at start (…/?token=…), or send `Authorization: Bearer <token>`\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(same("abcd", "abcd"));
        assert!(!same("abcd", "abce"));
        assert!(!same("abc", "abcd"));
        assert!(!same("", "a"));
    }

    #[test]
    fn header_and_cookie_present_the_token() {
        let mut h = HeaderMap::new();
        let c = cookie_name(8081);
        assert_eq!(presented(&h, &c), None);
        h.insert(
            header::COOKIE,
            "a=1; rh_console_9000=other; rh_console_8081=xyz; b=2"
                .parse()
                .unwrap(),
        );
        assert_eq!(presented(&h, &c), Some("xyz"));
        assert_eq!(presented(&h, &cookie_name(9000)), Some("other"));
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert_eq!(presented(&h, &c), Some("tok"));
    }

    #[test]
    fn posts_from_other_origins_are_told_apart() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(same_origin(&h(&[])));
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
        let host = ("host", "127.0.0.1:8081");
        assert!(same_origin(&h(&[
            host,
            ("origin", "http://127.0.0.1:8081")
        ])));
        assert!(!same_origin(&h(&[
            host,
            ("origin", "http://127.0.0.1:9000")
        ])));
        assert!(!same_origin(&h(&[("origin", "http://127.0.0.1:8081")])));
    }

    #[test]
    fn query_token_is_taken_out_of_the_query() {
        assert_eq!(from_query("token=t&node=a"), (Some("t"), "node=a".into()));
        assert_eq!(from_query("node=a&token=t"), (Some("t"), "node=a".into()));
        assert_eq!(from_query("node=a"), (None, "node=a".into()));
        assert_eq!(from_query(""), (None, String::new()));
    }
}
