// The e2e config a Nest 11 scaffold has (test/jest-e2e.json), with the library mapped to ../../lib
// instead of node_modules/nestjs-pg-queue. Run by test/integration/testing-app.spec.ts.
/** @type {import('jest').Config} */
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  testRegex: '.e2e-spec.ts$',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  moduleNameMapper: {
    '^nestjs-pg-queue$': '<rootDir>/../../lib',
    '^nestjs-pg-queue/testing$': '<rootDir>/../../lib/testing',
  },
};
