import { InvalidJobDataError } from '../errors/invalid-job-data.error';
import { MAX_JSON_BYTES } from '../queue.constants';

/**
 * `value` as the JSON text to store, after {@link assertJsonRoundTrip}; refuses a text over
 * {@link MAX_JSON_BYTES} (UTF-8 bytes) with an InvalidJobDataError at `root`.
 */
export function serializeJson(value: unknown, root = 'data'): string {
  assertJsonRoundTrip(value, root);
  const text = JSON.stringify(value);
  // NOTE: a UTF-16 code unit is at most 3 UTF-8 bytes: only long texts need counting.
  if (text.length * 3 > MAX_JSON_BYTES) {
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_JSON_BYTES) {
      throw new InvalidJobDataError(root, `is ${bytes} bytes as JSON`, `a job's data or result may have at most ${MAX_JSON_BYTES} bytes`);
    }
  }
  return text;
}

/**
 * Refuses a value that JSON (and PostgreSQL `jsonb`) cannot store and give back unchanged, naming the
 * path of the first offending part. Checked before anything reaches the database.
 *
 * Accepted: null, booleans, finite numbers, strings, arrays, plain objects, and objects with a
 * `toJSON()` (a `Date` is stored as its ISO string). Object properties whose value is `undefined`
 * are dropped, as JSON does.
 */
export function assertJsonRoundTrip(value: unknown, root = 'data'): void {
  try {
    walk(value, []);
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    throw new InvalidJobDataError(root + error.path.reverse().join(''), error.problem);
  }
}

/**
 * A problem found deep in a value; each level adds its step to `path` as the problem passes up.
 * NOTE: paths are built only for a bad value: building one per property on every add() was the
 * largest cost of the check.
 */
class Problem {
  readonly path: string[] = [];
  constructor(readonly problem: string) {}
}

function walk(value: unknown, ancestors: object[]): void {
  switch (typeof value) {
    case 'string':
      // NOTE: jsonb rejects the NUL character; catch it here rather than as a database error.
      if (value.includes('\u0000')) throw new Problem('contains a NUL character (\\u0000), which jsonb cannot store');
      // NOTE: JSON.stringify writes a lone UTF-16 surrogate as an escape that jsonb refuses.
      if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
        throw new Problem('contains a lone UTF-16 surrogate (half of an emoji or other astral character), which jsonb cannot store');
      }
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new Problem(`is ${value}, which JSON turns into null`);
      return;
    case 'bigint':
      throw new Problem('is a BigInt; convert it to a string or number');
    case 'function':
      throw new Problem('is a function');
    case 'symbol':
      throw new Problem('is a symbol');
    case 'undefined':
      throw new Problem('is undefined');
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.includes(object)) throw new Problem('is a circular reference');
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    let converted: unknown;
    try {
      converted = (object as { toJSON(): unknown }).toJSON();
    } catch (error) {
      throw new Problem(`has a toJSON() that threw (${(error as Error)?.message ?? error})`);
    }
    if (converted === object) throw new Problem('has a toJSON() that returns itself');
    ancestors.push(object);
    walk(converted, ancestors);
    ancestors.pop();
    return;
  }
  ancestors.push(object);
  if (Array.isArray(object)) {
    for (let index = 0; index < object.length; index++) {
      try {
        walk(object[index], ancestors);
      } catch (error) {
        if (error instanceof Problem) error.path.push(`[${index}]`);
        throw error;
      }
    }
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = object.constructor?.name ?? 'object';
      if (object instanceof Map || object instanceof Set) {
        throw new Problem(`is a ${kind}, which JSON stores as {}; convert it to an array or object`);
      }
      // NOTE: class instances keep their own enumerable fields through JSON but lose their class;
      // that is what users expect from a JSON queue, so they are accepted and stored as plain objects.
    }
    const keys = Object.keys(object);
    for (let k = 0; k < keys.length; k++) {
      const item = (object as Record<string, unknown>)[keys[k]];
      if (item === undefined) continue;
      try {
        // Keys are strings in jsonb too, with the same limits.
        walk(keys[k], ancestors);
        walk(item, ancestors);
      } catch (error) {
        if (error instanceof Problem) error.path.push(`.${keys[k]}`);
        throw error;
      }
    }
  }
  ancestors.pop();
}
