import { chmod, lstat, mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { writeAtomic } from "./write-atomic.ts";

/** Where a tightened mode is reported. */
export type Notice = (message: string) => void;

const warn: Notice = (message) => console.warn(`[keys] ${message}`);

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;
/** Whether anyone but the owner has any access. */
const loose = (mode: number) => (mode & 0o077) !== 0;

/** Makes `dir` (and any missing parent) 0700, tightening an existing one that is looser. */
export async function ensurePrivateDir(dir: string, notice: Notice = warn): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { mode } = await stat(dir);
  if (!loose(mode)) return;
  await chmod(dir, 0o700);
  notice(`tightened ${dir} from ${octal(mode)} to 0700: what it holds is for its owner only`);
}

/** Makes an existing secret file 0600 if an older version left it looser; a missing one is fine. */
export async function tightenSecretFile(path: string, notice: Notice = warn): Promise<void> {
  let mode: number;
  try {
    ({ mode } = await lstat(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  if (!loose(mode)) return;
  await chmod(path, 0o600);
  notice(`tightened ${path} from ${octal(mode)} to 0600: it holds a secret`);
}

/** Writes a secret: 0600 from its creation on, atomically, in a folder made 0700 first. */
export async function writeSecret(path: string, content: string, notice: Notice = warn) {
  await ensurePrivateDir(dirname(path), notice);
  await writeAtomic(path, content, 0o600);
}
