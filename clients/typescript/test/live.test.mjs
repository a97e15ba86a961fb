// The TypeScript client against a live `tabkeeper serve` on 127.0.0.1 (issue 14, INT-1..3).
// Started by tests/clients/test_typescript_client.py, which gives the server's URL and an
// API key in TABKEEPER_TEST_URL and TABKEEPER_TEST_KEY (skipped without them): an
// organization subscribed through the sandbox's hosted checkout, 10,000 tracked events
// (one batch's answer lost and sent again) counted once, the check and sessions.start,
// a credits consumption whose answer is lost taken once, and a verified webhook.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { ApiError, TabkeeperClient, WebhookVerificationError, verifyWebhook } from "../dist/index.js";

const baseUrl = process.env.TABKEEPER_TEST_URL;
const apiKey = process.env.TABKEEPER_TEST_KEY;
const skip = !baseUrl || !apiKey ? "needs TABKEEPER_TEST_URL and TABKEEPER_TEST_KEY" : false;
const EVENTS = 10_000;

/** A fetch that loses the answer of the n-th request to `path` (done by the server). */
function lossy(lose) {
  const seen = new Map();
  const sent = new Map();
  const lost = [];
  const fetch = async (request) => {
    const path = new URL(request.url).pathname;
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    sent.set(path, n);
    const response = await globalThis.fetch(request);
    if (lose.some(([p, k]) => p === path && k === n)) {
      await response.arrayBuffer();
      lost.push([path, n]);
      throw new TypeError("fetch failed (the answer was lost: test)");
    }
    return response;
  };
  return { fetch, sent, lost };
}

const received = [];
let waiting = null;
let receiver;
let hookUrl;

before(async () => {
  if (skip) return;
  receiver = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks) });
      response.writeHead(204).end();
      waiting?.();
    });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${receiver.address().port}/hooks`;
});

after(() => receiver?.close());

async function subscribe(client, organization) {
  const made = await client.api.POST("/v1/organizations", {
    body: { code: organization, members: [{ code: "owner", role: "owner" }] },
  });
  assert.equal(made.response.status, 201, JSON.stringify(made.error));
  const opened = await client.api.POST("/v1/subscriptions", { body: { organization, plan: "pro" } });
  assert.equal(opened.response.status, 201, JSON.stringify(opened.error));
  const paid = await fetch(`${baseUrl}/sandbox/checkout/${opened.data.checkout.id}`, {
    method: "POST",
    body: new URLSearchParams({ card: "card_ok" }),
    redirect: "manual",
  });
  assert.ok([200, 303].includes(paid.status), `checkout: ${paid.status}`);
  const subscriptions = await client.api.GET("/v1/subscriptions", { params: { query: { organization } } });
  assert.deepEqual(subscriptions.data.data.map((s) => s.state), ["active"]);
  const agent = await client.api.POST("/v1/agents", { body: { organization, code: "bot" } });
  assert.equal(agent.response.status, 201);
}

async function used(client, organization, meter) {
  const usage = await client.api.GET("/v1/usage", { params: { query: { organization } } });
  return usage.data.meters[meter].used;
}

test("journey: subscribe, check, sessions.start and credits.consume retried once done, a verified webhook", { skip }, async () => {
  const { fetch, sent, lost } = lossy([["/v1/sessions/start", 1], ["/v1/credits/consume", 1]]);
  const client = new TabkeeperClient({ apiKey, baseUrl, fetch });
  const endpoint = await client.api.POST("/v1/webhook_endpoints", { body: { url: hookUrl, kinds: ["invoice.paid"] } });
  assert.equal(endpoint.response.status, 201, JSON.stringify(endpoint.error));
  const secret = endpoint.data.secret;
  assert.match(secret, /^whsec_/);
  const delivered = new Promise((resolve) => { waiting = resolve; });
  await subscribe(client, "ts-acme");

  const decision = await client.check({ organization: "ts-acme", action: "start_session" });
  assert.equal(decision.allowed, true);

  const started = await client.sessions.start({ organization: "ts-acme", agent: "bot", conversation: "c1" });
  assert.equal(started.allowed, true);
  assert.equal(sent.get("/v1/sessions/start"), 2);
  assert.equal(await used(client, "ts-acme", "sessions"), "1");

  const before = (await client.api.GET("/v1/credits", { params: { query: { organization: "ts-acme" } } })).data.balance;
  const consumed = await client.credits.consume({ organization: "ts-acme", feature: "smart_reply", id: "use-1", quantity: 2 });
  assert.equal(sent.get("/v1/credits/consume"), 2);
  assert.deepEqual([consumed.credits, consumed.balance], [6, before - 6]);
  const again = await client.credits.consume({ organization: "ts-acme", feature: "smart_reply", id: "use-1", quantity: 2 });
  assert.equal(again.balance, before - 6);
  const after = (await client.api.GET("/v1/credits", { params: { query: { organization: "ts-acme" } } })).data.balance;
  assert.equal(after, before - 6);
  assert.deepEqual(lost, [["/v1/sessions/start", 1], ["/v1/credits/consume", 1]]);

  await assert.rejects(
    client.credits.consume({ organization: "ts-acme", feature: "no_such_feature", id: "use-2" }),
    (error) => error instanceof ApiError && error.status === 400 && error.code === "unknown_feature",
  );

  await Promise.race([delivered, new Promise((_, reject) => setTimeout(() => reject(new Error("no webhook in 60 s")), 60_000).unref())]);
  const { headers, body } = received[0];
  const event = client.webhooks.verify(headers, body, secret);
  assert.equal(event.type, "invoice.paid");
  assert.equal(event.api_version, "v1");
  assert.equal(event.data.organization, "ts-acme");
  assert.equal(event.data.object.status, "paid");
  const changed = Buffer.from(body.toString("utf8").replace('"paid"', '"void"'));
  assert.throws(() => verifyWebhook(headers, changed, secret), WebhookVerificationError);
  assert.throws(() => verifyWebhook(headers, body, "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"), WebhookVerificationError);
  await client.close();
});

test("events.track: 10,000 events, full batches, a flush, the rest on close; a lost answer counted once", { skip }, async () => {
  const { fetch, lost } = lossy([["/v1/events", 2]]);
  const client = new TabkeeperClient({ apiKey, baseUrl, fetch, flushIntervalMs: 3_600_000 });
  await subscribe(client, "ts-events");
  for (let n = 0; n < 2_500; n++) {
    client.events.track({ type: "call.ended", org: "ts-events", agent: "bot", properties: { duration_seconds: n % 60 } });
  }
  await client.events.flush(); // two full batches went as they filled; this sends the 500 left
  assert.equal(client.events.buffer.stats.batches, 3);
  for (let n = 2_500; n < EVENTS; n++) {
    client.events.track({ type: "call.ended", org: "ts-events", agent: "bot", properties: { duration_seconds: n % 60 } });
  }
  await client.close(); // the last 500
  const stats = client.events.buffer.stats;
  assert.deepEqual(lost, [["/v1/events", 2]]);
  assert.deepEqual([stats.sent, stats.batches, stats.refused.length], [EVENTS, 11, 0]);
  assert.deepEqual([stats.accepted, stats.duplicates], [EVENTS - 1_000, 1_000]);
  assert.equal(await used(client, "ts-events", "calls"), String(EVENTS));
});
