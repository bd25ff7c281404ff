//! The Reports page: the JSON, HTML, Markdown and XML reports in a directory, listed
//! newest first and viewable. Only plain files directly in the directory are served, by
//! name; nothing outside it can be reached.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::report::escape;

/// Extensions listed.
const KINDS: [&str; 6] = ["json", "html", "md", "xml", "txt", "csv"];

/// Largest file shown (bigger ones are cut, with a note).
pub(crate) const VIEW_CAP: usize = 4 << 20;

/// One listed report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// File name.
    pub(crate) name: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Modification time, s since the Unix epoch.
    pub(crate) modified: u64,
}

/// The reports in `dir`, newest first.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ext = Path::new(&name)
            .extension()
            .and_then(|x| x.to_str())
            .unwrap_or("");
        if !meta.is_file() || !KINDS.contains(&ext) {
            continue;
        }
        out.push(Listed {
            name,
            size: meta.len(),
            modified: meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0),
        });
    }
    out.sort_by(|a, b| b.modified.cmp(&a.modified).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The path of report `name` in `dir`, when `name` is a listed file's plain name.
pub(crate) fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return None;
    }
    list(dir)
        .ok()?
        .into_iter()
        .any(|l| l.name == name)
        .then(|| dir.join(name))
}

/// The page body listing `dir`.
pub(crate) fn page(dir: Option<&Path>) -> String {
    let Some(dir) = dir else {
        return "<div class=\"note\" id=\"no-reports\">No reports directory: start the console with <code>--reports DIR</code> (default: <code>redis-harness-report</code> when it exists).</div>".into();
    };
    let listed = match list(dir) {
        Ok(l) => l,
        Err(e) => {
            return format!(
                "<div class=\"error\">cannot read {}: {}</div>",
                escape(&dir.display().to_string()),
                escape(&e.to_string())
            )
        }
    };
    let mut h = format!(
        "<p class=\"note\">{} report files in <code>{}</code>, newest first.</p><table class=\"grid\" id=\"reports\"><thead><tr><th>file</th><th>size</th><th>modified (UTC)</th></tr></thead><tbody>",
        listed.len(),
        escape(&dir.display().to_string())
    );
    for l in &listed {
        let q: String = form_urlencoded::byte_serialize(l.name.as_bytes()).collect();
        h.push_str(&format!(
            "<tr data-file=\"{}\"><td><a href=\"/reports/view?f={q}\">{}</a></td><td>{} B</td><td class=\"t\">{}</td></tr>",
            escape(&l.name),
            escape(&l.name),
            l.size,
            super::events::clock(l.modified * 1000)
        ));
    }
    h.push_str("</tbody></table>");
    h
}

/// The body of a non-HTML report: JSON pretty-printed, anything else as text, cut at
/// [`VIEW_CAP`] (`bytes` holds at most one byte more, to tell that it was cut).
pub(crate) fn view_text(name: &str, bytes: &[u8]) -> String {
    let cut = bytes.len() > VIEW_CAP;
    let shown = &bytes[..bytes.len().min(VIEW_CAP)];
    let text = if name.ends_with(".json") && !cut {
        serde_json::from_slice::<serde_json::Value>(shown)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(shown).into_owned())
    } else {
        String::from_utf8_lossy(shown).into_owned()
    };
    format!(
        "{}<pre class=\"value\" id=\"report\">{}</pre>",
        if cut {
            format!("<p class=\"note\">the first {VIEW_CAP} bytes only</p>")
        } else {
            String::new()
        },
        escape(&text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_report_files_directly_in_the_directory_are_listed_and_served() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("report.json"), "{\"a\":1}").unwrap();
        std::fs::write(d.path().join("report.html"), "<p>x</p>").unwrap();
        std::fs::write(d.path().join("binary.bin"), "x").unwrap();
        std::fs::create_dir(d.path().join("sub.json")).unwrap();
        let names: Vec<String> = list(d.path())
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(resolve(d.path(), "report.json").is_some());
        for bad in [
            "../etc/passwd",
            "binary.bin",
            "sub.json",
            "",
            ".hidden.json",
            "missing.json",
        ] {
            assert!(resolve(d.path(), bad).is_none(), "{bad}");
        }
        assert!(page(Some(d.path())).contains("href=\"/reports/view?f=report.json\""));
    }

    #[test]
    fn json_is_pretty_printed_and_escaped() {
        let h = view_text("r.json", br#"{"a":"<b>"}"#);
        assert!(
            h.contains("{\n  &quot;a&quot;: &quot;&lt;b&gt;&quot;\n}"),
            "{h}"
        );
        let big = vec![b'x'; VIEW_CAP + 1];
        assert!(view_text("r.txt", &big).contains("the first"));
    }
}
