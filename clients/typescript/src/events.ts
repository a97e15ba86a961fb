/**
 * `events.track()`: usage events buffered and sent in batches.
 *
 * Each event gets its id when it is tracked (`ev_` and 32 random hex digits, or the
 * caller's own) and its `time` (now) unless given, so a batch sent twice (a retry after
 * a lost answer) is counted once by the server. A batch goes when the buffer holds
 * `batchSize` events (1,000, the API's most), when its oldest event has waited
 * `flushIntervalMs` (1,000 ms), on `flush()` and on `close()`. Batches are sent one after
 * the other; a batch that fails after its retries is kept in `failed` and its error is
 * thrown by the next `flush()` or `close()`.
 */

import { randomUUID } from "node:crypto";

export interface TrackedEvent {
  type: string;
  org: string;
  agent?: string;
  conversation?: string;
  properties?: Record<string, unknown>;
  time?: string | Date;
  id?: string;
}

export interface EventsAnswer {
  accepted: number;
  duplicates: number;
  refused: { index: number; reason: string }[];
}

export interface Stats {
  sent: number;
  batches: number;
  accepted: number;
  duplicates: number;
  refused: { index: number; reason: string; id: string }[];
}

type Wire = Record<string, unknown> & { id: string };

export class EventBuffer {
  readonly stats: Stats = { sent: 0, batches: 0, accepted: 0, duplicates: 0, refused: [] };
  readonly failed: { batch: Wire[]; error: unknown }[] = [];
  private pending: Wire[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly send: (events: Wire[]) => Promise<EventsAnswer>,
    readonly batchSize = 1000,
    readonly flushIntervalMs = 1000,
  ) {}

  /** Buffer one event; returns its id. */
  track(event: TrackedEvent): string {
    if (this.closed) throw new Error("the event buffer is closed");
    const when = event.time ?? new Date();
    const wire: Wire = {
      id: event.id ?? `ev_${randomUUID().replaceAll("-", "")}`,
      type: event.type,
      org: event.org,
      time: when instanceof Date ? when.toISOString() : when,
    };
    if (event.agent !== undefined) wire.agent = event.agent;
    if (event.conversation !== undefined) wire.conversation = event.conversation;
    if (event.properties !== undefined) wire.properties = event.properties;
    this.pending.push(wire);
    if (this.pending.length >= this.batchSize) {
      this.dispatch();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.dispatch(), this.flushIntervalMs);
      this.timer.unref();
    }
    return wire.id;
  }

  /** Send everything buffered; resolves when every batch so far is answered. */
  async flush(): Promise<void> {
    this.dispatch();
    await this.chain;
    if (this.failed.length > 0) {
      const first = this.failed[0]!;
      throw new Error(
        `${this.failed.length} batch(es) of events not sent (first: ${first.batch.length} events): ${String(first.error)}`,
        { cause: first.error },
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private dispatch(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.chain = this.chain.then(async () => {
      try {
        const answer = await this.send(batch);
        this.stats.sent += batch.length;
        this.stats.batches += 1;
        this.stats.accepted += answer.accepted;
        this.stats.duplicates += answer.duplicates;
        for (const refusal of answer.refused) {
          this.stats.refused.push({ ...refusal, id: batch[refusal.index]!.id });
        }
      } catch (error) {
        this.failed.push({ batch, error });
      }
    });
  }
}
