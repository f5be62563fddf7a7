// The activities this example worker serves, by activity type.
//
// An activity is an async function (input, ctx) => output:
//   input   the task's input (any JSON value; null if none)
//   ctx     { attempt, signal, heartbeat(details), log(line), task }
//           attempt   1 for the first attempt, 2 for the first retry, ...
//           signal    an AbortSignal: aborted when the workflow stops waiting
//                     (cancel note, heartbeat reply), the start-to-close time is
//                     up, or the worker shuts down past its grace period
//           heartbeat records progress (any JSON) with the engine; it throws
//                     once the engine says the attempt should stop
//           task      the decoded activity task (ids, timeouts, queue)
// Its return value (any JSON value) is the activity's output. To fail, throw:
// an ActivityError carries a failure type and whether retrying makes sense;
// anything else thrown is a retryable failure typed by its name.
//
// Activities run at least once: a task can be delivered again after a crash,
// so their side effects should be idempotent (the receipts below are derived
// from the input, so a repeated call returns the same ids).

import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

export class ActivityError extends Error {
  constructor(message, { type = "ActivityError", nonRetryable = false } = {}) {
    super(message);
    this.name = "ActivityError";
    this.type = type;
    this.nonRetryable = nonRetryable;
  }
}

// JSON with object keys sorted, so equal values give equal text.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

// A short id derived from the input: the same input always gets the same id.
function derivedId(kind, input) {
  const digest = createHash("sha256").update(`${kind}\n${canonical(input)}`).digest("hex");
  return `${kind}-${digest.slice(0, 16)}`;
}

function object(input) {
  return input !== null && typeof input === "object" && !Array.isArray(input) ? input : {};
}

function nonNegative(value, fallback) {
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

// Picks the fields of `from` that are present.
function pick(from, ...keys) {
  const out = {};
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
  return out;
}

// Sleeps `totalMs` (may be Infinity), heartbeating every `everyMs` (0: never)
// with {"progress": fraction done} (or, without an end, the heartbeats so
// far). Aborts with ctx.signal. Returns the number of heartbeats sent.
async function sleepWithHeartbeats(ctx, totalMs, everyMs) {
  const start = Date.now();
  let beats = 0;
  for (;;) {
    const elapsed = Date.now() - start;
    if (elapsed >= totalMs) return beats;
    const left = totalMs - elapsed;
    const step = Math.min(everyMs > 0 ? everyMs : left, left, 3_600_000);
    await sleep(step, undefined, { signal: ctx.signal });
    const now = Date.now() - start;
    if (everyMs > 0 && now < totalMs) {
      const progress = Number.isFinite(totalMs) ? Math.round((now / totalMs) * 1000) / 1000 : beats + 1;
      await ctx.heartbeat({ progress });
      beats++;
    }
  }
}

export const activities = {
  // Returns its input.
  async echo(input) {
    return input;
  },

  // Order saga steps. Inputs are objects; unknown fields are ignored.
  // reserve {"sku","qty",...} -> {"reservation_id","sku","qty"}
  async reserve(input) {
    const order = object(input);
    return { reservation_id: derivedId("res", order), sku: order.sku ?? null, qty: order.qty ?? 1 };
  },

  // charge {"amount","card",...} -> {"charge_id","amount"}; card "declined"
  // fails for good (type CardDeclined).
  async charge(input) {
    const order = object(input);
    if (order.card === "declined") {
      throw new ActivityError("card declined", { type: "CardDeclined", nonRetryable: true });
    }
    return { charge_id: derivedId("ch", order), amount: order.amount ?? null };
  },

  // ship {"sku","qty","reservation_id",...} -> {"shipment_id",...}
  async ship(input) {
    const order = object(input);
    return { shipment_id: derivedId("shp", order), ...pick(order, "sku", "qty", "reservation_id") };
  },

  // release {"reservation_id",...} (a reserve receipt) -> {"released": id}
  async release(input) {
    const hold = object(input);
    return { released: hold.reservation_id ?? derivedId("res", hold) };
  },

  // refund {"charge_id",...} (a charge receipt) -> {"refund_id","charge_id"}
  async refund(input) {
    const charge = object(input);
    return { refund_id: derivedId("rf", charge), charge_id: charge.charge_id ?? null };
  },

  // flaky {"fail_times":N}: a retryable failure (type Flaky) while attempt <= N,
  // then {"attempt":attempt}.
  async flaky(input, ctx) {
    const failTimes = nonNegative(object(input).fail_times, 1);
    if (ctx.attempt <= failTimes) {
      throw new ActivityError(`attempt ${ctx.attempt} of the first ${failTimes} fails`, {
        type: "Flaky",
      });
    }
    return { attempt: ctx.attempt };
  },

  // slow {"ms":N,"heartbeat_ms":M}: works N ms, heartbeating every M ms
  // (default: half the task's heartbeat timeout, else never) -> {"slept_ms","heartbeats"}.
  async slow(input, ctx) {
    const args = object(input);
    const ms = nonNegative(args.ms, 1000);
    const every = nonNegative(args.heartbeat_ms, ctx.task.heartbeat_timeout_ms / 2);
    const heartbeats = await sleepWithHeartbeats(ctx, ms, every);
    return { slept_ms: ms, heartbeats };
  },

  // sleep_forever {"heartbeat_ms":M}: heartbeats every M ms (default 1000)
  // and never completes; ends only when aborted. For tests of cancellation.
  async sleep_forever(input, ctx) {
    const every = Math.max(10, nonNegative(object(input).heartbeat_ms, 1000));
    await sleepWithHeartbeats(ctx, Number.POSITIVE_INFINITY, every);
    throw new Error("unreachable");
  },
};
