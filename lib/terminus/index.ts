/**
 * `nestjs-pg-queue/terminus`: the `@nestjs/terminus` integration. A subpath of its own so the main
 * entry never loads `@nestjs/terminus` (an optional peer dependency).
 */
export { QueueHealthIndicator } from './queue-health.indicator';
