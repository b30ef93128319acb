// Lock files for the browser caches (OPFS, the Cache API): a lock file is created only by the
// program that takes its Web Lock, which it holds until it removes the file, so a tab that closes
// mid-download frees the lock at once (the file left behind is then taken over as stale).
// Without Web Locks, a lock file is created when there is none.

interface Locks {
  request<T>(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<T> | T): Promise<T>;
}

/** Lock files under `scope`, over a store's `exists` and `write`. */
export function lockFiles(scope: string, exists: (path: string) => Promise<boolean>, write: (path: string, text: string) => Promise<void>) {
  const held = new Map<string, () => void>();
  return {
    /** Creates the lock file `path` holding `text` if this program can take it: true when it did. */
    create(path: string, text: string): Promise<boolean> {
      const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
      if (!locks) return exists(path).then(async (there) => !there && (await write(path, text), true));
      return new Promise<boolean>((resolve, reject) => {
        locks.request(`bitnet-wasm:${scope}/${path}`, { ifAvailable: true }, async (lock) => {
          if (!lock) return resolve(false);
          try {
            await write(path, text);
          } catch (e) {
            return reject(e);
          }
          resolve(true);
          await new Promise<void>((release) => held.set(path, release)); // held until release(path)
        }).catch(reject);
      });
    },
    /** Lets go of the lock `path` (when this program holds it): call when its file is removed. */
    release(path: string): void {
      held.get(path)?.();
      held.delete(path);
    },
  };
}
