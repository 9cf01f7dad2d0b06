import { chmod, rename, writeFile } from "node:fs/promises";

/** Writes `content` to `path` through a temporary file, so a reader never sees half a key. */
export async function writeAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, content, { mode });
  await chmod(temp, mode);
  await rename(temp, path);
}
