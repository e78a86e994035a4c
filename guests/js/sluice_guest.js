// Sluice transforms in JavaScript, built into components with
// componentize-js against wit/sluice.wit: the worker's process() hook, as in
// the Python SDK (guests/python/sluice_guest).
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

import { log as hostLog, metadata as hostMetadata } from 'sluice:transform/host@0.1.0';

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

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

function outputRecord(item, record) {
  if (item instanceof Output) {
    const headers =
      item.headers === undefined
        ? record.headers
        : Object.entries(item.headers).map(([key, value]) => ({
            key,
            value: value == null ? undefined : bytes(value),
          }));
    const key = item.key === undefined ? record.key : item.key === null ? undefined : bytes(item.key);
    return { topic: item.topic ?? undefined, key, value: encode(item.value), headers };
  }
  return { topic: undefined, key: record.key, value: encode(item), headers: record.headers };
}

function outcome(result, record) {
  if (result === null || result === undefined) return { tag: 'drop' };
  if (result instanceof Reject) return { tag: 'fail', val: result.reason };
  const items = Array.isArray(result) ? result : [result];
  return { tag: 'emit', val: items.map((item) => outputRecord(item, record)) };
}

function where(record) {
  return `topic ${record.topic} partition ${record.partition} offset ${record.offset}`;
}

/** The `transform` export for a per-message function. */
export function transformer(process) {
  function one(record) {
    if (record.value === undefined) {
      return { tag: 'fail', val: 'record has no value (a tombstone), expected JSON' };
    }
    let message;
    try {
      message = JSON.parse(decoder.decode(record.value));
    } catch (e) {
      return { tag: 'fail', val: `value is not valid JSON: ${e.message}` };
    }
    try {
      const meta = metadata();
      return outcome(process(message, meta.consumer_name ?? '', meta), record);
    } catch (e) {
      if (e instanceof Reject) return { tag: 'fail', val: e.reason };
      hostLog('warn', `transform threw on ${where(record)}: ${e}\n${e && e.stack ? e.stack : ''}`);
      return { tag: 'fail', val: e instanceof Error ? `${e.name}: ${e.message}` : `Error: ${e}` };
    }
  }
  return { process: (batch) => batch.map(one) };
}
