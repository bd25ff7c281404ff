//! Renderings shared by the reports: a [`Table`] built once and rendered to the terminal,
//! Markdown and HTML, the one text escape for HTML and XML ([`escape`]), and a
//! self-contained HTML page with inline SVG charts ([`html`]).

pub(crate) mod html;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Rows of cells.
pub(crate) type Rows = Vec<Vec<String>>;

/// Escapes text for HTML and XML (element text and double-quoted attributes).
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A table built once and rendered to any of the report formats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells, each as long as `headers`.
    pub rows: Rows,
}

impl Table {
    /// A table from header names and rows.
    pub fn new(headers: &[&str], rows: Rows) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
        }
    }

    /// A terminal table.
    pub fn to_text(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
            .set_header(self.headers.clone());
        for r in &self.rows {
            t.add_row(r.clone());
        }
        t.to_string()
    }

    /// A Markdown table: header, separator and one line per row (no blank line after);
    /// a `|` inside a cell is escaped so it cannot split the cell.
    pub fn to_markdown(&self) -> String {
        let mut o = format!(
            "| {} |\n|{}\n",
            self.headers.join(" | "),
            "---|".repeat(self.headers.len())
        );
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(o, "| {} |", cells.join(" | "));
        }
        o
    }

    /// An HTML table; cells are escaped, `pass` and `FAIL` cells are coloured.
    pub fn to_html(&self) -> String {
        let mut o = String::from("<table><thead><tr>");
        for h in &self.headers {
            let _ = write!(o, "<th>{}</th>", escape(h));
        }
        o.push_str("</tr></thead><tbody>");
        for r in &self.rows {
            o.push_str("<tr>");
            for c in r {
                let class = match c.as_str() {
                    "FAIL" => " class=\"fail\"",
                    "pass" => " class=\"pass\"",
                    _ => "",
                };
                let _ = write!(o, "<td{class}>{}</td>", escape(c));
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody></table>\n");
        o
    }
}

/// A Markdown table followed by a blank line.
pub(crate) fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut o = Table::new(headers, rows.to_vec()).to_markdown();
    o.push('\n');
    o
}

/// Creates `dir` and writes each `(file name, text)` into it; returns the paths written.
pub(crate) fn write_files(dir: &Path, files: Vec<(&str, String)>) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    files
        .into_iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).map(|()| p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table::new(
            &["name", "result"],
            vec![
                vec!["a <b> & \"c\" 'd'".into(), "pass".into()],
                vec!["e".into(), "FAIL".into()],
            ],
        )
    }

    #[test]
    fn markdown_is_the_same_through_the_table_and_the_function() {
        let t = sample();
        assert_eq!(
            t.to_markdown(),
            "| name | result |\n|---|---|\n| a <b> & \"c\" 'd' | pass |\n| e | FAIL |\n"
        );
        assert_eq!(
            markdown_table(&["name", "result"], &t.rows),
            format!("{}\n", t.to_markdown())
        );
    }

    #[test]
    fn html_escapes_every_cell_and_marks_results() {
        let h = sample().to_html();
        assert!(
            h.contains("<td>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;</td>"),
            "{h}"
        );
        assert!(h.contains("<td class=\"pass\">pass</td>"));
        assert!(h.contains("<td class=\"fail\">FAIL</td>"));
    }
}
