/**
 * Retries with backoff for calls that are safe to send twice.
 *
 * A call is retried (at most `attempts` tries in all) on a network error, a 429 or a
 * 500/502/503/504, and only when sending it twice cannot do twice what it asks: GET, PUT
 * and DELETE; `POST /v1/check` (it reads only); a POST with an Idempotency-Key (a retry
 * gets the first answer; a 409 `request_in_progress` there means "try again soon"); and
 * `POST /v1/events` when every event carries its `id` (a repeat is a duplicate, counted
 * once). Anything else is sent once.
 */

export interface RetryOptions {
  /** Tries in all (4). */
  attempts?: number;
  /** The first wait in ms (100), doubled each try, with full jitter. */
  baseMs?: number;
  /** The longest wait in ms (5,000); also caps a Retry-After. */
  capMs?: number;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const SAFE_METHODS = new Set(["GET", "PUT", "DELETE", "HEAD"]);
const SAFE_POSTS = new Set(["/v1/check"]);

type Fetch = (input: Request) => Promise<Response>;

async function safeToRepeat(request: Request): Promise<boolean> {
  if (SAFE_METHODS.has(request.method)) return true;
  if (request.headers.has("idempotency-key")) return true;
  const path = new URL(request.url).pathname;
  if (SAFE_POSTS.has(path)) return true;
  if (request.method === "POST" && path === "/v1/events") {
    try {
      const body = JSON.parse(await request.clone().text()) as { events?: unknown };
      return (
        Array.isArray(body.events) &&
        body.events.every((e) => typeof e === "object" && e !== null && "id" in e && Boolean((e as { id: unknown }).id))
      );
    } catch {
      return false;
    }
  }
  return false;
}

async function inProgress(response: Response): Promise<boolean> {
  if (response.status !== 409) return false;
  try {
    const problem = (await response.clone().json()) as { code?: unknown };
    return problem.code === "request_in_progress";
  } catch {
    return false;
  }
}

function delayMs(attempt: number, options: Required<RetryOptions>, response?: Response): number {
  const after = response?.headers.get("retry-after");
  if (after && /^\d+$/.test(after)) return Math.min(Number(after) * 1000, options.capMs);
  return Math.random() * Math.min(options.capMs, options.baseMs * 2 ** (attempt - 1));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A fetch that retries as above, for openapi-fetch's `fetch` option. */
export function retryingFetch(inner: Fetch, retry: RetryOptions = {}): Fetch {
  const options: Required<RetryOptions> = { attempts: 4, baseMs: 100, capMs: 5000, ...retry };
  return async (request: Request): Promise<Response> => {
    const attempts = (await safeToRepeat(request)) ? options.attempts : 1;
    const keyed = request.headers.has("idempotency-key");
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= attempts;
      let response: Response;
      try {
        response = await inner(last ? request : request.clone());
      } catch (error) {
        if (last) throw error;
        await sleep(delayMs(attempt, options));
        continue;
      }
      if (!last && (RETRY_STATUSES.has(response.status) || (keyed && (await inProgress(response))))) {
        await response.body?.cancel();
        await sleep(delayMs(attempt, options, response));
        continue;
      }
      return response;
    }
  };
}
