import { CronExpression, CronSyntaxError } from '../../lib/schedules/cron-expression';
import { planSlots, type DueSchedule } from '../../lib/schedules/slot-plan';

/** Every slot of `expression` in [from, to), as ISO strings. */
function slotsBetween(expression: CronExpression, from: string, to: string): string[] {
  const out: string[] = [];
  for (let s = expression.nextAfter(new Date(new Date(from).getTime() - 1)); s && s < new Date(to); s = expression.nextAfter(s)) out.push(s.toISOString());
  return out;
}

const at = (iso: string) => new Date(iso);

describe('cron slots across DST changes (fixed dates)', () => {
  const berlin = CronExpression.parse('30 2 * * *', 'Europe/Berlin');
  const newYork = CronExpression.parse('30 2 * * *', 'America/New_York');

  it('Europe/Berlin, daily 02:30, spring forward (2026-03-29, 02:00 CET -> 03:00 CEST): once, at 03:00 CEST', () => {
    expect(slotsBetween(berlin, '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 02:30 does not exist: the first valid time after the gap, 03:00 CEST
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('Europe/Berlin, daily 02:30, fall back (2026-10-25, 03:00 CEST -> 02:00 CET): once, at the first 02:30 (CEST)', () => {
    expect(slotsBetween(berlin, '2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z')).toEqual([
      '2026-10-24T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first of the two; not again at 02:30 CET (01:30Z)
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('America/New_York, daily 02:30, spring forward (2026-03-08) once at 03:00 EDT; 01:30 on fall back (2026-11-01) once, in EDT', () => {
    expect(slotsBetween(newYork, '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual([
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
    ]);
    expect(slotsBetween(CronExpression.parse('30 1 * * *', 'America/New_York'), '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual([
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z', // 01:30 EDT; not again at 01:30 EST (06:30Z)
      '2026-11-02T06:30:00.000Z',
    ]);
  });

  it('an interval expression runs through both passes of a repeated hour and skips the missing one (every slot a distinct instant)', () => {
    const quarterly = CronExpression.parse('*/30 * * * *', 'Europe/Berlin');
    // Fall back: 02:00-03:00 local happens twice, 00:00Z-02:00Z covers both passes.
    expect(slotsBetween(quarterly, '2026-10-25T00:00:00Z', '2026-10-25T02:00:00Z')).toEqual([
      '2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z',
    ]);
    // Spring forward: 02:00-03:00 local does not exist; 00:00Z-02:00Z is 01:00 CET .. 04:00 CEST.
    expect(slotsBetween(quarterly, '2026-03-29T00:00:00Z', '2026-03-29T02:00:00Z')).toEqual([
      '2026-03-29T00:00:00.000Z', '2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z',
    ]);
  });

  it('the same slots going backwards (catch-up) as forwards', () => {
    expect(berlin.latestBefore(at('2026-10-27T00:00:00Z'), 3).map((d) => d.toISOString()).reverse()).toEqual(
      slotsBetween(berlin, '2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z'),
    );
    expect(berlin.latestBefore(at('2026-03-31T00:00:00Z'), 3).map((d) => d.toISOString()).reverse()).toEqual(
      slotsBetween(berlin, '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z'),
    );
  });
});

describe('cron syntax', () => {
  it('5 fields, 6 with seconds, nicknames, UTC by default', () => {
    expect(CronExpression.parse('0 8 * * MON').nextAfter(at('2026-12-02T00:00:00Z'))!.toISOString()).toBe('2026-12-07T08:00:00.000Z');
    expect(CronExpression.parse('*/10 * * * * *').nextAfter(at('2026-12-02T00:00:01Z'))!.toISOString()).toBe('2026-12-02T00:00:10.000Z');
    expect(CronExpression.parse('@daily', 'Europe/Berlin').nextAfter(at('2026-12-02T12:00:00Z'))!.toISOString()).toBe('2026-12-02T23:00:00.000Z');
    expect(CronExpression.parse('@hourly').nextAfter(at('2026-12-02T12:00:00Z'))!.toISOString()).toBe('2026-12-02T13:00:00.000Z');
  });

  it.each([
    ['cron', 'not a cron', 'UTC'],
    ['cron', '* * *', 'UTC'],
    ['cron', '0 0 0 * * * 2030', 'UTC'], // 7 fields (years): not accepted
    ['cron', '61 * * * *', 'UTC'],
    ['cron', '0 0 30 2 *', 'UTC'], // never matches
    ['cron', '@reboot', 'UTC'],
    ['cron', '', 'UTC'],
    ['tz', '0 * * * *', 'Mars/Olympus_Mons'],
    ['tz', '0 * * * *', ''],
  ])('refuses a bad %s (%j in %j), naming it', (field, cron, tz) => {
    let error: unknown;
    try {
      CronExpression.parse(cron, tz);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CronSyntaxError);
    expect((error as CronSyntaxError).field).toBe(field);
  });
});

describe('planSlots: catch-up and overlap', () => {
  const everySecond = CronExpression.parse('* * * * * *');
  const base = (over: Partial<DueSchedule>): DueSchedule => ({
    expression: everySecond,
    nextRunAt: at('2026-12-02T10:00:00Z'),
    catchUp: 'latest',
    catchUpLimit: 100,
    skipOverlap: false,
    previousUnfinished: false,
    ...over,
  });
  const iso = (plan: ReturnType<typeof planSlots>) => plan!.slots.map((s) => s.toISOString());

  it('on time: the due slot, and the next run after now', () => {
    const plan = planSlots(base({}), at('2026-12-02T10:00:00.120Z'));
    expect(iso(plan)).toEqual(['2026-12-02T10:00:00.000Z']);
    expect(plan!.nextRunAt.toISOString()).toBe('2026-12-02T10:00:01.000Z');
  });

  // Every worker was down from 10:00:00 to 10:00:06.5: slots 10:00:00 .. 10:00:06 are due; for a
  // per-second expression a slot more than a second late was missed (10:00:00 .. 10:00:05).
  const now = at('2026-12-02T10:00:06.500Z');
  it("'none' runs only the slot on time", () => {
    expect(iso(planSlots(base({ catchUp: 'none' }), now))).toEqual(['2026-12-02T10:00:06.000Z']);
  });
  it("'latest' runs the latest missed slot once, besides the one on time", () => {
    expect(iso(planSlots(base({ catchUp: 'latest' }), now))).toEqual(['2026-12-02T10:00:05.000Z', '2026-12-02T10:00:06.000Z']);
  });
  it("'all' runs every missed slot, at most catchUpLimit of them (the latest)", () => {
    expect(iso(planSlots(base({ catchUp: 'all' }), now))).toEqual([0, 1, 2, 3, 4, 5, 6].map((s) => `2026-12-02T10:00:0${s}.000Z`));
    expect(iso(planSlots(base({ catchUp: 'all', catchUpLimit: 2 }), now))).toEqual(['2026-12-02T10:00:04.000Z', '2026-12-02T10:00:05.000Z', '2026-12-02T10:00:06.000Z']);
  });
  it('a daily schedule is missed after a minute: the catch-up decides, and the next run is tomorrow', () => {
    const daily = CronExpression.parse('0 7 * * *', 'Europe/Berlin');
    const due = { expression: daily, nextRunAt: at('2026-12-01T06:00:00Z') };
    const later = at('2026-12-02T09:00:00Z'); // 10:00 in Berlin: two slots passed (1st and 2nd, 07:00)
    expect(iso(planSlots(base({ ...due, catchUp: 'none' }), later))).toEqual([]);
    expect(iso(planSlots(base({ ...due, catchUp: 'latest' }), later))).toEqual(['2026-12-02T06:00:00.000Z']);
    expect(iso(planSlots(base({ ...due, catchUp: 'all' }), later))).toEqual(['2026-12-01T06:00:00.000Z', '2026-12-02T06:00:00.000Z']);
    expect(planSlots(base({ ...due, catchUp: 'none' }), later)!.nextRunAt.toISOString()).toBe('2026-12-03T06:00:00.000Z');
    // 30 s late is on time.
    expect(iso(planSlots(base({ ...due, catchUp: 'none' }), at('2026-12-01T06:00:30Z')))).toEqual(['2026-12-01T06:00:00.000Z']);
  });
  it("overlap 'skip': at most one run (the latest slot), none while the previous run is unfinished", () => {
    expect(iso(planSlots(base({ catchUp: 'all', skipOverlap: true }), now))).toEqual(['2026-12-02T10:00:06.000Z']);
    const busy = planSlots(base({ catchUp: 'all', skipOverlap: true, previousUnfinished: true }), now);
    expect(iso(busy)).toEqual([]);
    expect(busy!.nextRunAt.toISOString()).toBe('2026-12-02T10:00:07.000Z');
  });
});
