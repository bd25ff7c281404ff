//! Renderings shared by the reports: terminal and Markdown tables, and a self-contained
//! HTML page with inline SVG charts ([`html`]).

pub mod html;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Rows of cells.
pub type Rows = Vec<Vec<String>>;

/// A terminal table.
pub fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY)
        .set_header(headers.to_vec());
    for r in rows {
        t.add_row(r.clone());
    }
    t.to_string()
}

/// A Markdown table followed by a blank line.
pub fn markdown_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut o = format!(
        "| {} |\n|{}\n",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for r in rows {
        let _ = writeln!(o, "| {} |", r.join(" | "));
    }
    o.push('\n');
    o
}

/// Creates `dir` and writes each `(file name, text)` into it; returns the paths written.
pub fn write_files(dir: &Path, files: Vec<(&str, String)>) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    files
        .into_iter()
        .map(|(name, text)| {
            let p = dir.join(name);
            std::fs::write(&p, text).map(|()| p)
        })
        .collect()
}
