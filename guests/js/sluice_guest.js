// Sluice transforms in JavaScript, built into components with
// componentize-js against wit/sluice.wit (sluice:transform@0.2.0): the
// worker's process() hook, as in the Python SDK (guests/python/sluice_guest).
// A batch arrives as flat buffers (typed arrays); a record's value is read
// from the one byte buffer where it lies, and results are written into the
// output buffers directly, with no object per record crossing the boundary.
//
//   import { Reject, transformer } from '../sluice_guest.js';
//   function process(message, consumerName, metadatas) { ...; return message; }
//   export const transform = transformer(process);
//
// `process` gets the record's JSON value, the pipeline metadata's
// `consumer_name` (else "") and the metadata as an object. It returns an
// object (produce it, with the input's key and headers, to every output), an
// array (produce each), null or undefined (drop the record), a Uint8Array (its
// bytes as they are) or an `Output`; it throws `new Reject("reason")` to send
// the record to the dead-letter topic. Any other exception dead-letters the
// record too, with `Name: message` as the reason and the stack in the log.
// Only the per-message interface is here; batches and aggregators are in
// the Python SDK.

import { log as hostLog, metadata as hostMetadata } from 'sluice:transform/host@0.2.0';

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

// Bits of a record's `presence` byte, and verdict bytes (wit/sluice.wit;
// 0, emit, is what a verdicts array starts as).
const KEY = 1;
const VALUE = 2;
const DROP = 1;
const FAIL = 2;

/** Throw to refuse a record: it goes to the dead-letter topic with `reason`. */
export class Reject extends Error {
  constructor(reason) {
    super(String(reason));
    this.name = 'Reject';
    this.reason = String(reason);
  }
}

/**
 * A record to produce when a plain value is not enough: `value` (JSON, or a
 * Uint8Array as it is), and optionally `topic` (one of the declared outputs;
 * undefined: all of them), `key` (string or bytes) and `headers` (an object
 * of string or bytes values), which otherwise are the input record's.
 */
export class Output {
  constructor(value, { topic, key, headers } = {}) {
    this.value = value;
    this.topic = topic;
    this.key = key;
    this.headers = headers;
  }
}

/** Writes to the host's log: level "trace", "debug", "info", "warn" or "error". */
export function log(level, message) {
  hostLog(level, String(message));
}

let metadataCache;

/** The pipeline's metadata as a frozen object of strings, read once per instance. */
export function metadata() {
  if (metadataCache === undefined) {
    metadataCache = Object.freeze(Object.fromEntries(hostMetadata()));
  }
  return metadataCache;
}

function bytes(value) {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return encoder.encode(value);
  throw new TypeError(`expected a string or bytes, not ${typeof value}`);
}

function encode(value) {
  if (value instanceof Uint8Array) return value;
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${typeof value} is not a JSON value`);
  return encoder.encode(text);
}

/** A batch's columns, and where record `i`'s entries of `ends` start. */
class Columns {
  constructor(batch) {
    this.batch = batch;
    this.count = batch.presence.length;
    const counts = batch.headerCounts;
    let headers = false;
    for (let i = 0; i < counts.length; i++) {
      if (counts[i] !== 0) {
        headers = true;
        break;
      }
    }
    if (headers) {
      this.firsts = new Uint32Array(this.count + 1);
      this.headerFirsts = new Uint32Array(this.count + 1);
      for (let i = 0; i < this.count; i++) {
        this.firsts[i + 1] = this.firsts[i] + 2 + 2 * counts[i];
        this.headerFirsts[i + 1] = this.headerFirsts[i] + counts[i];
      }
    } else {
      this.firsts = null; // record i starts at entry 2 * i
      this.headerFirsts = null;
    }
  }

  first(i) {
    return this.firsts === null ? 2 * i : this.firsts[i];
  }

  where(i) {
    let rest = i;
    for (const segment of this.batch.segments) {
      if (rest < segment.records) {
        return `topic ${segment.topic} partition ${segment.partition} offset ${this.batch.offsets[i]}`;
      }
      rest -= segment.records;
    }
    return `record ${i}`;
  }

  key(i) {
    if (!(this.batch.presence[i] & KEY)) return undefined;
    const first = this.first(i);
    const ends = this.batch.ends;
    return this.batch.data.subarray(first === 0 ? 0 : ends[first - 1], ends[first]);
  }
}

/** Output records written straight into `outputs`' columns. */
class Writer {
  constructor() {
    this.topics = [];
    this.topicIndex = new Map();
    this.destinations = [];
    this.presence = [];
    this.headerCounts = [];
    this.headerValues = [];
    this.ends = [];
    this.data = new Uint8Array(1 << 16);
    this.length = 0;
  }

  destination(topic) {
    if (topic === undefined || topic === null) return 0;
    let index = this.topicIndex.get(topic);
    if (index === undefined) {
      if (typeof topic !== 'string') throw new TypeError(`an output topic must be a string, not ${typeof topic}`);
      this.topics.push(topic);
      index = this.topics.length;
      this.topicIndex.set(topic, index);
    }
    return index;
  }

  append(bytes) {
    const needed = this.length + bytes.length;
    if (needed > this.data.length) {
      let size = this.data.length * 2;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    this.data.set(bytes, this.length);
    this.length = needed;
    this.ends.push(needed);
  }

  mark() {
    return [this.destinations.length, this.ends.length, this.length, this.headerValues.length, this.topics.length];
  }

  rollback([records, ends, length, headerValues, topics]) {
    for (const topic of this.topics.splice(topics)) this.topicIndex.delete(topic);
    this.destinations.length = records;
    this.presence.length = records;
    this.headerCounts.length = records;
    this.ends.length = ends;
    this.length = length;
    this.headerValues.length = headerValues;
  }

  /** One record: key bytes or undefined, value bytes, headers [name, bytes or undefined] pairs. */
  write(destination, key, value, headers) {
    this.destinations.push(destination);
    this.presence.push(key === undefined ? VALUE : KEY | VALUE);
    this.append(key === undefined ? EMPTY : key);
    this.append(value);
    this.headerCounts.push(headers.length);
    for (const [name, headerValue] of headers) {
      this.append(encoder.encode(name));
      this.headerValues.push(headerValue === undefined ? 0 : 1);
      this.append(headerValue === undefined ? EMPTY : headerValue);
    }
  }

  /** One record keeping input record `i`'s key and headers, copied as they are. */
  writeKeeping(destination, columns, i, value) {
    const batch = columns.batch;
    const ends = batch.ends;
    const first = columns.first(i);
    const start = first === 0 ? 0 : ends[first - 1];
    this.destinations.push(destination);
    this.presence.push(batch.presence[i] & KEY ? KEY | VALUE : VALUE);
    this.append(batch.data.subarray(start, ends[first]));
    this.append(value);
    const count = batch.headerCounts[i];
    this.headerCounts.push(count);
    if (count !== 0) {
      const h = columns.headerFirsts[i];
      let previous = ends[first + 1];
      for (let k = 0; k < 2 * count; k++) {
        const end = ends[first + 2 + k];
        this.append(batch.data.subarray(previous, end));
        previous = end;
      }
      for (let k = 0; k < count; k++) this.headerValues.push(batch.headerValues[h + k]);
    }
  }

  outputs() {
    return {
      topics: this.topics,
      destinations: Uint32Array.from(this.destinations),
      presence: Uint8Array.from(this.presence),
      headerCounts: Uint32Array.from(this.headerCounts),
      headerValues: Uint8Array.from(this.headerValues),
      ends: Uint32Array.from(this.ends),
      data: this.data.slice(0, this.length),
    };
  }
}

const EMPTY = new Uint8Array(0);

function headerPairs(headers) {
  return Object.entries(headers).map(([name, value]) => [name, value == null ? undefined : bytes(value)]);
}

function writeItem(writer, item, columns, i) {
  if (!(item instanceof Output)) {
    writer.writeKeeping(0, columns, i, encode(item));
    return;
  }
  const destination = writer.destination(item.topic);
  const value = encode(item.value);
  if (item.key === undefined && item.headers === undefined) {
    writer.writeKeeping(destination, columns, i, value);
    return;
  }
  const key = item.key === undefined ? columns.key(i) : item.key === null ? undefined : bytes(item.key);
  const headers = item.headers === undefined ? inputHeaders(columns, i) : headerPairs(item.headers);
  writer.write(destination, key, value, headers);
}

function inputHeaders(columns, i) {
  const batch = columns.batch;
  const count = batch.headerCounts[i];
  const pairs = [];
  if (count === 0) return pairs;
  const ends = batch.ends;
  const h = columns.headerFirsts[i];
  let entry = columns.first(i) + 2;
  for (let k = 0; k < count; k++) {
    const name = decoder.decode(batch.data.subarray(ends[entry - 1], ends[entry]));
    const value = batch.headerValues[h + k] ? batch.data.subarray(ends[entry], ends[entry + 1]) : undefined;
    pairs.push([name, value]);
    entry += 2;
  }
  return pairs;
}

/** Writes one result; returns how many records it wrote, or throws having written none. */
function writeResult(writer, result, columns, i) {
  const items = Array.isArray(result) ? result : [result];
  const mark = writer.mark();
  try {
    for (const item of items) writeItem(writer, item, columns, i);
  } catch (e) {
    writer.rollback(mark);
    throw e;
  }
  return items.length;
}

/** The `transform` export for a per-message function. */
export function transformer(process) {
  function processBatch(batch) {
    const columns = new Columns(batch);
    const writer = new Writer();
    const count = columns.count;
    const verdicts = new Uint8Array(count); // 0: emit
    const emitted = new Uint32Array(count);
    const reasons = [];
    const fail = (i, reason) => {
      verdicts[i] = FAIL;
      reasons.push(reason);
    };
    const { presence, ends, data } = batch;
    const meta = metadata();
    const consumerName = meta.consumer_name ?? '';
    for (let i = 0; i < count; i++) {
      if (!(presence[i] & VALUE)) {
        fail(i, 'record has no value (a tombstone), expected JSON');
        continue;
      }
      const first = columns.first(i);
      let message;
      try {
        message = JSON.parse(decoder.decode(data.subarray(ends[first], ends[first + 1])));
      } catch (e) {
        fail(i, `value is not valid JSON: ${e.message}`);
        continue;
      }
      try {
        const result = process(message, consumerName, meta);
        if (result === null || result === undefined) {
          verdicts[i] = DROP;
        } else if (result instanceof Reject) {
          fail(i, result.reason);
        } else {
          emitted[i] = writeResult(writer, result, columns, i);
        }
      } catch (e) {
        if (e instanceof Reject) {
          fail(i, e.reason);
          continue;
        }
        hostLog('warn', `transform threw on ${columns.where(i)}: ${e}\n${e && e.stack ? e.stack : ''}`);
        fail(i, e instanceof Error ? `${e.name}: ${e.message}` : `Error: ${e}`);
      }
    }
    return { verdicts, emitted, reasons, outputs: writer.outputs() };
  }
  return { process: processBatch };
}
