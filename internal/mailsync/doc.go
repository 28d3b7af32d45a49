// Package mailsync fetches every mailbox's mail into tickets: one session
// per mailbox, run by exactly one process.
//
// # Leases and fair share
//
// Every process runs a Syncer. Each round (every few seconds) it lists the
// mailboxes with enabled server settings and, for each one it is not
// already syncing and whose authorization is usable (store.MailboxAuth's
// Usability decides), tries to take the mailbox's lease (a row with an
// owner and an expiry). A held lease is renewed each round; a process that
// dies stops renewing, and another takes the mailbox over once the lease
// has expired (LeaseTTL). Each live process syncs at most its fair share
// (ceil(mailboxes / processes)). Exactly once does not depend on the lease:
// if two processes ever overlap, the unique dedupe key makes the second
// store of a message a duplicate, and a cursor never moves backwards.
//
// # The fetcher seam
//
// How a mailbox is fetched is a Transport, chosen from the mailbox's server
// settings: IMAP (package imapsync), or Microsoft Graph (graph.go: a delta
// query per folder, its link the cursor) for a Microsoft 365 mailbox whose
// server settings say so. A
// Transport builds a Fetcher per mailbox from a Session (settings, login
// name, token or password functions, an event callback); Fetcher.Run
// hands messages to a Store until the context ends or it fails for good
// (*RefusedError, ErrPermanent). The Syncer owns everything else: leases,
// sync states, metrics, what a refusal means for the mailbox, and the
// Store, which commits messages through ingest.ApplyBatch.
//
// Where a folder's fetch stands is a Cursor: an opaque string per mailbox
// and folder that only its Transport reads (IMAP: UIDVALIDITY and the last
// UID; Graph: the delta link and the bound of a resync). Invariants:
//
//   - The cursor moves only with messages that are committed or
//     quarantined: a batch's ticket changes and its cursor move commit in
//     one transaction, and a message that cannot be stored is quarantined
//     in the transaction that moves the cursor past it. Advance, without a
//     message, first commits everything handled (mail passed over on
//     purpose, or reported to the admins with Skipped).
//   - A cursor never moves behind one already stored (Transport.Ahead):
//     a stale writer after a lease takeover cannot send a folder back.
//   - A Fetcher touches the server (flags, moves) only for committed
//     messages, and refetches from the cursor after any failure; dedupe
//     turns that at-least-once into exactly once.
//   - Nothing here unseals a secret: password mailboxes' passwords come
//     through Options.Passwords (store.MailboxPasswords), tokens from oauth.
//
// No message can block a mailbox: a batch that fails is retried one
// message per transaction, and a message that still fails is quarantined.
//
// mailsync is not a River job: package jobs keeps the queue only.
package mailsync
