//! How records are shown: money with its unit, times in UTC, short ids,
//! and the cells of a page, each number marked with the API value it shows.

use std::fmt::{self, Display, Write as _};

use assay_coordinator::ledger::accounts::format_amount;

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// `1.500000 IOSD`.
pub fn money(base_units: u64, unit: &str) -> String {
    format!("{} {unit}", format_amount(base_units))
}

/// A signed amount, `-1.200000 IOSD`.
pub fn signed_money(v: i64, unit: &str) -> String {
    if v < 0 {
        format!("-{}", money(v.unsigned_abs(), unit))
    } else {
        money(v as u64, unit)
    }
}

/// `2026-12-04 13:05:09 UTC` (proleptic Gregorian, from Unix ms).
pub fn time(ms: u64) -> String {
    if ms == 0 {
        return "—".into();
    }
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `HH:MM` of a Unix ms time (UTC), for chart axes.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}", s / 3600, s % 3600 / 60)
}

/// `HH:MM:SS` of a Unix ms time (UTC).
pub fn clock_seconds(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// The first 12 hex digits of an id and an ellipsis.
pub fn short(id: &str) -> String {
    if id.len() > 12 {
        format!("{}…", &id[..12])
    } else {
        id.to_string()
    }
}

/// `97.5 %` from per mille.
pub fn permille(p: u64) -> String {
    format!("{}.{} %", p / 10, p % 10)
}

/// `1.5 GiB`.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// One cell of a page: text, a link, or a number marked with the API value
/// it shows. Displays as HTML (escaped).
#[derive(Debug, Clone)]
pub enum Cell {
    /// Plain text.
    Text(String),
    /// Monospace text (hashes, commands).
    Code(String),
    /// A link.
    Link { href: String, text: String },
    /// A value from the API: where it came from and its raw JSON value.
    Api {
        source: String,
        value: String,
        text: String,
    },
    /// A status word with its class (`ok`, `bad`, `warn`, `muted`).
    Badge { class: &'static str, text: String },
}

impl Cell {
    /// A value shown as it is in the API (`source` = `path#/pointer`).
    pub fn api(source: impl Into<String>, value: impl Display) -> Cell {
        let v = value.to_string();
        Cell::Api {
            source: source.into(),
            text: v.clone(),
            value: v,
        }
    }

    /// A value shown formatted (money, a time) with its raw API value.
    pub fn api_shown(
        source: impl Into<String>,
        value: impl Display,
        text: impl Into<String>,
    ) -> Cell {
        Cell::Api {
            source: source.into(),
            value: value.to_string(),
            text: text.into(),
        }
    }

    /// Plain text.
    pub fn text(t: impl Into<String>) -> Cell {
        Cell::Text(t.into())
    }

    /// A link.
    pub fn link(href: impl Into<String>, text: impl Into<String>) -> Cell {
        Cell::Link {
            href: href.into(),
            text: text.into(),
        }
    }
}

impl Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(t) => f.write_str(&esc(t)),
            Cell::Code(t) => write!(f, "<code>{}</code>", esc(t)),
            Cell::Link { href, text } => {
                write!(f, "<a href=\"{}\">{}</a>", esc(href), esc(text))
            }
            Cell::Api {
                source,
                value,
                text,
            } => write!(
                f,
                "<span data-api=\"{}\" data-value=\"{}\">{}</span>",
                esc(source),
                esc(value),
                esc(text)
            ),
            Cell::Badge { class, text } => {
                write!(f, "<span class=\"badge {class}\">{}</span>", esc(text))
            }
        }
    }
}

/// A JSON pointer segment list as `path#/a/b/0`.
pub fn src(path: &str, pointer: &[&dyn Display]) -> String {
    let mut s = format!("{path}#");
    for p in pointer {
        let _ = write!(s, "/{p}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_amounts_read_as_people_write_them() {
        assert_eq!(time(0), "—");
        assert_eq!(time(1_796_390_709_000), "2026-12-04 13:25:09 UTC");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(money(1_500_000, "IOSD"), "1.500000 IOSD");
        assert_eq!(signed_money(-1_200_000, "IOSD"), "-1.200000 IOSD");
        assert_eq!(permille(975), "97.5 %");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(
            Cell::api("/api/v1/x#/a", 3).to_string(),
            "<span data-api=\"/api/v1/x#/a\" data-value=\"3\">3</span>"
        );
        assert_eq!(Cell::text("<b>").to_string(), "&lt;b&gt;");
    }
}
