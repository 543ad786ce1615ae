import { backoffDelayMs } from '../../lib/worker/retry-policy';

describe('backoffDelayMs', () => {
  const noJitter = () => 0;

  it('fixed: the same delay for every attempt', () => {
    expect([1, 2, 5].map((a) => backoffDelayMs({ type: 'fixed', delayMs: 250 }, a, noJitter))).toEqual([250, 250, 250]);
  });

  it('exponential: doubles per attempt from delayMs', () => {
    expect([1, 2, 3, 4].map((a) => backoffDelayMs({ type: 'exponential', delayMs: 100 }, a, noJitter))).toEqual([100, 200, 400, 800]);
  });

  it('exponential: capped by maxDelayMs, and never overflows for huge attempt numbers', () => {
    const backoff = { type: 'exponential', delayMs: 1000, maxDelayMs: 5000 } as const;
    expect(backoffDelayMs(backoff, 10, noJitter)).toBe(5000);
    expect(backoffDelayMs(backoff, 100_000, noJitter)).toBe(5000);
    expect(Number.isFinite(backoffDelayMs({ type: 'exponential', delayMs: 1 }, 5000, noJitter))).toBe(true);
  });

  it('jitter takes off at most its fraction of the delay (default 0.2)', () => {
    expect(backoffDelayMs({ type: 'fixed', delayMs: 1000 }, 1, () => 1)).toBe(800);
    expect(backoffDelayMs({ type: 'fixed', delayMs: 1000, jitter: 0.5 }, 1, () => 1)).toBe(500);
    expect(backoffDelayMs({ type: 'fixed', delayMs: 1000, jitter: 0 }, 1, () => 1)).toBe(1000);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs({ type: 'fixed', delayMs: 1000 }, 1);
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});
