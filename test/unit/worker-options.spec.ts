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

describe('worker.claimAhead', () => {
  it('defaults to claiming ahead, a buffered job handed back after 250 ms without a slot', () => {
    expect(resolveQueueOptions({}).worker).toMatchObject({ claimAhead: { maxWaitMs: 250 } });
    expect(resolveQueueOptions({ worker: { claimAhead: {} } }).worker).toMatchObject({ claimAhead: { maxWaitMs: 250 } });
  });

  it('takes false (claim only for free slots) and a maxWaitMs', () => {
    expect(resolveQueueOptions({ worker: { claimAhead: false } }).worker).toMatchObject({ claimAhead: false });
    expect(resolveQueueOptions({ worker: { claimAhead: { maxWaitMs: 40 } } }).worker).toMatchObject({ claimAhead: { maxWaitMs: 40 } });
  });

  it.each([
    [true, 'worker.claimAhead'],
    [null, 'worker.claimAhead'],
    ['on', 'worker.claimAhead'],
    [{ maxWaitMs: 0 }, 'worker.claimAhead.maxWaitMs'],
    [{ maxWaitMs: 1.5 }, 'worker.claimAhead.maxWaitMs'],
    [{ maxWait: 100 }, 'worker.claimAhead.maxWait'],
  ])('refuses %p with InvalidModuleOptionsError naming %s', (value, name) => {
    expect(() => resolveQueueOptions({ worker: { claimAhead: value as never } })).toThrow(InvalidModuleOptionsError);
    expect(() => resolveQueueOptions({ worker: { claimAhead: value as never } })).toThrow(new RegExp(name.replace(/\./g, '\\.')));
  });
});
