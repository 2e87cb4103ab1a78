"""kvsieve serve end to end, through the official OpenAI Python SDK (and raw
HTTP where the SDK cannot send what is tested: malformed bodies, dropped
connections). Run by ctest (tests/CMakeLists.txt) with the venv's python:
    KVSIEVE_BINARY=build/kvsieve python -m unittest tests/serve/test_serve.py
"""
import concurrent.futures
import http.client
import json
import os
import subprocess
import sys
import time
import unittest

import openai

sys.path.insert(0, os.path.dirname(__file__))
from serve_harness import Server  # noqa: E402

SOURCE = os.environ.get("KVSIEVE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("KVSIEVE_BINARY", os.path.join(SOURCE, "build", "kvsieve"))
TINY = os.path.join(SOURCE, "models", "kvsieve-tiny.gguf")
JUDGEQ = os.path.join(SOURCE, "models", "kvsieve-tiny.judgeq-agnostic.gguf")
SMOLLM2 = os.environ.get("KVSIEVE_SMOLLM2",
                         os.path.join(SOURCE, "models", "cache", "SmolLM2-135M-Instruct.Q4_1.gguf"))
MODEL_ID = "kvsieve-tiny"

# A context of a few hundred tokens in the wording the tiny model was
# trained on (RULER's needle in a haystack), so that a budget of 64 cuts it.
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
CONTEXT = (FILLER * 12 + "One of the special magic numbers for lovely-dinner is: 4712093. " + FILLER * 12)
QUESTION = "What is the special magic number for lovely-dinner mentioned in the provided text? The special magic number for lovely-dinner mentioned in the provided text is"


def kvsieve_run(model, prompt, n, *args):
    """`kvsieve run`'s generated text (greedy) for the same prompt and policy."""
    r = subprocess.run([BINARY, "run", "-m", model, "-p", prompt, "-n", str(n), *args],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("kvsieve run failed: " + r.stderr)
    assert r.stdout.endswith("\n")
    return r.stdout[:-1]


def raw_post(server, path, body, headers=None, method="POST", timeout=60):
    """(status, parsed JSON or None, text) of one raw HTTP request."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    text = r.read()
    conn.close()
    try:
        return r.status, json.loads(text), text
    except ValueError:
        return r.status, None, text


def client(server, key="none"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)


class ServeTiny(unittest.TestCase):
    """One server on the shipped model, its default policy full."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(BINARY, TINY, "--chat-template", "mistral", "--max-prompt-tokens", 5000,
                            "--max-body-bytes", 200000, "--max-tokens", 512, "--parallel", 8,
                            "--judgeq", "agnostic=" + JUDGEQ)
        cls.client = client(cls.server)

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        assert rc == 0, "the server did not stop cleanly (exit %s):\n%s" % (rc, "".join(cls.server.stderr_lines))

    def complete(self, prompt, n, **extra):
        r = self.client.completions.create(model=MODEL_ID, prompt=prompt, max_tokens=n, temperature=0,
                                           extra_body=extra or None)
        return r.choices[0].text, r

    def test_models_health_metrics(self):
        models = self.client.models.list()
        self.assertEqual([m.id for m in models.data], [MODEL_ID])
        status, body = self.server.get("/health")
        self.assertEqual((status, json.loads(body)["status"]), (200, "ok"))
        self.complete("Once upon a time", 3)
        m = self.server.metrics()
        for k in ("kvsieve_prompt_tokens_total", "kvsieve_generated_tokens_total", "kvsieve_queue_length",
                  "kvsieve_kv_bytes_in_use", "kvsieve_kv_bytes_saved_total", "kvsieve_decode_tokens_per_second",
                  "kvsieve_prefill_tokens_per_second", 'kvsieve_requests_total{endpoint="completions",status="200"}'):
            self.assertIn(k, m)
        self.assertGreater(m["kvsieve_prompt_tokens_total"], 0)
        self.assertGreater(m["kvsieve_prefill_tokens_per_second"], 0)

    def test_greedy_equals_kvsieve_run(self):
        cases = [
            ([], {}),
            (["--kv", "snapkv", "--kv-budget", "64"], {"kv": {"method": "snapkv", "budget": 64}}),
            (["--kv", "h2o", "--kv-ratio", "0.75"], {"kv": {"method": "h2o", "ratio": 0.75}}),
            # Query-agnostic: the context is cut before the question is read.
            (["--kv", "laq++", "--kv-budget", "64", "--question", QUESTION],
             {"kv": {"method": "laq++", "budget": 64}, "question": QUESTION}),
            (["--kv", "snapkv", "--kv-budget", "64", "--question", QUESTION, "--query-aware"],
             {"kv": {"method": "snapkv", "budget": 64}, "question": QUESTION, "query_aware": True}),
        ]
        texts = set()
        for args, extra in cases:
            with self.subTest(args=args):
                want = kvsieve_run(TINY, CONTEXT, 24, *args)
                got, r = self.complete(CONTEXT, 24, **extra)
                self.assertEqual(got, want)
                self.assertGreater(len(got), 0)
                texts.add(got)
                if extra.get("kv"):
                    u = r.usage.model_dump()
                    self.assertEqual(u["kv_method"].split(":")[0], extra["kv"]["method"])
                    self.assertLess(u["kv_bytes_kept"], u["kv_bytes_full"])
                    self.assertGreater(u["kv_cut_seconds"], 0)
        self.assertGreater(len(texts), 1)  # the policies change what is generated

    def test_chat_equals_kvsieve_run_chat(self):
        msg = CONTEXT + QUESTION
        want = kvsieve_run(TINY, msg, 16, "--chat-template", "mistral", "--kv", "snapkv", "--kv-budget", "64")
        r = self.client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": msg}],
                                                max_tokens=16, temperature=0,
                                                extra_body={"kv": {"method": "snapkv", "budget": 64}})
        self.assertEqual(r.choices[0].message.content, want)
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertIn(r.choices[0].finish_reason, ("stop", "length"))
        self.assertEqual(r.object, "chat.completion")
        # A multi-turn conversation with a question read after the cut.
        r = self.client.chat.completions.create(
            model=MODEL_ID, max_tokens=8, temperature=0,
            messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello."},
                      {"role": "assistant", "content": "Hello."}, {"role": "user", "content": CONTEXT}],
            extra_body={"kv": {"method": "snapkv", "budget": 64}, "question": QUESTION})
        self.assertGreater(r.usage.prompt_tokens, 200)
        self.assertLess(r.usage.model_dump()["kv_bytes_kept"], r.usage.model_dump()["kv_bytes_full"])

    def test_streaming_equals_non_streamed(self):
        # ignore_eos: 20 tokens whatever the model says, to see them streamed one by one.
        extra = {"kv": {"method": "snapkv", "budget": 64}, "ignore_eos": True}
        want, _ = self.complete(CONTEXT, 20, **extra)
        chunks = list(self.client.completions.create(model=MODEL_ID, prompt=CONTEXT, max_tokens=20, temperature=0,
                                                     stream=True, stream_options={"include_usage": True},
                                                     extra_body=extra))
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        self.assertEqual(text, want)
        self.assertGreaterEqual(sum(1 for c in chunks if c.choices and c.choices[0].text), 10)
        self.assertEqual(chunks[-2].choices[0].finish_reason, "length")
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, 20)
        # Chat.
        msgs = [{"role": "user", "content": CONTEXT + QUESTION}]
        whole = self.client.chat.completions.create(model=MODEL_ID, messages=msgs, max_tokens=12, temperature=0)
        parts = list(self.client.chat.completions.create(model=MODEL_ID, messages=msgs, max_tokens=12,
                                                         temperature=0, stream=True))
        self.assertEqual(parts[0].choices[0].delta.role, "assistant")
        self.assertEqual("".join(p.choices[0].delta.content or "" for p in parts), whole.choices[0].message.content)
        self.assertEqual(parts[-1].choices[0].finish_reason, whole.choices[0].finish_reason)

    def test_stop_strings_end_the_text_before_them(self):
        full, _ = self.complete(CONTEXT, 40)
        stop = full[10:13]
        self.assertTrue(stop.strip())
        got, r = self.client.completions.create(model=MODEL_ID, prompt=CONTEXT, max_tokens=40, temperature=0,
                                                stop=[stop]), None
        got = got.choices[0]
        self.assertEqual(got.text, full[:full.index(stop)])
        self.assertEqual(got.finish_reason, "stop")
        streamed = "".join(c.choices[0].text for c in self.client.completions.create(
            model=MODEL_ID, prompt=CONTEXT, max_tokens=40, temperature=0, stop=stop, stream=True) if c.choices)
        self.assertEqual(streamed, got.text)

    def test_sampling_is_reproducible_with_a_seed(self):
        a = self.client.completions.create(model=MODEL_ID, prompt="Once upon a time", max_tokens=16,
                                           temperature=1.0, top_p=0.9, seed=11).choices[0].text
        b = self.client.completions.create(model=MODEL_ID, prompt="Once upon a time", max_tokens=16,
                                           temperature=1.0, top_p=0.9, seed=11).choices[0].text
        self.assertEqual(a, b)

    def test_judgeq_by_its_start_up_name(self):
        _, r = self.complete(CONTEXT, 8, kv={"method": "judgeq", "budget": 64, "soft_tokens": "agnostic"},
                             question=QUESTION)
        self.assertTrue(r.usage.model_dump()["kv_method"].startswith("judgeq"))
        with self.assertRaises(openai.BadRequestError) as e:
            self.complete(CONTEXT, 8, kv={"method": "judgeq", "budget": 64, "soft_tokens": JUDGEQ})
        self.assertEqual(e.exception.body["param"], "kv.soft_tokens")

    def test_sdk_sees_openai_errors(self):
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.completions.create(model=MODEL_ID, prompt="x", n=2)
        self.assertEqual(e.exception.body["param"], "n")
        with self.assertRaises(openai.NotFoundError):
            self.client.completions.create(model="gpt-4", prompt="x")
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.completions.create(model=MODEL_ID, prompt="x", extra_body={"kv": {"method": "magic", "budget": 8}})
        self.assertEqual((e.exception.body["param"], e.exception.body["code"]), ("kv.method", "unknown_method"))
        with self.assertRaises(openai.BadRequestError) as e:
            self.client.completions.create(model=MODEL_ID, prompt="word " * 6000, max_tokens=4)
        self.assertEqual(e.exception.body["code"], "context_length_exceeded")
        with self.assertRaises(openai.BadRequestError):
            list(self.client.chat.completions.create(model=MODEL_ID, messages=[], stream=True))

    def test_bad_request_corpus_keeps_the_server_serving(self):
        with open(os.path.join(os.path.dirname(__file__), "bad_requests.json")) as f:
            corpus = json.load(f)
        self.assertGreaterEqual(len(corpus), 30)
        good = json.dumps({"model": MODEL_ID, "prompt": "Once upon a time", "max_tokens": 3, "temperature": 0})
        status, first, _ = raw_post(self.server, "/v1/completions", good)
        self.assertEqual(status, 200)
        for case in corpus:
            with self.subTest(case=case["name"]):
                if "raw" in case:
                    body = case["raw"].encode()
                elif "raw_hex" in case:
                    body = bytes.fromhex(case["raw_hex"])
                elif "body" in case:
                    body = json.dumps(case["body"]).encode()
                else:
                    body = None
                status, err, text = raw_post(self.server, case["path"], body, method=case.get("method", "POST"))
                self.assertEqual(status, case["status"], text[:300])
                self.assertIsNotNone(err, text[:300])
                self.assertIsInstance(err["error"]["message"], str)
                self.assertTrue(err["error"]["message"])
                self.assertIn("type", err["error"])
                self.assertIn("param", err["error"])
                self.assertIn("code", err["error"])
                # ... and the next good request is served as before.
                status, again, _ = raw_post(self.server, "/v1/completions", good)
                self.assertEqual(status, 200)
                self.assertEqual(again["choices"][0]["text"], first["choices"][0]["text"])
        self.assertTrue(self.server.alive())

    def test_concurrent_sessions_get_what_each_gets_alone(self):
        jobs = [({"kv": {"method": m, "budget": 64}} if m else {}) for m in
                (None, "snapkv", "h2o", "laq++", "pyramidkv", "tova", "streamingllm", None)]
        alone = [self.complete(CONTEXT, 16 + i, **j)[0] for i, j in enumerate(jobs)]
        with concurrent.futures.ThreadPoolExecutor(len(jobs)) as ex:
            together = list(ex.map(lambda ij: self.complete(CONTEXT, 16 + ij[0], **ij[1])[0], enumerate(jobs)))
        self.assertEqual(together, alone)
        # Short prompts and long answers: sessions overlap in decode whatever
        # the machine's speed, so their steps are batched (more rows than
        # steps) and each still gets what it gets alone.
        short = [("Once upon a time", 64 + i) for i in range(6)]
        alone = [self.complete(p, n, ignore_eos=True)[0] for p, n in short]
        steps0 = self.server.metrics()["kvsieve_decode_steps_total"]
        rows0 = self.server.metrics()["kvsieve_decode_batch_rows_total"]
        with concurrent.futures.ThreadPoolExecutor(len(short)) as ex:
            together = list(ex.map(lambda pn: self.complete(pn[0], pn[1], ignore_eos=True)[0], short))
        self.assertEqual(together, alone)
        m = self.server.metrics()
        self.assertGreater(m["kvsieve_decode_batch_rows_total"] - rows0, 1.5 * (m["kvsieve_decode_steps_total"] - steps0))

    def test_client_gone_mid_stream_frees_its_session(self):
        before = self.server.metrics()
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
        conn.request("POST", "/v1/completions", body=json.dumps(
            {"model": MODEL_ID, "prompt": CONTEXT, "max_tokens": 500, "ignore_eos": True, "stream": True}),
            headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        got = b""
        while got.count(b"data:") < 3:
            got += r.read1(4096) if hasattr(r, "read1") else r.read(64)
        conn.sock.close()
        conn.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            m = self.server.metrics()
            if m['kvsieve_sessions{state="decode"}'] == 0 and m["kvsieve_kv_bytes_reserved"] == 0:
                break
            time.sleep(0.1)
        self.assertEqual(m['kvsieve_sessions{state="decode"}'], 0)
        self.assertEqual(m["kvsieve_kv_bytes_reserved"], 0)
        self.assertLess(m["kvsieve_generated_tokens_total"] - before["kvsieve_generated_tokens_total"], 500)


class ServeLimits(unittest.TestCase):
    """Servers started with limits: a key, a queue, KV memory, a timeout."""

    def test_api_key(self):
        s = Server(BINARY, TINY, "--api-key", "sesame")
        try:
            with self.assertRaises(openai.AuthenticationError):
                client(s, "wrong").models.list()
            with self.assertRaises(openai.AuthenticationError):
                client(s, "wrong").completions.create(model=MODEL_ID, prompt="x", max_tokens=2)
            self.assertEqual(len(client(s, "sesame").models.list().data), 1)
            self.assertEqual(s.get("/health")[0], 200)  # open to probes
        finally:
            self.assertEqual(s.stop(), 0)

    def test_full_queue_gets_503(self):
        s = Server(BINARY, TINY, "--parallel", 1, "--max-queue", 1)
        try:
            body = json.dumps({"model": MODEL_ID, "prompt": CONTEXT, "max_tokens": 150, "ignore_eos": True})
            with concurrent.futures.ThreadPoolExecutor(5) as ex:
                res = list(ex.map(lambda _: raw_post(s, "/v1/completions", body), range(5)))
            codes = sorted(r[0] for r in res)
            self.assertIn(200, codes)
            self.assertIn(503, codes)
            self.assertEqual(set(codes), {200, 503})
            for status, j, _ in res:
                if status == 503:
                    self.assertEqual(j["error"]["code"], "queue_full")
            # The queue drains and the server serves again.
            self.assertEqual(raw_post(s, "/v1/completions", body)[0], 200)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_timeout(self):
        s = Server(BINARY, TINY, "--timeout", 0.3)
        try:
            status, j, _ = raw_post(s, "/v1/completions", json.dumps(
                {"model": MODEL_ID, "prompt": CONTEXT, "max_tokens": 1000, "ignore_eos": True}))
            self.assertEqual((status, j["error"]["code"]), (408, "timeout"))
        finally:
            self.assertEqual(s.stop(), 0)

    def sessions_at_once(self, kv_memory, kv, max_tokens, n=5):
        """Peak sessions alive at once for n concurrent long requests."""
        s = Server(BINARY, TINY, "--kv-memory", kv_memory, "--parallel", 16)
        try:
            body = {"model": MODEL_ID, "prompt": CONTEXT * 3, "max_tokens": max_tokens, "ignore_eos": True}
            if kv:
                body["kv"] = kv
            # With the full cache the requests run one after another: the last one
            # waits for all the others, minutes on a slow machine under ASan.
            post = lambda _: raw_post(s, "/v1/completions", json.dumps(body), timeout=900)
            with concurrent.futures.ThreadPoolExecutor(n) as ex:
                res = list(ex.map(post, range(n)))
            self.assertEqual([r[0] for r in res], [200] * n, [r[2][:200] for r in res])
            # A session's memory is released just after its answer is sent.
            deadline = time.time() + 10
            while (m := s.metrics())["kvsieve_kv_bytes_reserved"] > 0 and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(m["kvsieve_kv_bytes_reserved"], 0)
            return m["kvsieve_sessions_peak"]
        finally:
            self.assertEqual(s.stop(), 0)

    def test_eviction_admits_more_sessions_in_the_same_memory(self):
        # CONTEXT * 3 is ~1800 tokens: 12 KiB each, ~22 MiB reserved per full cache
        # (prompt and max_tokens). 32M holds one full session; a cut frees its
        # memory at once, so the next request is admitted while the cut one is
        # still answering. How many more overlap depends on how long decoding
        # lasts against a prefill on this machine (scripts/bench_serve.py measures
        # that); two at once does not.
        full = self.sessions_at_once("32M", None, 60)
        cut = self.sessions_at_once("32M", {"method": "snapkv", "budget": 64}, 60)
        self.assertEqual(full, 1)
        self.assertGreaterEqual(cut, 2)
        # A request that can never fit is refused at once.
        s = Server(BINARY, TINY, "--kv-memory", "1M")
        try:
            status, j, _ = raw_post(s, "/v1/completions", json.dumps({"model": MODEL_ID, "prompt": CONTEXT * 3}))
            self.assertEqual((status, j["error"]["code"]), (400, "kv_memory_exceeded"))
        finally:
            self.assertEqual(s.stop(), 0)


@unittest.skipUnless(os.path.exists(SMOLLM2), "SmolLM2 not fetched (scripts/get_smollm2.sh): its chat test skips")
class ServeSmolLM2(unittest.TestCase):
    """A real instruct model with a ChatML template."""

    def test_chat_equals_kvsieve_run_chat(self):
        s = Server(BINARY, SMOLLM2)
        try:
            c = client(s)
            model = c.models.list().data[0].id
            q = "What is the capital of France?"
            want = kvsieve_run(SMOLLM2, q, 16, "--chat", "--system", "Answer in one sentence.")
            r = c.chat.completions.create(model=model, max_tokens=16, temperature=0, messages=[
                {"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": q}])
            self.assertEqual(r.choices[0].message.content, want)
            self.assertIn("Paris", r.choices[0].message.content)
            streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                model=model, max_tokens=16, temperature=0, stream=True, messages=[
                    {"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": q}]))
            self.assertEqual(streamed, want)
        finally:
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
