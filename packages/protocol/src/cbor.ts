/**
 * The wire codec: deterministic CBOR (RFC 8949 §4.2.1) through cbor-x, and strict readers.
 *
 * Valise structures are CBOR maps with small unsigned integer keys. Only these CBOR types are
 * used: unsigned and negative integers (safe JS integers), byte strings, UTF-8 text strings,
 * arrays, maps with unsigned integer keys, booleans. No floats, no tags, no indefinite lengths.
 *
 * Encoding sorts map keys and uses the shortest integer forms (cbor-x writes integers above
 * 2^32 as floats, so those are passed as BigInt to get major type 0/1 with 8 bytes).
 * Decoding enforces the size limit first, then reads the input once with a strict decoder of its
 * own that rejects any non-canonical form (unsorted or duplicate keys, long integer or length
 * forms, indefinite lengths, floats, tags, invalid UTF-8, trailing bytes) as it builds the value.
 */
import { Encoder } from 'cbor-x';
import { isBytes } from './bytes.js';
import { ArgumentError, DecodeError } from './errors.js';

export type CborValue = number | string | boolean | Uint8Array | CborValue[] | CborMap;
export type CborMap = Map<number, CborValue>;

const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: false,
  tagUint8Array: false,
  variableMapSize: true,
  pack: false,
  structuredClone: false,
});

const U32_MAX = 0xffffffff;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True if `s` is valid Unicode (no unpaired surrogate), i.e. it has a UTF-8 encoding. */
export function isWellFormedText(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

const integer = (v: number) => (v > U32_MAX || v < -U32_MAX - 1 ? BigInt(v) : v);

function prepare(v: CborValue): unknown {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new ArgumentError(`cannot encode ${v}: only safe integers are allowed`);
    return integer(v);
  }
  if (typeof v === 'string') {
    if (!isWellFormedText(v)) throw new ArgumentError('cannot encode text with an unpaired surrogate');
    return v;
  }
  if (typeof v === 'boolean') return v;
  if (isBytes(v)) return v;
  if (Array.isArray(v)) return v.map(prepare);
  if (v instanceof Map) {
    const keys = [...v.keys()].sort((a, b) => a - b);
    const out = new Map<unknown, unknown>();
    for (const k of keys) {
      if (!Number.isSafeInteger(k) || k < 0) throw new ArgumentError(`cannot encode map key ${k}`);
      out.set(integer(k), prepare(v.get(k) as CborValue));
    }
    return out;
  }
  throw new ArgumentError(`cannot encode a value of type ${typeof v}`);
}

/** Deterministic encoding of a Valise value. */
export function encodeCbor(value: CborValue): Uint8Array {
  const out = encoder.encode(prepare(value));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength).slice();
}

// Single-pass strict decoder. State lives in module variables: decoding is synchronous and
// never re-entered, and this avoids a closure or an object per call.
const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
let pos = 0;
let end = 0;
let label = '';

/** Fatal (invalid UTF-8 throws) and keeping a leading U+FEFF as text, as the encoder writes it. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const MAX_DEPTH = 16;
/** Largest n of a negative integer -1-n that is still a safe integer. */
const MAX_NEGATIVE_ARG = Number.MAX_SAFE_INTEGER - 1;
/** Strings up to this many bytes are decoded by hand when they are ASCII (cheaper than TextDecoder). */
const SHORT_ASCII = 32;

function reject(reason: string): never {
  throw new DecodeError(`${label}: ${reason}`);
}

function truncated(): never {
  return reject('malformed CBOR (truncated)');
}

/** Reads the argument of a head whose additional information is `ai`, in the shortest form only. */
function readArgument(ai: number): number {
  if (ai < 24) return ai;
  let v: number;
  switch (ai) {
    case 24:
      if (pos + 1 > end) truncated();
      v = src[pos] as number;
      pos += 1;
      if (v < 24) reject('not in deterministic CBOR encoding (long argument)');
      return v;
    case 25:
      if (pos + 2 > end) truncated();
      v = ((src[pos] as number) << 8) | (src[pos + 1] as number);
      pos += 2;
      if (v < 0x100) reject('not in deterministic CBOR encoding (long argument)');
      return v;
    case 26:
      if (pos + 4 > end) truncated();
      v =
        (src[pos] as number) * 0x1000000 + (((src[pos + 1] as number) << 16) | ((src[pos + 2] as number) << 8) | (src[pos + 3] as number));
      pos += 4;
      if (v < 0x10000) reject('not in deterministic CBOR encoding (long argument)');
      return v;
    case 27: {
      if (pos + 8 > end) truncated();
      const hi =
        (src[pos] as number) * 0x1000000 + (((src[pos + 1] as number) << 16) | ((src[pos + 2] as number) << 8) | (src[pos + 3] as number));
      const lo =
        (src[pos + 4] as number) * 0x1000000 +
        (((src[pos + 5] as number) << 16) | ((src[pos + 6] as number) << 8) | (src[pos + 7] as number));
      pos += 8;
      if (hi === 0) reject('not in deterministic CBOR encoding (long argument)');
      if (hi > 0x1fffff) reject('CBOR integer out of the safe range');
      return hi * 0x100000000 + lo;
    }
    case 31:
      return reject('not in deterministic CBOR encoding (indefinite length)');
    default:
      return reject('malformed CBOR (reserved additional information)');
  }
}

function readText(n: number): string {
  const start = pos;
  pos += n;
  if (n <= SHORT_ASCII) {
    let s = '';
    let i = start;
    for (; i < pos; i++) {
      const c = src[i] as number;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === pos) return s;
  }
  try {
    return utf8.decode(src.subarray(start, pos));
  } catch {
    return reject('CBOR text is not valid UTF-8');
  }
}

function readItem(depth: number): CborValue {
  if (depth > MAX_DEPTH) reject('CBOR nested too deeply');
  if (pos >= end) truncated();
  const ib = src[pos++] as number;
  const major = ib >>> 5;
  const ai = ib & 0x1f;
  switch (major) {
    case 0:
      return readArgument(ai);
    case 1: {
      const n = readArgument(ai);
      if (n > MAX_NEGATIVE_ARG) reject('CBOR integer out of the safe range');
      return -1 - n;
    }
    case 2: {
      const n = readArgument(ai);
      if (n > end - pos) truncated();
      // A copy: decoded values never alias the caller's buffer.
      const out = src.slice(pos, pos + n);
      pos += n;
      return out;
    }
    case 3: {
      const n = readArgument(ai);
      if (n > end - pos) truncated();
      return readText(n);
    }
    case 4: {
      const n = readArgument(ai);
      // Every item takes at least one byte: bounds the allocation by the input size.
      if (n > end - pos) truncated();
      const out: CborValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readItem(depth + 1);
      return out;
    }
    case 5: {
      const n = readArgument(ai);
      if (n > (end - pos) / 2) truncated();
      const out: CborMap = new Map();
      let previous = -1;
      for (let i = 0; i < n; i++) {
        if (pos >= end) truncated();
        const kb = src[pos++] as number;
        if (kb >>> 5 !== 0) reject('CBOR map key is not an unsigned integer');
        const key = readArgument(kb & 0x1f);
        // For shortest-form unsigned integers, encoded-bytes order is numeric order (§4.2.1).
        if (key <= previous) reject('not in deterministic CBOR encoding (map keys not strictly ascending)');
        previous = key;
        out.set(key, readItem(depth + 1));
      }
      return out;
    }
    case 6:
      return reject('CBOR tags are not allowed');
    default:
      if (ai === 20) return false;
      if (ai === 21) return true;
      if (ai >= 25 && ai <= 27) return reject('CBOR floats are not allowed');
      if (ai === 31) return reject('malformed CBOR (unexpected break)');
      return reject('CBOR simple value not allowed');
  }
}

/**
 * Decodes exactly one canonical CBOR item of at most `maxSize` bytes.
 * Throws {@link DecodeError} for anything else.
 *
 * One pass over the input that both checks deterministic encoding (RFC 8949 §4.2.1: shortest
 * arguments, definite lengths, unsigned integer map keys strictly ascending) and the Valise
 * subset (safe integers, byte and valid UTF-8 text strings, arrays, maps, booleans; no floats,
 * tags, null or undefined; depth at most 16; no trailing bytes), and builds the value.
 */
export function decodeCbor(bytes: Uint8Array, maxSize: number, what = 'structure'): CborValue {
  if (!isBytes(bytes)) throw new DecodeError(`${what}: expected bytes`);
  if (bytes.length > maxSize) throw new DecodeError(`${what}: ${bytes.length} bytes exceeds the limit of ${maxSize}`);
  if (bytes.length === 0) throw new DecodeError(`${what}: empty input`);
  // A plain view (a Buffer's slice() would alias; its species is Buffer).
  src = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  end = src.length;
  label = what;
  try {
    const value = readItem(0);
    if (pos !== end) reject('not in deterministic CBOR encoding (trailing bytes)');
    return value;
  } finally {
    src = EMPTY;
  }
}

/**
 * Strict reader of one Valise map. Every getter names the field in its error; {@link done}
 * rejects keys that the structure does not define.
 */
export class MapReader {
  private readonly seen = new Set<number>();
  constructor(
    readonly map: CborMap,
    readonly what: string,
  ) {}

  static from(value: CborValue, what: string): MapReader {
    if (!(value instanceof Map)) throw new DecodeError(`${what}: expected a map`);
    return new MapReader(value, what);
  }

  has(key: number): boolean {
    return this.map.has(key);
  }

  private get(key: number, field: string): CborValue {
    this.seen.add(key);
    const v = this.map.get(key);
    if (v === undefined) throw new DecodeError(`${this.what}: missing field ${field} (key ${key})`);
    return v;
  }

  uint(key: number, field: string, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.get(key, field);
    if (typeof v !== 'number' || v < 0 || v > max) throw new DecodeError(`${this.what}.${field}: expected an unsigned integer <= ${max}`);
    return v;
  }

  bytes(key: number, field: string, opts: { len?: number; min?: number; max?: number } = {}): Uint8Array {
    const v = this.get(key, field);
    if (!isBytes(v)) throw new DecodeError(`${this.what}.${field}: expected a byte string`);
    if (opts.len !== undefined && v.length !== opts.len) {
      throw new DecodeError(`${this.what}.${field}: expected ${opts.len} bytes, got ${v.length}`);
    }
    if (opts.min !== undefined && v.length < opts.min) throw new DecodeError(`${this.what}.${field}: shorter than ${opts.min} bytes`);
    if (opts.max !== undefined && v.length > opts.max) throw new DecodeError(`${this.what}.${field}: longer than ${opts.max} bytes`);
    return v;
  }

  text(key: number, field: string, maxLength = 1024): string {
    const v = this.get(key, field);
    if (typeof v !== 'string') throw new DecodeError(`${this.what}.${field}: expected a text string`);
    if (v.length > maxLength) throw new DecodeError(`${this.what}.${field}: longer than ${maxLength} characters`);
    return v;
  }

  bool(key: number, field: string): boolean {
    const v = this.get(key, field);
    if (typeof v !== 'boolean') throw new DecodeError(`${this.what}.${field}: expected a boolean`);
    return v;
  }

  array(key: number, field: string, maxItems: number): CborValue[] {
    const v = this.get(key, field);
    if (!Array.isArray(v)) throw new DecodeError(`${this.what}.${field}: expected an array`);
    if (v.length > maxItems) throw new DecodeError(`${this.what}.${field}: more than ${maxItems} items`);
    return v;
  }

  mapAt(key: number, field: string): MapReader {
    return MapReader.from(this.get(key, field), `${this.what}.${field}`);
  }

  /** Reads an optional field with one of the getters above. */
  optional<T>(key: number, read: (key: number) => T): T | undefined {
    return this.map.has(key) ? read(key) : undefined;
  }

  /** Rejects fields this structure does not define. */
  done(): void {
    for (const k of this.map.keys()) {
      if (!this.seen.has(k)) throw new DecodeError(`${this.what}: unknown field (key ${k})`);
    }
  }
}

/** Builds a map, skipping undefined optional fields. */
export function cborMap(entries: [number, CborValue | undefined][]): CborMap {
  const m: CborMap = new Map();
  for (const [k, v] of entries) if (v !== undefined) m.set(k, v);
  return m;
}

/** Top-level structure header: every structure carries a version (key 0) and a type (key 1). */
export const WIRE_VERSION = 1;

export const StructType = {
  PersonCert: 1,
  DeviceCert: 2,
  OfficeCert: 3,
  OfficeHolderCert: 4,
  RevocationList: 5,
  EnvelopePrelude: 10,
  EnvelopeHeader: 12,
  EntryPlaintext: 13,
  SafetyNumberPayload: 20,
  TracingRecord: 30,
  // Relay frames (spec/relay.md): 40-49 client to relay, 50-59 relay to client.
  RelaySend: 40,
  RelayAck: 41,
  RelayPrekeyUpload: 42,
  RelayPrekeyFetch: 43,
  RelayPrekeyCount: 44,
  RelayDirectoryPublish: 45,
  RelayDirectoryLookup: 46,
  RelayRevocationPublish: 47,
  RelayRevocationGet: 48,
  RelayStored: 50,
  RelayDeliver: 51,
  RelayOk: 52,
  RelayPrekeys: 53,
  RelayPrekeyCountResult: 54,
  RelayPrekeysLow: 55,
  RelayDirectoryResult: 56,
  RelayRevocationList: 57,
  RelayError: 58,
  RelayBacklogEnd: 59,
} as const;
export type StructType = (typeof StructType)[keyof typeof StructType];

/** Decodes a top-level structure, checking size, canonical form, version and type. */
export function decodeStructure(bytes: Uint8Array, type: StructType, maxSize: number, what: string): MapReader {
  const r = MapReader.from(decodeCbor(bytes, maxSize, what), what);
  const v = r.uint(0, 'version');
  if (v !== WIRE_VERSION) throw new DecodeError(`${what}: unsupported version ${v}`);
  const t = r.uint(1, 'type');
  if (t !== type) throw new DecodeError(`${what}: wrong structure type ${t}, expected ${type}`);
  return r;
}

export function encodeStructure(type: StructType, fields: [number, CborValue | undefined][]): Uint8Array {
  return encodeCbor(cborMap([[0, WIRE_VERSION], [1, type], ...fields]));
}
