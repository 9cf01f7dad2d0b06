/**
 * The HTTP edges of an agent's exchange: its request body read within a limit, and its response
 * body watched to the end (so the audit record knows when the answer was sent in full).
 */
import { fail } from "../errors.ts";

/** The largest request body the gateway reads (the SDK's own default). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * Watches a response body to its end without holding it: counts the bytes as they pass and calls
 * back once, when the stream finishes, fails, or the client goes away. SSE answers can last as
 * long as a tool runs, so "the request is done" means this, not "the handler returned".
 */
export function observeBody(response: Response, onDone: (bytes: number) => void): Response {
  if (!response.body) {
    onDone(0);
    return response;
  }
  // A body of known length is already whole (the hot path's buffered answers): nothing to watch.
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isSafeInteger(length)) {
    onDone(length);
    return response;
  }
  const reader = response.body.getReader();
  let bytes = 0;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    onDone(bytes);
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          finish();
          return;
        }
        bytes += value.byteLength;
        controller.enqueue(value);
      } catch (e) {
        controller.error(e);
        finish();
      }
    },
    async cancel(reason) {
      finish();
      await reader.cancel(reason);
    },
  });
  return new Response(body, response);
}

/** The request's body as text, refusing one over `MAX_BODY_BYTES` without reading it all. */
export async function readBody(request: Request): Promise<string> {
  const tooLarge = { kind: "body_too_large", limit: MAX_BODY_BYTES } as const;
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) fail(tooLarge);
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      fail(tooLarge);
    }
    chunks.push(value);
  }
  const decoder = new TextDecoder();
  return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
}

/** `response` with one more header, copying it when its headers are immutable. */
export function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
  }
}
