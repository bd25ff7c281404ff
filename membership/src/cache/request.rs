//! The seam between a cached route and the cache: the route's request, parsed once.
//!
//! The cache layer parses each request with the route's [`CachedRequest`] type before it
//! looks at Redis, builds the key and tags from the parsed values, and hands the parsed
//! value to the handler (`Parsed`). So the key and tags always name exactly what the
//! handler reads: a percent-encoded or zero-padded spelling of a member is that member, and
//! a value the handler would reject is rejected before it can create a key.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};

use super::keys::CacheKind;

/// A cached route's request in canonical form.
pub trait CachedRequest: Clone + Send + Sync + Sized + 'static {
    /// The answer to a request the handler would not accept.
    type Rejection: IntoResponse + From<RawPathParamsRejection>;

    /// Parses the percent-decoded path parameters and the query of `uri` exactly as the
    /// handler accepts them (defaults filled in, values validated).
    fn parse(params: &[(&str, &str)], uri: &Uri) -> Result<Self, Self::Rejection>;

    /// The canonical path: the route template with the parsed parameters in place.
    fn path(&self, route: &'static str) -> String {
        route.to_string()
    }

    /// The canonical variant: parsed query values in a fixed order, or `default`.
    fn variant(&self) -> String {
        "default".into()
    }

    /// The invalidation tags of the entry.
    fn tags(&self, kind: CacheKind) -> Vec<String> {
        kind.area_tags()
    }
}

/// Parses `R` from request parts (path parameters and query).
pub(crate) async fn parse_parts<R: CachedRequest>(parts: &mut Parts) -> Result<R, R::Rejection> {
    let params = RawPathParams::from_request_parts(parts, &()).await?;
    let pairs: Vec<(&str, &str)> = params.iter().collect();
    R::parse(&pairs, &parts.uri)
}

/// Extractor for handlers: the request as the cache layer parsed it (parsed here when the
/// route has no cache layer).
#[derive(Debug, Clone)]
pub(crate) struct Parsed<R>(pub R);

impl<S: Send + Sync, R: CachedRequest> FromRequestParts<S> for Parsed<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        if let Some(r) = parts.extensions.get::<R>() {
            return Ok(Parsed(r.clone()));
        }
        parse_parts::<R>(parts)
            .await
            .map(Parsed)
            .map_err(IntoResponse::into_response)
    }
}
