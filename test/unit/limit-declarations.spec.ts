import { declare, withdraw, type DeclarationState } from '../../lib/limits/declarations';
import { canonicalJson, effectiveLimits } from '../../lib/limits/queue-limits';

// The rule that picks a queue's declared limits among the workers' declarations (the integration
// side, with real processes, is in test/integration/limits-config.spec.ts).
const LEASE = 1000;
const OLD = { globalConcurrency: 5 };
const NEW = { globalConcurrency: 10 };

/** Runs declarations in order, each at its time, from an empty registry row. */
function replay(steps: ([string, object, number] | ['withdraw', string, number])[]): ReturnType<typeof declare> {
  let state: DeclarationState = {};
  let last: ReturnType<typeof declare> = { state, declared: {}, declaredBy: [] };
  for (const step of steps) {
    last = step[0] === 'withdraw' ? withdraw(state, step[1] as string, step[2], last.declared) : declare(state, step[0], step[1] as object, step[2], LEASE);
    state = JSON.parse(JSON.stringify(last.state)); // as stored and read back
  }
  return last;
}

describe('limit declarations: the newest declaration among live workers applies', () => {
  it('a new declaration wins at once; renewals of the old one do not win back', () => {
    expect(replay([['old-1', OLD, 0], ['new-1', NEW, 100], ['old-1', OLD, 500]])).toMatchObject({ declared: NEW, declaredBy: ['new-1'] });
  });

  it('an old process restarting while another old one runs inherits the old time, and does not win back', () => {
    expect(replay([['old-1', OLD, 0], ['old-2', OLD, 10], ['new-1', NEW, 100], ['old-2b', OLD, 200]]).declared).toEqual(NEW);
  });

  it('once the last holder of a declaration is gone it is forgotten: the old code deployed again wins as a new one', () => {
    const rolledBack = replay([['old-1', OLD, 0], ['new-1', NEW, 100], ['withdraw', 'old-1', 200], ['old-1b', OLD, 300]]);
    expect(rolledBack.declared).toEqual(OLD);
    // Held since the rollback's boot, not since the first old boot (0): the old time was forgotten.
    expect(rolledBack.state.since).toEqual({ [canonicalJson(NEW)]: 100, [canonicalJson(OLD)]: 300 });
  });

  it('a worker that stops renewing lapses after its lease; the remaining declaration applies', () => {
    const lapsed = replay([['old-1', OLD, 0], ['new-1', NEW, 100], ['old-1', OLD, 600], ['old-1', OLD, 1101]]);
    expect(lapsed).toMatchObject({ declared: OLD, declaredBy: ['old-1'] });
    expect(Object.keys(lapsed.state.workers ?? {})).toEqual(['old-1']);
  });

  it('a graceful stop hands the queue back to the remaining declaration; the last one to stop leaves its declaration in place', () => {
    expect(replay([['old-1', OLD, 0], ['new-1', NEW, 100], ['withdraw', 'new-1', 200]]).declared).toEqual(OLD);
    const empty = replay([['new-1', NEW, 0], ['withdraw', 'new-1', 100]]);
    expect(empty).toMatchObject({ declared: NEW, declaredBy: [], state: { workers: {}, since: {} } });
  });

  it('equal limits written in another key order are one declaration', () => {
    const a = { rateLimit: { max: 1, perMs: 10 }, globalConcurrency: 2 };
    const b = { globalConcurrency: 2, rateLimit: { perMs: 10, max: 1 } };
    expect(replay([['w1', a, 0], ['w2', b, 50]]).declaredBy.sort()).toEqual(['w1', 'w2']);
  });

  it('two declarations first seen in one millisecond get a fixed winner, whatever the order', () => {
    const one = replay([['w1', OLD, 0], ['w2', NEW, 0]]).declared;
    const other = replay([['w2', NEW, 0], ['w1', OLD, 0]]).declared;
    expect(one).toEqual(other);
  });

  it('effective limits: an override wins when its key is present, else the declaration, else none', () => {
    expect(effectiveLimits({ globalConcurrency: 5, groupConcurrency: 1 }, { globalConcurrency: 2 })).toEqual({
      globalConcurrency: { value: 2, source: 'runtime' },
      rateLimit: { value: null, source: 'none' },
      groupConcurrency: { value: 1, source: 'code' },
      groupRateLimit: { value: null, source: 'none' },
    });
  });
});
