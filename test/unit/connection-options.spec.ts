import { InvalidModuleOptionsError } from '../../lib';
import { resolveQueueOptions } from '../../lib/queue-options.resolver';
import { DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_WORKER_POOL_SIZE } from '../../lib/queue.constants';

describe('connection options', () => {
  it('defaults: statements bounded by 5 s, prepared statements on, a worker pool of 5', () => {
    const resolved = resolveQueueOptions({});
    expect(resolved).toMatchObject({ queryTimeoutMs: DEFAULT_QUERY_TIMEOUT_MS, preparedStatements: true, worker: { poolSize: DEFAULT_WORKER_POOL_SIZE } });
    expect([DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_WORKER_POOL_SIZE]).toEqual([5000, 5]);
  });

  it('takes valid values', () => {
    expect(resolveQueueOptions({ queryTimeoutMs: 250, preparedStatements: false, worker: { poolSize: 2 } })).toMatchObject({
      queryTimeoutMs: 250,
      preparedStatements: false,
      worker: { poolSize: 2 },
    });
  });

  it.each([
    [{ queryTimeoutMs: 0 }, 'queryTimeoutMs'],
    [{ queryTimeoutMs: 1.5 }, 'queryTimeoutMs'],
    [{ preparedStatements: 'no' }, 'preparedStatements'],
    [{ worker: { poolSize: 0 } }, 'worker.poolSize'],
  ])('refuses %j naming %s', (options, option) => {
    expect(() => resolveQueueOptions(options as never)).toThrow(InvalidModuleOptionsError);
    expect(() => resolveQueueOptions(options as never)).toThrow(new RegExp(`^Invalid queue option ${option.replace('.', '\\.')}:`));
  });
});
