/**
 * Cross-connection fan-out (spec/relay.md, "Delivery"): once a message is stored, the node
 * that stored it tells the connections of its mailboxes. The in-process notifier serves one
 * node; a NATS JetStream notifier can implement the same interface so that a message stored by
 * one relay node reaches a recipient connected to another.
 *
 * A note is only a hint that a mailbox has something new: the store stays the source of truth,
 * and a connection that misses a note still gets the message from its backlog on its next pump.
 * The in-process notifier also hands over the bytes (`inline`), which saves a read per message.
 */

import { mailboxKey } from './keys.js';

export interface DeliveryNote {
  seq: number;
  messageId: Uint8Array;
  /** Map key of `messageId` (keys.ts), made once by the store. */
  messageKey: string;
  storedAt: number;
  /** The delivery's bytes, when the notifier shares memory with the storing node. */
  inline?: { prelude: Uint8Array; records: Uint8Array };
  /**
   * Resolves when the delivery is committed. The in-process notifier publishes at once (its
   * listeners push the inline bytes); a notifier between nodes must publish only after this,
   * since the other nodes read the delivery from the store.
   */
  durable: Promise<void>;
}

export type ControlEvent =
  /** A newer revocation list was stored: every node reloads it and disconnects revoked devices. */
  | { kind: 'revocation'; sequence: number }
  /** A mailbox's one-time prekeys fell below the threshold: its owner's connection is told. */
  | { kind: 'prekeys-low'; mailbox: Uint8Array; remaining: number };

export interface Notifier {
  /** Tells subscribers of `mailbox`, synchronously or later, in the order notes were published. */
  publish(mailbox: Uint8Array, note: DeliveryNote): void;
  subscribe(mailbox: Uint8Array, listener: (note: DeliveryNote) => void): () => void;
  publishControl(event: ControlEvent): void;
  onControl(listener: (event: ControlEvent) => void): () => void;
  close(): Promise<void>;
}

/** Fan-out within one process. Listeners run synchronously, in publication order. */
export class InProcessNotifier implements Notifier {
  private readonly listeners = new Map<string, Set<(note: DeliveryNote) => void>>();
  private readonly control = new Set<(event: ControlEvent) => void>();

  publish(mailbox: Uint8Array, note: DeliveryNote): void {
    const set = this.listeners.get(mailboxKey(mailbox));
    if (set === undefined) return;
    for (const l of set) l(note);
  }

  subscribe(mailbox: Uint8Array, listener: (note: DeliveryNote) => void): () => void {
    const key = mailboxKey(mailbox);
    let set = this.listeners.get(key);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    return () => {
      const s = this.listeners.get(key);
      if (s === undefined) return;
      s.delete(listener);
      if (s.size === 0) this.listeners.delete(key);
    };
  }

  publishControl(event: ControlEvent): void {
    for (const l of this.control) l(event);
  }

  onControl(listener: (event: ControlEvent) => void): () => void {
    this.control.add(listener);
    return () => this.control.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.control.clear();
  }
}
