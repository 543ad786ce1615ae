import { Body, Controller, Post } from '@nestjs/common';
import { QueueService } from 'nestjs-pg-queue';

@Controller()
export class SignupController {
  constructor(private readonly queue: QueueService) {}

  @Post('signup')
  async signup(@Body('email') email: string) {
    const job = await this.queue.add('email', 'welcome', { to: email });
    return { jobId: job.id };
  }
}
