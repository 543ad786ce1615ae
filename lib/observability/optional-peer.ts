import { MissingPeerDependencyError } from '../errors/missing-peer-dependency.error';

/**
 * Loads an optional peer dependency when a feature that needs it is configured, never at import
 * time: an app that installs none of them loads none of them and hears nothing about them.
 *
 * @throws MissingPeerDependencyError when it is not installed
 */
export function loadOptionalPeer<T>(packageName: string, neededBy: string): T {
  try {
    // NOTE: a plain require at call time (the library is CommonJS), so bundlers and tsc leave it
    // out of the import graph.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(packageName) as T;
  } catch (error) {
    const code = (error as { code?: string })?.code;
    if (code === 'MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${packageName}'`)) {
      throw new MissingPeerDependencyError(packageName, neededBy, error);
    }
    throw error;
  }
}
