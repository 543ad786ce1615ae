import { InvalidJobDataError } from '../errors/invalid-job-data.error';

/**
 * Refuses a value that JSON (and PostgreSQL `jsonb`) cannot store and give back unchanged, naming the
 * path of the first offending part. Checked before anything reaches the database.
 *
 * Accepted: null, booleans, finite numbers, strings, arrays, plain objects, and objects with a
 * `toJSON()` (a `Date` is stored as its ISO string). Object properties whose value is `undefined`
 * are dropped, as JSON does.
 */
export function assertJsonRoundTrip(value: unknown, root = 'data'): void {
  walk(value, root, new Set());
}

function walk(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
      // NOTE: jsonb rejects the NUL character; catch it here rather than as a database error.
      if (value.includes('\u0000')) throw new InvalidJobDataError(path, 'contains a NUL character (\\u0000), which jsonb cannot store');
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidJobDataError(path, `is ${value}, which JSON turns into null`);
      return;
    case 'bigint':
      throw new InvalidJobDataError(path, 'is a BigInt; convert it to a string or number');
    case 'function':
      throw new InvalidJobDataError(path, 'is a function');
    case 'symbol':
      throw new InvalidJobDataError(path, 'is a symbol');
    case 'undefined':
      throw new InvalidJobDataError(path, 'is undefined');
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.has(object)) throw new InvalidJobDataError(path, 'is a circular reference');
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') {
    let converted: unknown;
    try {
      converted = (object as { toJSON(): unknown }).toJSON();
    } catch (error) {
      throw new InvalidJobDataError(path, `has a toJSON() that threw (${(error as Error)?.message ?? error})`);
    }
    if (converted === object) throw new InvalidJobDataError(path, 'has a toJSON() that returns itself');
    ancestors.add(object);
    walk(converted, path, ancestors);
    ancestors.delete(object);
    return;
  }
  ancestors.add(object);
  if (Array.isArray(object)) {
    object.forEach((item, index) => walk(item, `${path}[${index}]`, ancestors));
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const kind = object.constructor?.name ?? 'object';
      if (object instanceof Map || object instanceof Set) {
        throw new InvalidJobDataError(path, `is a ${kind}, which JSON stores as {}; convert it to an array or object`);
      }
      // NOTE: class instances keep their own enumerable fields through JSON but lose their class;
      // that is what users expect from a JSON queue, so they are accepted and stored as plain objects.
    }
    for (const [key, item] of Object.entries(object)) {
      if (item === undefined) continue;
      walk(item, `${path}.${key}`, ancestors);
    }
  }
  ancestors.delete(object);
}
