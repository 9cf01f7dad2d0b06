/**
 * A stream's output kept up to a byte limit: the first `limit` bytes are kept, the rest only
 * counted, so a container printing gigabytes costs mcp2 no more memory than the limit. The text
 * ends with a visible marker when anything was dropped. No I/O.
 */
import { StringDecoder } from "node:string_decoder";

export interface CappedText {
  text: string;
  truncated: boolean;
  /** Bytes received beyond the limit, not shown. */
  droppedBytes: number;
}

/** Collects chunks up to `limit` bytes. */
export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private dropped = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  push(chunk: Buffer): void {
    const room = this.limit - this.kept;
    if (room > 0) {
      const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
      this.chunks.push(part);
      this.kept += part.length;
    }
    this.dropped += Math.max(0, chunk.length - Math.max(room, 0));
  }

  /** The kept bytes as UTF-8; a character cut in half by the limit is left out, not mangled. */
  result(): CappedText {
    const decoder = new StringDecoder("utf8");
    let text = decoder.write(Buffer.concat(this.chunks));
    if (this.dropped === 0) {
      text += decoder.end();
      return { text, truncated: false, droppedBytes: 0 };
    }
    const marker = `\n[mcp2: output truncated at ${this.limit} bytes; ${this.dropped} more bytes not shown]`;
    return { text: text + marker, truncated: true, droppedBytes: this.dropped };
  }
}
