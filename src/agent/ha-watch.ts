// HaKv.watch (src/ha/env.ts) implementations: over the KV client's Watch stream (a real agent) and over an
// in-process KvStore (the HA service on a member, the simulators). Both only wake the HA up sooner; losing a
// change costs at most a periodic round, so they re-establish themselves quietly and say "maybe missed".

import type { KvClient } from "../client/kv-client.js";
import { text } from "../client/kv-client.js";
import { type Event, Event_EventType } from "../gen/zsha/kv/v1/kv_pb.js";
import type { KvChange } from "../ha/env.js";
import type { Watcher, WatchOptions, WatchSink } from "../kv/index.js";

const enc = new TextEncoder();

/** A watch event as the HA sees it. */
export function kvChange(e: Event): KvChange | undefined {
  if (!e.kv) return undefined;
  const deleted = e.type === Event_EventType.DELETE;
  return { key: text(e.kv.key), deleted, created: !deleted && e.kv.version === 1n };
}

/**
 * Over the KV client's Watch: each event under `prefix` goes to `onChange`; when the stream fails or ends
 * (member restarting, connection lost, compacted) it is opened again after `retryMs`, and
 * `onChange(undefined)` says that changes may have been missed meanwhile. The returned function ends it.
 */
export function watchPrefix(
  client: KvClient,
  prefix: string,
  onChange: (c: KvChange | undefined) => void,
  retryMs = 1000,
): () => void {
  let stopped = false;
  let current: { cancel(): void } | undefined;
  let retry: NodeJS.Timeout | undefined;
  let endWait: (() => void) | undefined;
  void (async () => {
    for (let first = true; !stopped; first = false) {
      const w = client.watch(prefix, { prefix: true });
      current = w;
      try {
        for await (const r of w.responses) {
          if (stopped) break;
          if (r.created) {
            // (Re)established: what happened while it was down was not seen.
            if (!first) onChange(undefined);
            if (r.canceled) break;
            continue;
          }
          if (r.canceled) break;
          for (const e of r.events) {
            const c = kvChange(e);
            if (c) onChange(c);
          }
        }
      } catch {
        // The stream failed: opened again below.
      }
      w.cancel();
      current = undefined;
      if (stopped) break;
      await new Promise<void>((resolve) => {
        endWait = resolve;
        retry = setTimeout(resolve, retryMs);
      });
    }
  })().catch(() => {});
  return () => {
    stopped = true;
    current?.cancel();
    clearTimeout(retry);
    endWait?.();
  };
}

/** What `watchStore` needs of a KvStore. */
export interface WatchableStore {
  watch(opts: WatchOptions, sink: WatchSink): Watcher;
}

/**
 * Over an in-process store (`store()` is read at each (re)open, for members that replace theirs): events
 * reach `onChange` synchronously as the store applies them. A watch the store ends (a snapshot install past
 * it) is opened again at once, from now, with `onChange(undefined)`.
 */
export function watchStore(
  store: () => WatchableStore,
  prefix: string,
  onChange: (c: KvChange | undefined) => void,
): () => void {
  let stopped = false;
  let w: Watcher | undefined;
  const open = (missed: boolean) => {
    if (stopped) return;
    w = store().watch(
      { key: enc.encode(prefix), prefix: true },
      {
        onEvents: (batch) => {
          for (const e of batch.events) {
            const c = kvChange(e);
            if (c) onChange(c);
          }
        },
        // Not from inside the store's own loop over its watchers: a moment later.
        onCancel: () => {
          w = undefined;
          queueMicrotask(() => open(true));
        },
      },
    );
    if (missed) onChange(undefined);
  };
  open(false);
  return () => {
    stopped = true;
    w?.cancel();
    w = undefined;
  };
}
