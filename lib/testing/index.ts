export { createQueueTester, QueueTester, type DrainSummary, type DrainOptions } from './queue-tester';
export type { JobFilter } from './job-filter';
export { JobExpectationError } from '../errors/job-expectation.error';
export { DrainTimeoutError } from '../errors/drain-timeout.error';
export { JobRunFailedError } from '../errors/job-run-failed.error';
