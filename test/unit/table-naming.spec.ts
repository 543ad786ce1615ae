import { createTableNaming } from '../../lib/database/table-naming';
import { InvalidModuleOptionsError } from '../../lib';

describe('createTableNaming', () => {
  it('quotes validated names and derives the channel', () => {
    expect(createTableNaming()).toMatchObject({ qualified: '"public"."queue_jobs"', channel: 'public.queue_jobs', prefix: 'queue_jobs' });
    expect(createTableNaming('jobs', 'work_items')).toMatchObject({ qualified: '"jobs"."work_items"', channel: 'jobs.work_items' });
  });

  it('keeps the channel within PostgreSQL\'s 63-byte limit, stably', () => {
    const long = createTableNaming('s'.repeat(40), 't'.repeat(40));
    expect(long.channel.length).toBeLessThanOrEqual(63);
    expect(long.channel).toBe(createTableNaming('s'.repeat(40), 't'.repeat(40)).channel);
    expect(long.channel).not.toBe(createTableNaming('s'.repeat(40), 't'.repeat(39) + 'u').channel);
  });

  it.each(['', 'Jobs', '1jobs', 'jobs-x', 'a"b', 'a b', 'x'.repeat(64), 'public; DROP TABLE x'])('rejects %j', (name) => {
    expect(() => createTableNaming(name)).toThrow(InvalidModuleOptionsError);
    expect(() => createTableNaming('public', name)).toThrow(InvalidModuleOptionsError);
  });
});

describe('createTableNaming prefixes', () => {
  it('keeps names of up to 40 characters as they are', () => {
    const naming = createTableNaming('public', 'x'.repeat(40));
    expect(naming.prefix).toBe('x'.repeat(40));
    expect(naming.legacyPrefix).toBeUndefined();
  });

  it('gives long names that share their first 40 characters distinct prefixes of at most 40 characters', () => {
    const a = createTableNaming('public', `${'x'.repeat(40)}_a`);
    const b = createTableNaming('public', `${'x'.repeat(40)}_b`);
    expect(a.prefix).not.toBe(b.prefix);
    expect(a.prefix.length).toBeLessThanOrEqual(40);
    expect(b.prefix.length).toBeLessThanOrEqual(40);
    expect(a.legacyPrefix).toBe('x'.repeat(40));
    expect(createTableNaming('public', `${'x'.repeat(40)}_a`).prefix).toBe(a.prefix);
  });
});
