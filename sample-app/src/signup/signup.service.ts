import { BadRequestException, ConflictException, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DataSource, QueryFailedError } from 'typeorm';
import { QueueService } from '../../../lib';
import { User } from './user.entity';

export interface WelcomeEmail {
  userId: string;
  email: string;
}

// Deliberately loose: real validation is sending the email.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const UNIQUE_VIOLATION = '23505';

@Injectable()
export class SignupService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly queue: QueueService,
  ) {}

  async signup(body: unknown): Promise<{ user: User; jobId: string }> {
    const email = parseEmail(body);
    try {
      return await this.dataSource.transaction(async (manager) => {
        const user = manager.create(User, { id: randomUUID(), email });
        // NOTE: both writes commit or roll back together, so their order does not matter. The job
        // goes first here so that a duplicate email (the INSERT below fails) visibly rolls back a
        // job that was already written: no welcome email for a signup that did not happen.
        const job = await this.queue.add<WelcomeEmail>('email', 'welcome', { userId: user.id, email }, { manager });
        await manager.insert(User, user);
        return { user, jobId: job.id };
      });
    } catch (error) {
      if (error instanceof QueryFailedError && (error.driverError as { code?: string }).code === UNIQUE_VIOLATION) {
        throw new ConflictException(`${email} is already signed up`);
      }
      throw error;
    }
  }
}

function parseEmail(body: unknown): string {
  const email = typeof body === 'object' && body !== null ? (body as { email?: unknown }).email : undefined;
  if (typeof email !== 'string') throw new BadRequestException('Body must be JSON like {"email": "ada@example.com"}');
  const normalised = email.trim().toLowerCase();
  if (normalised.length > 254 || !EMAIL.test(normalised)) throw new BadRequestException(`Not an email address: ${JSON.stringify(email)}`);
  return normalised;
}
