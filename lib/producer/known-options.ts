/**
 * The option names each options object accepts, and what a misspelt or foreign name most likely
 * meant. Unknown keys are refused (a BullMQ-style `{ delay: 5000 }` silently ran the job at once).
 */
export const KNOWN_OPTIONS = {
  job: ['runAt', 'delayMs', 'priority', 'maxAttempts', 'backoff', 'timeoutMs', 'manager', 'unique', 'group', 'dependsOn', 'onChildFailure'],
  unique: ['key', 'until', 'windowMs', 'replace'],
  bulkJob: ['queue', 'name', 'data', 'options'],
  flowJob: ['queue', 'name', 'data', 'options', 'children', 'onChildFailure'],
  backoff: ['type', 'delayMs', 'maxDelayMs', 'jitter'],
  runDefaults: ['maxAttempts', 'backoff', 'timeoutMs'],
  moduleDefaults: ['maxAttempts', 'backoff', 'timeoutMs', 'priority'],
  processor: ['concurrency', 'defaultJobOptions', 'globalConcurrency', 'rateLimit', 'groupConcurrency', 'groupRateLimit'],
  module: ['dataSource', 'schema', 'tableName', 'migrationsRun', 'defaultJobOptions', 'worker', 'retentionMs', 'queryTimeoutMs', 'preparedStatements', 'stats', 'metrics', 'health', 'tracing', 'adminQueryTimeoutMs'],
  limits: ['globalConcurrency', 'rateLimit', 'groupConcurrency', 'groupRateLimit'],
  rateLimit: ['max', 'perMs'],
  schedule: ['queue', 'name', 'cron', 'tz', 'data', 'options', 'catchUp', 'catchUpLimit', 'overlap'],
  scheduleDecorator: ['key', 'tz', 'data', 'options', 'catchUp', 'catchUpLimit', 'overlap'],
  scheduleJob: ['priority', 'maxAttempts', 'backoff', 'timeoutMs'],
  worker: ['pollIntervalMs', 'lockDurationMs', 'shutdownTimeoutMs', 'listen', 'unknownJobGraceMs', 'poolSize', 'claimAhead'],
  claimAhead: ['maxWaitMs'],
  onQueueEvent: ['queue', 'scope'],
  waitForJob: ['timeoutMs'],
  // The job management API (listJobs, updateJob, the bulk actions).
  jobFilter: ['queue', 'state', 'name', 'search', 'data'],
  listJobs: ['queue', 'state', 'name', 'search', 'data', 'sort', 'limit', 'after', 'scanLimit'],
  jobUpdate: ['data', 'priority', 'runAt'],
  bulkAction: ['batchSize', 'pace', 'signal', 'onProgress'],
} as const;

/** Names other queues use, and ours for the same thing. */
const ALIASES: Record<string, string> = {
  delay: 'delayMs',
  startAfter: 'runAt',
  runAfter: 'runAt',
  attempts: 'maxAttempts',
  retryLimit: 'maxAttempts',
  maxRetries: 'maxAttempts',
  timeout: 'timeoutMs',
  expireInSeconds: 'timeoutMs',
  retryDelay: 'backoff',
  retryBackoff: 'backoff',
  lockDuration: 'lockDurationMs',
  pollInterval: 'pollIntervalMs',
  newJobCheckInterval: 'pollIntervalMs',
  shutdownTimeout: 'shutdownTimeoutMs',
  table: 'tableName',
  removeOnComplete: 'retentionMs',
  removeOnFail: 'retentionMs',
  retention: 'retentionMs',
  statementTimeout: 'queryTimeoutMs',
  statementTimeoutMs: 'queryTimeoutMs',
  queryTimeout: 'queryTimeoutMs',
  opts: 'options',
  jobId: 'unique',
  singletonKey: 'unique',
  deduplication: 'unique',
  ttl: 'windowMs',
  id: 'key',
  limiter: 'rateLimit',
  duration: 'perMs',
  groupId: 'group',
  partition: 'group',
  timezone: 'tz',
  timeZone: 'tz',
  pattern: 'cron',
  expression: 'cron',
  dependencies: 'dependsOn',
  depends: 'dependsOn',
  parents: 'dependsOn',
  failParentOnFailure: 'onChildFailure',
  ignoreDependencyOnFailure: 'onChildFailure',
};

/** The known name `key` most likely meant, if any: an alias, a different case, or a near spelling. */
export function suggestOption(key: string, known: readonly string[]): string | undefined {
  const alias = ALIASES[key];
  if (alias && known.includes(alias)) return alias;
  const lower = key.toLowerCase();
  const sameCase = known.find((k) => k.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
