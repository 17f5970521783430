//! The OpenAI-compatible gateway against a live network (issue #17), with
//! the official `openai` Python package as the client
//! (`cli/tests/python/openai_gateway.py`): embeddings bit-identical to a
//! local `assay run` of the same job, as floats and as base64; a bad key
//! refused with 401 and bad input with 400, in OpenAI's format; a provider
//! killed mid-request: the request still succeeds (re-queued) or fails
//! with 503 before its timeout.
//!
//! Needs the model (`assay model fetch`) and python3 with `openai`; without
//! either it prints SKIPPED and passes, unless `ASSAY_REQUIRE_MODEL=1` /
//! `ASSAY_REQUIRE_PYTHON=1` say they must be there (CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assay_guests::Guest;

use crate::common::{self, Proc};
use crate::minilm::model_or_skip;

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// python3 with the `openai` package, or None (skipped visibly).
fn python_or_skip(test: &str) -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", "import openai"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !required("ASSAY_REQUIRE_PYTHON"),
            "ASSAY_REQUIRE_PYTHON=1 but python3 cannot import openai (pip install openai)"
        );
        println!("SKIPPED {test}: python3 with the `openai` package is not installed");
    }
    ok.then_some(())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_gateway.py")
}

/// `assay gateway` on a free port, once it answers.
fn gateway(home: &Path, url: &str, extra: &[&str]) -> (Proc, String) {
    let port = common::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(common::BIN)
        .args(["gateway", "--listen", &listen, "--coordinator", url])
        .args(extra)
        .env("ASSAY_HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gateway");
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, format!("http://{listen}/v1"))
}

/// The last line of a command's output (where `gateway key create` prints the key).
fn last_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .last()
        .expect("the key is the last line")
        .trim()
        .to_string()
}

fn run_script(args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "openai_gateway.py {}: exit {:?}\nstdout: {stdout}\nstderr: {}",
        args[0],
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{stdout}");
    stdout
}

#[test]
fn the_official_openai_client_gets_embeddings_equal_to_a_local_run_and_openai_errors() {
    let test = "gateway with the openai client";
    let Some(model) = model_or_skip(test) else {
        return;
    };
    if python_or_skip(test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();

    // The local run: the same guest, the model files and the texts.
    let texts = serde_json::json!([
        "The quick brown fox jumps over the lazy dog.",
        "two lines\nin one input",
        "",
        "Ünïcödé, emoji 🙂 and punctuation!?",
        [7592, 2088],
        "Assay makes the result trustworthy: a hash comparison, not a tolerance argument."
    ]);
    let texts_path = root.join("texts.json");
    std::fs::write(&texts_path, texts.to_string()).expect("texts");
    let component = root.join("minilm.wasm");
    std::fs::write(&component, Guest::MinilmEmbed.bytes()).expect("component");
    let mut run_args: Vec<String> = vec!["run".into(), component.display().to_string()];
    for (name, bytes) in &model.files {
        let p = root.join(name);
        std::fs::write(&p, bytes).expect("model file");
        run_args.extend(["--input".into(), format!("{name}={}", p.display())]);
    }
    let expected = root.join("local");
    run_args.extend([
        "--input".into(),
        format!("texts={}", texts_path.display()),
        "--out".into(),
        expected.display().to_string(),
    ]);
    let args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    common::ok(common::assay(
        &root.join("local-home"),
        "http://127.0.0.1:1",
        &args,
    ));

    // The network: a coordinator, one provider, a gateway paying from its own account.
    let (_coord, url) = common::coordinator(&root.join("coord"), "127.0.0.1:0", &[]);
    let first = root.join("provider-a");
    let provider_a = common::provider(&url, &first, 10, 1);
    let gw_home = root.join("gateway");
    common::ok(common::assay(&gw_home, &url, &["faucet"]));
    let created = common::ok(common::assay(
        &gw_home,
        &url,
        &["gateway", "key", "create", "--name", "ci"],
    ));
    let key = last_line(&created.stdout);
    assert!(key.starts_with("sk-assay-"), "{key}");
    let (_gw, base) = gateway(&gw_home, &url, &["--timeout-s", "20"]);

    let out = run_script(&[
        "check",
        &base,
        &key,
        &expected.display().to_string(),
        &texts_path.display().to_string(),
    ]);
    assert!(out.contains("bit-identical"), "{out}");

    // A key with a spend limit of 1 µIOSD: a sentence may cost more, so it
    // is refused before it runs; a key whose limit is exactly what one
    // sentence may cost gets one answer, then 429; neither passes its limit.
    let key_with_limit = |name: &str, limit: &str| {
        let created = common::ok(common::assay(
            &gw_home,
            &url,
            &[
                "gateway",
                "key",
                "create",
                "--name",
                name,
                "--spend-limit",
                limit,
            ],
        ));
        last_line(&created.stdout)
    };
    let tiny = key_with_limit("tiny", "0.000001");
    let hold: u64 = run_script(&["upfront", &base, &tiny])
        .lines()
        .find_map(|l| l.strip_prefix("hold "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the most a sentence may cost");
    let exact_limit = format!("{}.{:06}", hold / 1_000_000, hold % 1_000_000);
    let exact = key_with_limit("exact", &exact_limit);
    run_script(&["limit", &base, &exact]);
    let listed = common::ok(common::assay(&gw_home, &url, &["gateway", "key", "list"]));
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    for line in listed
        .lines()
        .filter(|l| l.starts_with("exact") || l.starts_with("tiny"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |w: &str| {
            words
                .iter()
                .position(|x| *x == w)
                .and_then(|i| words.get(i + 1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no {w} in {line:?}"))
        };
        assert!(after("spent") <= after("limit"), "{line}");
        if line.starts_with("tiny") {
            assert_eq!(
                after("spent"),
                0.0,
                "a refused request costs nothing: {line}"
            );
        } else {
            assert!(after("spent") > 0.0, "{line}");
        }
    }

    // The key is stored hashed: its secret is nowhere in the gateway's home.
    let db = std::fs::read(gw_home.join("gateway.sqlite")).expect("key store");
    assert!(
        !String::from_utf8_lossy(&db).contains(&key["sk-assay-".len()..]),
        "the key store holds the secret"
    );

    // The same gateway over HTTPS (--tls-cert/--tls-key): a client trusting
    // the CA lists the models with the key; plain HTTP gets nothing.
    let tls = crate::tls_files::make(&root.join("tls"), &["127.0.0.1"]).expect("certificates");
    let (cert, tls_key) = (
        tls.cert.display().to_string(),
        tls.key.display().to_string(),
    );
    let (_gw_tls, plain_base) = gateway(
        &gw_home,
        &url,
        &["--tls-cert", &cert, "--tls-key", &tls_key],
    );
    let https_base = plain_base.replacen("http://", "https://", 1);
    let agent = crate::common::https_agent(&std::fs::read(&tls.ca).expect("ca"));
    let models = agent
        .get(format!("{https_base}/models"))
        .header("authorization", format!("Bearer {key}"))
        .call()
        .expect("GET /v1/models over HTTPS")
        .body_mut()
        .read_to_string()
        .expect("body");
    assert!(models.contains("\"data\""), "{models}");
    assert!(
        ureq::get(format!("{plain_base}/models"))
            .config()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .call()
            .is_err(),
        "plain HTTP to the HTTPS port"
    );

    // A provider killed mid-request: the lease expires (1.5 s here), a
    // second provider takes the shard, and the request still succeeds —
    // or, if nothing can finish it in time, fails with 503 before its timeout.
    let slow = Command::new("python3")
        .arg(script())
        .args(["slow", &base, &key, "64", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    std::thread::sleep(Duration::from_millis(1500));
    drop(provider_a); // SIGKILL
    let _provider_b = common::provider(&url, &root.join("provider-b"), 10, 1);
    let out = slow.wait_with_output().expect("slow request");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the request neither succeeded nor failed with 503 in time: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{stdout}");
}

#[test]
fn a_gateway_on_a_reserved_cluster_runs_every_request_on_its_members() {
    let test = "gateway on a reserved cluster";
    if model_or_skip(test).is_none() || python_or_skip(test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let (_coord, url) = common::coordinator(&root.join("coord"), "127.0.0.1:0", &[]);
    let (member, outsider) = (root.join("member"), root.join("outsider"));
    let gw_home = root.join("gateway");
    let (member_id, outsider_id) = (
        common::node_id(&member, &url),
        common::node_id(&outsider, &url),
    );
    // The outsider asks less per unit of work: only the reservation keeps
    // the gateway's jobs off it.
    let _member = common::provider_with(&url, &member, 10, 2, &["--reserve-price", "1"]);
    let _outsider = common::provider_with(&url, &outsider, 5, 2, &["--reserve-price", "3"]);
    common::wait_registered(&gw_home, &url, &member_id);
    common::wait_registered(&gw_home, &url, &outsider_id);
    common::ok(common::assay(&gw_home, &url, &["faucet"]));
    let (cluster, _) = common::cluster_of_one(&gw_home, &url);
    let key =
        last_line(&common::ok(common::assay(&gw_home, &url, &["gateway", "key", "create"])).stdout);
    let (_gw, base) = gateway(
        &gw_home,
        &url,
        &["--cluster", &cluster, "--timeout-s", "30"],
    );
    let out = run_script(&["who", &base, &key, "16"]);
    assert!(
        out.trim_end()
            .ends_with(&format!("on providers {member_id}")),
        "every request ran on the cluster's member {member_id}: {out}"
    );
}

/// `POST /v1/chat/completions` (issue #18) through the official client: a
/// greedy completion equal to a local `assay run` of llm-generate on the
/// same messages, streamed too (`stream=True`: the same text in the
/// chunks' deltas, the usage, the job's id in every chunk; over raw HTTP
/// `text/event-stream` ending with `data: [DONE]`), and OpenAI's errors
/// for what the gateway cannot do.
#[test]
fn the_official_openai_client_gets_chat_completions_equal_to_a_local_run() {
    let test = "chat completions with the openai client";
    let Some(model) = crate::chat::model_or_skip(test) else {
        return;
    };
    if python_or_skip(test).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let messages = serde_json::json!([
        { "role": "system", "content": "You answer in one short sentence." },
        { "role": "user", "content": "What colour is the sky on a clear day?" },
    ]);
    let messages_path = root.join("messages.json");
    std::fs::write(&messages_path, messages.to_string()).expect("messages");
    let (component, gguf) = (root.join("llm.wasm"), root.join("model.gguf"));
    std::fs::write(&component, Guest::LlmGenerate.bytes()).expect("component");
    std::fs::write(&gguf, &model[..]).expect("model");
    let local = root.join("local");
    let path = |p: &Path| p.display().to_string();
    common::ok(common::assay(
        &root.join("local-home"),
        "http://127.0.0.1:1",
        &[
            "run",
            &path(&component),
            "--input",
            &format!("model={}", path(&gguf)),
            "--input",
            &format!("messages={}", path(&messages_path)),
            "--param",
            "max_tokens=12",
            "--param",
            "temperature=0",
            "--out",
            &path(&local),
        ],
    ));

    let (_coord, url) = common::coordinator(&root.join("coord"), "127.0.0.1:0", &[]);
    let _provider = common::provider(&url, &root.join("provider"), 1, 1);
    let gw_home = root.join("gateway");
    common::ok(common::assay(&gw_home, &url, &["faucet"]));
    let created = common::ok(common::assay(&gw_home, &url, &["gateway", "key", "create"]));
    let key = last_line(&created.stdout);
    let (_gw, base) = gateway(&gw_home, &url, &["--chat", "--max-price", "1"]);
    let out = run_script(&[
        "chat",
        &base,
        &key,
        &path(&messages_path),
        &path(&local.join("completion.json")),
        "12",
    ]);
    assert!(out.contains("tokens equal the local run's"), "{out}");
    assert!(out.contains("chat stream: "), "{out}");
    assert!(out.contains("ends with [DONE]"), "{out}");
}
