// The TypeScript client's buffered track, timed (bench/clients.py runs it): EVENTS
// `call.ended` events for ORG through `client.events.track`, then `close()`; prints
// {"seconds", "cpu_seconds", "sent", "accepted", "duplicates", "refused"} as JSON.
import { TabkeeperClient } from "../clients/typescript/dist/index.js";

const { BENCH_URL: baseUrl, BENCH_KEY: apiKey, BENCH_ORG: org, BENCH_AGENT: agent } = process.env;
const events = Number(process.env.BENCH_EVENTS);
const client = new TabkeeperClient({ apiKey, baseUrl });
const cpu = process.cpuUsage();
const started = performance.now();
for (let i = 0; i < events; i++) {
  client.events.track({ type: "call.ended", org, agent, properties: { duration_seconds: 30 + (i % 300) } });
}
await client.close();
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
const stats = client.events.buffer.stats;
console.log(JSON.stringify({
  seconds, cpu_seconds: (used.user + used.system) / 1e6, sent: stats.sent,
  accepted: stats.accepted, duplicates: stats.duplicates, refused: stats.refused.length,
}));
