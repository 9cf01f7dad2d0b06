/**
 * What an isolate builds once per set of bindings: bindings do not change within an isolate, so
 * the configuration is validated, and the SDK handler and token cache built, on the first request
 * and kept. A configuration that failed stays failed: the answer names it on every request.
 */
const built = new WeakMap<object, Promise<unknown>>();

/** `build()`'s promise for `env`, made on the first call and shared by every later one. */
export function oncePerEnv<T>(env: object, build: () => Promise<T>): Promise<T> {
  let value = built.get(env) as Promise<T> | undefined;
  if (!value) {
    value = build();
    built.set(env, value);
  }
  return value;
}
