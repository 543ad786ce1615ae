import { Body, Controller, Post } from '@nestjs/common';
import { SignupService } from './signup.service';

@Controller('signup')
export class SignupController {
  constructor(private readonly signups: SignupService) {}

  /** Saves the user and enqueues its welcome email in one transaction. */
  @Post()
  signup(@Body() body: unknown) {
    return this.signups.signup(body);
  }
}
