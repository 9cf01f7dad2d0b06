/**
 * Where secrets go on disk: every file holding one (the agent-token private key, the proxy's
 * signing key, both `.dev.vars`) is created 0600 inside a folder that is 0700 before the first
 * secret goes in, so no other local user can read one, list them, or open one while it is
 * written. Modes an older version left looser are tightened the next time, with one notice each
 * (once tight, there is nothing more to say).
 */
import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, readlink, rename, stat, symlink, unlink } from "node:fs/promises";
import { dirname, relative } from "node:path";
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

/**
 * Puts a relative symbolic link at `linkPath` to the secret at `secretPath`, so a tool that
 * insists on a file elsewhere (wrangler's `.dev.vars` beside its config) reads the secret through
 * its 0700 folder. Replaces whatever was at `linkPath` in one rename; replacing a copy of the
 * secret (what older versions wrote there) is reported.
 */
export async function linkSecret(linkPath: string, secretPath: string, notice: Notice = warn) {
  const target = relative(dirname(linkPath), secretPath);
  const old = await lstat(linkPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (old?.isSymbolicLink() && (await readlink(linkPath)) === target) return;
  const temp = `${linkPath}.${randomBytes(6).toString("hex")}.tmp`;
  await symlink(target, temp);
  try {
    await rename(temp, linkPath);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  if (old?.isFile()) {
    const readable = loose(old.mode)
      ? `, mode ${octal(old.mode)}: other local users could read it`
      : "";
    notice(`replaced ${linkPath} (a copy of the secret${readable}) with a link to ${secretPath}`);
  }
}
