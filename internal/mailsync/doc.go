// Package mailsync fetches every mailbox's mail into tickets: one session
// per mailbox, run by exactly one process.
//
// Every process runs a Syncer. Each round (every few seconds) it lists the
// mailboxes with enabled server settings and, for each one it is not
// already syncing and whose authorization is usable, tries to take the
// mailbox's lease (a row with an owner and an expiry). A held lease is
// renewed each round; a process that dies stops renewing, and another
// takes the mailbox over once the lease has expired (LeaseTTL). Each live
// process syncs at most its fair share (ceil(mailboxes / processes)).
// Exactly once does not depend on the lease: if two processes ever overlap,
// the unique dedupe key makes the second store of a message a duplicate,
// and a checkpoint never moves backwards.
//
// Fetched messages are committed in batches, each with its checkpoint move,
// through ingest's single apply point. A message that cannot be stored is
// quarantined with its source in the transaction that moves the checkpoint
// past it, so no message can block a mailbox.
//
// mailsync is not a River job: package jobs keeps the queue only.
package mailsync
