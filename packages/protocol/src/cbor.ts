/**
 * The wire codec: deterministic CBOR (RFC 8949 §4.2.1) through cbor-x, and strict readers.
 *
 * Valise structures are CBOR maps with small unsigned integer keys. Only these CBOR types are
 * used: unsigned and negative integers (safe JS integers), byte strings, UTF-8 text strings,
 * arrays, maps with unsigned integer keys, booleans. No floats, no tags, no indefinite lengths.
 *
 * Encoding sorts map keys and uses the shortest integer forms (cbor-x writes integers above
 * 2^32 as floats, so those are passed as BigInt to get major type 0/1 with 8 bytes).
 * Decoding enforces the size limit first, then decodes, then re-encodes and requires the very
 * same bytes: any non-canonical form (unsorted or duplicate keys, long integer forms, floats,
 * tags, invalid UTF-8) is rejected without a list of special cases.
 */
import { Decoder, Encoder } from 'cbor-x';
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
const decoder = new Decoder({ useRecords: false, mapsAsObjects: false, structuredClone: false } as ConstructorParameters<
  typeof Decoder
>[0]);

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

function normalise(v: unknown, depth: number): CborValue {
  if (depth > 16) throw new DecodeError('CBOR nested too deeply');
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new DecodeError('CBOR float or unsafe integer');
    return v;
  }
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DecodeError('CBOR integer out of the safe range');
    }
    return Number(v);
  }
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  // A plain copy: decoded values never alias the caller's buffer.
  if (isBytes(v)) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map((x) => normalise(x, depth + 1));
  if (v instanceof Map) {
    const out: CborMap = new Map();
    for (const [raw, x] of v) {
      const k = typeof raw === 'bigint' && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : raw;
      if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0) throw new DecodeError('CBOR map key is not an unsigned integer');
      out.set(k, normalise(x, depth + 1));
    }
    return out;
  }
  throw new DecodeError(`CBOR type not allowed (${v === null ? 'null' : typeof v})`);
}

/** Plain byte comparison (the inputs are public); a loop, which is many times faster than `every`. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decodes exactly one canonical CBOR item of at most `maxSize` bytes.
 * Throws {@link DecodeError} for anything else.
 */
export function decodeCbor(bytes: Uint8Array, maxSize: number, what = 'structure'): CborValue {
  if (!isBytes(bytes)) throw new DecodeError(`${what}: expected bytes`);
  if (bytes.length > maxSize) throw new DecodeError(`${what}: ${bytes.length} bytes exceeds the limit of ${maxSize}`);
  if (bytes.length === 0) throw new DecodeError(`${what}: empty input`);
  let raw: unknown;
  try {
    // decodeMultiple would accept trailing items; decode() ignores trailing bytes, so the
    // canonical re-encoding comparison below also rejects trailing garbage.
    // cbor-x caches a DataView as a property of the array it decodes: hand it a fresh view so
    // that the caller's array is never touched.
    raw = decoder.decode(bytes.subarray(0));
  } catch (cause) {
    throw new DecodeError(`${what}: malformed CBOR`, { cause });
  }
  const value = normalise(raw, 0);
  let again: Uint8Array;
  try {
    again = encodeCbor(value);
  } catch (cause) {
    throw new DecodeError(`${what}: not encodable`, { cause });
  }
  if (!sameBytes(again, bytes)) throw new DecodeError(`${what}: not in deterministic CBOR encoding`);
  return value;
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
