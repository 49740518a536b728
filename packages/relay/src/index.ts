/**
 * `@valise/relay`. The relay parses only the public prelude of an envelope (protocol wire types)
 * and never holds a key. For now it offers the routing step the WebSocket server will use:
 * cutting a multi-recipient envelope into one small per-recipient prelude each, plus the
 * record stream that is stored once and shared by every mailbox.
 */
export { splitEnvelope } from '@valise/protocol';
