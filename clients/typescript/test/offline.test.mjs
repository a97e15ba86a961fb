// The retry rules and the buffer's timer without a server (a fake fetch).
import assert from "node:assert/strict";
import { test } from "node:test";
import { TabkeeperClient, retryingFetch } from "../dist/index.js";

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

function scripted(statuses) {
  const calls = [];
  const fetch = async (request) => {
    calls.push(`${request.method} ${new URL(request.url).pathname} ${request.headers.get("idempotency-key") ?? ""}`);
    const status = statuses.shift() ?? 200;
    if (status === 0) throw new TypeError("fetch failed");
    return json(status, status === 200 ? { allowed: true } : { code: `http_${status}` }, status === 429 ? { "retry-after": "0" } : {});
  };
  return { fetch, calls };
}

const quick = { attempts: 4, baseMs: 1, capMs: 5 };

test("GET and the check are retried on 503, 429 and a network error", async () => {
  const { fetch, calls } = scripted([503, 429, 0, 200]);
  const retrying = retryingFetch(fetch, quick);
  const answer = await retrying(new Request("http://x/v1/check", { method: "POST", body: "{}" }));
  assert.equal(answer.status, 200);
  assert.equal(calls.length, 4);
});

test("a POST without an Idempotency-Key is sent once", async () => {
  const { fetch, calls } = scripted([503]);
  const answer = await retryingFetch(fetch, quick)(new Request("http://x/v1/organizations", { method: "POST", body: "{}" }));
  assert.equal(answer.status, 503);
  assert.equal(calls.length, 1);
});

test("events without ids are sent once; with ids, retried", async () => {
  const once = scripted([500]);
  await retryingFetch(once.fetch, quick)(new Request("http://x/v1/events", { method: "POST", body: JSON.stringify({ events: [{ type: "t" }] }) }));
  assert.equal(once.calls.length, 1);
  const twice = scripted([500, 200]);
  await retryingFetch(twice.fetch, quick)(new Request("http://x/v1/events", { method: "POST", body: JSON.stringify({ events: [{ id: "a", type: "t" }] }) }));
  assert.equal(twice.calls.length, 2);
});

test("consume keeps one Idempotency-Key across retries; 409 request_in_progress is retried", async () => {
  const calls = [];
  const statuses = [409, 502, 200];
  const fetch = async (request) => {
    calls.push(request.headers.get("idempotency-key"));
    const status = statuses.shift();
    if (status === 409) return json(409, { code: "request_in_progress" });
    if (status === 502) return json(502, {});
    return json(200, { credits: 1, balance: 9, duplicate: false });
  };
  const client = new TabkeeperClient({ apiKey: "k", baseUrl: "http://x", fetch, retry: quick });
  const used = await client.credits.consume({ organization: "a", feature: "f", id: "u1" });
  assert.equal(used.balance, 9);
  assert.deepEqual(calls, ["consume:u1", "consume:u1", "consume:u1"]);
});

test("the buffer sends a partial batch after flushIntervalMs", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const batches = [];
  const fetch = async (request) => {
    batches.push((await request.json()).events.length);
    return json(200, { accepted: 3, duplicates: 0, refused: [] });
  };
  const client = new TabkeeperClient({ apiKey: "k", baseUrl: "http://x", fetch });
  for (let i = 0; i < 3; i++) client.events.track({ type: "t", org: "a" });
  assert.deepEqual(batches, []);
  t.mock.timers.tick(1000);
  await client.events.flush();
  assert.deepEqual(batches, [3]);
});
