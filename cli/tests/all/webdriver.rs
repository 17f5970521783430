//! Just enough of a WebDriver client for the browser test (`web`): Debian's
//! `chromedriver` driving headless Chromium, plus a blocking HTTP/1.1
//! client over `std::net` (for the WebDriver wire protocol and for fetching
//! the explorer's API, links and CSV) — no new dependency, nothing
//! downloaded. Console logs come from `se/log` (`goog:loggingPrefs`); exact
//! viewport widths and full-page screenshots from the DevTools protocol
//! through chromedriver's CDP passthrough.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// An HTTP response: status, `Content-Type`, body.
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request (`Connection: close`) to an `http://host:port/path`
/// URL; the body is sent as JSON when given. Handles `Content-Length`,
/// chunked and read-to-close bodies.
pub fn http(method: &str, url: &str, body: Option<&Value>) -> Result<Response, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect {host}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n");
    if body.is_some() || method == "POST" {
        req.push_str(&format!(
            "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("{method} {url}: {e}"))?;
    // Read the head, then exactly the body: chromedriver keeps the
    // connection open despite `Connection: close`.
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {url}: bad status line {line:?}"))?;
    let mut content_type = String::new();
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        r.read_line(&mut line)
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.to_string(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let read = |e: std::io::Error| format!("{method} {url}: body: {e}");
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).map_err(read)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| format!("{method} {url}: bad chunk size {line:?}"))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).map_err(read)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(read)?;
    } else {
        r.read_to_end(&mut body).map_err(read)?;
    }
    Ok(Response {
        status,
        content_type,
        body,
    })
}

/// Standard base64 (screenshots come back in it).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return Err(format!("not base64: {:?}", c as char)),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// A chromedriver process and one headless Chromium session in it; both
/// end when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver (on a free port) and a session. `Err` says which
    /// program is missing (the caller decides whether that skips); once
    /// both are there, any failure to start panics.
    pub fn start() -> Result<Browser, String> {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            if !Path::new(bin).exists() {
                return Err(format!(
                    "{bin} is missing (apt-get install chromium chromium-driver)"
                ));
            }
        }
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMEDRIVER}: {e}"));
        let out = driver.stdout.take().expect("chromedriver stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Reads the port, then keeps draining so chromedriver never blocks.
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().to_string());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not say which port it listens on");
            }
        };
        let base = format!("http://127.0.0.1:{port}");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--hide-scrollbars",
                         "--window-size=1366,900"],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created = http("POST", &format!("{base}/session"), Some(&caps))
            .and_then(|r| r.json())
            .and_then(|v| {
                v["value"]["sessionId"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("no session: {v}"))
            });
        match created {
            Ok(session) => Ok(Browser {
                driver,
                base,
                session,
            }),
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver could not start Chromium: {e}")
            }
        }
    }

    /// A WebDriver command; panics with the driver's error.
    pub fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let sent = (method == "POST").then_some(&body);
        let r = http(method, &url, sent).unwrap_or_else(|e| panic!("WebDriver: {e}"));
        let v = r
            .json()
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        assert!(
            r.status == 200,
            "WebDriver {method} {path} {body}: {} {v:#}",
            r.status
        );
        v["value"].clone()
    }

    /// Navigates and waits for the load event.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    /// Runs `js` (a function body; `arguments[i]` are `args`) and returns
    /// its value.
    pub fn script(&self, js: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": js, "args": args }),
        )
    }

    /// A DevTools protocol command.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({ "cmd": cmd, "params": params }),
        )
    }

    /// The browser console's entries since the last call (drained).
    pub fn console(&self) -> Vec<Value> {
        self.cmd("POST", "/se/log", json!({ "type": "browser" }))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// An exact CSS viewport width (a phone's below 600 px: mobile
    /// emulation, which honours the page's viewport meta tag).
    pub fn set_width(&self, width: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width, "height": if width < 600 { 844 } else { 900 },
                "deviceScaleFactor": 1, "mobile": width < 600,
            }),
        );
    }

    /// Presses and releases one key (a WebDriver key code, e.g. Tab
    /// `\u{E004}`).
    pub fn key(&self, key: &str) {
        self.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]}),
        );
        self.cmd("DELETE", "/actions", json!({}));
    }

    /// A full-page PNG (the whole document, at most `max_height` CSS px
    /// tall) written to `path`; returns its pixel width and height.
    pub fn screenshot(&self, path: &Path, max_height: u64) -> (u32, u32) {
        let size = self.script(
            "const d = document.documentElement;\
             return [d.clientWidth, Math.max(d.scrollHeight, document.body ? document.body.scrollHeight : 0)];",
            json!([]),
        );
        let width = size[0].as_u64().expect("width");
        let height = size[1].as_u64().expect("height").min(max_height);
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({
                "format": "png", "captureBeyondViewport": true, "fromSurface": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }),
        );
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, &png).expect("write screenshot");
        let dim = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
        (dim(16), dim(20))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            "DELETE",
            &format!("{}/session/{}", self.base, self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn base64_decodes_the_standard_alphabet() {
    assert_eq!(
        base64_decode("aGVsbG8gd29ybGQ=").expect("decodes"),
        b"hello world"
    );
    assert_eq!(base64_decode("+/8=").expect("decodes"), [0xfb, 0xff]);
}
