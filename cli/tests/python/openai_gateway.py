#!/usr/bin/env python3
"""The gateway through the official `openai` client (cli/tests/all/gateway.rs).

    openai_gateway.py check  BASE_URL KEY EXPECTED_DIR TEXTS_JSON
    openai_gateway.py slow   BASE_URL KEY COUNT TIMEOUT_S
    openai_gateway.py limit  BASE_URL KEY
    openai_gateway.py upfront BASE_URL KEY
    openai_gateway.py who    BASE_URL KEY COUNT
    openai_gateway.py chat   BASE_URL KEY MESSAGES_JSON EXPECTED_COMPLETION_JSON MAX_TOKENS

`check`: EXPECTED_DIR holds a local `assay run` of minilm-embed on
TEXTS_JSON (`embeddings`, `tokens.json`); every embedding the gateway returns
must equal it bit for bit, as floats and as base64, and the errors must be
OpenAI's. `limit`: KEY's spend limit is what one sentence may cost at most:
its first request is served, the next refused with 429 `insufficient_quota`.
`upfront`: KEY's limit is below what one sentence may cost: the request is
refused with 429 before it runs; prints the most it may cost (`hold N`). `who`: COUNT requests from
concurrent callers; prints the providers that ran them (the `assay` field).
`slow`: one request of COUNT long sentences (a provider is killed
while it runs); it must succeed or fail with 503 within TIMEOUT_S.
`chat`: a greedy chat completion of MESSAGES_JSON must be the local run's
(`completion.json` of llm-generate): the text, the token ids (the `assay`
field), the usage and the finish reason; the same request streamed
(`stream=True`, usage included) must give the same text in its deltas, the
finish reason, the usage and the job's id in every chunk, and over plain
HTTP be `text/event-stream` ending with `data: [DONE]`; then OpenAI's errors
for what the gateway cannot do.
Prints one line per check; exits non-zero on the first failure.
"""

import base64
import http.client
import json
import re
import struct
import sys
import time
import urllib.parse

import openai

MODEL = "all-MiniLM-L6-v2"


def rows_of(path, n):
    data = open(path, "rb").read()
    assert len(data) % n == 0, f"{len(data)} bytes for {n} rows"
    width = len(data) // n
    return [data[i * width:(i + 1) * width] for i in range(n)]


def bits(vector):
    """The little-endian f32 bytes of a list of floats (exact for f32 values)."""
    return b"".join(struct.pack("<f", v) for v in vector)


def check(base_url, key, expected_dir, texts_path):
    texts = json.load(open(texts_path))
    expected = rows_of(f"{expected_dir}/embeddings", len(texts))
    tokens = json.load(open(f"{expected_dir}/tokens.json"))
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)

    models = client.models.list()
    ids = sorted(m.id for m in models.data)
    assert ids == ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"], ids
    print("models: ok", ids)

    strings = [t for t in texts if isinstance(t, str)]
    string_rows = [expected[i] for i, t in enumerate(texts) if isinstance(t, str)]
    string_tokens = sum(len(tokens[i]) for i, t in enumerate(texts) if isinstance(t, str))

    # Floats: JSON numbers, exactly the f32 the job computed.
    r = client.embeddings.create(model=MODEL, input=strings, encoding_format="float")
    assert [d.index for d in r.data] == list(range(len(strings)))
    for d, want in zip(r.data, string_rows):
        assert bits(d.embedding) == want, f"float row {d.index} differs"
    assert r.usage.prompt_tokens == string_tokens, (r.usage.prompt_tokens, string_tokens)
    print(f"float: {len(r.data)} rows bit-identical, prompt_tokens {r.usage.prompt_tokens}")

    # The client's default: it asks for base64 and decodes it itself.
    raw = client.embeddings.with_raw_response.create(model="sentence-transformers/all-MiniLM-L6-v2", input=strings)
    job = raw.headers.get("x-assay-job")
    receipt = raw.headers.get("x-assay-receipt")
    assert job and len(job) == 64 and receipt and len(receipt) == 64, (job, receipt)
    body = json.loads(raw.http_response.text)
    assert body["assay"]["job_id"] == job and body["assay"]["receipt_id"] == receipt, body["assay"]
    assert isinstance(body["data"][0]["embedding"], str), "the client asked for base64"
    parsed = raw.parse()
    for d, want in zip(parsed.data, string_rows):
        assert bits(d.embedding) == want, f"base64 row {d.index} differs"
    print(f"base64: {len(parsed.data)} rows bit-identical; job {job} receipt {receipt}")

    # Every input shape at once: strings and token arrays, one row each.
    r = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    for d, want in zip(r.data, expected):
        assert bits(d.embedding) == want, f"mixed row {d.index} differs"
    # Asked for explicitly, base64 comes back as the string itself.
    one = client.embeddings.create(model=MODEL, input=strings[0], encoding_format="base64")
    assert base64.b64decode(one.data[0].embedding) == string_rows[0]
    print(f"mixed strings and token arrays: {len(r.data)} rows bit-identical; single string ok")

    # A bad key: 401, OpenAI's error object.
    bad = openai.OpenAI(base_url=base_url, api_key="sk-assay-not-a-key", max_retries=0)
    try:
        bad.embeddings.create(model=MODEL, input="x")
        raise AssertionError("a bad key was accepted")
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.code == "invalid_api_key", (e.status_code, e.code)
        assert e.body and "message" in e.body, e.body
        print("bad key: 401", e.code)

    # Bad input: 400, naming the field.
    for kwargs, param in [
        ({"input": []}, "input"),
        ({"input": [[1, 99999999]]}, "input"),
        ({"input": "x", "dimensions": 128}, "dimensions"),
    ]:
        try:
            client.embeddings.create(model=MODEL, **kwargs)
            raise AssertionError(f"{kwargs} was accepted")
        except openai.BadRequestError as e:
            assert e.status_code == 400 and e.param == param, (kwargs, e.status_code, e.param)
            print(f"bad input {list(kwargs)}: 400 param={e.param}")
    try:
        client.embeddings.create(model="gpt-4", input="x")
        raise AssertionError("an unknown model was accepted")
    except openai.NotFoundError as e:
        assert e.code == "model_not_found", e.code
        print("unknown model: 404 model_not_found")


def slow(base_url, key, count, timeout_s):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout_s + 30)
    sentences = [f"sentence {i}: " + "the provider may be killed while this runs " * 20 for i in range(count)]
    started = time.monotonic()
    try:
        r = client.embeddings.create(model=MODEL, input=sentences, encoding_format="base64")
        took = time.monotonic() - started
        assert len(r.data) == count
        print(f"slow: succeeded after {took:.1f} s (re-queued)")
    except openai.APIStatusError as e:
        took = time.monotonic() - started
        assert e.status_code == 503, (e.status_code, e.message)
        print(f"slow: 503 after {took:.1f} s: {e.message}")
    assert took <= timeout_s + 5, f"took {took:.1f} s, timeout {timeout_s} s"


def upfront(base_url, key):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    try:
        client.embeddings.create(model=MODEL, input="this may cost more than the key has")
        raise AssertionError("a request that may pass the key's limit was served")
    except openai.RateLimitError as e:
        assert e.status_code == 429 and e.code == "insufficient_quota", (e.status_code, e.code)
        match = re.search(r"may cost up to (\d+) µIOSD", e.message)
        assert match, e.message
        print("hold", match.group(1))


def limit(base_url, key):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)
    client.embeddings.create(model=MODEL, input="the one request the limit covers is served")
    try:
        client.embeddings.create(model=MODEL, input="this one is refused")
        raise AssertionError("a key past its spend limit was served")
    except openai.RateLimitError as e:
        assert e.status_code == 429 and e.code == "insufficient_quota", (e.status_code, e.code)
        print("spend limit: 429", e.code)


def who(base_url, key, count):
    import concurrent.futures

    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=120)

    def one(i):
        raw = client.embeddings.with_raw_response.create(model=MODEL, input=[f"request {i} on the cluster"])
        assay = json.loads(raw.http_response.text)["assay"]
        return assay["provider"], assay["job_id"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(count)))
    providers = sorted({p for p, _ in results})
    jobs = len({j for _, j in results})
    print(f"who: {count} requests in {jobs} jobs on providers {' '.join(providers)}")


def chat(base_url, key, messages_path, expected_path, max_tokens):
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=600)
    with open(messages_path) as f:
        messages = json.load(f)
    with open(expected_path) as f:
        want = json.load(f)
    chat_model = "SmolLM2-135M-Instruct"
    assert chat_model in [m.id for m in client.models.list().data]
    raw = client.chat.completions.with_raw_response.create(
        model=chat_model, messages=messages, max_tokens=max_tokens, temperature=0
    )
    r = raw.parse()
    assay = json.loads(raw.http_response.text)["assay"]
    choice = r.choices[0]
    assert r.object == "chat.completion" and len(r.choices) == 1, r
    assert choice.message.role == "assistant"
    assert choice.message.content == want["text"], (choice.message.content, want["text"])
    assert choice.finish_reason == want["finish_reason"], choice.finish_reason
    assert assay["ids"] == want["ids"] and assay["prompt_ids"] == want["prompt_ids"], assay
    assert r.usage.prompt_tokens == len(want["prompt_ids"]), r.usage
    assert r.usage.completion_tokens == len(want["ids"]), r.usage
    assert raw.http_response.headers["x-assay-job"] == assay["job_id"]
    print(f"chat: {r.usage.completion_tokens} tokens equal the local run's: {choice.message.content!r}")
    chat_stream(client, base_url, key, chat_model, messages, max_tokens, want)
    for kwargs, status in [
        # As OpenAI: stream_options only with stream.
        (dict(model=chat_model, messages=messages, stream_options={"include_usage": True}), 400),
        (dict(model=chat_model, messages=messages, n=2), 400),
        (dict(model=chat_model, messages=[{"role": "tool", "content": "x"}]), 400),
        (dict(model=chat_model, messages=messages, max_tokens=100000), 400),
        (dict(model="no-such-model", messages=messages), 404),
    ]:
        try:
            client.chat.completions.create(**kwargs)
            raise AssertionError(f"served {kwargs}")
        except openai.APIStatusError as e:
            assert e.status_code == status, (kwargs, e.status_code, e.message)
            body = e.response.json()["error"]
            assert body["message"] and body["type"], body
    print("chat: bad requests refused in OpenAI's format")
    try:
        openai.OpenAI(base_url=base_url, api_key="sk-assay-wrong", max_retries=0).chat.completions.create(
            model=chat_model, messages=messages
        )
        raise AssertionError("a bad key was served")
    except openai.AuthenticationError as e:
        assert e.status_code == 401
    print("chat: a bad key gets 401")


def extra(model, name):
    """A field OpenAI's types do not have (kept by the client's models)."""
    return (model.model_extra or {}).get(name)


def chat_stream(client, base_url, key, chat_model, messages, max_tokens, want):
    """The greedy request streamed: the same answer, as chunks."""
    stream = client.chat.completions.create(
        model=chat_model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 3, chunks
    with_choices = [c for c in chunks if c.choices]
    content = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert content == want["text"], (content, want["text"])
    assert with_choices[0].choices[0].delta.role == "assistant", with_choices[0]
    assert [c.choices[0].delta.role for c in with_choices[1:] if c.choices[0].delta.role] == []
    finish = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finish == [want["finish_reason"]], finish
    assert with_choices[-1].choices[0].finish_reason, "the finish reason is the last choice"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None, last
    assert last.usage.prompt_tokens == len(want["prompt_ids"]), last.usage
    assert last.usage.completion_tokens == len(want["ids"]), last.usage
    assert last.usage.total_tokens == len(want["prompt_ids"]) + len(want["ids"]), last.usage
    assert all(c.usage is None for c in chunks[:-1]), "usage comes only on the last chunk"
    job = extra(chunks[0], "assay")["job_id"]
    assert job and len(job) == 64, job
    for c in chunks:
        assert c.object == "chat.completion.chunk", c.object
        assert c.id == f"chatcmpl-{job}", (c.id, job)
        assert c.model == chat_model and c.created == chunks[0].created, c
        assert c.system_fingerprint == chunks[0].system_fingerprint, c
        assert extra(c, "assay")["job_id"] == job, extra(c, "assay")
    full = extra(with_choices[-1], "assay")
    assert full["ids"] == want["ids"] and full["prompt_ids"] == want["prompt_ids"], full
    assert full["receipt_id"] and full["cost_micro_iosd"] > 0, full
    pieces = sum(1 for c in with_choices if c.choices[0].delta.content)
    print(f"chat stream: {len(chunks)} chunks ({pieces} of text) equal the local run's; job {job}")

    # The raw events: the headers, comments while the job runs, [DONE] last.
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    body = json.dumps(
        {"model": chat_model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    )
    conn.request(
        "POST",
        url.path.rstrip("/") + "/chat/completions",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 200, (resp.status, resp.read())
    assert resp.getheader("content-type", "").startswith("text/event-stream"), resp.getheaders()
    assert resp.getheader("cache-control") == "no-cache", resp.getheaders()
    text = resp.read().decode()
    conn.close()
    events = text.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]", text[-200:]
    assert events[0].startswith(": "), f"no comment while the job ran: {text[:200]!r}"
    data = [json.loads(e[len("data: "):]) for e in events[:-2] if e.startswith("data: ")]
    assert all(e.startswith(": ") or e.startswith("data: ") for e in events[:-1]), text
    content = "".join(d["choices"][0]["delta"].get("content") or "" for d in data if d["choices"])
    assert content == want["text"], (content, want["text"])
    assert all("usage" not in d for d in data), "no usage unless asked"
    comments = sum(1 for e in events if e.startswith(": "))
    print(f"chat stream over HTTP: text/event-stream, {comments} comment(s) while waiting, ends with [DONE]")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "check":
        check(*args)
    elif mode == "limit":
        limit(*args)
    elif mode == "upfront":
        upfront(*args)
    elif mode == "who":
        who(args[0], args[1], int(args[2]))
    elif mode == "chat":
        chat(args[0], args[1], args[2], args[3], int(args[4]))
    elif mode == "slow":
        slow(args[0], args[1], int(args[2]), float(args[3]))
    else:
        sys.exit(f"unknown mode {mode}")
