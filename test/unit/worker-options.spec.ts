import { InvalidModuleOptionsError } from '../../lib';
import { resolveQueueOptions } from '../../lib/queue-options.resolver';

describe('worker.unknownJobGraceMs', () => {
  it('defaults to 10 minutes', () => {
    const resolved = resolveQueueOptions({});
    expect(resolved.worker && resolved.worker.unknownJobGraceMs).toBe(600_000);
  });

  it('accepts 0 (fail unknown names at once)', () => {
    const resolved = resolveQueueOptions({ worker: { unknownJobGraceMs: 0 } });
    expect(resolved.worker && resolved.worker.unknownJobGraceMs).toBe(0);
  });

  it.each([-1, 1.5, '600000', NaN, null])('refuses %p with InvalidModuleOptionsError naming the option', (value) => {
    expect(() => resolveQueueOptions({ worker: { unknownJobGraceMs: value as never } })).toThrow(InvalidModuleOptionsError);
    expect(() => resolveQueueOptions({ worker: { unknownJobGraceMs: value as never } })).toThrow(/worker\.unknownJobGraceMs/);
  });
});
