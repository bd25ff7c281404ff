//! The layout every page shares: head, navigation, the mode badge, and the assets.

use axum::response::Html;

use crate::report::escape;

/// The stylesheet.
pub(crate) const CSS: &str = include_str!("assets/console.css");
/// The script: SSE subscriptions that swap server-rendered fragments in.
pub(crate) const JS: &str = include_str!("assets/console.js");

/// The pages, in navigation order: (path, title).
const NAV: [(&str, &str); 5] = [
    ("/topology", "Topology"),
    ("/events", "Events"),
    ("/keys", "Keys"),
    ("/command", "Command"),
    ("/reports", "Reports"),
];

/// What the layout needs to know about the console.
pub(crate) struct Frame<'a> {
    /// Topology name, when a target is set.
    pub(crate) topology: Option<&'a str>,
    /// `--allow-write`.
    pub(crate) allow_write: bool,
}

/// A whole page: `body` under the navigation, with `active` (a path of [`NAV`]) marked.
pub(crate) fn layout(frame: &Frame<'_>, active: &str, title: &str, body: &str) -> Html<String> {
    let nav: String = NAV
        .iter()
        .map(|(path, name)| {
            format!(
                "<a href=\"{path}\"{}>{name}</a>",
                if *path == active {
                    " class=\"active\" aria-current=\"page\""
                } else {
                    ""
                }
            )
        })
        .collect();
    let mode = if frame.allow_write {
        "<span class=\"badge write\" id=\"mode\" data-mode=\"write\">writes allowed</span>"
    } else {
        "<span class=\"badge\" id=\"mode\" data-mode=\"read-only\">read-only</span>"
    };
    let topo = frame
        .topology
        .map(|t| format!("<span class=\"topo\">{}</span>", escape(t)))
        .unwrap_or_else(|| "<span class=\"topo\">no topology yet</span>".into());
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · redis-harness console</title><link rel=\"stylesheet\" href=\"/assets/console.css\"></head><body data-page=\"{}\"><header><span class=\"brand\">redis-harness console</span>{topo}<nav>{nav}</nav>{mode}<span id=\"live\" class=\"live\" title=\"live updates\"></span></header><main><h1>{}</h1>{body}</main><script src=\"/assets/console.js\"></script></body></html>\n",
        escape(title),
        active.trim_start_matches('/'),
        escape(title),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_page_is_marked_and_the_title_escaped() {
        let Html(h) = layout(
            &Frame {
                topology: Some("t<1>"),
                allow_write: false,
            },
            "/keys",
            "Keys <all>",
            "<p>x</p>",
        );
        assert!(h.contains("<a href=\"/keys\" class=\"active\""));
        assert!(h.contains("Keys &lt;all&gt;"));
        assert!(h.contains("t&lt;1&gt;"));
        assert!(h.contains("data-mode=\"read-only\""));
    }
}
