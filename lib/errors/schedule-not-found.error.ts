import { QueueError } from './queue.error';

/** No schedule has this key (`pauseSchedule`, `resumeSchedule`, `triggerSchedule`). */
export class ScheduleNotFoundError extends QueueError {
  constructor(readonly key: string) {
    super(`No schedule with key ${JSON.stringify(key)}`);
  }
}
