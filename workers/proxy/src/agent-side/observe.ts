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
