#!/usr/bin/env node
// An Aion activity worker in Node.js (docs/DESIGN.md §5, README.md here).
//
// Pulls activity tasks from JetStream (stream AION_TASKS, subject
// <prefix>.task.<queue>, one durable pull consumer "task-<queue>" per queue),
// runs the activity named by the task (activities.js), publishes the result to
// the task's result_subject with JetStream and acks the task only after the
// PubAck: a crash at any point leads to a redelivery and a second run, and the
// engine drops the duplicate result. While an activity runs it may heartbeat
// (core request to the task's heartbeat_subject); a reply with
// cancel_requested, or a cancel note on <prefix>.task.<queue>.cancel, aborts
// it and no result is sent.
//
// stdout: one line "ready ..." once the consumers exist. stderr: one log line
// per task. SIGTERM/SIGINT: stop pulling, finish the running tasks (abort them
// after --grace-ms; those are redelivered), drain the connection, exit 0.

import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { AckPolicy, RetentionPolicy, StorageType, connect, headers, nanos } from "nats";

import { ActivityError, activities } from "./activities.js";

const TASKS_STREAM = "AION_TASKS";
const USAGE = `usage: node worker.js [options]
  --nats URL             NATS server (env AION_NATS_URL; default nats://127.0.0.1:4222)
  --prefix P             subject prefix (env AION_PREFIX; default aion)
  --queue Q              task queue to serve; repeat or comma-separate (default remote)
  --concurrency N        tasks run at once per queue (default 4)
  --ack-wait-ms MS       ack wait of a consumer this worker creates (default 30000)
  --pull-expires-ms MS   how long one pull request waits (default 5000, min 1000)
  --grace-ms MS          on SIGTERM, wait this long for running tasks (default 30000)
  --max-result-bytes N   larger results become a ResultTooLarge failure (default 1048576)`;

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const opts = {
    nats: process.env.AION_NATS_URL || "nats://127.0.0.1:4222",
    prefix: process.env.AION_PREFIX || "aion",
    queues: [],
    concurrency: 4,
    ackWaitMs: 30_000,
    pullExpiresMs: 5_000,
    graceMs: 30_000,
    maxResultBytes: 1 << 20,
  };
  const numeric = {
    "--concurrency": ["concurrency", 1],
    "--ack-wait-ms": ["ackWaitMs", 100],
    "--pull-expires-ms": ["pullExpiresMs", 1000],
    "--grace-ms": ["graceMs", 0],
    "--max-result-bytes": ["maxResultBytes", 64],
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === "-h" || arg === "--help") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg === "--nats") {
      opts.nats = next();
    } else if (arg === "--prefix") {
      opts.prefix = next();
    } else if (arg === "--queue") {
      opts.queues.push(...next().split(",").map((q) => q.trim()).filter(Boolean));
    } else if (arg in numeric) {
      const [key, min] = numeric[arg];
      const text = next();
      const n = Number(text);
      if (!Number.isInteger(n) || n < min) usage(`${arg} must be an integer >= ${min}, got "${text}"`);
      opts[key] = n;
    } else {
      usage(`unknown argument "${arg}"`);
    }
  }
  if (opts.queues.length === 0) opts.queues = ["remote"];
  opts.queues = [...new Set(opts.queues)];
  const token = /^[^\s.*>]+$/;
  if (!/^[^\s*>]+$/.test(opts.prefix) || opts.prefix.startsWith(".") || opts.prefix.endsWith(".")) {
    usage(`bad --prefix "${opts.prefix}"`);
  }
  for (const q of opts.queues) if (!token.test(q)) usage(`bad queue name "${q}" (one subject token)`);
  return opts;
}

function usage(message) {
  process.stderr.write(`worker.js: ${message}\n${USAGE}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- logging

function log(line) {
  process.stderr.write(`${new Date().toISOString()} ${line}\n`);
}

// Logs at most one line per `key` every 10 s (heartbeat errors can repeat).
const lastLogged = new Map();
function logLimited(key, line) {
  const now = Date.now();
  if ((lastLogged.get(key) ?? 0) + 10_000 > now) return;
  lastLogged.set(key, now);
  if (lastLogged.size > 10_000) lastLogged.clear();
  log(line);
}

// ---------------------------------------------------------------- decoding

class MalformedTask extends Error {}

// int64 fields arrive as JSON numbers or, per the protobuf JSON mapping, as
// strings of digits. Absent means 0.
function int64(obj, key) {
  const v = obj[key];
  if (v === undefined || v === null || v === "") return 0;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^-?\d+$/.test(v)) return Number(v);
  throw new MalformedTask(`${key} is not an integer: ${JSON.stringify(v)}`);
}

function requiredString(obj, key) {
  const v = obj[key];
  if (typeof v !== "string" || v === "") throw new MalformedTask(`${key} is missing or not a string`);
  return v;
}

function decodeJson(data) {
  return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
}

// An ActivityTask (protobuf JSON mapping) -> a plain object; MalformedTask if
// it cannot be run.
function parseTask(data, prefix) {
  let body;
  try {
    body = decodeJson(data);
  } catch (err) {
    throw new MalformedTask(`not JSON: ${err.message}`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new MalformedTask("not a JSON object");
  }
  const task = {
    workflow_id: requiredString(body, "workflow_id"),
    run_id: requiredString(body, "run_id"),
    activity_id: requiredString(body, "activity_id"),
    attempt: int64(body, "attempt"),
    activity_type: requiredString(body, "activity_type"),
    task_queue: typeof body.task_queue === "string" ? body.task_queue : "",
    input: body.input === undefined ? null : body.input,
    start_to_close_ms: int64(body, "start_to_close_ms"),
    heartbeat_timeout_ms: int64(body, "heartbeat_timeout_ms"),
    scheduled_at_us: int64(body, "scheduled_at_us"),
    started_at_us: int64(body, "started_at_us"),
    result_subject: typeof body.result_subject === "string" ? body.result_subject : "",
    heartbeat_subject: typeof body.heartbeat_subject === "string" ? body.heartbeat_subject : "",
  };
  if (task.attempt < 1) throw new MalformedTask(`attempt must be >= 1, got ${task.attempt}`);
  // Older or hand-written tasks may leave the subjects out: derive them.
  if (!task.result_subject) task.result_subject = `${prefix}.wf.${task.workflow_id}.activity_result`;
  if (!task.heartbeat_subject) task.heartbeat_subject = `${prefix}.req.${task.workflow_id}.heartbeat`;
  return task;
}

function taskKey(t) {
  return `${t.workflow_id}\u0000${t.run_id}\u0000${t.activity_id}\u0000${t.attempt}`;
}

function taskName(t) {
  return `${t.workflow_id}/${t.run_id}/${t.activity_id}#${t.attempt} ${t.activity_type}`;
}

// JSON nesting depth (the engine refuses bodies nested deeper than 40).
function depth(value) {
  if (value === null || typeof value !== "object") return 0;
  let max = 0;
  for (const v of Object.values(value)) max = Math.max(max, depth(v));
  return max + 1;
}

function jsonHeaders() {
  const h = headers();
  h.set("Content-Type", "application/json");
  return h;
}

// ---------------------------------------------------------------- the worker

// Why an attempt was aborted: "cancelled" (the engine stopped waiting: no
// result, ack), "timeout" (start-to-close passed: no result, ack) or
// "shutdown" (grace period over: no result, nak so it runs elsewhere).
class Aborted extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "Aborted";
    this.kind = kind;
  }
}

class Worker {
  constructor(opts) {
    this.opts = opts;
    this.nc = null;
    this.js = null;
    this.stopping = false;
    this.running = new Map(); // taskKey -> { task, ac }
    this.recentlyCancelled = new Map(); // taskKey or activity key -> expiry (ms)
    this.fetches = new Set();
    this.loops = [];
    this.idle = null; // resolves when a task finishes
    this.wakeIdle = () => {};
  }

  async start() {
    const { opts } = this;
    this.nc = await connect({
      servers: opts.nats,
      name: `aion-activity-worker-node ${opts.queues.join(",")}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    this.nc.closed().then((err) => {
      if (err) log(`NATS connection closed: ${err.message}`);
    });
    (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") {
          const data = typeof s.data === "string" ? s.data : JSON.stringify(s.data);
          log(`NATS ${s.type}${data ? `: ${data}` : ""}`);
        }
      }
    })().catch(() => {});
    const jsm = await this.nc.jetstreamManager();
    this.js = this.nc.jetstream();
    await this.ensureStream(jsm);
    const consumers = [];
    for (const queue of opts.queues) {
      const info = await this.ensureConsumer(jsm, queue);
      const consumer = await this.js.consumers.get(TASKS_STREAM, info.name);
      const ackWaitMs = Math.max(100, Number(info.config.ack_wait ?? nanos(opts.ackWaitMs)) / 1e6);
      consumers.push({ queue, consumer, ackWaitMs });
      this.nc.subscribe(`${opts.prefix}.task.${queue}.cancel`, {
        callback: (err, msg) => {
          if (err) log(`cancel subscription: ${err.message}`);
          else this.onCancel(queue, msg);
        },
      });
    }
    await this.nc.flush();
    for (const c of consumers) this.loops.push(this.pullLoop(c));
    process.stdout.write(
      `ready queues=${opts.queues.join(",")} prefix=${opts.prefix} ` +
        `nats=${this.nc.getServer()} concurrency=${opts.concurrency}\n`,
    );
  }

  // AION_TASKS is created by whoever comes first (the engine's worker or an
  // activity worker) with the contract's settings; an existing one is used as is.
  async ensureStream(jsm) {
    try {
      await jsm.streams.info(TASKS_STREAM);
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await jsm.streams.add({
        name: TASKS_STREAM,
        subjects: [`${this.opts.prefix}.task.*`],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(120_000),
      });
      log(`created stream ${TASKS_STREAM} (${this.opts.prefix}.task.*, work queue)`);
    } catch (err) {
      // Another process created it meanwhile.
      await jsm.streams.info(TASKS_STREAM).catch(() => {
        throw err;
      });
    }
  }

  // The durable pull consumer task-<queue>: explicit ack, unlimited
  // deliveries. An existing one is kept (its ack wait wins).
  async ensureConsumer(jsm, queue) {
    const name = `task-${queue}`;
    try {
      return await jsm.consumers.info(TASKS_STREAM, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      return await jsm.consumers.add(TASKS_STREAM, {
        durable_name: name,
        filter_subject: `${this.opts.prefix}.task.${queue}`,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(this.opts.ackWaitMs),
        max_deliver: -1,
        max_ack_pending: 1000,
      });
    } catch (err) {
      return await jsm.consumers.info(TASKS_STREAM, name).catch(() => {
        throw err;
      });
    }
  }

  // After a failed pull: the stream or consumer may have been deleted (or
  // the server lost its state): create them again. Null if that fails too.
  async reattach(queue) {
    try {
      const jsm = await this.nc.jetstreamManager();
      await this.ensureStream(jsm);
      const info = await this.ensureConsumer(jsm, queue);
      return await this.js.consumers.get(TASKS_STREAM, info.name);
    } catch (err) {
      logLimited(`reattach-${queue}`, `queue ${queue}: cannot set up the consumer: ${err.message}`);
      return null;
    }
  }

  async pullLoop({ queue, consumer, ackWaitMs }) {
    const { concurrency, pullExpiresMs } = this.opts;
    let runningHere = 0;
    let slotFreed = () => {};
    while (!this.stopping) {
      if (runningHere >= concurrency) {
        await new Promise((resolve) => {
          slotFreed = resolve;
        });
        continue;
      }
      let batch;
      try {
        batch = await consumer.fetch({ max_messages: concurrency - runningHere, expires: pullExpiresMs });
      } catch (err) {
        logLimited(`fetch-${queue}`, `queue ${queue}: pull failed: ${err.message}; retrying`);
        await sleep(1000);
        consumer = (await this.reattach(queue)) ?? consumer;
        continue;
      }
      try {
        // A batch ends after max_messages or when the pull expires. Messages
        // that arrive after SIGTERM are still run: they were delivered to us.
        for await (const msg of batch) {
          runningHere++;
          this.handle(queue, msg, ackWaitMs).finally(() => {
            runningHere--;
            slotFreed();
            this.wakeIdle();
          });
        }
      } catch (err) {
        logLimited(`fetch-${queue}`, `queue ${queue}: pull ended: ${err.message}; retrying`);
        await sleep(1000);
        consumer = (await this.reattach(queue)) ?? consumer;
      }
    }
  }

  // Runs one delivered task to its end. Never throws.
  async handle(queue, msg, ackWaitMs) {
    let task;
    try {
      task = parseTask(msg.data, this.opts.prefix);
    } catch (err) {
      log(`queue ${queue}: malformed task (stream seq ${msg.seq}): ${err.message}; terminated`);
      settle(msg, "term");
      return;
    }
    const key = taskKey(task);
    const name = taskName(task);
    if (this.running.has(key)) {
      // Redelivered while we still run it (we were too slow to say so): the
      // running copy will ack.
      log(`queue ${queue}: ${name} redelivered while running here; ignored`);
      return;
    }
    if (this.wasCancelled(task)) {
      log(`queue ${queue}: ${name} was cancelled before it started; skipped`);
      settle(msg, "ack");
      return;
    }
    const started = Date.now();
    const ac = new AbortController();
    const entry = { task, ac };
    this.running.set(key, entry);
    // Keep JetStream from redelivering while the activity runs.
    const progress = setInterval(() => settle(msg, "working"), Math.max(50, Math.floor(ackWaitMs / 3)));
    const deadline =
      task.start_to_close_ms > 0
        ? setTimeout(
            () => ac.abort(new Aborted("timeout", `start-to-close ${task.start_to_close_ms} ms passed`)),
            Math.min(task.start_to_close_ms, 2 ** 31 - 1),
          )
        : null;
    let outcome;
    try {
      outcome = await this.run(task, ac, msg);
    } finally {
      clearInterval(progress);
      if (deadline) clearTimeout(deadline);
    }
    const ms = Date.now() - started;
    try {
      if (outcome.aborted) {
        const { kind, message } = outcome.aborted;
        if (kind === "shutdown") {
          settle(msg, "nak");
          log(`queue ${queue}: ${name} -> aborted (${message}), no result, returned to the queue (${ms} ms)`);
        } else {
          settle(msg, "ack");
          log(`queue ${queue}: ${name} -> ${kind} (${message}), no result (${ms} ms)`);
        }
        return;
      }
      const body = this.resultBody(task, outcome);
      const f = outcome.failure;
      const what = f ? `failed ${f.type}${f.non_retryable ? " (non-retryable)" : ""}: ${f.message}` : "completed";
      if (await this.publishResult(task, body)) {
        settle(msg, "ack");
        log(`queue ${queue}: ${name} -> ${what} (${ms} ms)`);
      } else {
        settle(msg, "nak", 1000);
        log(`queue ${queue}: ${name} -> ${what}, but the result could not be published; will run again`);
      }
    } finally {
      this.running.delete(key);
    }
  }

  // Calls the activity: {output} | {failure} | {aborted: {kind, message}}.
  async run(task, ac, msg) {
    const fn = Object.hasOwn(activities, task.activity_type) ? activities[task.activity_type] : null;
    if (!fn) {
      return {
        failure: {
          message: `no activity "${task.activity_type}" on this worker (queue ${task.task_queue || "?"})`,
          type: "UnknownActivityType",
          non_retryable: false,
        },
      };
    }
    const ctx = {
      attempt: task.attempt,
      signal: ac.signal,
      task: Object.freeze({ ...task }),
      heartbeat: (details) => this.heartbeat(task, ac, msg, details),
      log: (line) => log(`${taskName(task)}: ${line}`),
    };
    let output;
    let error;
    try {
      output = await fn(task.input, ctx);
    } catch (err) {
      error = err;
    }
    if (ac.signal.aborted) {
      const reason = ac.signal.reason;
      return {
        aborted: {
          kind: reason instanceof Aborted ? reason.kind : "cancelled",
          message: reason?.message ?? String(reason),
        },
      };
    }
    if (error !== undefined) return { failure: toFailure(error) };
    return { output: output === undefined ? null : output };
  }

  // One heartbeat: a core request to the task's heartbeat_subject. Throws the
  // abort reason once the engine says the attempt should stop. A missing or
  // failing engine is logged, not fatal: its heartbeat timeout decides.
  async heartbeat(task, ac, msg, details) {
    if (ac.signal.aborted) throw ac.signal.reason;
    settle(msg, "working");
    const body = JSON.stringify({
      run_id: task.run_id,
      activity_id: task.activity_id,
      attempt: task.attempt,
      details: details === undefined ? null : details,
    });
    let reply;
    try {
      const timeout = Math.max(1000, Math.min(task.heartbeat_timeout_ms || 5000, 10_000));
      const m = await this.nc.request(task.heartbeat_subject, body, { timeout, headers: jsonHeaders() });
      reply = decodeJson(m.data);
    } catch (err) {
      logLimited(`hb-${taskKey(task)}`, `${taskName(task)}: heartbeat failed: ${err.message}`);
      if (ac.signal.aborted) throw ac.signal.reason;
      return;
    }
    if (reply?.cancel_requested === true) {
      ac.abort(new Aborted("cancelled", "cancel requested in heartbeat reply"));
    } else if (reply?.error) {
      const { code, message } = reply.error;
      if (code === "not_found" || code === "not_running") {
        // The run is gone or closed: a result would be dropped.
        ac.abort(new Aborted("cancelled", `heartbeat refused: ${code}: ${message ?? ""}`));
      } else {
        logLimited(`hb-${taskKey(task)}`, `${taskName(task)}: heartbeat refused: ${code}: ${message ?? ""}`);
      }
    }
    if (ac.signal.aborted) throw ac.signal.reason;
  }

  resultBody(task, outcome) {
    const base = { run_id: task.run_id, activity_id: task.activity_id, attempt: task.attempt };
    const fail = (type, message) =>
      JSON.stringify({ ...base, failure: { message, type, non_retryable: true } });
    if (outcome.failure) return JSON.stringify({ ...base, failure: outcome.failure });
    let body;
    try {
      body = JSON.stringify({ ...base, output: outcome.output });
    } catch (err) {
      return fail("ResultInvalid", `the output is not JSON: ${err.message}`);
    }
    if (Buffer.byteLength(body) > this.opts.maxResultBytes) {
      return fail("ResultTooLarge", `the result is over ${this.opts.maxResultBytes} bytes`);
    }
    if (depth(outcome.output) > 38) return fail("ResultInvalid", "the output is nested too deep");
    return body;
  }

  // JetStream publish with a few retries; true once the stream stored it (or
  // dropped it as a duplicate of the same Nats-Msg-Id).
  async publishResult(task, body) {
    const msgID = `result:${task.workflow_id}:${task.run_id}:${task.activity_id}:${task.attempt}`;
    for (let i = 0; i < 5; i++) {
      try {
        await this.js.publish(task.result_subject, body, { msgID, headers: jsonHeaders(), timeout: 5000 });
        return true;
      } catch (err) {
        log(`${taskName(task)}: result publish to ${task.result_subject} failed: ${err.message}`);
        if (this.nc.isClosed()) return false;
        await sleep(200 * 2 ** i);
      }
    }
    return false;
  }

  // A cancel note: abort the matching running attempt (all attempts of the
  // activity if the note names none) and remember it for a while in case the
  // task itself is still on its way.
  onCancel(queue, msg) {
    let note;
    try {
      note = decodeJson(msg.data);
      if (note === null || typeof note !== "object") throw new Error("not a JSON object");
      for (const k of ["workflow_id", "run_id", "activity_id"]) requiredString(note, k);
      note.attempt = int64(note, "attempt");
    } catch (err) {
      log(`queue ${queue}: malformed cancel note ignored: ${err.message}`);
      return;
    }
    const reason = typeof note.reason === "string" && note.reason ? note.reason : "cancelled";
    const expiry = Date.now() + 10 * 60_000;
    const activityKey = `${note.workflow_id}\u0000${note.run_id}\u0000${note.activity_id}`;
    this.recentlyCancelled.set(note.attempt > 0 ? taskKey(note) : activityKey, expiry);
    if (this.recentlyCancelled.size > 10_000) this.pruneCancelled();
    for (const { task, ac } of this.running.values()) {
      if (
        task.workflow_id === note.workflow_id &&
        task.run_id === note.run_id &&
        task.activity_id === note.activity_id &&
        (note.attempt === 0 || task.attempt === note.attempt)
      ) {
        ac.abort(new Aborted("cancelled", `cancel note: ${reason}`));
      }
    }
  }

  wasCancelled(task) {
    const now = Date.now();
    const activityKey = `${task.workflow_id}\u0000${task.run_id}\u0000${task.activity_id}`;
    return [taskKey(task), activityKey].some((k) => (this.recentlyCancelled.get(k) ?? 0) > now);
  }

  pruneCancelled() {
    const now = Date.now();
    for (const [k, expiry] of this.recentlyCancelled) if (expiry <= now) this.recentlyCancelled.delete(k);
    while (this.recentlyCancelled.size > 10_000) {
      this.recentlyCancelled.delete(this.recentlyCancelled.keys().next().value);
    }
  }

  // Graceful stop: no new pulls (a pull already out may still deliver; those
  // tasks run too), wait for running tasks up to the grace period, abort the
  // rest (they go back to the queue), drain the connection.
  async stop() {
    if (this.stopping) return;
    this.stopping = true;
    log(`stopping: ${this.running.size} task(s) running; no new pulls`);
    const graceEnd = Date.now() + this.opts.graceMs;
    const settled = Promise.allSettled(this.loops);
    let loopsDone = false;
    settled.then(() => {
      loopsDone = true;
      this.wakeIdle();
    });
    while (!loopsDone || this.running.size > 0) {
      const left = graceEnd - Date.now();
      if (left <= 0) break;
      await Promise.race([
        new Promise((resolve) => {
          this.wakeIdle = resolve;
        }),
        sleep(Math.min(left, 250)),
      ]);
    }
    if (this.running.size > 0) {
      log(`grace period over: aborting ${this.running.size} task(s)`);
      for (const { ac } of this.running.values()) ac.abort(new Aborted("shutdown", "worker shutting down"));
      const abortEnd = Date.now() + 5000;
      while (this.running.size > 0 && Date.now() < abortEnd) await sleep(20);
    }
    await this.nc.drain().catch((err) => log(`drain: ${err.message}`));
    log("stopped");
  }
}

// Acks (ack, nak, term, working) are fire-and-forget publishes; on a closed
// connection they throw. JetStream redelivers whatever was not acked.
function settle(msg, how, ...args) {
  try {
    msg[how](...args);
  } catch (err) {
    logLimited(`settle-${how}`, `cannot ${how} a task: ${err.message}`);
  }
}

function isNotFound(err) {
  return err?.api_error?.code === 404 || err?.code === "404" || /not found/i.test(err?.message ?? "");
}

function toFailure(err) {
  if (err instanceof ActivityError) {
    return { message: err.message, type: err.type, non_retryable: Boolean(err.nonRetryable) };
  }
  if (err instanceof Error) {
    return { message: err.message || String(err), type: err.name || "Error", non_retryable: false };
  }
  const message = typeof err === "string" ? err : (JSON.stringify(err) ?? String(err));
  return { message, type: "Error", non_retryable: false };
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const worker = new Worker(opts);
  let signals = 0;
  const onSignal = (sig) => {
    signals++;
    if (signals > 1) {
      log(`${sig} again: exiting now`);
      process.exit(1);
    }
    log(`${sig}: shutting down`);
    worker.stop().then(
      () => process.exit(0),
      (err) => {
        log(`shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    await worker.start();
  } catch (err) {
    log(`cannot start: ${err.message}`);
    process.exit(1);
  }
  worker.nc.closed().then((err) => {
    if (!worker.stopping) {
      log(`NATS connection lost for good${err ? `: ${err.message}` : ""}`);
      process.exit(1);
    }
  });
}

process.on("unhandledRejection", (err) => {
  log(`bug: unhandled rejection: ${err?.stack ?? err}`);
});

main();
