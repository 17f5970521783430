//! CSV exports (RFC 4180): a header row, then one row per item.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The most rows one export holds; a cut export says so in `X-Truncated`.
pub const MAX_ROWS: u32 = 10_000;

/// A CSV document being written.
#[derive(Debug, Default)]
pub struct Csv {
    text: String,
}

impl Csv {
    /// Starts a document with its header row.
    pub fn new(header: &[&str]) -> Csv {
        let mut c = Csv::default();
        c.row(header.iter().map(|h| h.to_string()));
        c
    }

    /// Appends a row.
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        let mut first = true;
        for cell in cells {
            if !first {
                self.text.push(',');
            }
            first = false;
            if cell.contains([',', '"', '\n', '\r']) {
                self.text.push('"');
                self.text.push_str(&cell.replace('"', "\"\""));
                self.text.push('"');
            } else {
                self.text.push_str(&cell);
            }
        }
        self.text.push_str("\r\n");
    }

    /// The response: `text/csv`, a file name, and `X-Truncated` when
    /// `total` rows exist but fewer were written.
    pub fn into_response(self, filename: &str, written: u64, total: u64) -> Response {
        let mut r = self.text.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        if written < total
            && let Ok(v) = HeaderValue::from_str(&format!("{written} of {total} rows"))
        {
            h.insert("x-truncated", v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_with_separators_are_quoted() {
        let mut c = Csv::new(&["a", "b"]);
        c.row(["x,y".to_string(), "say \"hi\"".to_string()]);
        assert_eq!(c.text, "a,b\r\n\"x,y\",\"say \"\"hi\"\"\"\r\n");
    }
}
