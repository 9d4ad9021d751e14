/** Assertions about failures that several suites share. */
import { expect } from 'vitest';
import { ExaiError } from '../../src/errors.js';

/** Awaits a promise that must reject with an ExaiError, and returns that error. */
export async function expectExaiError(promise: Promise<unknown>): Promise<ExaiError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ExaiError);
  return error as ExaiError;
}
