import { randomBytes } from "node:crypto";
import { open, rename, unlink } from "node:fs/promises";

/**
 * Writes `content` to `path` through a temporary file beside it, so a reader never sees half a
 * key. The temporary file is created with `mode` by the same call that creates it (O_CREAT |
 * O_EXCL, under a random name): never an existing file, which would keep its own mode while the
 * content goes in, and never through a link someone left at a guessable name.
 */
export async function writeAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const file = await open(temp, "wx", mode);
  try {
    try {
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}
