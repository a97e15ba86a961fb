/**
 * @tabkeeper/client: the tabkeeper billing API from TypeScript.
 *
 * - `client.api`: the whole API, typed from docs/openapi.json (openapi-typescript) and
 *   called through openapi-fetch: `client.api.GET("/v1/invoices", { params: { query:
 *   { organization: "acme" } } })` answers `{ data, error, response }`.
 * - The hot paths, written by hand, throwing `ApiError` on an error answer:
 *   `client.check(...)`, `client.sessions.start(...)` and `client.credits.consume(...)`
 *   (both with an Idempotency-Key kept across retries), `client.events.track(...)`
 *   (buffered: 1,000 a batch, after 1 second, and on `close()`), and
 *   `client.webhooks.verify(headers, body, secret)` (Standard Webhooks).
 * - Every call that is safe to send twice is retried with backoff (retry.ts).
 */

import { randomUUID } from "node:crypto";
import createClient, { type Client as FetchClient } from "openapi-fetch";
import { Webhook, WebhookVerificationError } from "standardwebhooks";
import { EventBuffer, type EventsAnswer, type TrackedEvent } from "./events.js";
import { type RetryOptions, retryingFetch } from "./retry.js";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export type { RetryOptions } from "./retry.js";
export type { Stats, TrackedEvent } from "./events.js";
export { EventBuffer } from "./events.js";
export { retryingFetch } from "./retry.js";
export { WebhookVerificationError };

type Schemas = components["schemas"];
export type CheckIn = Schemas["CheckIn"];
export type Decision = Schemas["Decision"];
export type SessionStartIn = Schemas["SessionStartIn"];
export type ConsumeIn = Schemas["ConsumeIn"];
export type Consumed = Schemas["Consumed"];
export type EventsResult = Schemas["EventsResult"];
export type Problem = Schemas["Problem"];

export interface ClientOptions {
  apiKey: string;
  /** Where the API is (http://127.0.0.1:8000). */
  baseUrl?: string;
  retry?: RetryOptions;
  /** The fetch under the retries (globalThis.fetch). */
  fetch?: (input: Request) => Promise<Response>;
  /** Events a batch (1,000, the API's most). */
  batchSize?: number;
  /** The longest an event waits in the buffer, in ms (1,000). */
  flushIntervalMs?: number;
}

/** An error answer (RFC 9457 problem): `status`, the stable `code`, the `detail`. */
export class ApiError extends Error {
  readonly code: string;
  readonly detail: string;
  constructor(
    readonly status: number,
    readonly problem: Record<string, unknown>,
  ) {
    const code = typeof problem.code === "string" ? problem.code : `http_${status}`;
    const detail = typeof problem.detail === "string" ? problem.detail : "";
    super(`${status} ${code}: ${detail}`);
    this.name = "ApiError";
    this.code = code;
    this.detail = detail;
  }
}

function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || result.data === undefined) {
    const problem =
      typeof result.error === "object" && result.error !== null
        ? (result.error as Record<string, unknown>)
        : { detail: String(result.error ?? "no body") };
    throw new ApiError(result.response.status, problem);
  }
  return result.data;
}

export const newIdempotencyKey = (): string => `tkc_${randomUUID().replaceAll("-", "")}`;

type HeaderValue = string | string[] | undefined | null;

/** The webhook's event once its Standard Webhooks signature and timestamp (within 5
 * minutes) are checked; throws WebhookVerificationError otherwise. `body` is the raw
 * request body as received. Headers may be a Headers object or Node's headers record. */
export function verifyWebhook(
  headers: Headers | Record<string, HeaderValue>,
  body: string | Buffer,
  secret: string,
): WebhookEvent {
  const flat: Record<string, string> = {};
  if (headers instanceof Headers) {
    headers.forEach((value, name) => {
      flat[name.toLowerCase()] = value;
    });
  } else {
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined && value !== null) {
        flat[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
      }
    }
  }
  return new Webhook(secret).verify(body, flat) as WebhookEvent;
}

/** A webhook's body (docs/webhooks.md). */
export interface WebhookEvent {
  id: string;
  type: string;
  created_at: string;
  api_version: string;
  data: { object: Record<string, unknown>; organization: string; [field: string]: unknown };
  [field: string]: unknown;
}

export class TabkeeperClient {
  /** The whole API (openapi-fetch over the generated types). */
  readonly api: FetchClient<paths>;
  readonly events: {
    /** Buffer one usage event; returns its id. */
    track(event: TrackedEvent): string;
    flush(): Promise<void>;
    /** `POST /v1/events` now, unbuffered (retried when every event has its id). */
    ingest(events: Record<string, unknown>[]): Promise<EventsResult>;
    readonly buffer: EventBuffer;
  };
  readonly sessions: {
    start(body: SessionStartIn, options?: { idempotencyKey?: string }): Promise<Decision>;
  };
  readonly credits: {
    consume(body: ConsumeIn, options?: { idempotencyKey?: string }): Promise<Consumed>;
  };
  readonly webhooks = { verify: verifyWebhook };

  constructor(options: ClientOptions) {
    const inner = options.fetch ?? ((request: Request) => globalThis.fetch(request));
    this.api = createClient<paths>({
      baseUrl: options.baseUrl ?? "http://127.0.0.1:8000",
      headers: { Authorization: `Bearer ${options.apiKey}` },
      fetch: retryingFetch(inner, options.retry),
    });
    const api = this.api;
    const ingest = async (events: Record<string, unknown>[]): Promise<EventsResult> =>
      unwrap(await api.POST("/v1/events", { body: { events } }));
    const buffer = new EventBuffer(
      async (events) => (await ingest(events)) as EventsAnswer,
      options.batchSize,
      options.flushIntervalMs,
    );
    this.events = {
      track: (event) => buffer.track(event),
      flush: () => buffer.flush(),
      ingest,
      buffer,
    };
    this.sessions = {
      start: async (body, opts) =>
        unwrap(
          await api.POST("/v1/sessions/start", {
            body,
            headers: { "Idempotency-Key": opts?.idempotencyKey ?? newIdempotencyKey() },
          }),
        ),
    };
    this.credits = {
      consume: async (body, opts) =>
        unwrap(
          await api.POST("/v1/credits/consume", {
            body,
            headers: { "Idempotency-Key": opts?.idempotencyKey ?? `consume:${body.id}` },
          }),
        ),
    };
  }

  /** `POST /v1/check`: the real-time check (read-only, so retried like a GET). */
  async check(body: CheckIn): Promise<Decision> {
    return unwrap(await this.api.POST("/v1/check", { body }));
  }

  /** Send the buffered events. */
  async close(): Promise<void> {
    await this.events.buffer.close();
  }
}

