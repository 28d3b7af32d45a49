// Package mailsync fetches every mailbox's mail into tickets: one session
// per mailbox, run by exactly one process.
//
// # Holding mailboxes, fair share, takeover
//
// Every process runs a Syncer. Each round it records its heartbeat, lists
// the mailboxes with enabled server settings (one query, every Refresh),
// and, while it holds fewer than its fair share (ceil(mailboxes / live
// processes)), takes free ones whose authorization is usable
// (store.SyncCandidate's Usability decides). How a mailbox is held
// depends on the database (hold.go):
//
//   - PostgreSQL: a session advisory lock per mailbox, all on one
//     dedicated connection per process (store.SyncLocks). The heartbeat
//     names that connection's backend, so a process counts as alive exactly
//     while its locks can be held. A killed process's connection closes,
//     its locks vanish, and the others take its mailboxes at their next
//     round (DefaultLockRound). When the lock connection fails, every
//     session stops before any lock is taken again on a new one.
//   - SQLite (one host): a lease row with an owner and an expiry, renewed
//     for all of the process's mailboxes in one statement; a dead process's
//     mailboxes are taken over once its leases expired (LeaseTTL).
//
// Either way a lease row names each mailbox's holder, and every commit
// checks it in its transaction (store.Tx.CheckLease; on PostgreSQL under a
// share lock that a takeover's claim waits for): a process that lost a
// mailbox cannot commit for it, and its session stops. Exactly once does
// not depend on this alone: the unique dedupe key makes a second store of a
// message a duplicate, and a cursor never moves backwards.
//
// Sessions start, and reconnect, through a pacer (Options.ConnectRate): no
// thundering herd of logins at boot, at a takeover, or after the mail
// server restarts.
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
