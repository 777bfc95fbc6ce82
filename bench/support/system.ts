// What the harness needs from a 3-member cluster under test, so etcd and zsha are driven by the same code.

export interface Driver {
  put(key: string, value: Uint8Array): Promise<void>;
  /** A linearizable read. */
  get(key: string): Promise<void>;
  close(): void;
}

export interface Cluster {
  readonly name: "etcd" | "zsha";
  readonly size: number;
  /** Starts every member and resolves when a leader serves writes. */
  start(): Promise<void>;
  /** The product's own client, given every member's endpoint. */
  client(): Driver;
  /** A client of member `i` alone that gives up after `deadlineMs` (no retries). */
  memberClient(i: number, deadlineMs: number): Driver;
  /** The index of the leader every running member agrees on, or undefined. */
  leader(): Promise<number | undefined>;
  /** kill -9 of member `i`; resolves once the process is gone. */
  kill(i: number): Promise<void>;
  /** Starts member `i` again on its data and resolves once it follows the leader. */
  restart(i: number): Promise<void>;
  /** Describes how the product's client routes calls (for the results file). */
  routing(): Promise<string>;
  stop(): Promise<void>;
}
